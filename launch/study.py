"""The study: SINSR against every baseline and a pixel loss, and SINSR's ablations, on real
micrographs first. One command per stage, every stage resumable:

    python launch/study.py prepare  --budget=converged   # the dataset (sem_synthetic: ~1 min)
    python launch/study.py frames   --budget=converged   # the real frames, sha256-checked
    python launch/study.py train    --budget=converged   # every run, seed by seed
    python launch/study.py evaluate --budget=converged   # each run: test split and real frames
    python launch/study.py report   --budget=converged   # SUMMARY.md, curves -> docs/results/
    python launch/study.py all      --budget=converged   # the five in turn, runs scored as trained
    python launch/study.py status   --budget=converged   # what is finished, what is left
    python launch/study.py adopt    --budget=converged   # a report's record into the root

Runs (launch/study_plan.py): SINSR, SINSR with the gradient branch, SINSR on the pixel loss
alone, every baseline of configs/baselines/, and SINSR's ablations (configs/ablations.py); SINSR's
runs of one seed share their pixel-loss phase, trained once (``sinsr_pretrain``). Budgets:

- ``converged``: the ``quick`` models, 1500 steps per run, every GAN model's GAN phase the last
  700 (47%), validation every 100 steps, 3 seeds of every SINSR run and of the two baselines
  strongest on validation at seed 0 (the others at seed 0). Hours on a 2-core CPU: started
  again, it goes on where it stopped.
- ``cpu``: the ``quick`` models at 600 steps, each config's own phase proportion, one seed.
- ``smoke``: the same at 4 steps; the test suite runs it to keep the path working.
- ``paper``: the papers' models and step counts: an accelerator's job (``--emit``).

``--data=nffa_sem`` (or ``folder --path=DIR``) trains on the real archive; ``--set=KEY=VALUE``
overrides a config value in every run, ``--family_set`` in SINSR's runs only (the perceptual
term where VGG19 weights can be had: ``--family_set='loss.weights.perceptual=(2.0,1.5)'``);
``--only=NAMES`` restricts the runs; ``--emit`` prints the command lines (one job per run on a
cluster) instead of running them. Run folders, logs and commands are relative to the repository.

``report`` also writes the study's record (``<out>/record``: configs, curves, scores, timings;
no weights, a few MB) and ``adopt`` puts it into a root, so that a study goes on on another
machine, or after its root was lost, from where the record stops (launch/study_record.py).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "launch"))

import study_eval  # noqa: E402  (launch/study_eval.py: the frames and evaluate stages)
import study_files  # noqa: E402  (launch/study_files.py: the root, local or in a bucket)
import study_plan  # noqa: E402  (launch/study_plan.py: the runs, seeds, folders, sharing)
import study_record  # noqa: E402  (launch/study_record.py: the record a report keeps)
import study_report  # noqa: E402  (launch/study_report.py: tables, curves, verdicts)
import study_train  # noqa: E402  (launch/study_train.py: the train stage)

from sinsr_jax.runtime import paths  # noqa: E402
from sinsr_jax.runtime.workdir_lock import WorkdirBusy, WorkdirLock  # noqa: E402

BUDGETS = study_plan.BUDGETS
SHARED = study_plan.SHARED
STAGES = ("prepare", "frames", "train", "evaluate", "report")
FIGURE_WIDTH = 1400  # px: committed figures stay small
load_config = study_plan.load_config


def with_data(variants: str, data: str, path: str) -> str:
  extra = [f"data={data}"] if data != "sem_synthetic" else []
  extra += [f"path={path}"] if path else []
  return ",".join(filter(None, [variants, *extra]))


def make_plan(a, strongest=None) -> study_plan.Plan:
  budget = BUDGETS[a.budget]
  if a.seeds:
    budget = study_plan.dataclasses.replace(budget, seeds=a.seeds)
  variants = with_data(budget.variants, a.data, a.path)
  pin = ([f"data.name=sem_synthetic:{budget.dataset_version}"]
         if budget.dataset_version and a.data == "sem_synthetic" else [])
  plan = study_plan.make(budget, variants, [*pin, *a.set], [n for n in a.only.split(",") if n],
                         tuple(a.family_set), strongest)
  unknown = set.intersection(*map(set, plan.lacking.values())) if plan.lacking else set()
  if unknown:
    raise SystemExit(f"error: --set {', '.join(sorted(unknown))}: no run's config has it")
  return plan


def runs(a, quiet: bool = True) -> dict[str, list[str]]:
  """{run name (with its seed past seed 0): argv of its training}, in training order."""
  plan = make_plan(a, study_train.strongest(study_files.root_path(a.root), make_plan(a).runs))
  if not quiet:
    for name, lacks in plan.lacking.items():
      if lacks:
        _say(f"{name}: --set {', '.join(lacks)} left out (not in its config)")
  root = study_files.root_path(a.root)
  return {(r.name if not r.seed else f"{r.name}@seed{r.seed}"): r.argv(root) for r in plan.runs}


def _say(*parts) -> None:
  print(*parts, flush=True)


def prepare(a) -> int:
  """Builds the dataset the runs read (TFDS), so training starts on prepared data."""
  config = study_plan.resolved(make_plan(a).runs[0])  # every run reads the same data
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
  # Within `all`, each run is scored as soon as it is trained (a kill loses one run's work,
  # and a report can be made at any point); `train` alone trains only.
  after = None
  if a.stage == "all":
    def after(run):
      plan = make_plan(a, study_train.strongest(study_files.root_path(a.root), make_plan(a).runs))
      try:
        with _stage_lock(a, "evaluate"):
          study_eval.evaluate(a, plan, _say, only=(run.name, run.seed))
      except WorkdirBusy:
        _say(f"{run.name} seed {run.seed}: not scored now, an evaluate stage is running")
  return study_train.train(a, lambda strongest: make_plan(a, strongest), _say, after)


def status(a) -> int:
  code = study_train.status(a, lambda strongest: make_plan(a, strongest), _say)
  plan = make_plan(a, study_train.strongest(study_files.root_path(a.root), make_plan(a).runs))
  todo, _ = study_eval.jobs(a, plan)
  done = sum(study_eval.up_to_date(folder, argv) for folder, argv in todo)
  _say(f"evaluations (each finished run on each source): {done} of {len(todo)} up to date"
       + ("" if done == len(todo) else "; the evaluate stage scores the rest"))
  return code


def frames(a) -> int:
  return study_eval.frames(a, _say)


def evaluate(a) -> int:
  return study_eval.evaluate(a, make_plan(a, study_train.strongest(study_files.root_path(a.root),
                                                                   make_plan(a).runs)), _say)


def report(a) -> int:
  plan = make_plan(a, study_train.strongest(study_files.root_path(a.root), make_plan(a).runs))
  code = study_report.report(a, plan, _say)
  if not code:
    folder = record_folder(a)
    kept = study_record.write(study_files.root_path(a.root), plan, folder,
                              str(study_files.root_path(a.root)))
    _say(f"wrote the record of {kept['runs']} finished run(s) and {kept['evaluations']} "
         f"evaluation(s) to {folder}")
  return code


def record_folder(a) -> pathlib.Path:
  return pathlib.Path(a.record) if a.record else (
      REPO / (a.out or f"docs/results/{a.budget}") / "record")


def adopt(a) -> int:
  folder = record_folder(a)
  if not (folder / study_record.ABOUT).is_file():
    print(f"error: {folder} holds no study record ({study_record.ABOUT}); the report stage "
          "writes one", file=sys.stderr)
    return 2
  root = study_files.root_path(a.root)
  (root / "runs").mkdir(parents=True, exist_ok=True)
  got = study_record.adopt(folder, root, str(root), _say)
  _say(f"adopted from {folder}: {got['runs']} run(s), {got['evaluations']} evaluation(s); "
       f"{got['kept']} the root already had, kept as they were")
  return 0


def _parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("stage", choices=(*STAGES, "all", "status", "adopt"))
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
  p.add_argument("--family_set", action="append", default=[], metavar="KEY=VALUE",
                 help="config override for SINSR's runs only, e.g. "
                 "'loss.weights.perceptual=(2.0,1.5)' where VGG19 weights can be had")
  p.add_argument("--seeds", type=int, default=0, help="seeds (default: the budget's)")
  p.add_argument("--from", dest="source", default="", metavar="DIR",
                 help="frames: a folder holding the real frames (where downloads are closed)")
  p.add_argument("--real_crop", type=int, default=study_eval.REAL_CROP,
                 help="evaluate: centre crop of each real frame's image area, HR px (0 = whole)")
  p.add_argument("--no_real", action="store_true", help="evaluate: the test split only")
  p.add_argument("--split", default="test")
  p.add_argument("--max_images", type=int, default=0, help="evaluate the first N (0 = all)")
  p.add_argument("--lpips", default="auto", choices=("auto", "alex", "vgg", "none"))
  p.add_argument("--figures", type=int, default=3)
  p.add_argument("--out", default="", help="report folder (default docs/results/<budget>)")
  p.add_argument("--record", default="", help="report, adopt: the record's folder (default "
                 "<out>/record)")
  p.add_argument("--emit", action="store_true", help="print the commands, run nothing")
  a = p.parse_args(argv)
  a.root = a.root or f"runs/study-{a.budget}"
  # The options, as the report prints them per stage (the stage name varies).
  given = [x for x in (argv if argv is not None else sys.argv[1:])
           if x not in (*STAGES, "all", "status", "adopt")]
  a.cli = lambda stage: shlex.join(options_for(stage, given))
  return a


# Options that only one stage reads: the report prints each stage's command with its own.
STAGE_OPTIONS = {"frames": {"--from"}, "report": {"--out", "--record"},
                 "evaluate": {"--split", "--max_images", "--lpips", "--figures", "--no_real",
                              "--real_crop"}}
FLAGS = {"--no_real", "--emit"}  # options without a value


def options_for(stage: str, given: list[str]) -> list[str]:
  """The options of ``given`` (``--k=v``, ``--k v`` or flags) that ``stage`` reads."""
  foreign = set().union(*(v for k, v in STAGE_OPTIONS.items() if k != stage)) | {"--emit"}
  out, i = [], 0
  while i < len(given):
    name = given[i].split("=", 1)[0]
    takes_next = name.startswith("--") and "=" not in given[i] and name not in FLAGS
    part = given[i:i + 2] if takes_next else given[i:i + 1]
    if name not in foreign:
      out += part
    i += len(part)
  return out


def main(argv: list[str] | None = None) -> int:
  a = _parse(argv)
  os.chdir(REPO)  # run folders, logs and commands are relative to the repository
  stages = STAGES if a.stage == "all" else (a.stage,)
  for stage in stages:
    if stage == "frames" and a.no_real and len(stages) > 1:
      continue  # scored on the test split alone: no frames needed
    if len(stages) > 1:
      _say(f"== {stage}")
    try:
      with _stage_lock(a, stage):
        code = globals()[stage](a)
    except WorkdirBusy as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
    if code:
      return code
  return 0


def _stage_lock(a, stage: str):
  """The root's lock for a stage that writes runs or evaluations (``<root>/locks/<stage>``):
  a second train (or evaluate) of the same study is refused, naming the first; the two stages
  may run side by side (evaluate scores what train has finished)."""
  import contextlib

  if stage not in ("train", "evaluate", "adopt") or a.emit:
    return contextlib.nullcontext()
  folder = paths.join(a.root, "locks", "train" if stage == "adopt" else stage)  # runs' writers
  paths.makedirs(folder)
  return WorkdirLock(folder, f"study {stage}")


if __name__ == "__main__":
  sys.exit(main())
