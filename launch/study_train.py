"""The study's train stage: every planned run in turn, resumable, one progress line per run.

Started again, finished runs (their full config and last step) are skipped, interrupted ones
continue from their checkpoints, and a failed run does not stop the others (runs that start
from a failed stem are skipped, saying so). SINSR's runs of one seed start from a copy of the
stem's last checkpoint (study_plan). The baselines trained at every seed are chosen once all
seed-0 baselines have finished, by their final validation PSNR (never the test split), and the
choice is kept in ``<root>/strongest_baselines.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shlex
import sys
import time

import study_files as files
import study_plan as plan_

from sinsr_jax.runtime import paths

VALIDATION_METRIC = "psnr_db"


def strongest(root: pathlib.Path, runs: list[plan_.Run]) -> list[str] | None:
  """The STRONGEST baselines by final validation PSNR at seed 0, or None before they finished."""
  record = root / "strongest_baselines.json"
  if record.exists():
    return json.loads(record.read_text())["chosen"]
  candidates = [r for r in runs if r.seed == 0 and r.name in plan_.baselines()
                and r.name != "bicubic"]
  if not candidates or not all(plan_.finished(r, root) for r in candidates):
    return None
  scores = {r.name: json.loads((r.folder(root) / "metrics.json").read_text())[VALIDATION_METRIC]
            for r in candidates}
  chosen = sorted(scores, key=scores.get, reverse=True)[:plan_.STRONGEST]
  record.write_text(json.dumps({
      "chosen": chosen, "by": f"final validation {VALIDATION_METRIC} at seed 0",
      "validation": scores, "date": datetime.datetime.now().isoformat(timespec="seconds")},
      indent=2))
  return chosen


def seed_from_stem(run: plan_.Run, stem: plan_.Run, root: pathlib.Path) -> None:
  """Gives ``run`` the stem's last checkpoint and validation history, unless it has started.

  Copied under a temporary name and renamed, and shared_from.json written last: a kill at any
  point leaves a folder that is seeded again from scratch (in a bucket, where a rename is a
  copy, the marker alone tells a whole copy)."""
  folder = run.folder(root)
  checkpoints = folder / "checkpoints"
  marker = folder / "shared_from.json"
  paths.refresh(str(folder))
  if marker.exists():
    return
  step = plan_.final_step(stem.folder(root))
  source = stem.folder(root) / "checkpoints" / str(step)
  folder.mkdir(parents=True, exist_ok=True)
  partial = folder / "checkpoints.partial"
  files.remove_tree(partial)
  files.copy_tree(source, partial / str(step))
  files.remove_tree(checkpoints)
  files.replace(partial, checkpoints)
  (folder / "metrics.json").write_text((stem.folder(root) / "metrics.json").read_text())
  marker.write_text(json.dumps({
      "stem": str(stem.folder(root)), "step": step,
      "why": "the pixel-loss phase, shared by SINSR's runs of this seed (launch/study_plan.py)"},
      indent=2))


def _log(root: pathlib.Path, run: plan_.Run) -> pathlib.Path:
  folder = root / "logs"
  folder.mkdir(parents=True, exist_ok=True)
  return folder / f"{run.name}-seed{run.seed}.log"


def stem_to_train_again(run: plan_.Run, plan: plan_.Plan, root: pathlib.Path) -> bool:
  """A finished stem without its last checkpoint (adopted from a record, study_record) that a run
  still to be trained starts from."""
  if run.name != plan_.STEM or not plan_.without_weights(run, root):
    return False
  return any(r.stem == run.name and r.seed == run.seed and not plan_.finished(r, root)
             and not (r.folder(root) / "shared_from.json").exists() for r in plan.runs)


def _steps_left(run: plan_.Run, root: pathlib.Path) -> int:
  config = plan_.resolved(run)
  if config.model.name == "bicubic":
    return 0
  done = plan_.final_step(run.folder(root)) or 0
  if plan_.without_weights(run, root):  # adopted from a record: trained again from its newest
    done = max(plan_.checkpoint_steps(run.folder(root)), default=0)  # checkpoint, if any
  shared = config.train.pretrain_steps if run.stem and done == 0 else 0
  return max(config.train.num_steps - max(done, shared), 0)


def _clock(seconds: float) -> str:
  return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def train(a, make_plan, say=print, after=None) -> int:
  """Trains what ``make_plan(strongest)`` lists, re-planned after each run; 1 if any failed.
  ``after(run)``: called after each run that finished (``all`` scores it there)."""
  root = files.root_path(a.root)
  attempted, failed, announced = set(), [], set()
  rates = _measured_rates(root)  # seconds per step, from the runs timed so far
  start = time.time()
  while True:
    plan = make_plan(None)
    plan = make_plan(strongest(root, plan.runs))
    if a.emit:
      for run in plan.runs:
        say(shlex.join(["python", *run.argv(root)[1:]]))
      say(*[f"# later: {p} (the strongest baselines are chosen after seed 0)"
            for p in plan.pending[:1]])
      return 0
    todo = []
    for run in plan.runs:
      key = (run.name, run.seed)
      if key in attempted:
        continue
      if plan_.finished(run, root) and not stem_to_train_again(run, plan, root):
        if key not in announced:
          say(f"{run.name} seed {run.seed}: finished already")
          announced.add(key)
        continue
      todo.append(run)
    if not todo:
      break
    run = todo[0]
    attempted.add((run.name, run.seed))
    index = len(attempted)
    tag = f"[{index}/{index + len(todo) - 1}] {run.name} seed {run.seed}"
    if run.stem:
      stem = next(r for r in plan.runs if r.name == run.stem and r.seed == run.seed)
      started = (run.folder(root) / "shared_from.json").exists()
      if not started and (not plan_.finished(stem, root) or stem_to_train_again(stem, plan, root)):
        failed.append(f"{run.name} seed {run.seed}")
        say(f"{tag}: skipped, its stem {stem.name} seed {stem.seed} did not finish")
        continue
      seed_from_stem(run, stem, root)
    left = _steps_left(run, root)
    if stem_to_train_again(run, plan, root):
      say(f"{tag}: finished in the adopted record, which holds no weights: trained again for "
          "the runs that start from it")
    rate = _rate(rates, run.name)
    total = sum(_steps_left(r, root) * (_rate(rates, r.name) or 0) for r in todo)
    eta = "" if rate is None else (
        f", ~{_clock(left * rate)} (ETA {_at(left * rate)}); all left ~{_clock(total)}")
    say(f"{tag}: {left} steps{eta}; log {_log(root, run)}")
    began = time.time()
    code = files.run_logged(run.argv(root), _log(root, run), (
        f"# {datetime.datetime.now().isoformat(timespec='seconds')} "
        f"{shlex.join(['python', *run.argv(root)[1:]])}\n"), cwd=plan_.REPO)
    took = time.time() - began
    record_time(root, "train", f"{run.name} seed {run.seed}", took, left, code)
    if code:
      failed.append(f"{run.name} seed {run.seed}")
      say(f"{tag}: FAILED (exit {code}) after {_clock(took)}; its log: {_log(root, run)}")
      continue
    rates = _measured_rates(root)
    say(f"{tag}: done in {_clock(took)}")
    if after is not None:
      after(run)
  say(f"train: {len(attempted)} run(s) this time in {_clock(time.time() - start)}"
      + (f"; {len(failed)} failed: {', '.join(failed)}" if failed else ""))
  pending = make_plan(strongest(root, make_plan(None).runs)).pending
  if pending:
    say(f"waiting: {', '.join(pending)}")
  return 1 if failed else 0


def status(a, make_plan, say=print) -> int:
  """Where the study stands: each planned run finished, under way (its step) or waiting, and
  the time the rest needs at the measured seconds per step."""
  root = files.root_path(a.root)
  plan = make_plan(strongest(root, make_plan(None).runs))
  rates, left, counts = _measured_rates(root), 0.0, {"finished": 0, "under way": 0, "waiting": 0}
  for run in plan.runs:
    if plan_.finished(run, root):
      state = "finished"
    else:
      step = plan_.final_step(run.folder(root))
      state = "under way" if step else "waiting"
      left += _steps_left(run, root) * (_rate(rates, run.name) or 0)
      if step:
        say(f"{run.name} seed {run.seed}: under way, validated at step {step}")
    counts[state] += 1
  eta = f"; about {_clock(left)} of training left" if rates else ""
  say(f"{len(plan.runs)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items())
      + f"{eta}" + (f"; then {_pending_words(plan.pending)}" if plan.pending else ""))
  return 0


def _candidates(pending: list[str]) -> tuple[list[str], list[int]]:
  """The baseline names and the seeds of the pending "<name> seed <k>" entries."""
  split = [p.rsplit(" seed ", 1) for p in pending]
  return sorted({n for n, _ in split}), sorted({int(k) for _, k in split})


def still_to_plan(pending: list[str]) -> int:
  """How many trainings the pending candidates become: the STRONGEST at each other seed."""
  names, seeds = _candidates(pending)
  return min(plan_.STRONGEST, len(names)) * len(seeds)


def _pending_words(pending: list[str]) -> str:
  """What cannot be planned before seed 0's baselines finish, as the runs it will become:
  the STRONGEST of the candidates, at each of the other seeds (not every candidate)."""
  names, seeds = _candidates(pending)
  return (f"{still_to_plan(pending)} more: the {min(plan_.STRONGEST, len(names))} strongest "
          f"of {len(names)} baselines at seed{'s' if len(seeds) > 1 else ''} "
          f"{', '.join(map(str, seeds))} (chosen on validation when seed 0 has finished)")


def _measured_rates(root: pathlib.Path) -> dict[str, float]:
  """Seconds per step over the study's finished trainings (timings.jsonl): {run name: rate}
  and, under "", over all of them; empty before the first. A GAN step costs about twice a
  pixel-loss step, and the models differ, so a run's own name (another seed) is the better
  guess."""
  path = root / "timings.jsonl"
  if not path.exists():
    return {}
  lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
  done = [x for x in lines if x["stage"] == "train" and x["steps"] and not x["exit"]]
  if not done:
    return {}
  out = {}
  for name in {"", *(x["what"].rsplit(" seed ", 1)[0] for x in done)}:
    mine = [x for x in done if not name or x["what"].rsplit(" seed ", 1)[0] == name]
    out[name] = sum(x["seconds"] for x in mine) / sum(x["steps"] for x in mine)
  return out


def _rate(rates: dict[str, float], name: str) -> float | None:
  return rates.get(name, rates.get(""))


def record_time(root: pathlib.Path, stage: str, what: str, seconds: float, steps: int = 0,
                code: int = 0) -> None:
  """One line per run or evaluation in ``<root>/timings.jsonl``: the study's wall time."""
  import platform

  files.append(root / "timings.jsonl", json.dumps({
      "stage": stage, "what": what, "seconds": round(seconds, 1), "steps": steps, "exit": code,
      "host": platform.node(), "cpus": os.cpu_count(), "machine": platform.machine(),
      "cpu": cpu_model(),
      "date": datetime.datetime.now().isoformat(timespec="seconds")}) + "\n")


def cpu_model() -> str:
  """The CPU's model name (Linux), "" elsewhere: XLA's CPU numerics differ between models, so
  the study records which one trained each run."""
  try:
    first = pathlib.Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]  # one core
  except OSError:
    return ""
  field = {k.strip(): v.strip() for k, _, v in (x.partition(":") for x in first.splitlines())}
  wide = " AVX-512" if " avx512f" in f" {field.get('flags', '')} " else ""
  return (f"{field.get('model name', '')} (family {field.get('cpu family', '?')} model "
          f"{field.get('model', '?')}{wide})" if "model name" in field else "")


def _at(seconds: float) -> str:
  return (datetime.datetime.now() + datetime.timedelta(seconds=seconds)).strftime("%H:%M")


if __name__ == "__main__":
  sys.exit("run launch/study.py train")
