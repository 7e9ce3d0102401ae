"""TESCAN's info strip, found in the pixels: a full-width table of mid-grey cells (8-bit levels
around 50 and 100), with grid lines and light text, at the frame's bottom.

It is neither a saturated band nor text over the image, so tfds_sem.databar's passes miss it
(or stop on one of its grid lines). A table row is almost all one or two cell levels (their
grid lines and text take the rest); the strip is the run of such rows from the frame's bottom
up to the first row of content; it holds light text, most of its rows show two cell levels
side by side, and a grid line crosses it. Content rarely has all of these at once: a flat dark
bottom is not mid-grey, a flat mid-grey area holds no text, particles on a flat substrate show
one background level, and content that fades in is not a run of rows of the same two levels.
"""

from __future__ import annotations

import numpy as np

_TOLERANCE = 6  # levels around a cell's own level that still count as it (JPEG noise)
_MIN_CELL_SHARE = 0.5  # of a table row, its two commonest levels (cells) cover at least this
_MIN_ROW_SHARE = 0.85  # ... and cells, grid-line level and light text together this much
_MAX_GAP = 3  # rows inside the table that may fall short (JPEG ringing around dense text)
_CELL_LEVELS = (24, 176)  # the brighter cell is mid-grey: not black, not white
_TEXT_ABOVE_CELLS = 60  # light text is this much brighter than the row's brighter cell
_MIN_CELL_SHARE_EACH, _MIN_CELL_STEP = 0.15, 25  # two cell levels: each this much, this far apart
_MIN_TWO_CELL_ROWS = 0.6  # of the strip's rows show both cell levels
_GRID_LINE = 0.9  # a grid line: one level across this much of the width
_MIN_TEXT_PIXELS = 0.02  # of the width, in a row that holds text (grid lines hold less)
_MIN_TEXT_ROWS = 0.1  # of the strip's rows hold text
_MAX_TAIL_ROWS = 2  # rows under the table that may hold other values
_MIN_HEIGHT, _MAX_HEIGHT = 0.02, 0.35  # of the frame's height


def _cells(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Per row: the share of pixels within _TOLERANCE of its two commonest levels, those two
  levels (the brighter one second), and the smaller of the two shares."""
  height, width = levels.shape
  counts = np.bincount((np.arange(height)[:, None] * 256 + levels).ravel(),
                       minlength=height * 256).reshape(height, 256)
  window = np.cumsum(np.pad(counts, ((0, 0), (_TOLERANCE + 1, _TOLERANCE))), axis=1)
  near = window[:, 2 * _TOLERANCE + 1:] - window[:, :-2 * _TOLERANCE - 1]  # within ±tolerance
  rows = np.arange(height)
  first = near.argmax(axis=1)
  others = near.copy()
  grid = np.arange(256)[None, :]
  others[np.abs(grid - first[:, None]) <= 2 * _TOLERANCE] = 0
  second = others.argmax(axis=1)
  second = np.where(others[rows, second] > 0, second, first)  # a one-level row (a grid line)
  minor = others[rows, second] * (second != first) / width
  share = near[rows, first] / width + minor
  return share, np.minimum(first, second), np.maximum(first, second), minor


def find_table(levels: np.ndarray) -> int:
  """The first row of a TESCAN-style info table in 8-bit ``levels`` (H x W), or -1."""
  height, width = levels.shape
  share, low, high, minor = _cells(levels)
  light = (levels >= (high + _TEXT_ABOVE_CELLS)[:, None]).mean(axis=1)
  lines = (np.abs(levels.astype(np.int16) - levels.max(axis=1, keepdims=True)) <= _TOLERANCE)
  member = (share >= _MIN_CELL_SHARE) & (share + light + lines.mean(axis=1) * (light == 0)
                                         >= _MIN_ROW_SHARE)
  member &= (high >= _CELL_LEVELS[0]) & (high <= _CELL_LEVELS[1])
  end = next((r + 1 for r in range(height - 1, max(height - 2 - _MAX_TAIL_ROWS, -1), -1)
              if member[r]), -1)
  if end < 0:
    return -1
  top, row = end - 1, end - 2
  while row >= 0 and (member[row] or member[max(row - _MAX_GAP, 0):row].any()):
    top = row if member[row] else top
    row -= 1
  if top == 0 or not _MIN_HEIGHT * height <= height - top <= _MAX_HEIGHT * height:
    return -1
  text_rows = light[top:end] >= _MIN_TEXT_PIXELS
  # A table, not a flat area with bright specks: most rows hold two distinct cell levels
  # side by side, and a grid line crosses the full width somewhere.
  two_cells = (minor[top:end] >= _MIN_CELL_SHARE_EACH) & ((high - low)[top:end] >= _MIN_CELL_STEP)
  grid_line = (share[top:end] - minor[top:end]) >= _GRID_LINE
  if text_rows.mean() < _MIN_TEXT_ROWS or two_cells.mean() < _MIN_TWO_CELL_ROWS:
    return -1
  return top if grid_line.any() else -1
