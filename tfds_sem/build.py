"""Prepare a dataset of this package and print what the preparation found.

    python -m tfds_sem.build nffa_sem --manual_dir=~/nffa_tars          # the SEM set
    python -m tfds_sem.build nffa_sem/100percent --split_percent=80,10,10
    python -m tfds_sem.build sem_folder --path=~/my_sem_images

Does what `tfds build --imports=tfds_sem` does (TFDS 4.9's CLI also wants apache-beam and
mlcroissant installed just to start), and ends with one line per problem instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

# TensorFlow (under TFDS) would announce itself and its oneDNN ops on the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow_datasets as tfds  # noqa: E402

import tfds_sem  # noqa: E402
from tfds_sem import prepare  # noqa: E402


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m tfds_sem.build", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("dataset", help="nffa_sem[/sem|majority|100percent|hierarchical], "
                      "sem_folder or sem_synthetic[/default|large|tiny]")
  parser.add_argument("--data_dir", default=os.environ.get("TFDS_DATA_DIR",
                                                           "~/tensorflow_datasets"))
  parser.add_argument("--manual_dir", default="", help="nffa_sem: the folder with the tars "
                      "(default <data_dir>/downloads/manual)")
  parser.add_argument("--path", default="", help="sem_folder: the folder of your images")
  parser.add_argument("--split_percent", default="", help="train,validation,test (default "
                      "90,5,5; nffa_sem and sem_folder)")
  return parser.parse_args(argv)


def _config(name: str, variant: str, path: str, split_percent: str):
  percent = tuple(float(p) for p in split_percent.split(",")) if split_percent else None
  if percent is not None and len(percent) != 3:
    raise ValueError(f"--split_percent needs three numbers, got {split_percent!r}")
  if name == "sem_folder":
    if not path:
      raise ValueError("sem_folder needs --path=FOLDER")
    return tfds_sem.SemFolder.config_for(path, split_percent=percent or (90, 5, 5))
  if percent is not None:
    if name != "nffa_sem":
      raise ValueError(f"{name} has fixed splits; --split_percent is for nffa_sem/sem_folder")
    return tfds_sem.NffaSem.config_with_split(variant, percent)
  return variant or None


def main(argv=None) -> int:
  args = _parse(argv)
  name, _, variant = args.dataset.partition("/")
  try:
    config = _config(name, variant, args.path, args.split_percent)
    builder = tfds.builder(name, config=config, data_dir=os.path.expanduser(args.data_dir),
                           file_format="array_record")
    manual_dir = os.path.expanduser(args.manual_dir) if args.manual_dir else None
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except (prepare.SourceError, ValueError, tfds.core.registered.DatasetNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"{builder.name}/{builder.builder_config.name} is ready in {builder.data_dir}")
  for split, info in sorted(builder.info.splits.items()):
    print(f"  {split:<10} {info.num_examples:>7} images")
  stats = dict(builder.info.metadata or {})
  for key in ("files_found", "images_stored", "duplicates_dropped", "cross_class_duplicates",
              "skipped_not_image", "skipped_unreadable"):
    if key in stats:
      print(f"  {key.replace('_', ' '):<24} {stats[key]:>7}")
  for item in stats.get("skipped_files", []):
    print(f"  skipped: {item}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
