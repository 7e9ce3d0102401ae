"""Small archives with the NFFA-EUROPE layout, made by the tests: per-class tars of RGB JPEGs."""

from __future__ import annotations

import io
import pathlib
import tarfile

import numpy as np
from PIL import Image
from scipy import ndimage

from tfds_sem.nffa_sem.nffa_sem import CLASSES

TINTS = ((1.0, 1.0, 1.0), (1.0, 0.93, 0.8), (0.85, 0.95, 1.0))


def micrograph(rng: np.random.Generator, height: int, width: int, *, databar: str = "none",
               bar_row: int = -1, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
  """A tinted RGB rendering of smooth grayscale structure, with an optional databar.

  Content stays in grey levels 60..190, so only the band can be near black or white.
  """
  field = ndimage.gaussian_filter(rng.standard_normal((height // 4, width // 4)), 3)
  field = np.kron(field, np.ones((4, 4)))[:height, :width]
  gray = 125 + 60 * field / (np.abs(field).max() + 1e-9)
  if databar != "none":
    band, ink = (245.0, 20.0) if databar == "bright" else (8.0, 235.0)
    gray[bar_row:] = band
    for line in range(bar_row + 12, height - 14, 28):  # lines of "text": sparse glyph blocks
      for left in range(16, width - 24, 37):
        if rng.random() < 0.45:
          gray[line:line + 10, left:left + 6 + int(rng.integers(12))] = ink
  rgb = np.clip(gray[..., None] * np.array(tint), 0, 255)
  return np.round(rgb).astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(rgb, "RGB").save(buffer, format="JPEG", quality=95)
  return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def make_archive(folder: pathlib.Path, *, per_class: int = 2, seed: int = 0,
                 sub_classes: bool = False) -> dict:
  """Writes one tar per class into ``folder``; returns what a correct build must report.

  Layout quirks of the real releases: images at different depths, bright / dark / absent
  databars, one 2048x1536 image, one duplicate across classes, one truncated JPEG and one
  non-image member.
  """
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  expected = {"images": [], "duplicate": None, "truncated": None, "non_image": None}
  first_jpeg = None
  for c, label in enumerate(CLASSES):
    prefix = [f"{label}/", f"SEM/{label}/", ""][c % 3]  # depth differs between releases
    with tarfile.open(folder / f"{label}.tar", "w") as tar:
      for i in range(per_class):
        kind = ("bright", "dark", "none")[(c + i) % 3]
        height, width, bar_row = 768, 1024, (690, 601, -1)[(c + i) % 3]
        if c == 4 and i == 0:
          height, width, bar_row = 1536, 2048, (1380 if kind != "none" else -1)
        rgb = micrograph(rng, height, width, databar=kind, bar_row=bar_row,
                         tint=TINTS[(c + i) % len(TINTS)])
        sub = f"Sub{label[:3]}{i % 2}/" if sub_classes else ""
        name = f"{prefix}{sub}{label.lower()}_{i:03d}.jpg"
        data = jpeg_bytes(rgb)
        _add(tar, name, data)
        expected["images"].append({"filename": f"{label}.tar/{name}", "label": label,
                                   "databar_row": bar_row, "shape": (height, width),
                                   "sublabel": sub.rstrip("/")})
        first_jpeg = first_jpeg or (f"{label}.tar/{name}", data)
      if label == "Particles":  # the same pixels as an image of another class
        _add(tar, f"{prefix}particles_dup.jpg", first_jpeg[1])
        expected["duplicate"] = (f"Particles.tar/{prefix}particles_dup.jpg", first_jpeg[0])
      if label == "Nanowires":  # a download cut short inside one file
        _add(tar, f"{prefix}nanowires_truncated.jpg", data[:len(data) // 3])
        expected["truncated"] = f"Nanowires.tar/{prefix}nanowires_truncated.jpg"
      if label == "Tips":
        _add(tar, f"{prefix}README.txt", b"Tips: images of AFM and STM tips.\n")
        expected["non_image"] = f"Tips.tar/{prefix}README.txt"
  return expected
