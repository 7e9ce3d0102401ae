"""Results tables from per-image scores: mean and 95% confidence interval per metric, per model
and per class, written as Markdown, CSV and JSON. Pure functions except the writers."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Metric:
  key: str
  title: str
  better: str  # "higher" | "lower"
  digits: int


METRICS = (
    Metric("psnr_db", "PSNR (dB)", "higher", 2),
    Metric("ssim", "SSIM", "higher", 4),
    Metric("lpips", "LPIPS", "lower", 4),
    Metric("gmsd", "GMSD", "lower", 4),
    Metric("edge_f1", "Edge F1", "higher", 4),
    Metric("count_error", "Count err.", "lower", 3),
    Metric("area_wasserstein", "Size W1 (px)", "lower", 1),
    Metric("time_ms", "ms/image", "lower", 1),
)
ALL = "all"  # the class name of the whole split


def mean_ci95(values) -> tuple[float, float]:
  """Mean and the half-width of its 95% confidence interval (Student t; nan for one value)."""
  x = np.asarray(values, np.float64)
  x = x[np.isfinite(x)]
  if len(x) == 0:
    return math.nan, math.nan
  if len(x) == 1:
    return float(x[0]), math.nan
  half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / math.sqrt(len(x))
  return float(np.mean(x)), float(half)


def summarise(per_image: dict[str, list[dict]], metrics=METRICS) -> list[dict]:
  """{model: [per-image records with "class" and metric keys]} -> rows of
  {model, class, n, <key>, <key>_ci95, <key>_n} for the whole split, then each class (sorted);
  ``<key>_n`` counts the images whose value is finite (the mean's own n)."""
  rows = []
  for model, records in per_image.items():
    classes = sorted({r["class"] for r in records if r.get("class")})
    groups = [(ALL, records)]
    if len(classes) > 1:
      groups += [(c, [r for r in records if r.get("class") == c]) for c in classes]
    for name, group in groups:
      row = {"model": model, "class": name, "n": len(group)}
      for m in metrics:
        if any(m.key in r for r in group):
          values = [r[m.key] for r in group if m.key in r]
          row[m.key], row[f"{m.key}_ci95"] = mean_ci95(values)
          # n counts images; a metric undefined on some (NaN, inf) is a mean over fewer.
          row[f"{m.key}_n"] = int(np.isfinite(np.asarray(values, np.float64)).sum())
      rows.append(row)
  return rows


def _cell(row: dict, m: Metric) -> str:
  if m.key not in row or not math.isfinite(row[m.key]):
    return "—"
  text = f"{row[m.key]:.{m.digits}f}"
  ci = row.get(f"{m.key}_ci95", math.nan)
  text = f"{text} ± {ci:.{m.digits}f}" if math.isfinite(ci) else text
  scored = row.get(f"{m.key}_n", row.get("n"))
  return text if scored == row.get("n") else f"{text} (n={scored})"


def _best(rows: list[dict], m: Metric) -> set[int]:
  """Indices of the rows with the best mean of ``m`` (bold in Markdown)."""
  values = [(i, r[m.key]) for i, r in enumerate(rows) if math.isfinite(r.get(m.key, math.nan))]
  if len(values) < 2:
    return set()
  pick = max if m.better == "higher" else min
  best = pick(v for _, v in values)
  return {i for i, v in values if v == best}


def markdown(rows: list[dict], header: list[str], params: dict[str, int],
             metrics=METRICS) -> str:
  """The results as Markdown: header lines, the whole-split table, then the per-class one."""
  present = [m for m in metrics if any(m.key in r for r in rows)]
  cols = ["Model", "Params", *[f"{m.title} {'↑' if m.better == 'higher' else '↓'}"
                               for m in present]]
  out = [*header, ""]

  def table(selected: list[dict], with_class: bool):
    head = cols[:1] + (["Class", "n"] if with_class else ["n"]) + cols[1:]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {} if with_class else {m.key: _best(selected, m) for m in present}
    for i, r in enumerate(selected):
      cells = [r["model"], *([r["class"]] if with_class else []), str(r["n"]),
               f"{params.get(r['model'], 0):,}"]
      for m in present:
        cell = _cell(r, m)
        cells.append(f"**{cell}**" if i in best.get(m.key, ()) else cell)
      lines.append("| " + " | ".join(cells) + " |")
    return lines

  out += table([r for r in rows if r["class"] == ALL], with_class=False)
  per_class = [r for r in rows if r["class"] != ALL]
  if per_class:
    out += ["", "Per class:", ""]
    out += table(sorted(per_class, key=lambda r: (r["class"], list(params).index(r["model"])
                                                  if r["model"] in params else 0)),
                 with_class=True)
  return "\n".join(out) + "\n"


def to_csv(rows: list[dict], metrics=METRICS) -> str:
  keys = ["model", "class", "n"]
  for m in metrics:
    if any(m.key in r for r in rows):
      keys += [m.key, f"{m.key}_ci95", f"{m.key}_n"]
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  return buffer.getvalue()


def write_text(path: str, text: str) -> None:
  """Atomic: a reader never sees half a table."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_all(out_dir: str, rows: list[dict], header: list[str], params: dict[str, int],
              details: dict) -> dict[str, str]:
  """results.md, results.csv and results.json (rows + ``details``) in ``out_dir``."""
  paths = {ext: os.path.join(out_dir, f"results.{ext}") for ext in ("md", "csv", "json")}
  write_text(paths["md"], markdown(rows, header, params))
  write_text(paths["csv"], to_csv(rows))
  write_text(paths["json"], json.dumps(
      _json_safe({"header": header, "params": params, "rows": rows, **details}), indent=2))
  return paths


def _json_safe(value):
  """nan/inf -> None (JSON has neither), numpy scalars -> Python numbers, recursively."""
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value
