"""The databar detector on the layouts it learned for issue 32 (TESCAN's mid-grey table, dark
bands whose light text JPEG softened), and look-alikes that must stay negative."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from test_micrograph_files import _content

from tfds_sem.databar import find_databar


def tescan_table(rng, height=440, width=512, strip=64) -> np.ndarray:
  """A TESCAN frame: content above a full-width mid-grey table (levels ~50 and ~100, grid
  lines, light text), ``strip`` rows high."""
  frame = _content(rng, height, width)
  table = np.full((strip, width), 50, np.uint8)
  table[:, width // 2:] = 100
  table[[0, strip // 2, strip - 1], :] = 150  # grid lines
  table[:, [0, width // 4, width // 2, 3 * width // 4, width - 1]] = 150
  for row in (8, strip // 2 + 8):
    for left in range(10, width - 20, 23):
      table[row:row + 9, left:left + 3] = 220  # light glyph strokes
      table[row + 4, left:left + 12] = 220
  frame[height - strip:] = table
  return frame


def _jpeg(gray: np.ndarray, quality: int) -> np.ndarray:
  buffer = io.BytesIO()
  Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
  return np.asarray(Image.open(buffer))


@pytest.mark.parametrize("form", ["tiff", "jpeg", "12-bit"])
def test_tescan_table_without_its_tag(form):
  frame = tescan_table(np.random.default_rng(11), height=480, width=640, strip=72)
  if form == "jpeg":
    frame = _jpeg(frame, 90)
  elif form == "12-bit":
    frame = frame.astype(np.uint16) * 16 + 300
  assert find_databar(frame) == 480 - 72


def softened_dark_band(seed: int, ink: float = 228, height=480, width=640, bar=420):
  """A dark band whose light text JPEG softened to levels near 230, under a substrate that
  darkens towards it (its last rows are mostly below level 64)."""
  rng = np.random.default_rng(seed)
  frame = _content(rng, height, width, lo=20, hi=190) * np.linspace(1.0, 0.35, height)[:, None]
  band = np.full((height - bar, width), 8.0)
  for line in range(12, height - bar - 14, 24):
    for left in range(16, width - 24, 31):
      if rng.random() < 0.5:
        band[line:line + 10, left:left + 2 + int(rng.integers(10))] = ink
  frame[bar:] = ndimage.gaussian_filter(band, 0.9)
  return _jpeg(frame, 80)


@pytest.mark.parametrize("seed", range(3))
def test_softened_text_on_a_dark_band_under_dark_content(seed):
  frame = softened_dark_band(seed)
  assert frame[420:].max() < 240 and (frame[419] <= 64).mean() > 0.9  # the hard case
  assert find_databar(frame) == 420


def test_look_alikes_stay_negative():
  rng = np.random.default_rng(12)
  height, width = 480, 640
  fading = _content(rng, height, width, lo=20, hi=190) * np.linspace(1.0, 0.02, height)[:, None]
  dark_bottom = _content(rng, height, width)
  dark_bottom[420:] = rng.integers(0, 6, (60, width))  # a frame's dark bottom, no text
  grey_bottom = _content(rng, height, width)
  grey_bottom[400:] = 50 + rng.integers(-3, 4, (80, width))  # a flat mid-grey area, no text
  grey_bottom[400:, width // 2:] += 50
  specks = grey_bottom.copy()
  specks[430:436, 300:306] = 230  # one bright particle is not a line of text
  for name, frame in (("fading", fading), ("dark bottom", dark_bottom),
                      ("grey bottom", grey_bottom), ("one speck", specks)):
    for form in (frame.astype(np.uint8), _jpeg(frame, 85)):
      assert find_databar(form) == -1, name


@pytest.mark.parametrize("kind", ["particles", "fibres"])
def test_particles_on_a_flat_substrate_are_not_a_table(kind):
  # Flat mid-grey background with bright objects: rows of one level plus "light text". A
  # table also needs two cell levels side by side and a full-width grid line.
  from tfds_sem.sem_synthetic import scenes

  for seed in range(10):
    image, _ = scenes.render_scene(np.random.default_rng(seed), 256, kind)
    assert find_databar(image) == -1, seed
