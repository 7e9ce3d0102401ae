"""The study's report: SUMMARY.md with the real-frame table first, the downstream sizes, the
synthetic table, the ablations, every run's validation curve, and a verdict per claim.

Every comparison pairs two methods image by image (by file name) and seed by seed, with a
two-way bootstrap interval (sinsr_jax.evaluation.paired); within each claim, Holm's correction
over its comparisons decides what is a difference and what is a tie. The baselines compared with
SINSR were chosen on the validation split at seed 0 (study_train.strongest), never on the test
scores. A run whose validation PSNR moved by 0.1 dB or more over its last 20% of steps is
marked unconverged, and a baseline so marked is not ranked.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import math
import os
import pathlib
import subprocess

import numpy as np
import study_eval
import study_files as files
import study_plan as plan_
import study_train

from sinsr_jax.runtime import paths

FLAT_DB = 0.1  # converged: validation PSNR moves less than this over the last 20% of steps
TAIL = 0.2


@dataclasses.dataclass(frozen=True)
class Column:
  key: str
  title: str
  better: str
  digits: int


REAL = (Column("psnr_db", "PSNR (dB)", "higher", 2), Column("ssim", "SSIM", "higher", 4),
        Column("gmsd", "GMSD", "lower", 4), Column("edge_f1", "Edge F1", "higher", 4),
        Column("size_error", "Size error", "lower", 3), Column("size_w1", "Size W1", "lower", 3))
SYNTHETIC = REAL[:4]
STRONGEST_CLAIM = "SINSR against the strongest baselines (chosen on validation PSNR at seed 0)"
PIXEL_CLAIM = "The structure-informed GAN phase against the pixel loss alone"
BRANCH_CLAIM = "The gradient branch"
TERMS_CLAIM = "Each loss term and variant against full SINSR"
FAMILY_ROWS = ("sinsr", "sinsr_gradient_branch", plan_.PIXEL_ONLY)
ABLATIONS = ("no_adversarial", "no_gradient", "no_second_order", "no_ssim", "no_auxiliary",
             "no_perceptual", "fixed_weights", "sinsr_gradient_branch", plan_.PIXEL_ONLY)


def _paired():
  from sinsr_jax.evaluation import paired

  return paired


# ---- reading -------------------------------------------------------------------------------

def measure_of() -> dict[str, str]:
  return {f["file"]: f["measure"] for f in study_eval.manifest()}


def _with_size(record: dict, image: str, kinds: dict[str, str]) -> dict:
  kind = kinds.get(image)
  out = dict(record)
  if kind and record.get(f"{kind}_rel_error") is not None:
    out["size_error"] = abs(record[f"{kind}_rel_error"])
    out["size_w1"] = record.get(f"{kind}_w1_rel")
  return out


def load(root: pathlib.Path, source: str):
  """({label: {seed: {image: record}}}, {seed: {image: LR size record}}) of one source."""
  kinds, scores, lr = measure_of(), {}, {}
  paths.refresh(str(root / "evaluation"))
  # One results.json per run (each with bicubic and LR, the same in every one of a seed).
  for path in sorted((root / "evaluation" / source).glob("seed*/*/results.json")):
    seed, data = int(path.parent.parent.name[len("seed"):]), json.loads(path.read_text())
    for label, records in data["per_image"].items():
      for r in records:
        image = os.path.basename(str(r.get("filename", r["image"])))
        scores.setdefault(label, {}).setdefault(seed, {})[image] = _with_size(r, image, kinds)
    for name, record in data.get("lr_sizes", {}).items():
      image = os.path.basename(name)
      lr.setdefault(seed, {})[image] = _with_size(record, image, kinds)
  return scores, lr


def curve(folder: pathlib.Path) -> list[tuple[int, float]]:
  path = folder / "metrics.json"
  if not path.exists():
    return []
  return [(r["step"], r["psnr_db"]) for r in json.loads(path.read_text()).get("history", [])
          if r.get("psnr_db") is not None]


def convergence(points: list[tuple[int, float]]) -> float | None:
  """|PSNR(last) - PSNR(at 80% of the steps)| in dB, None without a curve reaching that far."""
  if len(points) < 2:
    return None
  last_step, last = points[-1]
  earlier = [p for s, p in points if s <= (1 - TAIL) * last_step]
  return abs(last - earlier[-1]) if earlier else None


# ---- numbers -------------------------------------------------------------------------------

def matrix(by_seed: dict[int, dict[str, dict]], key: str) -> np.ndarray:
  seeds = sorted(by_seed)
  images = sorted(set().union(*(set(v) for v in by_seed.values()))) if seeds else []
  out = np.full((len(images), len(seeds)), np.nan)
  for j, s in enumerate(seeds):
    for i, image in enumerate(images):
      value = by_seed[s].get(image, {}).get(key)
      if value is not None:
        out[i, j] = value
  return out


def cell(values: np.ndarray, digits: int) -> str:
  finite = values[np.isfinite(values).all(axis=1)] if values.size else values
  if not finite.size:
    return "—"
  estimate = _paired().compare(finite)
  half = (estimate.high - estimate.low) / 2
  text = f"{estimate.mean:.{digits}f}"
  return f"{text} ± {half:.{digits}f}" if math.isfinite(half) else text


def comparisons(scores, pairs: list[tuple[str, str]], columns) -> list[tuple[str, str, Column,
                                                                            object]]:
  """Each (A, B) pair on each column, Holm-corrected together: [(A, B, column, Difference)]."""
  paired = _paired()
  out = []
  for a, b in pairs:
    if a not in scores or b not in scores:
      continue
    for column in columns:
      out.append((a, b, column, paired.compare(paired.pair_up(scores[a], scores[b],
                                                              column.key))))
  adjusted = paired.holm([d for *_, d in out])
  return [(a, b, c, d) for (a, b, c, _), d in zip(out, adjusted, strict=True)]


def _p(p: float) -> str:
  """A bootstrap p-value: 0 means below the resolution of its resamples."""
  paired = _paired()
  return f"< {1 / paired.RESAMPLES:.0e}" if p == 0 else f"{p:.3g}"


def _difference(d, column: Column) -> str:
  if not math.isfinite(d.low):
    return f"{d.mean:+.{column.digits}f}" if math.isfinite(d.mean) else "—"
  mark = {"A": " ▲", "B": " ▼", "tie": "", "undecided": ""}[d.outcome(column.better)]
  digits = column.digits
  return f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]{mark}"


def verdict_lines(results, unconverged: set[str]) -> list[str]:
  lines = []
  if not results:
    return ["Not measured: a run of this comparison has not been evaluated yet."]
  for a, b, column, d in results:
    if b in unconverged and b in plan_.baselines():
      lines.append(f"- {a} vs {b}, {column.title}: not ranked ({b} did not converge)")
      continue
    outcome = d.outcome(column.better)
    said = {"A": f"**{a} ahead**", "B": f"**{b} ahead**", "tie": "tie",
            "undecided": "undecided (too few pairs)"}[outcome]
    lines.append(f"- {a} vs {b}, {column.title}: {said}: {_difference(d, column)} "
                 f"({d.images} images x {d.seeds} seed{'s' if d.seeds > 1 else ''}, Holm p "
                 f"{_p(d.p_holm)})")
  return lines


# ---- tables --------------------------------------------------------------------------------

def method_table(scores, lr, rows: list[str], columns, seeds_of, converged_of) -> list[str]:
  head = ["Method", "Seeds", "Converged", *[f"{c.title} {'↑' if c.better == 'higher' else '↓'}"
                                            for c in columns]]
  out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  if lr and any(c.key.startswith("size") for c in columns):
    out.append("| LR (own pixel size) | — | — | " + " | ".join(
        cell(matrix(lr, c.key), c.digits) if c.key.startswith("size") else "—"
        for c in columns) + " |")
  for label in rows:
    if label not in scores:
      continue
    out.append(f"| {label} | {seeds_of(label)} | {converged_of(label)} | " + " | ".join(
        cell(matrix(scores[label], c.key), c.digits) for c in columns) + " |")
  return out


def size_table(scores, lr, rows: list[str]) -> list[str]:
  """Per frame: the measured kind, HR's mean size, and each method's relative error of the
  mean size (mean over seeds) with its bootstrap interval over objects (averaged over seeds)."""
  kinds = measure_of()
  frames = sorted({i for by_seed in lr.values() for i in by_seed})
  rows = [r for r in rows if r in scores]
  head = ["Frame", "Measured", "HR mean", "LR", *rows]
  out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for frame in frames:
    kind = kinds.get(frame, "particles")
    first = next(iter(lr.values()))[frame]
    mean = first.get(f"{kind}_mean_nm")
    hr_mean = mean / (1 + first[f"{kind}_rel_error"]) if mean and first.get(
        f"{kind}_rel_error") is not None else math.nan
    unit = first.get("unit", "nm")
    size = (f"{hr_mean / 1000:.4g} µm" if unit == "nm" and hr_mean >= 1000 else
            f"{hr_mean:.4g} {unit}")
    cells = [frame, kind, size,
             _size_cell([lr[s].get(frame, {}) for s in sorted(lr)], kind)]
    for label in rows:
      cells.append(_size_cell([scores[label][s].get(frame, {}) for s in sorted(scores[label])],
                              kind))
    out.append("| " + " | ".join(cells) + " |")
  return out


def _size_cell(records: list[dict], kind: str) -> str:
  values = [(r.get(f"{kind}_rel_error"), r.get(f"{kind}_rel_error_lo"),
             r.get(f"{kind}_rel_error_hi")) for r in records]
  values = [v for v in values if v[0] is not None and math.isfinite(v[0])]
  if not values:
    return "—"
  mean, lo, hi = (float(np.mean([v[i] for v in values])) for i in range(3))
  return f"{100 * mean:+.1f}% [{100 * lo:+.0f}, {100 * hi:+.0f}]"


def ablation_table(real, synthetic, unconverged) -> tuple[list[str], list, list]:
  pairs = [(name, "sinsr") for name in ABLATIONS]
  real_results = comparisons(real, pairs, REAL)
  synthetic_results = comparisons(synthetic, pairs, (SYNTHETIC[0], SYNTHETIC[2]))
  head = ["Ablation (minus full SINSR)", *[f"real {c.title}" for c in REAL],
          "synthetic PSNR", "synthetic GMSD"]
  out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for name, _ in pairs:
    real_found = {c.key: d for a, _, c, d in real_results if a == name}
    synthetic_found = {c.key: d for a, _, c, d in synthetic_results if a == name}
    if not real_found and not synthetic_found:
      continue
    cells = [_difference(real_found[c.key], c) if c.key in real_found else "—" for c in REAL]
    cells += [_difference(synthetic_found[c.key], c) if c.key in synthetic_found else "—"
              for c in (SYNTHETIC[0], SYNTHETIC[2])]
    label = name + (" (unconverged)" if name in unconverged else "")
    out.append(f"| {label} | " + " | ".join(cells) + " |")
  return out, real_results, synthetic_results


# ---- figures -------------------------------------------------------------------------------

def curves_figure(path: pathlib.Path, runs: list[plan_.Run], root: pathlib.Path,
                  title: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = list(dict.fromkeys(r.name for r in runs))
  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(names), 2)))
  for run in runs:
    points = curve(run.folder(root))
    if points:
      steps, psnr = zip(*points, strict=True)
      ax.plot(steps, psnr, color=colours[names.index(run.name)], lw=1.0,
              ls=("-", "--", ":", "-.")[run.seed % 4],
              label=run.name if run.seed == min(r.seed for r in runs if r.name == run.name)
              else None)
  ax.set_xlabel("step")
  ax.set_ylabel("validation PSNR (dB)")
  ax.set_title(f"{title} (line style: seed)", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=6, ncol=2, loc="lower right")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


# ---- the summary ---------------------------------------------------------------------------

def _s(n: int) -> str:
  return "" if n == 1 else "s"


def _git(*args: str) -> str:
  try:
    return subprocess.run(["git", *args], cwd=plan_.REPO, capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def wall_time(root: pathlib.Path) -> list[str]:
  path = root / "timings.jsonl"
  if not path.exists():
    return ["Wall time: not recorded (no timings.jsonl)."]
  lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
  by_stage = {}
  for line in lines:
    by_stage[line["stage"]] = by_stage.get(line["stage"], 0.0) + line["seconds"]
  machines = sorted({f"{x['host']} ({x['cpus']} CPUs, {x.get('cpu') or x['machine']})"
                     for x in lines})
  return [f"Wall time: {sum(by_stage.values()) / 3600:.1f} h in all ("
          + ", ".join(f"{k} {v / 3600:.1f} h" for k, v in by_stage.items())
          + f"), on {', '.join(machines)}."]


def report(a, plan: plan_.Plan, say=print) -> int:
  import sys

  root = files.root_path(a.root)
  real, lr = load(root, "real")
  synthetic, _ = load(root, "synthetic")
  if not real and not synthetic:
    print(f"error: no evaluation under {root / 'evaluation'}; run the evaluate stage first",
          file=sys.stderr)
    return 2
  out = plan_.REPO / (a.out or f"docs/results/{a.budget}")
  out.mkdir(parents=True, exist_ok=True)
  runs = [r for r in plan.runs if r.name != plan_.STEM]
  deltas = {}
  for run in runs:  # a run still training has a curve, but no verdict on its end yet
    if plan_.finished(run, root):
      deltas.setdefault(run.name, []).append(convergence(curve(run.folder(root))))
  unconverged = {n for n, d in deltas.items() if any(x is not None and x >= FLAT_DB for x in d)}

  def converged_of(label: str) -> str:
    found = [x for x in deltas.get(label, []) if x is not None]
    if label == "bicubic" or not found:
      return "—"
    worst = max(found)
    return "yes" if worst < FLAT_DB else f"**no** (Δ {worst:.2f} dB)"

  def seeds_of(label: str) -> str:
    return str(len((real or synthetic).get(label, {})))

  strongest = study_train.strongest(root, plan.runs) or []
  rows = ["bicubic", *FAMILY_ROWS, *strongest,
          *sorted(n for n in plan_.baselines() if n not in strongest and n != "bicubic")]
  claims = {
      STRONGEST_CLAIM: [
          (ours, b) for ours in ("sinsr", "sinsr_gradient_branch") for b in strongest],
      PIXEL_CLAIM: [
          ("sinsr", plan_.PIXEL_ONLY)],
      BRANCH_CLAIM: [("sinsr_gradient_branch", "sinsr")],
  }
  summary = head = _head(a, root, plan)
  summary, found = list(head), []
  for source, scores, columns, heading in (
      ("real", real, REAL, "Real micrographs"), ("synthetic", synthetic, SYNTHETIC,
                                                 f"`{a.data}` test split")):
    if not scores:
      summary += [f"## {heading}", "", "Not evaluated.", ""]
      continue
    summary += [f"## {heading}", "", *_notes(source, scores), "",
                *method_table(scores, lr if source == "real" else {}, rows, columns, seeds_of,
                              converged_of), ""]
    if source == "real" and lr:
      summary += ["### Feature sizes per frame", "",
                  "Relative error of the mean size against HR's, mean over seeds, with the 95% "
                  "bootstrap interval over the frame's objects (percent). LR is measured at its "
                  "own pixel size.", "", *size_table(real, lr, rows), ""]
    for claim, pairs in claims.items():
      results = comparisons(scores, pairs, columns)
      found.append((claim, source, results))
      summary += [f"### {claim} ({source})", "", *verdict_lines(results, unconverged), ""]
  table, real_ablations, synthetic_ablations = ablation_table(real, synthetic, unconverged)
  found += [(TERMS_CLAIM, "real", real_ablations), (TERMS_CLAIM, "synthetic",
                                                     synthetic_ablations)]
  summary[len(head):len(head)] = [
      "## Verdicts", "", "On real frames, the questions the study asks (structure: every metric "
      "but PSNR; a difference counts where its 95% interval excludes 0 after Holm's "
      "correction):", "", *answers(found, unconverged), "", "Every comparison:", "",
      *plain_verdicts(found, unconverged), ""]
  summary += ["## Ablations", "",
              "Each run minus full SINSR, paired over (frame or image, seed): mean [95% "
              "interval]; ▲/▼ a difference that survives Holm's correction over the table's "
              "real-frame (or synthetic) comparisons (▲: the ablation is better), otherwise a "
              "tie.", "", *table, ""]
  summary += _curves(out, runs, root, deltas)
  (out / "SUMMARY.md").write_text("\n".join(summary) + "\n")
  (out / "scores.json").write_text(json.dumps({"real": real, "synthetic": synthetic,
                                               "lr_sizes": lr}, default=_json_number))
  say(f"wrote {out / 'SUMMARY.md'}")
  return 0


def _sides(results, a: str, b: str) -> dict[str, list[str]]:
  """The column titles where A is ahead, where B is, and the ties, for one pair."""
  got = {"A": [], "B": [], "tie": [], "undecided": []}
  for x, y, column, d in results:
    if (x, y) == (a, b):
      got[d.outcome(column.better)].append(column.title)
  return got


def _answer(got: dict[str, list[str]], ahead: str, behind: str) -> str:
  """yes / no / mixed / no measurable difference, with the metrics that say so."""
  if not any(got.values()):
    return "not measured yet"
  tie = f"; tie on {', '.join(got['tie'])}" if got["tie"] and (got["A"] or got["B"]) else ""
  if got["A"] and got["B"]:
    return (f"mixed: {ahead} on {', '.join(got['A'])}, {behind} on {', '.join(got['B'])}"
            + tie)
  if got["A"]:
    return f"yes, {ahead} on {', '.join(got['A'])}" + tie
  if got["B"]:
    return f"no, {behind} on {', '.join(got['B'])}" + tie
  return "no measurable difference" + (f" ({', '.join(got['undecided'])} undecided)"
                                      if got["undecided"] else "")


def _psnr(got: dict[str, list[str]]) -> str:
  return ("ahead" if got["A"] else "behind" if got["B"] else "a tie" if got["tie"] else
          "undecided" if got["undecided"] else "not measured yet")


TERMS = {"no_adversarial": "the adversarial term", "no_gradient": "the Sobel gradient term",
         "no_second_order": "the second-order term", "no_ssim": "the SSIM term",
         "no_auxiliary": "the auxiliary term", "no_perceptual": "the perceptual term",
         "fixed_weights": "the weight schedule"}


def answers(found, unconverged: set[str]) -> list[str]:
  """The study's questions answered in words from the real-frame comparisons: does SINSR keep
  structure better than the strongest baselines, than the pixel loss alone; does each loss
  term matter; does the gradient branch. A, the first of each pair, is the one asked about."""
  real = {claim: results for claim, source, results in found if source == "real"}
  strongest, pixel, branch, terms = (real.get(c, []) for c in (
      STRONGEST_CLAIM, PIXEL_CLAIM, BRANCH_CLAIM, TERMS_CLAIM))

  def only(results, psnr: bool):
    return [r for r in results if (r[2].key == "psnr_db") == psnr]

  def caveat(*names: str) -> str:
    late = [n for n in names if n in unconverged]
    return f" ({', '.join(late)} not converged)" if late else ""

  said = [f"{a} against {b}: " + (
      f"not ranked, {b} did not converge" if b in unconverged else
      _answer(_sides(only(strongest, False), a, b), "ahead", "behind") + caveat(a))
      for a, b in dict.fromkeys((a, b) for a, b, _, _ in strongest)]
  terms_said = []
  for name in dict.fromkeys(a for a, _, _, _ in terms):
    if name not in TERMS:
      continue
    got = _sides(terms, name, "sinsr")  # the ablation is A: where SINSR (B) is ahead, it costs
    words = [f"without it worse on {', '.join(got['B'])}" if got["B"] else "",
             f"without it better on {', '.join(got['A'])}" if got["A"] else ""]
    terms_said.append(f"{TERMS[name]}: " + ("; ".join(w for w in words if w) or
                                             "no measurable effect") + caveat(name))
  return [
      "- **Does SINSR keep structure better than the strongest baselines?** "
      + ("; ".join(said) or "not measured yet") + ".",
      "- **Does its structure-informed GAN phase keep structure better than the pixel loss "
      "alone?** " + _answer(_sides(only(pixel, False), "sinsr", plan_.PIXEL_ONLY), "ahead",
                            "behind") + caveat("sinsr") + "; on PSNR "
      + _psnr(_sides(only(pixel, True), "sinsr", plan_.PIXEL_ONLY)) + ".",
      "- **Does each loss term matter?** " + ("; ".join(terms_said) or "not measured yet") + ".",
      "- **Does the gradient branch help?** "
      + _answer(_sides(only(branch, False), "sinsr_gradient_branch", "sinsr"), "ahead of SINSR",
                "behind SINSR") + caveat("sinsr_gradient_branch") + "; on PSNR "
      + _psnr(_sides(only(branch, True), "sinsr_gradient_branch", "sinsr")) + "."]


def plain_verdicts(found, unconverged: set[str]) -> list[str]:
  """One line per (claim, pair, source): where A is ahead, where B is, and the ties."""
  lines, said = [], set()
  for claim, source, results in found:
    pairs = [p for p in dict.fromkeys((a, b) for a, b, _, _ in results)
             if (frozenset(p), source) not in said]  # the ablation table repeats two claims
    said.update((frozenset(p), source) for p in pairs)
    if results and not pairs:
      continue
    if not pairs:
      lines.append(f"- {claim} ({source}): not measured yet.")
      continue
    for a, b in pairs:
      if b in unconverged and b in plan_.baselines():
        lines.append(f"- {a} vs {b}: not ranked, {b} did not converge.")
        continue
      got = _sides(results, a, b)
      words = [f"{a} ahead on {', '.join(got['A'])}" if got["A"] else "",
               f"{b} ahead on {', '.join(got['B'])}" if got["B"] else "",
               f"tie on {', '.join(got['tie'])}" if got["tie"] else "",
               f"undecided on {', '.join(got['undecided'])}" if got["undecided"] else ""]
      on = {"real": "real frames", "synthetic": "the test split"}[source]
      caveat = [x for x in (a, b) if x in unconverged]
      lines.append(f"- {a} vs {b} ({on}): " + "; ".join(w for w in words if w) + "."
                   + (f" ({', '.join(caveat)} not converged.)" if caveat else ""))
  return lines


def _json_number(value):
  return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def _notes(source: str, scores) -> list[str]:
  images = sorted({i for by_seed in scores.values() for v in by_seed.values() for i in v})
  if source == "real":
    return [f"{len(images)} real micrographs ({', '.join(images)}), each the centre crop of its "
            "image area above the databar; x4, LR = MATLAB bicubic; PSNR/SSIM BasicSR "
            "(border 4, [0, 255]). Size error: |relative error| of the frame's mean feature "
            "size (launch/real_frames.json names what is measured on each) against HR's; "
            "Size W1: the size distributions' Wasserstein distance over HR's mean. Values: mean "
            "over frames and seeds ± half the two-way bootstrap 95% interval."]
  return [f"{len(images)} test images, whole; x4, LR = MATLAB bicubic; PSNR/SSIM BasicSR "
          "(border 4, [0, 255]). Values: mean over images and seeds ± half the two-way "
          "bootstrap 95% interval."]


def _curves(out: pathlib.Path, runs, root, deltas) -> list[str]:
  grids = {"study": [r for r in runs if r.name in FAMILY_ROWS or r.name in plan_.baselines()],
           "ablations": [r for r in runs if r.name in ABLATIONS or r.name == "sinsr"]}
  lines = ["## Validation curves", ""]
  for grid, selected in grids.items():
    if selected:
      curves_figure(out / f"curves_{grid}.png", selected, root, f"{grid}: validation PSNR")
      lines += [f"![{grid}](curves_{grid}.png)", ""]
  lines += ["| Run | seeds | |Δ PSNR| over the last 20% of steps (dB) | converged (< 0.1 dB) |",
            "|---|---|---|---|"]
  for name, found in deltas.items():
    values = [x for x in found if x is not None]
    if name != "bicubic" and values:
      lines.append(f"| {name} | {len(values)} | {', '.join(f'{x:.3f}' for x in values)} | "
                   f"{'yes' if max(values) < FLAT_DB else '**no**'} |")
  return lines + [""]


def perceptual_line(plan: plan_.Plan) -> str:
  """Whether SINSR's runs carry the VGG19 perceptual term (off where its weights cannot be had)."""
  sinsr = [r for r in plan.runs if r.name == "sinsr"]
  weights = tuple(plan_.resolved(sinsr[0]).loss.weights.perceptual) if sinsr else ()
  if any(weights):
    return (f"The VGG19 perceptual term is on in SINSR's runs (weights {weights}), and "
            "`no_perceptual` is among the ablations.")
  return ("The VGG19 perceptual term is off in every run (its ImageNet weights could not be "
          "downloaded where this was trained): SINSR's loss here is the other five terms, and "
          "`no_perceptual` is not trained. On a machine that downloads the weights, add "
          "`--family_set='loss.weights.perceptual=(2.0,1.5)'` to every stage.")


