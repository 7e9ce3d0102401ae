"""Finding the instrument's databar in the pixels: the info band SEMs draw below the image.

Layouts seen on real instruments:
- Zeiss SmartSEM: a 1-px black line, a white band with black text, logo and scale bar, a 1-px
  black line, and the frame's last row holding image-like values;
- FEI / Thermo Fisher, JEOL, Hitachi, TESCAN: a full-width black (or white) band with text of
  the other colour, often from its first row to the frame's last;
- some Hitachi and older JEOL frames: no band, the text line (and a scale bar's ticks) drawn
  over the image's bottom rows at the full white (or black) level.

A databar is recognised by what an image's content rarely has all at once: a band of rows that
are mostly one saturated colour, ending at most a few rows above the frame's last row, whose
first row is a clean full-width line that starts abruptly below image content, and which holds
text (pixels of the other colour). A dark or bright bottom region without text, or one that
fades in over several rows, is content, not a databar. Text drawn over the image is
recognised by glyphs at the frame's extreme level, side by side on one line near the bottom,
in a frame whose content above never reaches that level; the databar then starts at the
topmost such mark (the rows from there down are lost to the image).
"""

from __future__ import annotations

import numpy as np

from tfds_sem.databar_table import find_table

# 8-bit levels that count as (band colours, text colours), each (dark, bright): loose enough for
# JPEG-blurred 1-px frame lines, then strict (near-saturated) bands for frames whose content is
# itself that dark or bright next to the band (a black Zeiss band under a dark substrate at
# levels 40-70), first with saturated text, then with JPEG-softened text (levels near 230).
_BAND_LEVELS = (((64, 192), (64, 192)), ((16, 240), (16, 240)), ((16, 240), (64, 192)))
_BAND_ROW_FRACTION = 0.5  # a band row is at least this much band colour (text takes the rest)
_INK_AND_PAPER = 0.9  # or it is dense text: this much dark and bright together
_LINE_FRACTION = 0.9  # a clean line: this much of one colour, across the full width
_ABOVE_EDGE_FRACTION = 0.5  # the row above the band's first row has at most this much of its colour
_MAX_TAIL_ROWS = 2  # rows below the band that may hold other values (Zeiss' last row)
_MIN_TEXT_ROWS = 0.1  # of the band's inner rows, this share must hold text
_MIN_TEXT_PIXELS = 2  # pixels of the other colour that make a row hold text
_MIN_HEIGHT, _MAX_HEIGHT = 0.02, 0.35  # of the frame's height (NFFA: 10-25 %)
# Text over the image: searched in the frame's bottom rows; glyphs are marks of at least
# _MIN_GLYPH_PIXELS, 1-6 % of the frame's height tall and at most 6 % of its width wide, and a
# line holds at least _MIN_GLYPHS of them spread over a quarter of the width. The content above
# holds at most _MAX_INK_ABOVE of ink pixels (a frame saturating anywhere is not judged).
_OVERLAY_REGION = 0.15
_MIN_GLYPH_HEIGHT, _MAX_GLYPH_HEIGHT, _MAX_GLYPH_WIDTH = 0.01, 0.06, 0.06
_MIN_GLYPH_PIXELS, _MIN_GLYPHS, _MIN_LINE_SPREAD = 6, 8, 0.25
_MAX_INK_ABOVE = 1e-4


def levels_8bit(gray: np.ndarray) -> np.ndarray:
  """H x W (x 1) integer levels -> H x W uint8: 8-bit as is; 16-bit stretched from the frame's
  own minimum to its maximum (12-bit data in 16-bit containers spans a fraction of the type)."""
  gray = gray[..., 0] if gray.ndim == 3 else gray
  if gray.dtype == np.uint8:
    return gray
  lo, hi = float(gray.min()), float(gray.max())
  stretched = (gray.astype(np.float32) - lo) * (255.0 / ((hi - lo) or 1.0))
  return np.floor(stretched + 0.5).astype(np.uint8)


