"""Tiled super-resolution of images of any size, with memory bounded by the tile.

Every tile has the same LR shape (one compile per image size). Along each axis a tile reads
``tile`` LR pixels; at each interior edge its outer ``context`` pixels only feed the model's
receptive field and are dropped, and next to them a ``blend`` zone is cross-faded with the
neighbouring tile by complementary linear ramps. Tiles start every ``tile - 2 * context -
blend`` pixels; the last one is shifted back to end at the image edge (never truncated). Image
borders are not tapered: there the tile sees the same border as whole-image inference.

For a model whose ops are local (convolutions, no global pooling) the result equals whole-image
inference once ``context`` covers its receptive radius. Global pooling (CBAM, squeeze-excite)
sees each tile's own statistics, so such models differ slightly from whole-image inference.

Tiles run one band (row of tiles) at a time; float accumulators hold only the output rows the
band is still writing, finished rows go to a sink.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

# LR pixels. 256 advances by 176 with the default context and blend; 128 advanced by only 48, so
# every output pixel was computed ~7 times (3.1x slower on a 1024x768 frame; benchmarks/RESULTS.md).
DEFAULT_TILE = 256


@dataclasses.dataclass(frozen=True)
class Span:
  """One tile along one axis, in LR pixels: reads [start, start + size), owns [keep_start,
  keep_stop), ramping up over its first ``fade_in`` and down over its last ``fade_out``."""

  start: int
  size: int
  keep_start: int
  keep_stop: int
  fade_in: int
  fade_out: int


def check_settings(tile: int, context: int, blend: int) -> None:
  """Raises ValueError unless tiles advance by at least max(blend, 1) LR pixels."""
  if tile < 1 or context < 0 or blend < 0:
    raise ValueError(f"tile must be >= 1, context and blend >= 0; got tile={tile}, "
                     f"context={context}, blend={blend}")
  # Consecutive blend zones of one tile must not overlap: stride = tile - 2 context - blend >=
  # blend, so that the ramps of the neighbours on either side sum to one.
  need = 2 * context + max(2 * blend, 1)
  if tile < need:
    raise ValueError(f"tile ({tile}) must be at least 2 * context + 2 * blend = {need} "
                     f"(context={context}, blend={blend})")


def axis_spans(length: int, tile: int, context: int, blend: int) -> list[Span]:
  """The tiles along an axis of ``length`` LR pixels; one tile of ``length`` if it is smaller."""
  check_settings(tile, context, blend)
  if length <= tile:
    return [Span(0, length, 0, length, 0, 0)]
  stride = tile - 2 * context - blend
  count = 1 + -(-(length - tile) // stride)
  starts = [k * stride for k in range(count - 1)] + [length - tile]
  spans = []
  for k, start in enumerate(starts):
    first, last = k == 0, k == count - 1
    # The pair (k, k+1) fades over the last `blend` pixels of tile k's owned part: for regular
    # tiles that is exactly where k+1's owned part begins; the shifted last tile (closer to
    # its neighbour than the stride) owns it too, with more than `context` in front.
    keep_start = 0 if first else starts[k - 1] + tile - context - blend
    keep_stop = length if last else start + tile - context
    spans.append(Span(start, tile, keep_start, keep_stop, 0 if first else blend,
                      0 if last else blend))
  return spans


def tile_grid(height: int, width: int, tile: int, context: int,
              blend: int) -> tuple[list[Span], list[Span]]:
  """(row spans, column spans): the tiles are their product."""
  return axis_spans(height, tile, context, blend), axis_spans(width, tile, context, blend)


def span_weights(span: Span, scale: int) -> np.ndarray:
  """HR weights over the span's owned pixels: linear ramps through the fade zones.

  Ramps are sampled at HR pixel centres, (i + 0.5) / (fade * scale), so the fade-out of one
  tile and the fade-in of its neighbour sum to one pixel by pixel.
  """
  weights = np.ones((span.keep_stop - span.keep_start) * scale, np.float32)
  if span.fade_in:
    n = span.fade_in * scale
    weights[:n] = (np.arange(n) + 0.5) / n
  if span.fade_out:
    n = span.fade_out * scale
    weights[len(weights) - n:] *= 1.0 - (np.arange(n) + 0.5) / n
  return weights


def axis_weight_sum(spans: list[Span], scale: int) -> np.ndarray:
  """Sum of all spans' HR weights along the axis (one everywhere, up to rounding)."""
  total = np.zeros(spans[-1].keep_stop * scale, np.float32)
  for span in spans:
    total[span.keep_start * scale:span.keep_stop * scale] += span_weights(span, scale)
  return total


