"""Two-pass preparation shared by the archive and folder builders.

Pass 1 decodes every candidate file once, skips what is not a readable image (with a warning
naming it), and keeps the first file of each distinct pixel content; the content hashes then
fix a stratified split. Instruments' sidecar texts (Hitachi, JEOL: ``<stem>.txt``) are kept
from pass 1, wherever they come in the archive, for pass 2 to read beside their images. Pass 2
re-reads the files of one split and yields its examples. Only hashes and the small sidecar
texts are held in memory between the passes, whatever the archive's size.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
from absl import logging

from tfds_sem import instrument, sem_images
from tfds_sem.vendors import sidecars as vendor_sidecars

SPLITS = ("train", "validation", "test")
_MAX_LISTED = 200  # skipped file names kept in the dataset metadata


@dataclasses.dataclass(frozen=True)
class Member:
  """One file of the source: its unique name, class and (hierarchical) sub-class."""

  filename: str
  label: str
  sublabel: str = ""


class SourceError(Exception):
  """The source cannot give a dataset: missing archive files, or no readable image at all."""


Entries = Callable[[], Iterator[tuple[Member, bytes]]]  # a fresh pass over the source


@dataclasses.dataclass
class Index:
  """What pass 1 learned: the kept file of every distinct image, its split, and the counts."""

  split_of_file: dict[str, str]
  stats: dict
  sidecars: dict[str, bytes] = dataclasses.field(default_factory=dict)  # name -> text bytes

  def sidecar_of(self, image_name: str) -> bytes | None:
    return _sidecar_in(self.sidecars, image_name)


def _sidecar_in(texts: dict[str, bytes], image_name: str) -> bytes | None:
  """The sidecar text stored beside ``image_name`` (same folder, same stem), or None."""
  return next((texts[n] for n in vendor_sidecars.candidates(image_name) if n in texts), None)


def index_source(entries: Entries, percent: tuple[float, ...], class_order: list[str]) -> Index:
  """Pass 1: decode, skip bad files, drop exact duplicates, assign stratified splits."""
  first_of_hash: dict[str, Member] = {}
  counts = collections.Counter()
  skipped: list[str] = []
  texts: dict[str, bytes] = {}
  uncalibrated: dict[str, tuple[int, int]] = {}  # kept images a later sidecar may calibrate
  for member, data in entries():
    counts["files"] += 1
    if _is_sidecar_name(member.filename) and len(data) <= vendor_sidecars.MAX_BYTES:
      texts[member.filename] = data
      continue
    if not sem_images.is_image_name(member.filename):
      counts["skipped_not_image"] += 1
      skipped.append(f"{member.filename} (not an image)")
      logging.warning("Skipping %s: not an image file.", member.filename)
      continue
    try:
      image = sem_images.decode_image(data, member.filename)
    except sem_images.ImageDecodeError as e:
      counts["skipped_unreadable"] += 1
      skipped.append(f"{member.filename} ({e})")
      logging.warning("Skipping %s: unreadable image (%s).", member.filename, e)
      continue
    digest = sem_images.content_hash(image)
    metadata = instrument.read(data, member.filename, *image.shape[:2])
    for warning in metadata.warnings:
      logging.warning("%s: %s.", member.filename, warning)
    kept = first_of_hash.setdefault(digest, member)
    if kept is member:
      counts["with_pixel_size"] += metadata.pixel_size_nm is not None
      if metadata.pixel_size_nm is None:
        uncalibrated[member.filename] = image.shape[:2]
    else:
      counts["duplicates"] += 1
      counts["cross_class_duplicates"] += kept.label != member.label
      logging.info("%s duplicates %s; stored once.", member.filename, kept.filename)
    if counts["files"] % 1000 == 0:
      logging.info("Indexed %d files.", counts["files"])

  sidecars = {}
  for name, shape in uncalibrated.items():
    text = _sidecar_in(texts, name)
    if text is not None:
      metadata = instrument.from_sidecar(text, *shape)
      counts["with_pixel_size"] += metadata.pixel_size_nm is not None
      for warning in metadata.warnings:
        logging.warning("%s: %s.", name, warning)
  kept_names = {m.filename for m in first_of_hash.values()}
  for name in kept_names:
    for candidate in vendor_sidecars.candidates(name):
      if candidate in texts:
        sidecars[candidate] = texts[candidate]
  counts["sidecars"] = len(sidecars)
  for name in sorted(set(texts) - set(sidecars)):  # text that describes no image kept
    counts["skipped_not_image"] += 1
    skipped.append(f"{name} (not an image)")
    logging.warning("Skipping %s: not an image file.", name)

  by_class = collections.defaultdict(list)
  for digest, member in first_of_hash.items():
    by_class[member.label].append(digest)
  split_of_hash = sem_images.stratified_splits(dict(by_class), SPLITS, percent)
  split_of_file = {m.filename: split_of_hash[h] for h, m in first_of_hash.items()}

  per_split = collections.Counter(split_of_file.values())
  stats = {
      "files_found": counts["files"],
      "images_stored": len(first_of_hash),
      "images_with_pixel_size": counts["with_pixel_size"],
      "sidecars_read": counts["sidecars"],
      "duplicates_dropped": counts["duplicates"],
      "cross_class_duplicates": counts["cross_class_duplicates"],
      "skipped_not_image": counts["skipped_not_image"],
      "skipped_unreadable": counts["skipped_unreadable"],
      "skipped_files": skipped[:_MAX_LISTED],
      "split_percent": list(percent),
      "split_sizes": {s: per_split.get(s, 0) for s in SPLITS},
      "class_sizes": {c: len(by_class.get(c, [])) for c in class_order if by_class.get(c)},
  }
  logging.info("Indexed %d files: %d images stored (%d with a pixel size in their metadata), %d "
               "exact duplicates dropped (%d across classes), %d non-image and %d unreadable "
               "files skipped; splits %s.",
               stats["files_found"], stats["images_stored"], stats["images_with_pixel_size"],
               stats["duplicates_dropped"],
               stats["cross_class_duplicates"], stats["skipped_not_image"],
               stats["skipped_unreadable"], stats["split_sizes"])
  if not first_of_hash:
    raise SourceError(f"none of the {counts['files']} files found is a readable image")
  return Index(split_of_file, stats, sidecars)


def _is_sidecar_name(name: str) -> bool:
  return name.lower().endswith((".txt", ".hdr"))


def databar_row(gray: np.ndarray, metadata: instrument.Instrument) -> int:
  """The first databar row the metadata states (FEI), else the image detector's; -1: none."""
  if metadata.databar_row is not None:
    return metadata.databar_row
  return sem_images.find_databar(gray)


