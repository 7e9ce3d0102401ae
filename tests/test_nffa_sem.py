"""The nffa_sem builder on archives with the real layout, made here (see sem_archives.py)."""

import collections
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sem_archives import make_archive

import tfds_sem  # noqa: F401
from tfds_sem import prepare, sem_images
from tfds_sem.nffa_sem.nffa_sem import CLASSES, NffaSem

PER_CLASS = 5


def _build(data_dir, manual_dir, config=None):
  builder = tfds.builder("nffa_sem", config=config, data_dir=str(data_dir),
                         file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _examples(builder) -> dict[str, dict]:
  """filename -> example, over every split, with the split added."""
  out = {}
  for split in builder.info.splits:
    source = builder.as_data_source(split=split)
    for i in range(len(source)):
      example = source[i]
      out[example["filename"].decode()] = {**example, "split": split}
  return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
  root = tmp_path_factory.mktemp("nffa")
  expected = make_archive(root / "manual" / "sem", per_class=PER_CLASS)
  return root, expected


@pytest.fixture(scope="module")
def built(archive):
  """The archive built with 60/20/20 splits: 3/1/1 images of every class."""
  root, expected = archive
  config = NffaSem.config_with_split("sem", (60, 20, 20))
  builder = _build(root / "data", root / "manual", config)
  return builder, _examples(builder), expected


def test_every_image_stored_once_with_its_label_shape_and_databar(built):
  builder, examples, expected = built
  assert len(examples) == len(expected["images"]) == len(CLASSES) * PER_CLASS
  for want in expected["images"]:
    got = examples[want["filename"]]
    assert builder.info.features["label"].int2str(got["label"]) == want["label"]
    assert got["databar_row"] == want["databar_row"], want["filename"]
    height, width = want["shape"]
    assert tuple(got["original_shape"]) == (height, width)
    kept = height if want["databar_row"] < 0 else want["databar_row"]
    assert got["image"].shape == (kept, width, 1) and got["image"].dtype == np.uint8
  assert any(w["shape"] == (1536, 2048) for w in expected["images"])  # the large one kept
  assert {w["databar_row"] for w in expected["images"]} >= {-1, 601, 690}


def test_pixels_are_the_luma_of_the_decoded_jpeg(archive, built):
  root, _ = archive
  _, examples, expected = built
  want = expected["images"][1]
  tar_name, member = want["filename"].split("/", 1)
  with tarfile.open(root / "manual" / "sem" / tar_name) as tar:
    rgb = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
  reference = np.asarray(rgb.convert("L"), np.int16)  # PIL's own ITU-R 601 luma
  stored = examples[want["filename"]]["image"][..., 0].astype(np.int16)
  assert np.abs(stored - reference[:stored.shape[0]]).max() <= 1


def test_duplicate_truncated_and_non_image_members_are_skipped_and_counted(built):
  builder, examples, expected = built
  dup, original = expected["duplicate"]
  assert dup not in examples and original in examples
  assert expected["truncated"] not in examples and expected["non_image"] not in examples
  stats = builder.info.metadata
  assert stats["files_found"] == len(expected["images"]) + 3
  assert stats["images_stored"] == len(examples)
  assert (stats["duplicates_dropped"], stats["cross_class_duplicates"]) == (1, 1)
  assert (stats["skipped_not_image"], stats["skipped_unreadable"]) == (1, 1)
  skipped = " ".join(stats["skipped_files"])
  assert expected["truncated"] in skipped and expected["non_image"] in skipped


def test_metadata_survives_reloading(archive, built):
  root, _ = archive
  builder, _, _ = built
  reloaded = tfds.builder("nffa_sem", config=builder.builder_config, data_dir=str(root / "data"))
  assert reloaded.is_prepared()
  assert reloaded.info.metadata["duplicates_dropped"] == 1
  assert reloaded.info.metadata["split_sizes"] == {"train": 30, "validation": 10, "test": 10}


def test_splits_are_disjoint_and_stratified_by_class(built):
  builder, examples, _ = built
  counts = collections.Counter((e["label"], e["split"]) for e in examples.values())
  for label in range(len(CLASSES)):
    assert [counts[label, s] for s in ("train", "validation", "test")] == [3, 1, 1]
  hashes = collections.defaultdict(set)
  for e in examples.values():
    hashes[e["split"]].add(sem_images.content_hash(e["image"]))
  assert not (hashes["train"] & hashes["validation"] or hashes["train"] & hashes["test"]
              or hashes["validation"] & hashes["test"])


def test_default_split_and_rerun_are_idempotent(archive, tmp_path):
  root, expected = archive
  builder = _build(tmp_path / "data", root / "manual")
  assert builder.builder_config.name == "sem"
  sizes = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
  assert sizes == {"train": 45, "validation": 3, "test": 2}  # 90/5/5 of 50, rounded
  files = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "data").rglob("*") if p.is_file())
  again = _build(tmp_path / "data", root / "manual")  # prepared: nothing is rewritten
  assert sorted((p, p.stat().st_mtime_ns)
                for p in (tmp_path / "data").rglob("*") if p.is_file()) == files
  assert {k: e["split"] for k, e in _examples(again).items()} == {
      k: e["split"] for k, e in _examples(builder).items()}


