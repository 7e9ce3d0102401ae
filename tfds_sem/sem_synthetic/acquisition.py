"""SE contrast and acquisition physics for sem_synthetic v2: pure functions of a numpy Generator.

A scene is a height map (px) and a material-yield map; `se_signal` turns them into the secondary-
electron yield (tilt contrast, directional detector shading, bright edges, dark recesses) and
`acquire` records it as a real instrument would: probe blur (defocus, astigmatism), charging,
scan-line jitter, Poisson shot noise at a dose, read noise, line streaks, detector offset and
gain with occasional clipping, 8-bit quantisation.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
  return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _spectral_field(rng: np.random.Generator, size: int, pad: int, gain) -> np.ndarray:
  """White noise shaped in Fourier space by gain(f) (f in cycles/px), cropped from a larger
  periodic field so the image does not wrap; zero mean, unit std."""
  n = fft.next_fast_len(size + pad)
  fy = fft.fftfreq(n)[:, None]
  fx = fft.rfftfreq(n)[None, :]
  spectrum = fft.rfft2(rng.standard_normal((n, n))) * gain(np.hypot(fy, fx))
  field = fft.irfft2(spectrum, s=(n, n))[:size, :size]
  return (field - field.mean()) / (field.std() + 1e-12)


def gaussian_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
  """Gaussian random field with a Gaussian correlation of width sigma px."""
  pad = int(min(4 * sigma, 2 * size)) + 8
  return _spectral_field(rng, size, pad,
                         lambda f: np.exp(-2.0 * (np.pi * sigma * f) ** 2))


def fractal_field(rng: np.random.Generator, size: int, beta: float,
                  cutoff: float = 0.0) -> np.ndarray:
  """Power-law field, power spectrum ~ f^-beta (natural images: beta ~ 2), optionally band-
  limited by a Gaussian cutoff of cutoff px."""
  def gain(f):
    g = np.maximum(f, 1.0 / (2 * size)) ** (-beta / 2)
    return g * np.exp(-2.0 * (np.pi * cutoff * f) ** 2) if cutoff else g
  return _spectral_field(rng, size, size, gain)


def se_signal(rng: np.random.Generator, height: np.ndarray, material: np.ndarray,
              edge_width: float | None = None) -> np.ndarray:
  """SE yield (HxW float, ~[0, 1.5]) of a surface `height` (px) made of `material` yields.

  Tilted surfaces emit more (yield ~ 1/cos(tilt)), the side detector sees slopes facing it
  brighter, edges within the escape depth are bright (a rim of `edge_width` px) and recesses
  are darker (electrons from their floors are re-absorbed by the walls).
  """
  edge_width = edge_width or log_uniform(rng, 0.5, 4.0)
  smooth = ndimage.gaussian_filter(height, 0.7)
  gy, gx = np.gradient(smooth)
  tilt = np.sqrt(1.0 + gy * gy + gx * gx)
  angle = rng.uniform(0, 2 * np.pi)
  facing = np.tanh(np.cos(angle) * gy + np.sin(angle) * gx)
  # Edge effect: the step in height seen through an escape-depth blur, saturating.
  ey, ex = np.gradient(ndimage.gaussian_filter(height, edge_width))
  edge = np.tanh(np.hypot(ey, ex) * 1.2)
  depth = np.maximum(ndimage.gaussian_filter(height, 6.0) - height, 0.0)
  recess = np.exp(-depth / log_uniform(rng, 2.0, 20.0))
  signal = material * (1.0 + rng.uniform(0.3, 1.0) * (tilt - 1.0)) * recess
  signal += rng.uniform(0.0, 0.25) * facing + rng.uniform(0.2, 0.7) * edge
  return signal


def _scan_jitter(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
  """Shifts each scan line by a small, line-to-line correlated offset (stage/beam vibration)."""
  h, w = image.shape
  amp = log_uniform(rng, 0.02, 0.8)
  shifts = ndimage.gaussian_filter1d(rng.standard_normal(h), rng.uniform(0.0, 3.0) + 1e-3)
  shifts = amp * shifts / (shifts.std() + 1e-12)
  x = np.arange(w)[None, :] + shifts[:, None]
  x0 = np.clip(np.floor(x).astype(np.int64), 0, w - 1)
  x1 = np.clip(x0 + 1, 0, w - 1)
  t = x - np.floor(x)
  return np.take_along_axis(image, x0, 1) * (1 - t) + np.take_along_axis(image, x1, 1) * t


def _charging(rng: np.random.Generator, signal: np.ndarray, objects: np.ndarray) -> np.ndarray:
  size = signal.shape[0]
  yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
  a = rng.normal(0, 0.15, 2)
  out = signal * (1.0 + a[0] * yy + a[1] * xx)  # slow gradient across the field
  if rng.random() < 0.3:  # insulating objects charge up and glow
    glow = ndimage.gaussian_filter(objects.astype(np.float64), rng.uniform(2.0, 12.0))
    out += rng.uniform(0.1, 0.5) * glow
  if rng.random() < 0.2:  # a bright charged patch
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    r = rng.uniform(0.05, 0.3)
    out += rng.uniform(0.1, 0.4) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
  return out


def _streaks(rng: np.random.Generator, image: np.ndarray, scale: float) -> np.ndarray:
  h, w = image.shape
  out = image + rng.uniform(0, 0.02) * scale * rng.standard_normal((h, 1))  # line-to-line offset
  for _ in range(int(rng.poisson(rng.choice([0.0, 2.0, 6.0])))):
    row = int(rng.integers(0, h))
    start = int(rng.integers(0, w))
    stop = min(w, start + int(rng.integers(w // 8, w + 1)))
    out[row, start:stop] += rng.choice([-1, 1]) * rng.uniform(0.05, 0.3) * scale
  return out


def acquire(rng: np.random.Generator, signal: np.ndarray,
            objects: np.ndarray | None = None) -> np.ndarray:
  """Records an SE yield map as an 8-bit micrograph (HxW uint8)."""
  objects = np.zeros(signal.shape, bool) if objects is None else objects
  signal = _charging(rng, signal, objects)
  sigma = log_uniform(rng, 0.3, 4.0)  # probe size and defocus; high-mag frames are oversampled
  astig = rng.uniform(0.6, 1.0) if rng.random() < 0.25 else 1.0
  signal = ndimage.gaussian_filter(signal, (sigma * astig, sigma / astig))
  signal = _scan_jitter(rng, signal)
  # The operator sets offset and gain from the frame's range; some frames end up clipped.
  lo, hi = np.percentile(signal, [rng.uniform(0.0, 3.0), rng.uniform(97.0, 100.0)])
  norm = np.clip((signal - lo) / (hi - lo + 1e-9), 0.0, None)
  dose = log_uniform(rng, 5.0, 3e4)  # e- per pixel at full brightness (line averaging: high)
  counts = rng.poisson(norm * dose) / dose
  counts = ndimage.gaussian_filter1d(counts, rng.uniform(0.01, 0.8), axis=1)  # detector bandwidth
  counts += rng.normal(0.0, log_uniform(rng, 0.002, 0.03), counts.shape)  # read noise
  counts = _streaks(rng, counts, 1.0)
  gain = log_uniform(rng, 0.3, 1.15)  # not every operator stretches the contrast
  offset = rng.uniform(-0.1, 1.0 - 0.8 * gain)
  image = offset + gain * counts
  return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
