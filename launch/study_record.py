"""The study's record: everything its report reads, without the checkpoints, to keep and carry.

``report`` writes ``<out>/record/`` beside SUMMARY.md: of every finished run its config.json,
metrics.json (the validation curve) and run_info.json (commit, code digest); of every
evaluation its results.json and job.json; the timings and the strongest-baselines choice. That is
a few MB where the runs' folders are GBs, so the record can be committed with the report, or
copied off a cluster.

``adopt`` puts a record into a root: its runs count as finished (config and last step) and its
evaluations as up to date, so that the study goes on on another machine, or after the root was
lost, from where the record stops, and the report is made again from it. Nothing in a root is
overwritten: a run or an evaluation the root already has is kept as it is. The record holds no
weights, so a shared stem that a run still to be trained needs is trained again
(study_train; the same config and seed give the same checkpoint on the same kind of
machine).
"""

from __future__ import annotations

import json
import pathlib

import study_files as files
import study_plan as plan_

RUN_FILES = ("config.json", "metrics.json", "run_info.json")
EVALUATION_FILES = ("results.json", "job.json")
ROOT_FILES = ("timings.jsonl", "strongest_baselines.json")
ABOUT = "record.json"


def _copy(source, target: pathlib.Path) -> None:
  """JSON compacted (a quarter smaller; the same values)."""
  target.parent.mkdir(parents=True, exist_ok=True)
  text = source.read_text()
  if target.suffix == ".json":
    text = json.dumps(json.loads(text), separators=(",", ":"))
  target.write_text(text)


def write(root, plan: plan_.Plan, folder: pathlib.Path, root_text: str) -> dict[str, int]:
  """The record of ``root`` in ``folder`` (local): {"runs": n, "evaluations": m}."""
  runs = 0
  for run in plan.runs:
    if plan_.finished(run, root):
      for name in RUN_FILES:
        if (run.folder(root) / name).exists():
          _copy(run.folder(root) / name, folder / "runs" / run.name / f"seed{run.seed}" / name)
      runs += 1
  evaluations = 0
  for job in sorted((root / "evaluation").glob("*/seed*/*/job.json")):
    where = job.parent
    if (where / "results.json").exists():
      relative = pathlib.Path(*where.parts[-4:])  # evaluation/<source>/seed<k>/<run>
      for name in EVALUATION_FILES:
        _copy(where / name, folder / relative / name)
      evaluations += 1
  for name in ROOT_FILES:
    if (root / name).exists():
      _copy(root / name, folder / name)
  (folder / ABOUT).write_text(json.dumps({
      "root": root_text, "runs": runs, "evaluations": evaluations,
      "what": "the study's record (launch/study_record.py): `python launch/study.py adopt` puts "
              "it into a root"}, indent=2) + "\n")
  return {"runs": runs, "evaluations": evaluations}


def adopt(record: pathlib.Path, root, root_text: str, say=print) -> dict[str, int]:
  """Copies what ``root`` lacks from ``record``: {"runs": n, "evaluations": m, "kept": k}.

  A run folder is taken only where the root has none of that run (or has the same config, not
  yet finished); the evaluations' command lines are re-rooted to ``root_text``."""
  about = json.loads((record / ABOUT).read_text())
  old_root = about["root"].rstrip("/")
  counts = {"runs": 0, "evaluations": 0, "kept": 0}
  for config in sorted(record.glob("runs/*/seed*/config.json")):
    source = config.parent
    target = root / source.relative_to(record)
    have = target / "config.json"
    if have.exists():
      same = json.loads(have.read_text()) == json.loads(config.read_text())
      step = plan_.final_step(target)
      wanted = json.loads((source / "metrics.json").read_text()).get("step")
      if not same or step == wanted:
        counts["kept"] += 1
        if not same:
          say(f"adopt: {source.relative_to(record)}: the root holds another config there; kept")
        continue
    target.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
      if (source / name).exists():
        (target / name).write_text((source / name).read_text())
    counts["runs"] += 1
  for job in sorted(record.glob("evaluation/*/seed*/*/job.json")):
    source = job.parent
    target = root / source.relative_to(record)
    if (target / "results.json").exists():
      counts["kept"] += 1
      continue
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.json").write_text((source / "results.json").read_text())
    argv = [_rerooted(x, old_root, root_text.rstrip("/")) for x in json.loads(job.read_text())]
    (target / "job.json").write_text(json.dumps(argv))  # last: it marks the evaluation done
    counts["evaluations"] += 1
  timings = record / "timings.jsonl"
  if timings.exists():
    have = (root / "timings.jsonl").read_text() if (root / "timings.jsonl").exists() else ""
    seen = set(have.splitlines())
    new = [x for x in timings.read_text().splitlines() if x.strip() and x not in seen]
    if new:
      files.append(root / "timings.jsonl", "".join(f"{x}\n" for x in new))
  strongest = record / "strongest_baselines.json"
  if strongest.exists() and not (root / strongest.name).exists():
    (root / strongest.name).write_text(strongest.read_text())
  return counts


def _rerooted(arg: str, old: str, new: str) -> str:
  """An evaluation's argument with the record's root replaced by the adopting one."""
  if old == new:
    return arg
  for prefix in ("--run=", "--images=", "--out="):
    if arg.startswith(prefix + old + "/"):
      return prefix + new + arg[len(prefix) + len(old):]
  return arg