def generate_split(entries: Entries, index: Index, split: str, *, bits: int, crop_databar: bool,
                   with_sublabel: bool,
                   with_pixel_size: bool = False) -> Iterator[tuple[str, dict]]:
  """Pass 2: the examples of one split, keyed by file name; ``with_pixel_size`` adds the
  metadata's (x, y) pixel size in nm, (-1, -1) when unknown."""
  for member, data in entries():
    if index.split_of_file.get(member.filename) != split:
      continue
    original = sem_images.decode_image(data, member.filename)
    gray = sem_images.to_gray(original)
    metadata = instrument.read(data, member.filename, *original.shape[:2],
                               sidecar=index.sidecar_of(member.filename))
    found = databar_row(gray, metadata)
    # The levels are mapped from the image area, never the databar: as upscale maps them.
    value_range = sem_images.image_value_range(gray, found, metadata.bit_depth)
    gray = sem_images.to_stored_levels(gray, bits, value_range)
    databar = found if crop_databar else -1
    example = {
        "image": gray[:databar] if databar > 0 else gray,
        "databar_row": databar,
        "label": member.label,
        "filename": member.filename,
        "original_shape": np.array(original.shape[:2], np.int32),
    }
    if with_sublabel:
      example["sublabel"] = member.sublabel
    if with_pixel_size:
      example["pixel_size_nm"] = np.array(metadata.pixel_size_nm or (-1.0, -1.0), np.float32)
    yield member.filename, example
