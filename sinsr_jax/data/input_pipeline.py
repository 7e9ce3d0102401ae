"""Data: TFDS (array_record) -> grain MapDataset -> paired (LR, HR) patches, and eval images.

Training: shard by process -> seeded shuffle, repeated with a new order every epoch -> random
HR crop, flips and 90-degree rotations -> LR by MATLAB bicubic downscaling -> batch -> worker
prefetch. Every random choice is a function of (seed, element index), so the stream is
reproducible and its position is all a checkpoint needs to resume it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import flags
from scipy import ndimage

from sinsr_jax.data import degradations
from sinsr_jax.errors import DataError
from sinsr_jax.runtime import console
from sinsr_jax.runtime.files import ensure_writable_dir


def resolve_data_dir(data_dir: str) -> str:
  return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def prepare_builder(data_cfg: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns the dataset's builder, generating/preparing it into data_dir on first use."""
  import tfds_sem  # noqa: F401  (registers the project's builders)
  from tfds_sem import prepare

  data_dir = resolve_data_dir(data_cfg.data_dir)
  try:
    builder = tfds.builder(data_cfg.name, config=_builder_config(data_cfg), data_dir=data_dir,
                           file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f"unknown dataset {data_cfg.name!r}; the project's own are "
                    f"{', '.join(_project_datasets())}") from None
  except ValueError as e:  # e.g. an unknown builder config name
    raise DataError(f"dataset {data_cfg.name}: {e}") from None
  except prepare.SourceError as e:
    raise DataError(str(e)) from None
  name = f"{builder.name}/{builder.builder_config.name}"
  if not builder.is_prepared():
    ensure_writable_dir(data_dir, "data directory")
    console.info("Preparing %s into %s (first use only).", name, data_dir)
    manual_dir = os.path.expanduser(data_cfg.manual_dir) if data_cfg.manual_dir else None
    try:
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except prepare.SourceError as e:
      raise DataError(f"cannot prepare {name}: {e}") from None
  if data_cfg.name == "sem_folder":
    _check_folder_unchanged(builder)
  return builder


def _builder_config(data_cfg: ml_collections.ConfigDict):
  """The TFDS config: a name, or a config object for a folder or non-default split."""
  from tfds_sem import SemFolder

  if data_cfg.name == "sem_folder":
    if not data_cfg.path:
      raise DataError("data=folder needs the image folder: add path=DIR to the config "
                      "variants or set --config.data.path=DIR")
    return SemFolder.config_for(data_cfg.path, split_percent=data_cfg.split_percent or (90, 5, 5))
  if data_cfg.split_percent:
    cls = tfds.builder_cls(data_cfg.name)
    if not hasattr(cls, "config_with_split"):
      raise DataError(f"{data_cfg.name} has fixed splits; data.split_percent applies to "
                      f"nffa_sem and sem_folder")
    return cls.config_with_split(data_cfg.builder_config, data_cfg.split_percent)
  return data_cfg.builder_config or None


def _check_folder_unchanged(builder) -> None:
  from tfds_sem.sem_folder.sem_folder import fingerprint

  folder = builder.builder_config.path
  if builder.info.metadata.get("fingerprint") != fingerprint(pathlib.Path(folder)):
    raise DataError(f"{folder} changed since it was prepared into {builder.data_dir}; delete "
                    f"that directory to prepare the folder again")


def _project_datasets() -> list[str]:
  import tfds_sem

  return sorted(cls.name for cls in map(tfds_sem.__dict__.get, tfds_sem.__all__))


def _to_float(image: np.ndarray, channels: int) -> np.ndarray:
  """uint8/uint16 HxWxC (or float32 already in [0, 1]) -> float32 [0, 1] with ``channels``
  channels. The builders store 16-bit image areas already stretched as ``upscale`` maps them
  (tfds_sem.sem_images.image_value_range), so the type's maximum is the right divisor."""
  scale = {np.dtype(np.uint16): 65535.0, np.dtype(np.uint8): 255.0}.get(image.dtype, 1.0)
  x = image.astype(np.float32) / scale
  if x.shape[-1] == channels:
    return x
  if channels == 3 and x.shape[-1] == 1:
    return np.repeat(x, 3, axis=-1)
  if channels == 1 and x.shape[-1] == 3:
    return x @ np.array([[0.299], [0.587], [0.114]], np.float32)  # ITU-R BT.601 luma
  raise DataError(f"cannot convert {x.shape[-1]}-channel images to {channels} channels")


def degradation_from_config(data_cfg: ml_collections.ConfigDict) -> degradations.SEMDegradation:
  return degradations.SEMDegradation.from_config(data_cfg.scale, data_cfg.degradation,
                                                 data_cfg.quantize_lr)


def patch_gradient_energy(patch: np.ndarray) -> float:
  """Mean Sobel gradient magnitude of a [0, 1] patch: near 0 on flat background."""
  gray = patch.mean(axis=-1)
  return float(np.mean(np.hypot(ndimage.sobel(gray, 0), ndimage.sobel(gray, 1))))