def progress_line(root: pathlib.Path, plan: plan_.Plan) -> list[str]:
  """Says the study is under way, and how far, while any planned training is unfinished."""
  done = sum(plan_.finished(r, root) for r in plan.runs)  # bicubic included, as in status
  total = len(plan.runs) + study_train.still_to_plan(plan.pending)
  if done == total:
    return []
  return [f"**Under way: {done} of {total} runs finished.** The tables and verdicts say "
          "what the finished runs say; a row with fewer seeds than the budget's, or a verdict "
          "not measured yet, waits for the rest (`python launch/study.py status`).", ""]


def _head(a, root: pathlib.Path, plan: plan_.Plan) -> list[str]:
  infos = [json.loads(p.read_text()) for p in (root / "runs").glob("*/seed*/run_info.json")]
  commits = sorted({i.get("git_commit", "unknown")[:7] + ("+dirty" if "dirty" in i.get(
      "git_commit", "") else "") for i in infos})
  digests = collections.Counter(i.get("code_digest", "not recorded") for i in infos)
  stages = ("prepare", "frames", "train", "evaluate", "report")
  return [f"# The study at budget `{a.budget}`", "",
          f"Runs trained at commit(s) {', '.join(commits) or 'unknown'} (code digests "
          f"{', '.join(f'{d} ({n} run{_s(n)})' for d, n in sorted(digests.items()))}: "
          "sinsr_jax/ and configs/, recorded in each run_info.json), "
          f"reported at {_git('rev-parse', '--short', 'HEAD')} on "
          f"{datetime.date.today().isoformat()}. {' '.join(wall_time(root))}", "",
          *progress_line(root, plan), perceptual_line(plan), "",
          "```bash", *[f"python launch/study.py {s} {a.cli(s)}".rstrip() for s in stages], "```",
          ""]