def count_tiles(height: int, width: int, tile: int, context: int, blend: int) -> int:
  rows, cols = tile_grid(height, width, tile, context, blend)
  return len(rows) * len(cols)


def _pad_to_multiple(lr: np.ndarray, tile: int, multiple: int) -> np.ndarray:
  """Mirrors the bottom/right edge so that an axis smaller than ``tile`` is a multiple of
  ``multiple`` (models that fold pixels need it); larger axes use tiles of ``tile``."""
  pad = [(0, -n % multiple if n < tile else 0) for n in lr.shape[:2]]
  return np.pad(lr, [*pad, (0, 0)], mode="symmetric") if any(p for _, p in pad) else lr


def upscale_tiled(sr_fn: Callable, lr: np.ndarray, scale: int, *, tile: int = DEFAULT_TILE,
                  context: int = 32, blend: int = 16, batch: int = 1, multiple: int = 1,
                  sink: Callable[[int, np.ndarray], None] | None = None,
                  progress: Callable[[int], None] | None = None) -> np.ndarray | None:
  """Super-resolves ``lr`` (H, W, C) float32 tile by tile.

  ``sr_fn``: LR batch (N, h, w, C) -> SR batch (N, h * scale, w * scale, C'). ``batch`` tiles
  of a band go into one call (the last call is padded with repeats: one shape). ``multiple``:
  tile sides the model needs to be a multiple of (``tile`` must be one). ``sink(row, rows)``
  receives finished HR rows in order, float32 (n, W * scale, C'); without a sink they are
  collected and returned. ``progress(n)`` is told of every n tiles done.
  """
  if tile % multiple:
    raise ValueError(f"tile ({tile}) must be a multiple of {multiple} for this model")
  height, width = lr.shape[:2]
  padded = _pad_to_multiple(lr, tile, multiple)
  rows, cols = tile_grid(*padded.shape[:2], tile, context, blend)
  out_width = width * scale
  row_norm = axis_weight_sum(rows, scale)
  col_norm = axis_weight_sum(cols, scale)[:out_width, None]
  col_weights = [span_weights(c, scale)[:, None] for c in cols]
  collected = []
  sink = sink or (lambda row, values: collected.append(values))
  band, band_start = None, 0  # float accumulator of HR rows [band_start, band_start + len)
  for i, row in enumerate(rows):
    top, bottom = row.keep_start * scale, row.keep_stop * scale
    row_weights = span_weights(row, scale)[:, None, None]
    y0 = (row.keep_start - row.start) * scale
    tiles = [padded[row.start:row.start + row.size, c.start:c.start + c.size] for c in cols]
    for b in range(0, len(cols), batch):
      chunk = tiles[b:b + batch]
      outputs = np.asarray(sr_fn(np.stack(chunk + [chunk[-1]] * (batch - len(chunk)))),
                           np.float32)
      band = _extend(band, bottom - band_start, padded.shape[1] * scale, outputs.shape[-1])
      for k, sr in enumerate(outputs[:len(chunk)], start=b):
        col = cols[k]
        x0 = (col.keep_start - col.start) * scale
        owned = sr[y0:y0 + bottom - top, x0:x0 + (col.keep_stop - col.keep_start) * scale]
        band[top - band_start:bottom - band_start, col.keep_start * scale:col.keep_stop * scale] \
            += owned * row_weights * col_weights[k]
      if progress:
        progress(len(chunk))
    # Rows above the next band's first owned row are final.
    done = min(rows[i + 1].keep_start * scale if i + 1 < len(rows) else bottom, height * scale)
    if done > band_start:
      finished = band[:done - band_start, :out_width]
      sink(band_start, finished / (row_norm[band_start:done, None, None] * col_norm))
      band, band_start = band[done - band_start:].copy(), done
  return np.concatenate(collected) if collected else None


def _extend(band: np.ndarray | None, rows: int, width: int, channels: int) -> np.ndarray:
  """``band`` grown with zero rows to at least ``rows`` rows."""
  if band is None:
    return np.zeros((rows, width, channels), np.float32)
  if band.shape[0] >= rows:
    return band
  return np.concatenate([band, np.zeros((rows - band.shape[0], width, channels), np.float32)])