@dataclasses.dataclass(frozen=True)
class PairedPatch:
  """Random HR crop + dihedral augmentation + on-the-fly degraded LR (a grain random map).

  With ``min_gradient_energy`` > 0, nearly flat crops (SEM frames have large empty areas) are
  redrawn up to ``max_retries`` times; the most structured crop seen is kept.
  """

  patch_size: int
  channels: int
  augment: bool
  degradation: degradations.SEMDegradation
  min_gradient_energy: float = 0.0
  max_retries: int = 10

  def _crop(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    p = self.patch_size
    best, best_energy = None, -1.0
    for _ in range(1 + (self.max_retries if self.min_gradient_energy > 0 else 0)):
      top, left = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
      crop = _to_float(image[top:top + p, left:left + p], self.channels)
      if self.min_gradient_energy <= 0:
        return crop
      energy = patch_gradient_energy(crop)
      if energy > best_energy:
        best, best_energy = crop, energy
      if energy >= self.min_gradient_energy:
        break
    return best

  def __call__(self, element: dict, rng: np.random.Generator) -> dict:
    image = element["image"]
    h, w = image.shape[:2]
    p = self.patch_size
    if h < p or w < p:
      raise DataError(f"image {element.get('filename', b'?')!r} ({h}x{w}) is smaller than the "
                      f"{p}x{p} training patch")
    hr = self._crop(image, rng)
    if self.augment:
      hr = np.rot90(hr, k=int(rng.integers(4)))
      if rng.random() < 0.5:
        hr = hr[:, ::-1]
    hr = np.ascontiguousarray(hr)
    return {"hr": hr, "lr": self.degradation(hr, rng)}


def train_iterator(source, data_cfg: ml_collections.ConfigDict, *, channels: int,
                   batch_size: int, seed: int, process_index: int, process_count: int):
  """Endless iterator of {"lr": (B, p/s, p/s, C), "hr": (B, p, p, C)} float32 batches.

  ``batch_size`` is this process's share of the global batch. Every process walks the same
  seeded stream of examples; global batch g is local batches g*P .. g*P+P-1 of it and process i
  takes batch g*P+i. So the global batch, and the training, do not depend on how many
  processes feed it. The iterator supports ``get_state``/``set_state`` (checkpointed with the
  train state, one file per process).
  """
  ds = grain.MapDataset.source(source)
  if len(ds) == 0:
    raise DataError(f"split {data_cfg.train_split!r} is empty")
  ds = ds.shuffle(seed=seed).repeat()
  ds = ds.random_map(PairedPatch(data_cfg.patch_size, channels, data_cfg.augment,
                                 degradation_from_config(data_cfg),
                                 data_cfg.min_patch_gradient, data_cfg.max_patch_retries),
                     seed=seed)
  ds = ds.batch(batch_size, drop_remainder=True)[process_index::process_count]
  ds = ds.to_iter_dataset()
  if data_cfg.num_workers > 0:
    if not flags.FLAGS.is_parsed():  # grain reads absl flags; called as a library they are unset
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=data_cfg.num_workers, per_worker_buffer_size=data_cfg.prefetch_buffer))
  return iter(ds)


def eval_images(source, data_cfg: ml_collections.ConfigDict, *, channels: int,
                seed: int = 0) -> list[dict]:
  """Whole eval images: HR cropped to a multiple of the scale, LR by the configured degradation.

  The degradation's random draws depend on (seed, image index) only: every validation of a run,
  and every model evaluated with the same seed, sees the same LR images.
  """
  count = len(source)
  if data_cfg.eval_max_images:
    count = min(count, data_cfg.eval_max_images)
  if count == 0:
    raise DataError(f"eval split {data_cfg.eval_split!r} is empty")
  s = data_cfg.scale
  degrade = degradation_from_config(data_cfg)

  def crop(image):  # the centre crop, then whole LR pixels
    image = _centre_crop(image, data_cfg.eval_crop)
    return image[:image.shape[0] // s * s, :image.shape[1] // s * s]

  pairs = []
  for i in range(count):  # first N in the stored order: a fixed, reproducible subset
    element = source[i]
    hr = crop(_to_float(element["image"], channels))
    pair = {"hr": hr, "lr": degrade(hr, np.random.default_rng([seed, 7919, i]))}
    # What the evaluation reports per image: its name, class and stored instance masks.
    pair.update({k: element[k] for k in _EVAL_KEYS if k in element})
    if "mask" in pair:
      pair["mask"] = crop(pair["mask"])[..., 0]
    pairs.append(pair)
  return pairs


_EVAL_KEYS = ("filename", "label", "scene", "mask", "pixel_nm")


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  """The central size x size window (each side kept whole where the image is smaller)."""
  if size <= 0:
    return image
  top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
  return image[top:top + size, left:left + size]
