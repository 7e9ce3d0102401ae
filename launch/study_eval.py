"""The study's frames and evaluate stages.

``frames``: the real micrographs of launch/real_frames.json into ``<root>/frames``: each from
``--from=DIR`` where it lies there, else from its local path or its URL, and kept only if its
sha256 is the manifest's (a mismatch is refused in one line).

``evaluate``: every finished run (and bicubic beside it) scored with ``sinsr_jax.evaluate``,
once on the dataset's test split and once on the real frames (``--images``, a centre crop of
each image area): ``<root>/evaluation/{synthetic,real}/seed<k>/<run>``, one process per run, so
that runs are scored as they finish. An evaluation whose run and step have not changed is not
redone.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
import urllib.request

import study_files as files
import study_plan as plan_
import study_train

MANIFEST = plan_.REPO / "launch" / "real_frames.json"
REAL_CROP = 768  # HR px: a centre crop of each image area (whole frames cost 2-5x the time)
DOWNLOAD_TIMEOUT_S = 60


def manifest() -> list[dict]:
  return json.loads(MANIFEST.read_text())["frames"]


def _fetch(frame: dict, source_dir: str, partial: pathlib.Path) -> str:
  """Puts the frame's bytes at ``partial``; returns where they came from, or raises OSError."""
  candidates = [pathlib.Path(source_dir).expanduser() / frame["file"]] if source_dir else []
  if frame.get("local"):
    candidates.append(plan_.REPO / frame["local"])
  for path in candidates:
    if path.is_file():
      partial.write_bytes(path.read_bytes())
      return str(path)
  if not frame.get("url"):
    raise OSError("no URL: it comes only from a folder (--from=DIR)")
  with urllib.request.urlopen(frame["url"], timeout=DOWNLOAD_TIMEOUT_S) as response:
    partial.write_bytes(response.read())  # frames are a few MB
  return frame["url"]


def frames(a, say=print) -> int:
  folder = files.root_path(a.root) / "frames"
  folder.mkdir(parents=True, exist_ok=True)
  if a.source and not pathlib.Path(a.source).expanduser().is_dir():
    print(f"error: --from={a.source} is not a folder", file=sys.stderr)
    return 2
  if a.source and not any((pathlib.Path(a.source).expanduser() / f["file"]).is_file()
                          for f in manifest()):
    print(f"error: --from={a.source} holds none of the {len(manifest())} frames of "
          f"{MANIFEST.name} (by file name)", file=sys.stderr)
    return 2
  bad = 0
  for frame in manifest():
    target = folder / frame["file"]
    if target.is_file() and files.sha256(target) == frame["sha256"]:
      say(f"{frame['file']}: present, sha256 checked")
      continue
    partial = folder / f".{frame['file']}.partial"
    try:
      source = _fetch(frame, a.source, partial)
    except OSError as e:
      bad += 1
      print(f"error: {frame['file']}: not in --from={a.source or '(none)'} and not downloadable "
            f"({getattr(e, 'reason', None) or e}); put the file in a folder and pass "
            f"--from=DIR", file=sys.stderr)
      continue
    got = files.sha256(partial)
    if got != frame["sha256"]:
      partial.unlink()
      bad += 1
      print(f"error: {frame['file']} from {source}: sha256 {got}, the manifest says "
            f"{frame['sha256']}: refused", file=sys.stderr)
      continue
    files.replace(partial, target)
    say(f"{frame['file']}: from {source}, sha256 checked")
  return 2 if bad else 0


def _runs_of_seed(plan: plan_.Plan, seed: int, root: pathlib.Path):
  """(finished runs of ``seed`` to score, names of the others not finished yet)."""
  runs = [r for r in plan.runs if r.seed == seed and r.name not in (plan_.STEM, "bicubic")]
  done = [r for r in runs if plan_.finished(r, root)]
  return done, [r.name for r in runs if r not in done]


