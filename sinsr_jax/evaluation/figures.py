"""Comparison figures: LR | bicubic | each model | HR, a zoomed inset of the most structured
region, and below it the zoomed region with Canny edge maps overlaid (HR's green, the column's
magenta, both white): where a model invents or loses edges shows at a glance."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage import feature  # noqa: E402

EDGE_SIGMA = 1.5  # as the edge F1 metric


def zoom_box(hr: np.ndarray, fraction: float = 0.25) -> tuple[int, int, int, int]:
  """(top, left, height, width) of the window, ``fraction`` of each side, with the largest mean
  gradient magnitude in the 2-D image ``hr``: the most structured region."""
  h, w = hr.shape
  bh, bw = max(8, int(h * fraction)), max(8, int(w * fraction))
  bh, bw = min(bh, h), min(bw, w)
  energy = np.hypot(ndimage.sobel(hr, 0), ndimage.sobel(hr, 1))
  mean = ndimage.uniform_filter(energy, (bh, bw), mode="constant")
  # uniform_filter centres the window; keep centres whose window lies inside the image.
  valid = mean[bh // 2:h - (bh - 1) // 2, bw // 2:w - (bw - 1) // 2]
  top, left = np.unravel_index(np.argmax(valid), valid.shape)
  return int(top), int(left), bh, bw


def edge_overlay(image: np.ndarray, hr: np.ndarray) -> np.ndarray:
  """RGB: the dimmed image, HR's Canny edges green, ``image``'s magenta, shared ones white."""
  own = feature.canny(image.astype(np.float64), sigma=EDGE_SIGMA)
  ref = feature.canny(hr.astype(np.float64), sigma=EDGE_SIGMA)
  rgb = np.repeat(np.clip(image, 0, 1)[..., None] * 0.5, 3, axis=-1)
  rgb[ref] = (0.1, 0.9, 0.1)
  rgb[own] = (0.95, 0.1, 0.95)
  rgb[own & ref] = (1.0, 1.0, 1.0)
  return rgb


def comparison(path: str, panels: list[tuple[str, np.ndarray]], *, title: str = "",
               captions: dict[str, str] | None = None) -> None:
  """Writes a 2-row PNG grid of 2-D [0, 1] images of one size; the last panel is HR."""
  captions = captions or {}
  hr = panels[-1][1]
  top, left, bh, bw = zoom_box(hr)
  box = (slice(top, top + bh), slice(left, left + bw))
  # The inset goes in the corner away from the zoomed region (axes coordinates, y up).
  right = left + bw / 2 < hr.shape[1] / 2
  upper = top + bh / 2 > hr.shape[0] / 2
  inset_corner = [0.6 if right else 0.0, 0.6 if upper else 0.0, 0.4, 0.4]
  cols = len(panels)
  aspect = hr.shape[0] / hr.shape[1]
  fig, axes = plt.subplots(2, cols, figsize=(2.4 * cols, 2.4 * (aspect + bh / bw) + 0.8),
                           squeeze=False, gridspec_kw={"height_ratios": [aspect, bh / bw]})
  for col, (name, image) in enumerate(panels):
    image = np.clip(image, 0.0, 1.0)
    ax = axes[0, col]
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, ec="yellow", lw=1))
    inset = ax.inset_axes(inset_corner)
    inset.imshow(image[box], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for spine in inset.spines.values():
      spine.set_edgecolor("yellow")
    inset.set_xticks([])
    inset.set_yticks([])
    ax.set_title(name + (f"\n{captions[name]}" if name in captions else ""), fontsize=8)
    edges = axes[1, col]
    edges.imshow(edge_overlay(image[box], hr[box]), interpolation="nearest")
    for a in (ax, edges):
      a.set_xticks([])
      a.set_yticks([])
  axes[1, 0].set_ylabel("edges: HR green, image magenta,\nshared white", fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  tmp = f"{path}.tmp"
  fig.savefig(tmp, format="png", dpi=100)
  plt.close(fig)
  os.replace(tmp, path)