def find_databar(gray: np.ndarray) -> int:
  """First row of the instrument's databar in a gray frame (H x W or H x W x 1, uint8 or
  uint16), or -1 when the frame has none."""
  levels = levels_8bit(gray)
  for band_levels, text_levels in _BAND_LEVELS:
    top = _find_band(levels, band_levels, text_levels)
    if top >= 0:
      return top
  top = find_table(levels)
  if top >= 0:
    return top
  for ink in (levels == levels.max(), levels == levels.min()):
    top = _find_overlay(ink)
    if top >= 0:
      return top
  return -1


def _find_overlay(ink: np.ndarray) -> int:
  """The first row of text drawn over the image in ``ink`` (H x W bool: pixels at the level the
  instrument writes text with), or -1."""
  from scipy import ndimage

  height, width = ink.shape
  region = int(height * (1.0 - _OVERLAY_REGION))
  if region < 1 or ink[:region].mean() > _MAX_INK_ABOVE:
    return -1
  labels, _ = ndimage.label(ink[region:])
  marks = [(box[0].start, box[0].stop, box[1].start, box[1].stop, int((labels[box] == i).sum()))
           for i, box in enumerate(ndimage.find_objects(labels), start=1)]
  glyphs = [m for m in marks if m[4] >= _MIN_GLYPH_PIXELS
            and _MIN_GLYPH_HEIGHT * height <= m[1] - m[0] <= _MAX_GLYPH_HEIGHT * height
            and m[3] - m[2] <= _MAX_GLYPH_WIDTH * width]
  for row in sorted({(m[0] + m[1]) // 2 for m in glyphs}):
    line = [m for m in glyphs if m[0] <= row < m[1]]
    spread = max(m[3] for m in line) - min(m[2] for m in line)
    if len(line) >= _MIN_GLYPHS and spread >= _MIN_LINE_SPREAD * width:
      return region + min(m[0] for m in glyphs)  # ticks above the text line count
  return -1


def _find_band(levels: np.ndarray, band_levels: tuple[int, int],
               text_levels: tuple[int, int]) -> int:
  """The databar's first row with these band and text colours ((dark, bright) each), or -1."""
  height, width = levels.shape
  dark = (levels <= band_levels[0]).mean(axis=1)
  bright = (levels >= band_levels[1]).mean(axis=1)
  line = (dark >= _LINE_FRACTION) | (bright >= _LINE_FRACTION)
  ink_and_paper = dark + bright >= _INK_AND_PAPER
  dark_text = (levels <= text_levels[0]).mean(axis=1)
  bright_text = (levels >= text_levels[1]).mean(axis=1)
  for band, text in ((bright, dark_text), (dark, bright_text)):
    member = (band >= _BAND_ROW_FRACTION) | ink_and_paper | line
    end = _band_end(member)
    top = _band_top(member, end, line, dark, bright)
    if top < 0 or not _MIN_HEIGHT * height <= height - top <= _MAX_HEIGHT * height:
      continue
    inner = [r for r in range(top + 1, end) if not line[r]]
    if inner and np.mean(text[inner] * width >= _MIN_TEXT_PIXELS) >= _MIN_TEXT_ROWS:
      return top
  return -1


def _band_end(member: np.ndarray) -> int:
  """One past the band's last row: the lowest member row among the frame's last rows."""
  height = len(member)
  for end in range(height - 1, max(height - 2 - _MAX_TAIL_ROWS, -1), -1):
    if member[end]:
      return end + 1
  return -1


def _band_top(member: np.ndarray, end: int, line: np.ndarray, dark: np.ndarray,
              bright: np.ndarray) -> int:
  """The band's first row, or -1: walk up from the band's end over band rows and lines, then
  take the first clean line there that starts abruptly below rows not of its colour."""
  if end < 0:
    return -1
  start = end - 1
  while start > 0 and member[start - 1]:
    start -= 1
  for row in range(start, end):
    if not line[row]:
      continue
    colour = dark if dark[row] >= _LINE_FRACTION else bright
    if row == 0 or colour[row - 1] <= _ABOVE_EDGE_FRACTION:
      return row
  return -1
