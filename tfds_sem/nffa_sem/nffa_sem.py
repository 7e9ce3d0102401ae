"""TFDS builder for the NFFA-EUROPE SEM archive (Aversa et al., Scientific Data 5, 180172, 2018).

The per-class tars are read from the manual directory as streams (never extracted); images
are found at any depth inside them. Each image is stored once per distinct pixel content, as
one-channel luma above its databar, in a split fixed by its content hash.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import tarfile

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from tfds_sem import prepare

CLASSES = ("Biological", "Fibres", "Films_Coated_Surface", "MEMS_devices_and_electrodes",
           "Nanowires", "Particles", "Patterned_surface", "Porous_Sponge", "Powder", "Tips")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")

_INSTRUCTIONS = """\
The NFFA-EUROPE SEM archive is published on EUDAT B2SHARE (https://b2share.eudat.eu) as one
tar file per class:

  {tars}

Variants (TFDS config -> B2SHARE record):
  sem (default)  "The first annotated set of scanning electron microscopy images for
                 nanoscience" (18,577 images), doi:10.23728/b2share.80df8606fcdb4b2bae1656f0dc6db8ba
  majority       "NFFA-EUROPE - Majority SEM Dataset" (21,272 images)
  100percent     "NFFA-EUROPE - 100% SEM Dataset" (21,169 images)
  hierarchical   "NFFA-EUROPE - Hierarchical SEM Dataset" (1,038 images, sub-class folders)
(search B2SHARE for "NFFA-EUROPE SEM" for the last three).

Download the ten tars of the variant you want and put them, unextracted, in
<manual_dir>/<config>/ -- for example ~/tensorflow_datasets/downloads/manual/sem/Biological.tar
-- or directly in <manual_dir> if you only ever use one variant. <manual_dir> defaults to
<data_dir>/downloads/manual; pass another with
`tfds build nffa_sem --imports=tfds_sem --manual_dir=DIR`, DownloadConfig(manual_dir=DIR) or
--config.data.manual_dir=DIR. File names are matched ignoring case and punctuation; .tar,
.tar.gz and .tgz are read.
"""


def _norm(name: str) -> str:
  return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclasses.dataclass
class NffaSemConfig(tfds.core.BuilderConfig):
  variant: str = "sem"  # sub-folder of the manual directory holding this variant's tars
  published_images: int = 0  # the record's image count, to flag incomplete downloads
  hierarchical: bool = False  # sub-class folders -> `sublabel`
  split_percent: tuple[float, float, float] = (90, 5, 5)  # train / validation / test
  crop_databar: bool = True


class NffaSem(tfds.core.GeneratorBasedBuilder):
  """NFFA-EUROPE SEM images: 10 classes of nanoscience micrographs, databar removed."""

  VERSION = tfds.core.Version("1.3.0")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "1.1.0": "Databar detector for Zeiss SmartSEM framed bands (black lines "
                            "around a white band, an image-like last row).",
                   "1.2.0": "Databars found next to content as dark or bright as the band (a "
                            "black Zeiss band under a dark substrate) and text drawn over the "
                            "image without a band (Hitachi, older JEOL).",
                   "1.3.0": "Databars: TESCAN's mid-grey info table, and dark bands whose light "
                            "text JPEG softened (levels near 230) under dark content; strip "
                            "rows stated by TESCAN tags and JEOL sidecars in the tars."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS.format(
      tars=", ".join(f"{c}.tar" for c in CLASSES[:5]) + ",\n  " +
      ", ".join(f"{c}.tar" for c in CLASSES[5:]))
  BUILDER_CONFIGS = [
      NffaSemConfig(name="sem", variant="sem", published_images=18_577,
                    description="The original SEM set (Aversa et al. 2018)."),
      NffaSemConfig(name="majority", variant="majority", published_images=21_272,
                    description="Majority set: at least 4 of 7 experts agree on the class."),
      NffaSemConfig(name="100percent", variant="100percent", published_images=21_169,
                    description="100% set: all experts agree on the class."),
      NffaSemConfig(name="hierarchical", variant="hierarchical", published_images=1_038,
                    hierarchical=True,
                    description="Hierarchical set: 10 classes with 26 sub-classes (sublabel)."),
  ]
  DEFAULT_CONFIG_NAME = "sem"

  @classmethod
  def config_with_split(cls, variant: str, split_percent) -> NffaSemConfig:
    """A variant's config with other train/validation/test percentages (own data folder)."""
    base = {c.name: c for c in cls.BUILDER_CONFIGS}[variant or cls.DEFAULT_CONFIG_NAME]
    percent = tuple(float(p) for p in split_percent)
    tag = "-".join(f"{p:g}" for p in percent)
    return dataclasses.replace(base, name=f"{base.name}-split{tag}", split_percent=percent)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        "image": tfds.features.Image(shape=(None, None, 1), dtype=np.uint8),
        "databar_row": np.int32,  # first databar row in the original image; -1 = none
        "label": tfds.features.ClassLabel(names=list(CLASSES)),
        "filename": tfds.features.Text(),  # <tar file>/<path inside the tar>
        "original_shape": tfds.features.Tensor(shape=(2,), dtype=np.int32),  # (height, width)
    }
    if self.builder_config.hierarchical:
      features["sublabel"] = tfds.features.Text()  # sub-class folder name
    return self.dataset_info_from_configs(
        description=("SEM images of the NFFA-EUROPE archive (ZEISS SUPRA 40, CNR-IOM Trieste) "
                     "as one-channel luma, cropped above the instrument databar."),
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        homepage="https://b2share.eudat.eu",
        citation=("Aversa, R. et al. The first annotated set of scanning electron microscopy "
                  "images for nanoscience. Scientific Data 5, 180172 (2018)."),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    try:
      manual_dir = pathlib.Path(dl_manager.manual_dir)
    except AssertionError as e:  # TFDS's message for a missing or empty manual directory
      raise prepare.SourceError(str(e)) from None
    tars = find_class_tars(manual_dir, cfg.variant)
    entries = lambda: iter_tar_members(tars, hierarchical=cfg.hierarchical)  # noqa: E731
    index = prepare.index_source(entries, cfg.split_percent, list(CLASSES))
    images = index.stats["files_found"] - index.stats["skipped_not_image"]
    if cfg.published_images and images != cfg.published_images:
      logging.warning("Found %d image files; the published %s set has %d. Incomplete or "
                      "different download?", images, cfg.variant, cfg.published_images)
    self.info.metadata.update(index.stats)
    return {split: self._generate_examples(entries, index, split) for split in prepare.SPLITS}

  def _generate_examples(self, entries, index, split):
    cfg = self.builder_config
    return prepare.generate_split(entries, index, split, bits=8,
                                  crop_databar=cfg.crop_databar, with_sublabel=cfg.hierarchical)


def find_class_tars(manual_dir: pathlib.Path, variant: str) -> dict[str, pathlib.Path]:
  """Class name -> its tar, from <manual_dir>/<variant>/ or else <manual_dir>/."""
  folder = manual_dir / variant if (manual_dir / variant).is_dir() else manual_dir
  found = {}
  for path in sorted(folder.iterdir()):
    suffix = next((s for s in _TAR_SUFFIXES if path.name.lower().endswith(s)), None)
    if suffix and path.is_file():
      found[_norm(path.name[:-len(suffix)])] = path
  missing = [c for c in CLASSES if _norm(c) not in found]
  if missing:
    raise prepare.SourceError(
        f"{folder} lacks the tar file of {len(missing)} class(es): "
        f"{', '.join(missing)}.\n\n{NffaSem.MANUAL_DOWNLOAD_INSTRUCTIONS}")
  return {c: found[_norm(c)] for c in CLASSES}


def iter_tar_members(tars: dict[str, pathlib.Path], *, hierarchical: bool):
  """(Member, bytes) for every regular file of every class tar, streamed in archive order."""
  for label, path in tars.items():
    try:
      with tarfile.open(path, mode="r|*") as tar:
        for info in tar:
          if not info.isfile():
            continue
          data = tar.extractfile(info).read()
          folders = pathlib.PurePosixPath(info.name).parts[:-1]
          sublabel = folders[-1] if folders and _norm(folders[-1]) != _norm(label) else ""
          yield prepare.Member(f"{path.name}/{info.name}", label,
                               sublabel if hierarchical else ""), data
    except (tarfile.TarError, EOFError, OSError) as e:
      raise prepare.SourceError(f"{path} is damaged ({type(e).__name__}: {e}); download it "
                                f"again.") from None
