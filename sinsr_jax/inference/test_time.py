"""Test-time refinements of a model's SR function: geometric self-ensemble and LR consistency.

ZSSR (Shocher et al., CVPR 2018, section 4) finishes its zero-shot upscale with both, and
``upscale --adapt`` does too; either is also available on its own (``--ensemble``,
``--consistency``) for any run.

- **Self-ensemble** (EDSR's "+", Lim et al. 2017): the LR input in its 8 dihedral poses (4
  rotations, each mirrored or not), each output turned back, the 8 averaged. ZSSR takes their
  median; the mean gained 0.005 dB more on average over the 9 images of
  docs/evaluation/real-micrographs.md (+0.978 against +0.973 dB). 8x the model's time.
- **LR consistency**: the SR image is moved to the nearest image (least squares) whose
  degradation is the LR input, i.e. the orthogonal projection onto {x : D x = LR}, alternated
  with clipping to [0, 1] (POCS, a few rounds). D is the run's resize, MATLAB bicubic after an
  optional fixed Gaussian probe blur: separable, D x = A x B^T, so the projection is exact
  with the pseudo-inverses of the small one-axis matrices A and B. The HR image lies in that
  set up to the LR's 8-bit rounding, so the projection cannot move SR away from it by more than
  that; it removes what the model got wrong at the LR's own frequencies. Its classic iterative
  form is Irani & Peleg's back-projection.

Both wrap an ``sr_fn`` (LR batch (N, h, w, C) in [0, 1] -> SR batch) into another one, so tiled
upscaling and evaluation use them unchanged; each tile is made consistent with its own LR
(edge effects fall into the tile's discarded context).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from sinsr_jax.errors import UserError

# Projection + clipping rounds (POCS). Where clipping binds, more rounds still gain
# (sem_synthetic val0: +1.099 dB over bicubic at 3, +1.136 at 10, +1.141 at 20; the real Zeiss
# frame: +0.465 at 1 to 20); 20 rounds took 0.1-2.7 s on a whole image.
CONSISTENCY_ROUNDS = 10


@dataclasses.dataclass(frozen=True)
class Settings:
  """Which refinements wrap the model; ``describe()`` goes into outputs' provenance."""

  ensemble: bool = False
  consistency: bool = False

  def describe(self) -> dict:
    return {"self_ensemble": "x8 dihedral mean" if self.ensemble else None,
            "lr_consistency": (f"orthogonal projection onto the run's degradation of the LR, "
                               f"{CONSISTENCY_ROUNDS} rounds with clipping")
            if self.consistency else None}

  def suffix(self) -> str:
    """A label suffix: " +ens +cons", "" when none is on."""
    return (" +ens" if self.ensemble else "") + (" +cons" if self.consistency else "")


def chosen(adapting: bool, ensemble: bool | None, consistency: bool | None) -> Settings:
  """The command lines' --ensemble / --consistency: each on by default with --adapt (ZSSR's
  recipe), off without."""
  return Settings(ensemble=adapting if ensemble is None else ensemble,
                  consistency=adapting if consistency is None else consistency)


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
  y = np.rot90(x, k % 4, axes=(1, 2))
  return y[:, :, ::-1] if k >= 4 else y


def _undo(y: np.ndarray, k: int) -> np.ndarray:
  if k >= 4:
    y = y[:, :, ::-1]
  return np.rot90(y, -(k % 4), axes=(1, 2))


def self_ensemble(sr_fn: Callable) -> Callable:
  """``sr_fn`` averaged over the 8 dihedral poses of its input (two input shapes: h x w and
  w x h, so a non-square input compiles twice)."""

  def ensembled(lr):
    lr = np.asarray(lr)
    total = None
    for k in range(8):
      out = _undo(np.asarray(sr_fn(np.ascontiguousarray(_dihedral(lr, k)))), k)
      total = out.astype(np.float64) if total is None else total + out
    return (total / 8.0).astype(np.float32)

  return ensembled


@functools.lru_cache(maxsize=64)
def axis_operator(length: int, scale: int, blur_sigma: float) -> tuple[np.ndarray, np.ndarray]:
  """(A, A^+) of one axis: A (length/scale, length) is the degradation's blur then MATLAB
  bicubic resize along it, A^+ = A^T (A A^T)^-1 its pseudo-inverse (length, length/scale)."""
  from scipy import ndimage

  from sinsr_jax.data import degradations

  if length % scale:
    raise ValueError(f"length {length} is not divisible by scale {scale}")
  resize = degradations.resize_matrix(length, length // scale).astype(np.float64)
  if blur_sigma > 0:  # as SEMDegradation blurs: scipy's Gaussian, reflected edges
    blur = ndimage.gaussian_filter1d(np.eye(length), blur_sigma, axis=0, mode="reflect")
    resize = resize @ blur
  pinv = resize.T @ np.linalg.inv(resize @ resize.T)
  return resize.astype(np.float32), pinv.astype(np.float32)


def project(sr: np.ndarray, lr: np.ndarray, scale: int, blur_sigma: float = 0.0) -> np.ndarray:
  """The orthogonal projection of ``sr`` (N, H, W, C) onto {x : D x = lr} (one step, exact)."""
  a, a_pinv = axis_operator(sr.shape[1], scale, blur_sigma)
  b, b_pinv = axis_operator(sr.shape[2], scale, blur_sigma)
  # As (N, C, H, W) matrices, so each product is one BLAS call (14x faster than einsum).
  residual = a @ np.moveaxis(sr, -1, 1) @ b.T - np.moveaxis(lr, -1, 1)
  return sr - np.moveaxis(a_pinv @ residual @ b_pinv.T, 1, -1)


def lr_consistent(sr_fn: Callable, scale: int, blur_sigma: float = 0.0,
                  rounds: int = CONSISTENCY_ROUNDS) -> Callable:
  """``sr_fn`` followed by ``rounds`` of projection onto the LR-consistent set and clipping."""

  def consistent(lr):
    lr = np.asarray(lr, np.float32)
    sr = np.asarray(sr_fn(lr), np.float32)
    for _ in range(rounds):
      sr = np.clip(project(sr, lr, scale, blur_sigma), 0.0, 1.0)
    return sr

  return consistent


def consistency_blur(degradation) -> float:
  """The probe blur the consistency operator uses: the run's, when it is one fixed value."""
  low, high = degradation.blur_sigma
  if low != high:
    raise UserError(f"--consistency needs the run's degradation to have one blur_sigma; its "
                    f"blur_sigma is a range ({low}, {high}) drawn per image: upscale without "
                    f"--consistency")
  return low


def refine(sr_fn: Callable, scale: int, settings: Settings, degradation=None) -> Callable:
  """``sr_fn`` with the refinements ``settings`` turns on (self-ensemble first). ``degradation``:
  the run's SEMDegradation (its blur enters the consistency operator); None: plain bicubic."""
  if settings.ensemble:
    sr_fn = self_ensemble(sr_fn)
  if settings.consistency:
    blur = 0.0 if degradation is None else consistency_blur(degradation)
    sr_fn = lr_consistent(sr_fn, scale, blur)
  return sr_fn
