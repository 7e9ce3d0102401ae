"""The study: SINSR against every baseline, and SINSR's ablations, one command per stage.

    python launch/study.py prepare  --budget=cpu    # 1. build the dataset (sem_synthetic: ~30 s)
    python launch/study.py train    --budget=cpu    # 2. train every model, the same data and budget
    python launch/study.py evaluate --budget=cpu    # 3. score them: one table + figures per grid
    python launch/study.py report   --budget=cpu    # 4. tables, small figures, summary to docs/
    python launch/study.py all      --budget=cpu    # the four in turn

Two grids share one set of runs: the **study** (SINSR, SINSR with the gradient branch, and every
baseline of configs/baselines/) and the **ablations** (configs/ablations.py: each loss term of
SINSR removed in turn, fixed weights; "full" and "gradient_branch" are the study's two SINSR
runs). Every run sees the same dataset, LR degradation, seed and step budget:

- ``--budget=cpu``: the ``quick`` models, every run ``--steps`` (600) steps with its own
  config's pretrain : GAN proportion (SINSR: 510 pixel-loss steps, then 90 GAN steps). About
  1.5 h on a 2-core CPU. Results are committed under docs/results/cpu/.
- ``--budget=smoke``: the same at 4 steps; the test suite runs it to keep the path working.
- ``--budget=paper``: the papers' models and step counts (``--steps=0``): an accelerator's job
  (README, "The study").

``--data=nffa_sem`` (or ``folder --path=DIR``) runs the same study on the real archive;
``--set=KEY=VALUE`` overrides a config value in every run; ``--only=NAMES`` restricts the runs;
``--emit`` prints the command lines (one job per run on a cluster) instead of running them.
Stages resume: a finished run is not trained again, and an interrupted one continues from its
checkpoint when ``train`` is started again.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "launch"))

import sweep  # noqa: E402  (launch/sweep.py: the two grids and their command lines)

BUDGETS = {  # name: (config variants, steps per run; 0 = each config's own)
    "smoke": ("quick", 4),
    "cpu": ("quick", 600),
    "paper": ("", 0),
}
# Ablation runs that are the study's SINSR runs (same config): trained once, listed in both.
SHARED = {"full": "sinsr", "gradient_branch": "sinsr_gradient_branch"}
STAGES = ("prepare", "train", "evaluate", "report")
FIGURE_WIDTH = 1400  # px: committed figures stay small


def load_config(spec: str):
  """'configs/x.py:variants' -> its ConfigDict, as ``main --config=`` would build it."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(f"study_{pathlib.Path(path).stem}",
                                                       REPO / path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def budget_overrides(train, steps: int) -> list[str]:
  """num_steps = steps, pretrain_steps in the config's own proportion (pixel-only stays so)."""
  if not steps:
    return []
  pretrain = steps if train.pretrain_steps >= train.num_steps else round(
      steps * train.pretrain_steps / train.num_steps)
  every = max(steps // 2, 1)
  return [f"train.num_steps={steps}", f"train.pretrain_steps={pretrain}",
          f"train.checkpoint_every={every}", f"train.eval_every={steps}",
          f"train.image_every={steps}", f"train.log_every={max(steps // 12, 1)}"]


def unchanged_ablations(variants: str) -> list[str]:
  """Ablations that leave SINSR's config as it is (their term's weight is 0 there already)."""
  full = load_config(sweep.with_variants("configs/sinsr.py", variants)).to_dict()
  out = []
  for name, spec in sweep.grid("ablations").items():
    ablated = load_config(sweep.with_variants(spec, variants)).to_dict()
    ablated.pop("ablation", None)
    if name not in SHARED and ablated == full:
      out.append(name)
  return out


def with_data(variants: str, data: str, path: str) -> str:
  extra = [f"data={data}"] if data != "sem_synthetic" else []
  extra += [f"path={path}"] if path else []
  return ",".join(filter(None, [variants, *extra]))


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


def runs(a, quiet: bool = True) -> dict[str, list[str]]:
  """{run name: argv of its training}: the study grid, then the ablations not shared with it."""
  variants, default_steps = BUDGETS[a.budget]
  variants = with_data(variants, a.data, a.path)
  steps = default_steps if a.steps is None else a.steps
  specs = {**sweep.grid("study"),
           **{n: s for n, s in sweep.grid("ablations").items() if n not in SHARED}}
  only = [n for n in a.only.split(",") if n]
  unknown = sorted(set(only) - set(specs))
  if unknown:
    raise SystemExit(f"error: {', '.join(unknown)} not in the study; valid: {', '.join(specs)}")
  out, lacking = {}, []
  unchanged = unchanged_ablations(variants)  # e.g. no_perceptual at quick: nothing to remove
  for name, spec in specs.items():
    if (only and name not in only) or name in unchanged:
      continue
    full_spec = sweep.with_variants(spec, variants)
    config = load_config(full_spec)
    applicable, skipped = applicable_sets(config, a.set)
    lacking.append(set(skipped))
    if skipped and not quiet:
      _say(f"{name}: --set {', '.join(skipped)} left out (not in its config)")
    sets = [*budget_overrides(config.train, steps), *applicable]
    out[name] = [sys.executable, "-m", "sinsr_jax.main", f"--config={full_spec}",
                 f"--workdir={a.root}/runs/{name}", *[f"--config.{s}" for s in sets]]
  unknown = set.intersection(*lacking) if lacking else set()
  if unknown:
    raise SystemExit(f"error: --set {', '.join(sorted(unknown))}: no run's config has it")
  return out


def finished(workdir: pathlib.Path, argv: list[str]) -> bool:
  """The run reached its step budget: metrics.json's final step equals num_steps."""
  record = workdir / "metrics.json"
  if not record.exists():
    return False
  final = json.loads(record.read_text()).get("step")
  config = json.loads((workdir / "config.json").read_text())
  if config["model"]["name"] == "bicubic":  # nothing to train: scored at step 0
    return True
  steps = [int(x.split("=", 1)[1]) for x in argv if x.startswith("--config.train.num_steps=")]
  return final == (steps[0] if steps else config["train"]["num_steps"])


def _say(*parts) -> None:
  print(*parts, flush=True)


def prepare(a) -> int:
  """Builds the dataset the runs read (TFDS), so training starts on prepared data."""
  variants, _ = BUDGETS[a.budget]
  config = load_config(f"configs/sinsr.py:{with_data(variants, a.data, a.path)}")
  for s in a.set:
    if s.startswith("data."):
      key, value = s[len("data."):].split("=", 1)
      config.data[key] = type(config.data[key])(value) if config.data[key] is not None else value
  from sinsr_jax.data import input_pipeline
  from sinsr_jax.errors import UserError

  start = time.time()
  try:
    builder = input_pipeline.prepare_builder(config.data)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  _say(f"{builder.info.full_name} ready in {builder.data_dir} ({time.time() - start:.0f} s): "
       + ", ".join(f"{k} {v}" for k, v in splits.items()))
  return 0


def train(a) -> int:
  todo = runs(a, quiet=a.emit)
  if a.emit:
    for argv in todo.values():
      print(shlex.join(["python", *argv[1:]]))
    return 0
  failed = []
  for i, (name, argv) in enumerate(todo.items(), 1):
    tag = f"[{i}/{len(todo)}] {name}"
    if finished(REPO / a.root / "runs" / name, argv):
      _say(f"{tag}: finished already")
      continue
    _say(f"{tag}: {shlex.join(['python', *argv[1:]])}  (log: {_log_path(a, name)})")
    start = time.time()
    with open(_log_path(a, name), "a") as log:
      code = subprocess.run(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    if code:
      failed.append(name)
      _say(f"{tag}: FAILED (exit {code}); its log: {_log_path(a, name)}")
    else:
      _say(f"{tag}: done in {time.time() - start:.0f} s")
  if failed:
    print(f"{len(failed)} of {len(todo)} runs failed: {', '.join(failed)}", file=sys.stderr)
    return 1
  return 0


def _log_path(a, name: str) -> pathlib.Path:
  folder = REPO / a.root / "logs"
  folder.mkdir(parents=True, exist_ok=True)
  return folder / f"{name}.log"


def evaluations(a, present=None) -> dict[str, list[str]]:
  """{grid: argv of its evaluation}: the study table and the ablation table."""
  root = pathlib.Path(a.root)
  present = set(runs(a) if present is None else present)
  study = [n for n in sweep.grid("study") if n in present]
  ablation = [(label, SHARED.get(label, label)) for label in sweep.grid("ablations")
              if SHARED.get(label, label) in present]
  base = [sys.executable, "-m", "sinsr_jax.evaluate", f"--split={a.split}",
          f"--max_images={a.max_images}", f"--lpips={a.lpips}"]
  out = {}
  if study:
    out["study"] = [*base, *[f"--run={root}/runs/{n}" for n in study],
                    f"--figures={a.figures}", f"--out={root}/evaluation/study"]
  if ablation:
    out["ablations"] = [*base, *[f"--run={root}/runs/{run}" for _, run in ablation],
                        *[f"--label={label}" for label, _ in ablation],
                        f"--figures={min(a.figures, 1)}", f"--out={root}/evaluation/ablations"]
  return out


def evaluate(a) -> int:
  present = runs(a)
  jobs = evaluations(a, present)
  missing = [n for n in present if not (REPO / a.root / "runs" / n / "metrics.json").exists()]
  if missing and not a.emit:
    print(f"error: not trained yet under {a.root}/runs: {', '.join(missing)}; run the train "
          "stage first (or leave them out with --only)", file=sys.stderr)
    return 2
  if a.emit:
    for argv in jobs.values():
      print(shlex.join(["python", *argv[1:]]))
    return 0
  for grid, argv in jobs.items():
    _say(f"evaluate {grid}: {shlex.join(['python', *argv[1:]])}")
    if subprocess.run(argv, cwd=REPO).returncode:
      print(f"error: the {grid} evaluation failed", file=sys.stderr)
      return 1
  return 0


def verdict(results: dict, family: str = "sinsr", only: str = "") -> list[str]:
  """Per metric: the best SINSR run (or the run ``only``) against the best baseline, from
  evaluate's results.json.

  Every model scores the same images, so the two are compared image by image: the mean of the
  per-image differences with its 95% confidence interval (Student t). An interval holding 0 is a
  tie. ms/image is left out."""
  from sinsr_jax.evaluation import report as tables

  rows = {r["model"]: r for r in results["rows"] if r["class"] == "all"}
  per_image = results.get("per_image", {})
  lines = []
  for metric in tables.METRICS:
    scored = {m: r[metric.key] for m, r in rows.items() if r.get(metric.key) is not None}
    ours = {m: v for m, v in scored.items() if m.startswith(family) and m == (only or m)}
    theirs = {m: v for m, v in scored.items() if not m.startswith(family)}
    if metric.key == "time_ms" or not ours or not theirs:
      continue
    pick = max if metric.better == "higher" else min
    us, them = pick(ours, key=ours.get), pick(theirs, key=theirs.get)
    gap, half = tables.mean_ci95(
        [a[metric.key] - b[metric.key] for a, b in zip(per_image.get(us, []),
                                                      per_image.get(them, []), strict=False)
         if a.get(metric.key) is not None and b.get(metric.key) is not None])
    if not half == half:  # nan: too few paired images to tell
      outcome, detail = "undecided", ""
    else:
      outcome = ("tie" if abs(gap) <= half else "**SINSR ahead**"
                 if (gap > 0) == (metric.better == "higher") else "**baseline ahead**")
      detail = f"; paired difference {gap:+.4g} ± {half:.2g}"
    lines.append(f"- {metric.title}: {outcome} — {us} {scored[us]:.4g}, best baseline {them} "
                 f"{scored[them]:.4g}{detail}")
  return lines


def _small_png(src: pathlib.Path, dst: pathlib.Path) -> None:
  from PIL import Image

  with Image.open(src) as image:
    if image.width > FIGURE_WIDTH:
      image = image.resize((FIGURE_WIDTH, round(image.height * FIGURE_WIDTH / image.width)),
                           Image.LANCZOS)
    image.convert("RGB").quantize(colors=256).save(dst, optimize=True)


def _commit() -> str:
  with contextlib.suppress(Exception):
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    return sha + ("+dirty" if dirty else "")
  return "unknown"


def _short(commit: str) -> str:
  sha, _, dirty = commit.partition("+")
  return sha[:7] + (f"+{dirty}" if dirty else "")


def report(a) -> int:
  """Tables, small figures and a summary (commands, commit, verdict) into --out."""
  root, out = REPO / a.root, REPO / (a.out or f"docs/results/{a.budget}")
  grids = [g for g in ("study", "ablations") if (root / "evaluation" / g / "results.json").exists()]
  if not grids:
    print(f"error: no evaluation under {root / 'evaluation'}; run the evaluate stage first",
          file=sys.stderr)
    return 2
  out.mkdir(parents=True, exist_ok=True)
  commands = [f"python launch/study.py {stage} {a.cli}" for stage in STAGES]
  trained = sorted({_short(json.loads(info.read_text())["git_commit"])
                    for info in (root / "runs").glob("*/run_info.json")})
  summary = [f"# The study at budget `{a.budget}`", "",
             f"Trained at commit {', '.join(trained) or 'unknown'} (each run's run_info.json), "
             f"reported at {_commit()} on {datetime.date.today().isoformat()}, with:", "",
             "```bash", *commands, "```", ""]
  for grid in grids:
    src = root / "evaluation" / grid
    (out / grid).mkdir(exist_ok=True)
    for name in ("results.md", "results.csv", "results.json"):
      shutil.copyfile(src / name, out / grid / name)
    figures = sorted((src / "figures").glob("*.png")) if (src / "figures").exists() else []
    if figures:
      (out / grid / "figures").mkdir(exist_ok=True)
      for old in (out / grid / "figures").glob("*.png"):
        old.unlink()
    for figure in figures:
      _small_png(figure, out / grid / "figures" / figure.name)
    results = json.loads((src / "results.json").read_text())
    summary += [f"## {grid.capitalize()}", "", f"[Table]({grid}/results.md), "
                f"[CSV]({grid}/results.csv), [JSON]({grid}/results.json)"
                + "".join(f", [figure {i}]({grid}/figures/{f.name})"
                          for i, f in enumerate(figures, 1)), ""]
    if grid == "ablations":
      variants = with_data(BUDGETS[a.budget][0], a.data, a.path)
      unchanged = unchanged_ablations(variants)
      summary += [f"Not trained: {', '.join(unchanged)} (the term's weight is 0 in these "
                  "configs already, so the run would equal full)", ""] if unchanged else []
    if grid == "study":
      summary += ["Where SINSR stands, metric by metric: the best SINSR run against the best "
                  "baseline, compared on the same images (mean per-image difference ± the "
                  "half-width of its 95% confidence interval; an interval holding 0 is a tie):",
                  "", *verdict(results), "", "SINSR without the gradient branch (`sinsr`), "
                  "the same way:", "", *verdict(results, only="sinsr"), ""]
  (out / "SUMMARY.md").write_text("\n".join(summary))
  _say(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}: SUMMARY.md, "
       + ", ".join(f"{g}/" for g in grids))
  return 0


def _parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("stage", choices=(*STAGES, "all"))
  p.add_argument("--budget", choices=tuple(BUDGETS), default="cpu")
  p.add_argument("--steps", type=int, default=None, help="steps per run (default: the budget's; "
                 "0 = each config's own)")
  p.add_argument("--root", default="", help="runs and evaluations (default runs/study-<budget>)")
  p.add_argument("--data", default="sem_synthetic", choices=("sem_synthetic", "nffa_sem",
                                                             "folder"))
  p.add_argument("--path", default="", help="the image folder of --data=folder")
  p.add_argument("--only", default="", help="comma list of run names")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="config override for every run, e.g. data.data_dir=/data/tfds")
  p.add_argument("--split", default="test")
  p.add_argument("--max_images", type=int, default=0, help="evaluate the first N (0 = all)")
  p.add_argument("--lpips", default="auto", choices=("auto", "alex", "vgg", "none"))
  p.add_argument("--figures", type=int, default=3)
  p.add_argument("--out", default="", help="report folder (default docs/results/<budget>)")
  p.add_argument("--emit", action="store_true", help="print the commands, run nothing")
  a = p.parse_args(argv)
  a.root = a.root or f"runs/study-{a.budget}"
  # The options, as the report prints them (the stage name varies).
  a.cli = shlex.join(x for x in (argv if argv is not None else sys.argv[1:])
                     if x not in (*STAGES, "all"))
  return a


def main(argv: list[str] | None = None) -> int:
  a = _parse(argv)
  stages = STAGES if a.stage == "all" else (a.stage,)
  for stage in stages:
    if len(stages) > 1:
      _say(f"== {stage}")
    code = globals()[stage](a)
    if code:
      return code
  return 0


if __name__ == "__main__":
  sys.exit(main())