def test_split_depends_on_content_not_on_file_names_or_order(archive, built, tmp_path):
  """Renamed, lower-cased and gzipped tars in the flat manual dir: the same split per image."""
  root, _ = archive
  _, examples, _ = built
  manual = tmp_path / "manual"
  manual.mkdir()
  for path in sorted((root / "manual" / "sem").iterdir(), reverse=True):
    with tarfile.open(path) as src, tarfile.open(manual / f"{path.stem.lower()}.tar.gz",
                                                 "w:gz") as dst:
      for member in reversed(src.getmembers()):
        dst.addfile(member, src.extractfile(member) if member.isfile() else None)
  config = NffaSem.config_with_split("sem", (60, 20, 20))
  other = _examples(_build(tmp_path / "data", manual, config))
  split_by_hash = {sem_images.content_hash(e["image"]): e["split"] for e in examples.values()}
  assert {sem_images.content_hash(e["image"]): e["split"] for e in other.values()} == split_by_hash


def test_missing_tar_stops_with_the_instructions(archive, tmp_path, ledger):
  ledger.tried("archive")
  root, _ = archive
  manual = tmp_path / "manual"
  shutil.copytree(root / "manual" / "sem", manual)
  (manual / "Powder.tar").unlink()
  with pytest.raises(prepare.SourceError, match="lacks the tar file of 1 class.*Powder") as e:
    _build(tmp_path / "data", manual)
  assert "b2share" in str(e.value).lower() and "Biological.tar" in str(e.value)


def test_empty_manual_dir_stops_with_the_instructions(tmp_path):
  (tmp_path / "manual").mkdir()
  with pytest.raises(prepare.SourceError, match="does not exist or is empty") as e:
    _build(tmp_path / "data", tmp_path / "manual")
  assert "B2SHARE" in str(e.value)