def jobs(a, plan: plan_.Plan) -> tuple[list[tuple[pathlib.Path, list[str]]], list[str]]:
  """((output folder, argv) of every evaluation, runs not trained yet): one evaluation per
  finished run, seed and source (``<root>/evaluation/<source>/seed<k>/<run>``), each with
  bicubic, so that each is scored as soon as it finishes and a kill loses one run's scoring."""
  root = files.root_path(a.root)
  out, waiting = [], []
  for seed in sorted({r.seed for r in plan.runs}):
    done, later = _runs_of_seed(plan, seed, root)
    waiting += [f"{name} seed {seed}" for name in later]
    for run in done:
      base = [sys.executable, "-m", "sinsr_jax.evaluate", f"--run={run.folder(root)}",
              f"--label={run.name}", f"--lpips={a.lpips}",
              "--seed=0"]  # every seed scored on the same LR images
      figures = f"--figures={a.figures if seed == 0 else 0}"
      synthetic = root / "evaluation" / "synthetic" / f"seed{seed}" / run.name
      out.append((synthetic, [*base, f"--split={a.split}", f"--max_images={a.max_images}",
                              figures, f"--out={synthetic}"]))
      if not a.no_real:
        real = root / "evaluation" / "real" / f"seed{seed}" / run.name
        out.append((real, [*base, f"--images={root / 'frames'}", f"--crop={a.real_crop}",
                           figures, f"--out={real}"]))
  return out, waiting


JOB = "job.json"  # the evaluation's command line, written once it succeeded


def up_to_date(folder: pathlib.Path, argv: list[str]) -> bool:
  """The folder's results.json scored these very runs at their current steps, with this very
  command line (split, crop, images, LPIPS)."""
  record, job = folder / "results.json", folder / JOB
  if not record.exists() or not job.exists() or json.loads(job.read_text()) != argv[1:]:
    return False
  saved = json.loads(record.read_text()).get("runs", {})
  runs = [x[len("--run="):] for x in argv if x.startswith("--run=")]
  labels = [x[len("--label="):] for x in argv if x.startswith("--label=")]
  want = {label: plan_.final_step(files.root_path(run)) for label, run in zip(labels, runs,
                                                                             strict=True)}
  have = {label: r.get("step") for label, r in saved.items() if label != "bicubic"}
  return have == want


def evaluate(a, plan: plan_.Plan, say=print, only: tuple[str, int] | None = None) -> int:
  """Scores every finished run not scored yet (``only``: that run and seed alone)."""
  todo, waiting = jobs(a, plan)
  if only is not None:
    todo = [(f, argv) for f, argv in todo if (f.name, int(f.parent.name[len("seed"):])) == only]
    waiting = []
    if not todo:  # the shared stem, bicubic: nothing to score
      return 0
  if not todo:
    names = sorted({r.name for r in plan.runs if r.name != plan_.STEM})
    print(f"error: not trained yet under {a.root}/runs: {', '.join(names)}; run the train "
          "stage first (or leave them out with --only)", file=sys.stderr)
    return 2
  if not a.no_real and not any((files.root_path(a.root) / "frames").glob("*.*")):
    print(f"error: no real frames in {a.root}/frames; run the frames stage first (or "
          "--no_real)", file=sys.stderr)
    return 2
  if a.emit:
    for _, argv in todo:
      say(" ".join(["python", *argv[1:]]))
    return 0
  if waiting:
    say(f"evaluate: not trained yet, left out: {', '.join(waiting)}")
  failed = 0
  for index, (folder, argv) in enumerate(todo, 1):
    name = "/".join(folder.parts[-3:])
    if up_to_date(folder, argv):
      say(f"evaluate {name}: up to date")
      continue
    say(f"[{index}/{len(todo)}] evaluate {name}")
    folder.mkdir(parents=True, exist_ok=True)
    began = time.time()
    code = files.run_logged(argv, folder / "evaluate.log", "", mode="w", cwd=plan_.REPO)
    study_train.record_time(files.root_path(a.root), "evaluate", name, time.time() - began,
                            code=code)
    if not code:
      (folder / JOB).write_text(json.dumps(argv[1:]))
    if code:
      failed += 1
      say(f"evaluate {name}: FAILED (exit {code}); its log: {folder / 'evaluate.log'}")
  return 1 if failed else 0
