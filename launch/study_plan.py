"""The study's runs: which trainings, at which seeds and steps, in which folders, sharing what.

Every SINSR run of one seed whose config differs from SINSR's only in its GAN-phase loss (the
ablations, and SINSR trained on the pixel loss throughout) starts from one shared checkpoint: the
pixel-loss phase, trained once per seed (``sinsr_pretrain``). The pixel-loss steps read nothing
of the GAN-phase loss, so that checkpoint is bit for bit the one each run would reach on its own,
and a shared run equals the same config trained from scratch (tests/test_study.py checks it).

A run is finished when its folder's config.json is the run's fully resolved config (seed, every
loss weight, steps) and its metrics.json reached the last step: a run of another seed or config
in the same folder is never taken for it. Each seed has its own folder:
``<root>/runs/<name>/seed<k>``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "launch"))

import sweep  # noqa: E402  (launch/sweep.py: the two grids' config files)

from sinsr_jax.runtime import paths  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Budget:
  """variants: configs' variants; steps: per run (0 = each config's own); gan_steps: of those,
  SINSR's GAN phase (None = the config's own proportion); seeds: of every run a verdict rests on;
  eval_every: validation points (0 = once, at the end); decay: scale the learning-rate decay with
  the steps (the quick schedule's shape, stretched); dataset_version: sem_synthetic pinned, so
  that a later default version does not change the runs."""

  variants: str
  steps: int
  gan_steps: int | None = None
  seeds: int = 1
  eval_every: int = 0
  decay: bool = False
  dataset_version: str = ""  # sem_synthetic's version, pinned ("" = the builder's default)


BUDGETS = {
    "smoke": Budget("quick", 4),
    "cpu": Budget("quick", 600),
    # Validation PSNR every 100 steps; every GAN model's GAN phase is 700 of 1500 steps (47%);
    # 3 seeds. docs/evaluation/study.md gives the curves that chose it.
    "converged": Budget("quick", 1500, gan_steps=700, seeds=3, eval_every=100, decay=True,
                        dataset_version="2.0.0"),
    "paper": Budget("", 0),
}
QUICK_STEPS, QUICK_DECAY_STEPS = 1000, 200  # configs/sinsr.py's quick schedule, stretched
STEM = "sinsr_pretrain"  # the shared pixel-loss phase of SINSR's runs of one seed
PIXEL_ONLY = "sinsr_pixel"  # SINSR's generator and steps, the pixel loss throughout
# Ablations that are study runs under another name (one training, two table rows).
SHARED = {"full": "sinsr", "gradient_branch": "sinsr_gradient_branch"}
STRONGEST = 2  # baselines trained at every seed: the best on validation PSNR at seed 0
# Where the data lies and how it is read: may differ between machines for the same run.
MACHINE_KEYS = ("data.data_dir", "data.manual_dir", "data.num_workers", "data.prefetch_buffer")


@dataclasses.dataclass(frozen=True)
class Run:
  name: str  # the table row: sinsr, no_ssim, esrgan, ... (or STEM)
  seed: int
  spec: str  # configs/x.py:variants
  overrides: tuple[str, ...]  # KEY=VALUE, as --config.KEY=VALUE
  stem: str = ""  # the run whose last checkpoint this one starts from ("" = from scratch)

  def folder(self, root: pathlib.Path) -> pathlib.Path:
    return root / "runs" / self.name / f"seed{self.seed}"

  def argv(self, root: pathlib.Path) -> list[str]:
    return [sys.executable, "-m", "sinsr_jax.main", f"--config={self.spec}",
            f"--workdir={self.folder(root)}", *[f"--config.{o}" for o in self.overrides]]


def load_config(spec: str):
  """'configs/x.py:variants' -> its ConfigDict, as ``main --config=`` builds it."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(f"study_{pathlib.Path(path).stem}",
                                                       REPO / path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def resolved(run: Run):
  """The config ``main`` trains ``run`` with: its spec with the overrides applied."""
  config = load_config(run.spec)
  for item in run.overrides:
    key, value = item.split("=", 1)
    *groups, leaf = key.split(".")
    node = config
    for group in groups:
      node = node[group]
    node[leaf] = _typed(value, node[leaf])
  return config


def _typed(text: str, like):
  """A command-line value as the field it overrides holds it (as ml_collections parses it)."""
  if isinstance(like, str) or like is None:
    return text
  value = ast.literal_eval(text)
  if isinstance(like, bool):
    return bool(value)
  if isinstance(like, tuple):
    return tuple(type(like[0])(v) for v in value) if like else tuple(value)
  return type(like)(value)


def flat(tree: dict, prefix: str = "") -> dict[str, str]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = str(tuple(v) if isinstance(v, list) else v)
  return out


def config_differences(run: Run, root: pathlib.Path) -> list[str]:
  """Keys where the folder's config.json differs from the run's resolved config."""
  path = run.folder(root) / "config.json"
  paths.refresh(str(path))  # a bucket's listing, as the training process left it
  if not path.exists():
    return ["config.json missing"]
  saved, want = flat(json.loads(path.read_text())), flat(resolved(run).to_dict())
  return [k for k in sorted(set(saved) | set(want))
          if k not in MACHINE_KEYS and saved.get(k) != want.get(k)]


def final_step(folder: pathlib.Path) -> int | None:
  record = folder / "metrics.json"
  paths.refresh(str(record))
  return json.loads(record.read_text()).get("step") if record.exists() else None


def checkpoint_steps(folder: pathlib.Path) -> list[int]:
  """The steps of the finalized checkpoints in a run folder."""
  where = folder / "checkpoints"
  paths.refresh(str(where))
  return sorted(int(p.name) for p in where.iterdir() if p.name.isdigit()) if where.exists() else []


def without_weights(run: Run, root: pathlib.Path) -> bool:
  """Finished, but its last checkpoint is not there (a run adopted from a study record)."""
  return finished(run, root) and final_step(run.folder(root)) not in checkpoint_steps(
      run.folder(root))


def finished(run: Run, root: pathlib.Path) -> bool:
  """The folder holds this very run (its full config) trained to its last step."""
  config = resolved(run)
  steps = 0 if config.model.name == "bicubic" else config.train.num_steps
  return final_step(run.folder(root)) == steps and not config_differences(run, root)


def overrides_for(budget: Budget, config) -> list[str]:
  """The budget's step count, phases, validation points and decay for one config: every model
  with a GAN phase gets the same one."""
  if not budget.steps:
    return []
  steps, train = budget.steps, config.train
  if train.pretrain_steps >= train.num_steps:
    pretrain = steps  # pixel-only models stay so
  elif budget.gan_steps is not None:
    pretrain = steps - budget.gan_steps
  else:
    pretrain = round(steps * train.pretrain_steps / train.num_steps)
  every = budget.eval_every or steps
  out = [f"train.num_steps={steps}", f"train.pretrain_steps={pretrain}",
         f"train.checkpoint_every={budget.eval_every or max(steps // 2, 1)}",
         f"train.eval_every={every}", f"train.image_every={steps}",
         f"train.log_every={max(steps // 30, 1)}"]
  if budget.decay:
    out.append(f"optim.decay_steps={round(QUICK_DECAY_STEPS * steps / QUICK_STEPS)}")
  return out


def with_variants(spec: str, variants: str) -> str:
  return sweep.with_variants(spec, variants)


def _extra_for(name: str, family_extra: tuple[str, ...]) -> list[str]:
  """SINSR-only overrides, less those the ablation ``name`` itself sets (no_perceptual keeps its
  perceptual term off when the others turn it on)."""
  own = sweep.ablations.ABLATIONS.get(name, {})
  return [x for x in family_extra if x.split("=", 1)[0] not in own]


def family() -> dict[str, str]:
  """SINSR's runs: {name: config spec without variants}, the shared stem first."""
  ablations = {n: s for n, s in sweep.grid("ablations").items() if n not in SHARED}
  return {STEM: "configs/sinsr.py", "sinsr": "configs/sinsr.py",
          PIXEL_ONLY: "configs/sinsr.py",
          "sinsr_gradient_branch": "configs/sinsr.py:gradient_branch", **ablations}


def baselines() -> dict[str, str]:
  return {b: f"configs/baselines/{b}.py" for b in sweep.BASELINES}


def unchanged_ablations(variants: str, extra: tuple[str, ...] = ()) -> list[str]:
  """Ablations that leave SINSR's config as it is (their term's weight is 0 there already)."""
  full = resolved(Run("full", 0, with_variants("configs/sinsr.py", variants), extra)).to_dict()
  out = []
  for name, spec in sweep.grid("ablations").items():
    ablated = resolved(Run(name, 0, with_variants(spec, variants),
                           tuple(_extra_for(name, extra)))).to_dict()
    ablated.pop("ablation", None)
    if name not in SHARED and ablated == full:
      out.append(name)
  return out


def applicable_sets(config, sets: list[str]) -> tuple[list[str], list[str]]:
  """--set values split into those the run's config has and those it lacks (bicubic: no
  model.width), so that one --set list can shrink every model of the grid."""
  has, lacks = [], []
  for item in sets:
    node, keys = config, item.split("=", 1)[0].split(".")
    for key in keys:
      if not hasattr(node, "keys") or key not in node:
        lacks.append(item.split("=", 1)[0])
        break
      node = node[key]
    else:
      has.append(item)
  return has, lacks


@dataclasses.dataclass(frozen=True)
class Plan:
  runs: list[Run]  # in training order
  pending: list[str]  # what cannot be planned yet, in words
  lacking: dict[str, list[str]]  # run name: --set keys its config lacks


def make(budget: Budget, variants: str, sets: list[str], only: list[str],
         family_extra: tuple[str, ...] = (), strongest: list[str] | None = None) -> Plan:
  """Every run of the study, seed 0 of everything first, then the other seeds.

  ``family_extra``: overrides of SINSR's runs only (the perceptual term where VGG19 weights can
  be had). ``strongest``: the baselines trained at every seed (None: not chosen yet, because
  their seed-0 runs have not all finished)."""
  lead = (STEM, "sinsr", PIXEL_ONLY, "sinsr_gradient_branch")
  specs = {**{n: family()[n] for n in lead}, **baselines(), **family()}
  unknown = sorted(set(only) - set(specs) - {"full", "gradient_branch"})
  if unknown:
    raise SystemExit(f"error: {', '.join(unknown)} not in the study; valid: "
                     f"{', '.join(n for n in specs if n != STEM)}")
  wanted = {SHARED.get(n, n) for n in only}
  skipped = set(unchanged_ablations(variants, family_extra))
  runs, pending, lacking = [], [], {}
  for seed in range(budget.seeds):
    for name, spec in specs.items():
      in_family = name in family()
      if name in skipped or (wanted and name not in wanted and not (
          name == STEM and wanted & (set(family()) - {"sinsr_gradient_branch"}))):
        continue
      if seed and name == "bicubic":  # nothing trained: no seed to vary
        continue
      if seed and not in_family:
        if strongest is None:
          pending.append(f"{name} seed {seed}")
          continue
        if name not in strongest:
          continue
      seeded = with_variants(spec, ",".join(filter(None, [variants, f"seed={seed}" if seed
                                                         else ""])))
      config = load_config(seeded)
      applicable, lacks = applicable_sets(config, sets)
      lacking[name] = lacks
      run = Run(name, seed, seeded, (*overrides_for(budget, config),
                                     *(_extra_for(name, family_extra) if in_family else ()),
                                     *applicable),
                STEM if in_family and name not in (STEM, "sinsr_gradient_branch") else "")
      if name in (STEM, PIXEL_ONLY):  # the stem stops where the GAN phase would start; the
        train = resolved(run).train  # pixel-only run never starts it
        key, value = (("train.num_steps", train.pretrain_steps) if name == STEM else
                      ("train.pretrain_steps", train.num_steps))
        run = dataclasses.replace(run, overrides=(
            *[o for o in run.overrides if not o.startswith(key + "=")], f"{key}={value}"))
      runs.append(run)
  return Plan(runs, pending, lacking)
