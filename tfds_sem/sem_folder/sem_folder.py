"""TFDS builder for a folder of the user's own SEM images (TIFF 8/16-bit, PNG, JPEG, BMP).

Prepared like the NFFA archive: one-channel luma, databar cropped, exact duplicates stored
once, stratified content-hash splits. Images directly in the folder have label ""; images in
a sub-folder take its name as their class (nested folders count for the top one).

    tfds build sem_folder --imports=tfds_sem --manual_dir=/path/to/images      # or:
    config = SemFolder.config_for("/path/to/images")                 # own data folder per path
    tfds.builder("sem_folder", config=config, data_dir=D).download_and_prepare()
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import re

import numpy as np
import tensorflow_datasets as tfds
import tifffile
from PIL import Image

from tfds_sem import prepare, sem_images

_INSTRUCTIONS = """\
Put your SEM images (TIFF 8/16-bit, PNG, JPEG, BMP) in one folder, optionally in one
sub-folder per class, and pass it as the manual directory
(`tfds build sem_folder --imports=tfds_sem --manual_dir=DIR`), or train with
`--config=configs/sinsr.py:data=folder,path=DIR`.
"""


@dataclasses.dataclass
class SemFolderConfig(tfds.core.BuilderConfig):
  path: str = ""  # the image folder ("" = the manual directory)
  bits: int = 8  # stored bit depth: 8, or 16 for 16-bit micrographs
  split_percent: tuple[float, float, float] = (90, 5, 5)  # train / validation / test
  crop_databar: bool = True


def folder_files(root: pathlib.Path) -> list[pathlib.Path]:
  """Every regular file under ``root``, sorted, hidden files and folders left out."""
  files = []
  for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    files += [pathlib.Path(folder, n) for n in sorted(names) if not n.startswith(".")]
  return files


def fingerprint(root: pathlib.Path) -> str:
  """Hash of the relative paths and sizes: changes when files are added, removed or replaced."""
  digest = hashlib.sha256()
  for path in folder_files(root):
    digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
  return digest.hexdigest()


class SemFolder(tfds.core.GeneratorBasedBuilder):
  """The user's SEM images, prepared like the NFFA archive."""

  VERSION = tfds.core.Version("1.3.0")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "1.1.0": "Pixel size per image from the file's metadata; databars of real "
                            "instruments (FEI metadata, Zeiss framed bands); palette TIFFs as "
                            "gray levels.",
                   "1.2.0": "Databars found next to content as dark or bright as the band (a "
                            "black Zeiss band under a dark substrate) and text drawn over the "
                            "image without a band (Hitachi, older JEOL); pixel size from Olympus "
                            "SIS (analySIS) metadata.",
                   "1.3.0": "16-bit images stored as upscale maps them: from the image area's "
                            "own range (never the databar's), or the bit depth the file states "
                            "(TIFF MaxSampleValue), stretched to the stored type; TESCAN (tag "
                            "50431), Hitachi and JEOL (.txt sidecars) pixel sizes and strip "
                            "rows; TESCAN's mid-grey info table and JPEG-softened text on dark "
                            "bands found by the databar detector."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  BUILDER_CONFIGS = [
      SemFolderConfig(name="default", description="8-bit images from the manual directory."),
      SemFolderConfig(name="16bit", bits=16,
                      description="16-bit images from the manual directory."),
  ]

  @classmethod
  def config_for(cls, path: str, *, split_percent=(90, 5, 5),
                 crop_databar: bool = True) -> SemFolderConfig:
    """A config of its own for an image folder: 16-bit when any image is, else 8-bit."""
    root = pathlib.Path(path).expanduser().resolve()
    if not root.is_dir():
      raise prepare.SourceError(f"image folder {path} does not exist\n\n{_INSTRUCTIONS}")
    bits = 16 if any(_is_16bit(p) for p in folder_files(root)) else 8
    slug = re.sub(r"[^\w\-]+", "_", root.name)[:40] or "root"
    percent = tuple(float(p) for p in split_percent)
    tag = hashlib.sha256(f"{root}{percent}{crop_databar}".encode()).hexdigest()[:8]
    return SemFolderConfig(name=f"{slug}-{tag}", path=str(root), bits=bits,
                           split_percent=percent, crop_databar=crop_databar,
                           description=f"SEM images from {root}.")

  def _info(self) -> tfds.core.DatasetInfo:
    dtype = np.uint16 if self.builder_config.bits == 16 else np.uint8
    return self.dataset_info_from_configs(
        description="The user's SEM images as one-channel luma, cropped above the databar.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 1), dtype=dtype),
            "databar_row": np.int32,
            "label": tfds.features.Text(),  # class sub-folder; "" for images at the top level
            "filename": tfds.features.Text(),  # path relative to the folder
            "original_shape": tfds.features.Tensor(shape=(2,), dtype=np.int32),
            # (x, y) nm per pixel from the file's metadata or sidecar (Zeiss, FEI, TESCAN,
            # Hitachi, JEOL, ImageJ, OME); -1: unknown
            "pixel_size_nm": tfds.features.Tensor(shape=(2,), dtype=np.float32),
        }),
        supervised_keys=None,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    if cfg.path:
      root = pathlib.Path(cfg.path)
    else:
      try:
        root = pathlib.Path(dl_manager.manual_dir)
      except AssertionError as e:
        raise prepare.SourceError(str(e)) from None
    if not root.is_dir() or not folder_files(root):
      raise prepare.SourceError(f"image folder {root} is missing or empty\n\n{_INSTRUCTIONS}")
    entries = lambda: iter_folder(root)  # noqa: E731
    labels = sorted({m.label for m, _ in _members(root)})
    index = prepare.index_source(entries, cfg.split_percent, labels)
    self.info.metadata.update(index.stats, folder=str(root), fingerprint=fingerprint(root))
    return {split: self._generate_examples(entries, index, split) for split in prepare.SPLITS}

  def _generate_examples(self, entries, index, split):
    cfg = self.builder_config
    return prepare.generate_split(entries, index, split, bits=cfg.bits,
                                  crop_databar=cfg.crop_databar, with_sublabel=False,
                                  with_pixel_size=True)


def _members(root: pathlib.Path):
  for path in folder_files(root):
    relative = path.relative_to(root)
    label = relative.parts[0] if len(relative.parts) > 1 else ""
    yield prepare.Member(relative.as_posix(), label), path


def iter_folder(root: pathlib.Path):
  for member, path in _members(root):
    yield member, path.read_bytes()


def _is_16bit(path: pathlib.Path) -> bool:
  """From the header alone (PIL opens lazily; tifffile reads the first page's tags)."""
  if not sem_images.is_image_name(path.name):
    return False
  try:
    if path.suffix.lower() in (".tif", ".tiff"):
      with tifffile.TiffFile(path) as tif:
        return tif.pages[0].dtype.itemsize >= 2
    with Image.open(path) as image:
      return image.mode in ("I;16", "I;16B", "I;16L", "I")
  except Exception:  # unreadable files are reported by the preparation itself
    return False