def test_damaged_tar_is_named(archive, tmp_path):
  root, _ = archive
  manual = tmp_path / "manual"
  shutil.copytree(root / "manual" / "sem", manual)
  data = (manual / "Fibres.tar").read_bytes()
  (manual / "Fibres.tar").write_bytes(data[:len(data) // 2])
  with pytest.raises(prepare.SourceError, match="Fibres.tar is damaged"):
    _build(tmp_path / "data", manual)


def test_hierarchical_variant_has_sub_labels(tmp_path):
  expected = make_archive(tmp_path / "manual" / "hierarchical", per_class=2, sub_classes=True)
  builder = _build(tmp_path / "data", tmp_path / "manual", "hierarchical")
  examples = _examples(builder)
  for want in expected["images"]:
    assert examples[want["filename"]]["sublabel"].decode() == want["sublabel"]
  assert len({w["sublabel"] for w in expected["images"]}) == 2 * len(CLASSES)


def _run(args, **kwargs):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env,
                        timeout=600, **kwargs)


@pytest.mark.slow
def test_build_command_prints_counts_and_reruns(archive, tmp_path):
  root, _ = archive
  args = ["tfds_sem.build", "nffa_sem", f"--manual_dir={root / 'manual'}",
          f"--data_dir={tmp_path}"]
  result = _run(args)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "images stored                 50" in result.stdout
  assert "duplicates dropped             1" in result.stdout
  assert "skipped: Tips.tar/Tips/README.txt (not an image)" in result.stdout
  again = _run(args)  # idempotent: reuses the prepared data
  assert again.returncode == 0 and "Downloading" not in again.stdout
  assert result.stdout.endswith(again.stdout)


def test_build_command_errors_are_one_line(tmp_path, ledger):
  ledger.tried("archive")
  (tmp_path / "manual").mkdir()
  result = _run(["tfds_sem.build", "nffa_sem", f"--manual_dir={tmp_path / 'manual'}",
                 f"--data_dir={tmp_path}"])
  assert result.returncode == 1 and result.stderr.startswith("error: ")
  assert "Traceback" not in result.stderr and "B2SHARE" in result.stderr
  result = _run(["tfds_sem.build", "nffa_sem", "--split_percent=90,10",
                 f"--data_dir={tmp_path}"])
  assert result.returncode == 1 and "three numbers" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("apache_beam") is None
                    or importlib.util.find_spec("mlcroissant") is None,
                    reason="the `tfds` CLI of TFDS 4.9 imports apache-beam and mlcroissant at "
                    "startup; install them (pip install -e .[tfds-cli]) to run this test")
def test_tfds_build_command(archive, tmp_path):
  root, _ = archive
  result = _run(["tensorflow_datasets.scripts.cli.main", "build", "nffa_sem",
                 "--imports=tfds_sem", f"--manual_dir={root / 'manual'}",
                 f"--data_dir={tmp_path}", "--file_format=array_record"])
  assert result.returncode == 0, result.stderr[-3000:]
  builder = tfds.builder("nffa_sem", data_dir=str(tmp_path))
  assert builder.is_prepared() and builder.info.metadata["images_stored"] == 50


def test_stratified_splits_unit():
  hashes = {"a": [f"a{i:02d}" for i in range(20)], "b": [f"b{i}" for i in range(3)]}
  split = sem_images.stratified_splits(hashes, prepare.SPLITS, (90, 5, 5))
  counts = collections.Counter((h[0], s) for h, s in split.items())
  assert (counts["a", "train"], counts["a", "validation"], counts["a", "test"]) == (18, 1, 1)
  assert counts["b", "train"] == 3
  tiny = sem_images.stratified_splits({"a": ["x"], "b": ["y"], "c": ["z"]}, prepare.SPLITS,
                                      (90, 5, 5))
  assert sorted(tiny.values()) == ["test", "train", "validation"]  # no empty eval split
  assert split == sem_images.stratified_splits(
      {k: v[::-1] for k, v in hashes.items()}, prepare.SPLITS, (90, 5, 5))  # order-free
  with pytest.raises(ValueError, match="non-negative"):
    sem_images.stratified_splits(hashes, prepare.SPLITS, (90, -5, 15))


@pytest.mark.parametrize("kind,row", [("bright", 700), ("dark", 555), ("none", -1)])
def test_find_databar(kind, row):
  from sem_archives import micrograph

  rgb = micrograph(np.random.default_rng(3), 768, 1024, databar=kind, bar_row=row)
  assert sem_images.find_databar(sem_images.to_gray(rgb)) == row


def test_find_databar_ignores_dark_content_that_is_not_a_band():
  gray = np.full((768, 1024, 1), 120, np.uint8)
  gray[700:, :400] = 5  # a dark object touching the bottom edge, not full width
  assert sem_images.find_databar(gray) == -1
  gray[760:] = 5  # a 1% strip: too thin to be a databar
  assert sem_images.find_databar(gray) == -1
