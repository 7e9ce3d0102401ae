"""Run a grid of trainings, one workdir each, then gather them into one evaluation table.

    python launch/sweep.py ablations --variants=quick --root=runs/ablations     # run them here
    python launch/sweep.py study --variants=quick --root=runs/study --emit      # print commands
    python launch/sweep.py study --variants=quick --root=runs/study --only=sinsr,esrgan \
        --set=train.num_steps=600 --evaluate

Grids: ``ablations`` (configs/ablations.py: each loss term removed in turn, the gradient branch,
fixed weights) and ``study`` (SINSR with and without the gradient branch, and every baseline of
configs/baselines/). ``--variants`` go after the config's ':' (``quick``, ``scale=2``, ...);
``--set`` overrides a config value in every run (the same step budget for all). Runs go one
after another; a run that stops resumes from its checkpoints when the sweep is started again,
and one that fails does not stop the others. ``--emit`` prints the command lines instead, for a
cluster's job array. Each workdir holds config.json, run_info.json (git commit, package
versions, seed, command) and metrics.json; ``--evaluate`` (or the printed command) scores all
of them, with bicubic, into one table.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "configs"))

import ablations  # noqa: E402  (configs/ablations.py)

BASELINES = sorted(p.stem for p in (REPO / "configs" / "baselines").glob("*.py")
                   if p.stem != "baseline_recipes")


def grid(name: str) -> dict[str, str]:
  """{run name: config spec without variants} of a grid."""
  if name == "ablations":
    return {a: f"configs/ablations.py:{a}" for a in ablations.ABLATIONS}
  if name == "study":
    return {"sinsr": "configs/sinsr.py",
            "sinsr_gradient_branch": "configs/sinsr.py:gradient_branch",
            **{b: f"configs/baselines/{b}.py" for b in BASELINES}}
  raise SystemExit(f"error: unknown grid {name!r}; valid: ablations, study")


def with_variants(spec: str, variants: str) -> str:
  if not variants:
    return spec
  return f"{spec},{variants}" if ":" in spec else f"{spec}:{variants}"


def commands(grid_name: str, root: str, variants: str = "", only: tuple[str, ...] = (),
             overrides: tuple[str, ...] = ()) -> dict[str, list[str]]:
  """{run name: argv of its training} for the selected runs of the grid."""
  runs = grid(grid_name)
  unknown = sorted(set(only) - set(runs))
  if unknown:
    raise SystemExit(f"error: {', '.join(unknown)} not in the {grid_name} grid; valid: "
                     f"{', '.join(runs)}")
  return {name: [sys.executable, "-m", "sinsr_jax.main",
                 f"--config={with_variants(spec, variants)}", f"--workdir={root}/{name}",
                 *[f"--config.{o}" for o in overrides]]
          for name, spec in runs.items() if not only or name in only}


def evaluate_command(root: str, split: str) -> list[str]:
  return [sys.executable, "-m", "sinsr_jax.evaluate", f"--run={root}", f"--split={split}",
          f"--out={root}/evaluation"]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("grid", choices=("ablations", "study"))
  parser.add_argument("--root", default="", help="parent of the run folders "
                      "(default runs/<grid>)")
  parser.add_argument("--variants", default="", help="config variants, e.g. quick or quick,scale=2")
  parser.add_argument("--only", default="", help="comma list of run names")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override for every run, e.g. train.num_steps=600")
  parser.add_argument("--emit", action="store_true", help="print the commands, run nothing")
  parser.add_argument("--evaluate", action="store_true", help="evaluate the sweep at the end")
  parser.add_argument("--split", default="test", help="split of the final evaluation")
  args = parser.parse_args(argv)
  root = args.root or f"runs/{args.grid}"
  runs = commands(args.grid, root, args.variants, tuple(filter(None, args.only.split(","))),
                  tuple(args.set))
  final = evaluate_command(root, args.split)
  if args.emit:
    for argv_ in [*runs.values(), final]:
      print(shlex.join(["python", *argv_[1:]]))
    return 0
  failed = []
  for i, (name, argv_) in enumerate(runs.items(), 1):
    print(f"[{i}/{len(runs)}] {name}: {shlex.join(['python', *argv_[1:]])}", flush=True)
    start = time.time()
    if subprocess.run(argv_, cwd=REPO).returncode != 0:
      failed.append(name)
      print(f"[{i}/{len(runs)}] {name} FAILED", flush=True)
    else:
      print(f"[{i}/{len(runs)}] {name} done in {time.time() - start:.0f} s", flush=True)
  if args.evaluate and len(failed) < len(runs):
    # A failed run may have no checkpoint; evaluate those that finished.
    done = [f"--run={root}/{n}" for n in runs if n not in failed]
    subprocess.run([*final[:3], *done, *final[4:]], cwd=REPO, check=False)
  elif not args.evaluate:
    print("Gather the sweep into one table:", shlex.join(["python", *final[1:]]))
  if failed:
    print(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
