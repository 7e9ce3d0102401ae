"""The evaluation tool: statistics against scipy, tables, figures, and a real trained run."""

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from PIL import Image
from scipy import stats

from conftest import REPO
from sinsr_jax import metrics, weights
from sinsr_jax.data import degradations
from sinsr_jax.errors import UserError
from sinsr_jax.evaluation import command as evaluate
from sinsr_jax.evaluation import downstream, report
from sinsr_jax.models import vgg
from sinsr_jax.training import runs


def test_mean_ci95_is_the_student_t_interval():
  x = np.random.default_rng(0).normal(3.0, 2.0, 12)
  mean, half = report.mean_ci95(x)
  low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
  assert mean == pytest.approx(np.mean(x))
  assert half == pytest.approx((high - low) / 2)
  assert report.mean_ci95([5.0])[0] == 5.0 and math.isnan(report.mean_ci95([5.0])[1])
  assert math.isnan(report.mean_ci95([])[0])


def _records(model_offset):
  rng = np.random.default_rng(1)
  return [{"class": c, "psnr_db": 25 + model_offset + rng.normal(),
           "gmsd": 0.1 - model_offset / 100} for c in ["a", "b"] * 5]


def test_tables_per_model_and_class():
  rows = report.summarise({"bicubic": _records(0), "sinsr": _records(3)})
  assert [(r["model"], r["class"], r["n"]) for r in rows] == [
      ("bicubic", "all", 10), ("bicubic", "a", 5), ("bicubic", "b", 5),
      ("sinsr", "all", 10), ("sinsr", "a", 5), ("sinsr", "b", 5)]
  a = [r["psnr_db"] for r in _records(3) if r["class"] == "a"]
  assert rows[4]["psnr_db"] == pytest.approx(np.mean(a))

  text = report.markdown(rows, ["# Title", "- convention"], {"bicubic": 0, "sinsr": 1234})
  assert text.startswith("# Title\n- convention\n")
  whole = text.split("Per class:")[0]
  assert "PSNR (dB) ↑" in whole and "GMSD ↓" in whole and "SSIM" not in whole
  sinsr_row = next(line for line in whole.splitlines() if line.startswith("| sinsr"))
  assert sinsr_row.count("**") == 4  # best PSNR (higher) and best GMSD (lower)
  assert "1,234" in sinsr_row and " ± " in sinsr_row
  assert "| bicubic | a | 5 |" in text.split("Per class:")[1]

  table = list(csv.DictReader(io.StringIO(report.to_csv(rows))))
  assert len(table) == 6 and float(table[0]["psnr_db"]) == pytest.approx(rows[0]["psnr_db"])
  assert "ssim" not in table[0]


def test_results_json_has_no_nan(tmp_path):
  rows = report.summarise({"m": [{"class": "", "psnr_db": 1.0}]})  # one image: no interval
  paths = report.write_all(str(tmp_path), rows, ["# t"], {"m": 0}, {"x": np.float32(2.5)})
  with open(paths["json"]) as f:
    saved = json.load(f)  # strict JSON: NaN would not parse in other languages
  assert saved["rows"][0]["psnr_db_ci95"] is None and saved["x"] == 2.5
  assert sorted(os.listdir(tmp_path)) == ["results.csv", "results.json", "results.md"]


def test_runs_must_be_comparable():
  import sinsr as sinsr_config  # configs/sinsr.py (conftest puts configs/ on sys.path)

  def fake(scale, channels=1, blur=0.0):
    config = sinsr_config.get_config(f"quick,scale={scale}")
    config.model.channels, config.data.degradation.blur_sigma = channels, (blur,)
    return types.SimpleNamespace(config=config, workdir=f"run_x{scale}_blur{blur}")
  evaluate.check_comparable([fake(4), fake(4)])
  with pytest.raises(UserError, match="run_x2_blur0.0 has scale 2, run_x4_blur0.0 has 4"):
    evaluate.check_comparable([fake(4), fake(2)])
  with pytest.raises(UserError, match="model.channels"):
    evaluate.check_comparable([fake(4), fake(4, channels=3)])
  # Every row is scored on the first run's LR images: a run trained on another degradation is
  # refused, not compared in silence.
  with pytest.raises(UserError, match="run_x4_blur1.5 has LR degradation .*blur"):
    evaluate.check_comparable([fake(4), fake(4, blur=1.5)])


def test_a_metric_undefined_on_some_images_says_over_how_many():
  records = [{"class": "", "psnr_db": 30.0, "ssim": 0.9}, {"class": "", "psnr_db": 32.0,
                                                         "ssim": float("nan")}]
  row = report.summarise({"m": records})[0]
  assert row["n"] == 2 and row["psnr_db_n"] == 2 and row["ssim_n"] == 1
  assert row["ssim"] == 0.9  # the mean of the finite values, stated as over 1 image
  text = report.markdown([row], [], {"m": 0})
  assert "| 0.9000 (n=1) |" in text and "31.00 ± " in text and "31.00 ± 12.71 (n" not in text


@pytest.fixture(scope="module")
def trained_run(trained_tiny_run, tmp_path_factory):
  """The shared tiny run trained for 3 steps, twice (two runs to compare)."""
  root = tmp_path_factory.mktemp("sweep")
  shutil.copytree(trained_tiny_run, root / "a")
  shutil.copytree(trained_tiny_run, root / "b")
  return root


def _lpips_cache(path) -> None:
  """Random AlexNet + LPIPS heads in a weights cache: the evaluation's LPIPS path, offline."""
  widths = (8, 16, 16, 16, 16)
  features = vgg.Features(arch="alexnet", outputs=("relu5",), widths=widths)
  params = jax.device_get(features.init(jax.random.PRNGKey(0), np.zeros((1, 64, 64, 3)))["params"])
  weights.write_checkpoint(str(path / "alexnet.msgpack"), params,
                           {"arch": "alexnet", "preprocessing": "torch", "source_file": "random",
                            "source_sha256": "0"})
  rng = np.random.default_rng(0)
  heads = {f"lin{k}": rng.random(c).astype(np.float32) for k, c in enumerate(widths)}
  weights.write_checkpoint(str(path / "lpips_alex.msgpack"), heads,
                           {"arch": "alexnet", "preprocessing": "torch", "source_file": "random",
                            "source_sha256": "0"})


@pytest.mark.slow
def test_evaluate_a_sweep_with_lpips(trained_run, tiny_data_dir, tmp_path, monkeypatch):
  cache = tmp_path / "weights"
  cache.mkdir()
  _lpips_cache(cache)
  monkeypatch.setenv("SINSR_WEIGHTS_DIR", str(cache))
  out = tmp_path / "results"
  result = evaluate.evaluate([str(trained_run)], labels=[], split="test", out_dir=str(out),
                             max_images=4, lpips="alex", figures=2)

  per_image = result["per_image"]
  assert list(per_image) == ["bicubic", "a", "b"]  # a sweep folder, expanded
  assert all(len(v) == 4 for v in per_image.values())
  # The copy holds the same weights: the same scores (timings aside).
  for x, y in zip(per_image["a"], per_image["b"], strict=True):
    assert x["psnr_db"] == y["psnr_db"] and x["lpips"] == y["lpips"]

  # Bicubic's scores equal an independent computation on the same LR images.
  source = runs.load(str(trained_run / "a"))
  data = evaluate.data_config(source.config, split="test", max_images=4, crop=-1, data_dir=None)
  import tensorflow_datasets as tfds

  from sinsr_jax.data import input_pipeline

  builder = tfds.builder("sem_synthetic/tiny", data_dir=tiny_data_dir)
  pairs = input_pipeline.eval_images(builder.as_data_source(split="test"), data, channels=1,
                                     seed=source.config.seed)
  for pair, record in zip(pairs, per_image["bicubic"], strict=True):
    sr = degradations.bicubic_upscale(pair["lr"][None], 4)
    assert record["psnr_db"] == pytest.approx(float(metrics.psnr_db(sr, pair["hr"][None],
                                                                    crop_border=4)[0]), abs=1e-4)
    assert 0 <= record["edge_f1"] <= 1 and record["gmsd"] >= 0 and record["lpips"] > 0
    assert record["count_error"] >= 0 and "mask_count_error" in record  # sem_synthetic masks
    assert record["time_ms"] > 0

  text = (out / "results.md").read_text()
  assert "border crop = scale" in text and "LPIPS v0.1 (alex)" in text and "seed 0" in text
  assert "95% confidence interval" in text and "Per class:" in text
  for column in ("PSNR (dB) ↑", "SSIM ↑", "LPIPS ↓", "GMSD ↓", "Edge F1 ↑", "Count err. ↓",
                 "Size W1 (px) ↓", "ms/image ↓"):
    assert column in text
  assert f"a = {trained_run / 'a'} (step 3)" in text
  rows = list(csv.DictReader((out / "results.csv").open()))
  assert {r["model"] for r in rows} == {"bicubic", "a", "b"}
  saved = json.loads((out / "results.json").read_text())
  assert saved["params"]["bicubic"] == 0 and saved["params"]["a"] == source.num_params

  figures = sorted((out / "figures").iterdir())
  assert len(figures) == 2 and all(f.suffix == ".png" for f in figures)
  with Image.open(figures[0]) as image:
    assert image.width > image.height  # 5 panels side by side, two rows
  assert not list(out.rglob("*.tmp"))


def _evaluate_cli(*args):
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  return subprocess.run([sys.executable, "-m", "sinsr_jax.evaluate", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_table_and_clear_errors(trained_run, tmp_path, ledger):
  out = tmp_path / "cli"
  done = _evaluate_cli(f"--run={trained_run / 'a'}", "--label=mine", "--max_images=2",
                       "--lpips=none", "--figures=0", f"--out={out}")
  assert done.returncode == 0, done.stderr
  assert "| mine | 2 |" in done.stdout and "LPIPS: not computed (--lpips=none)" in done.stdout
  assert not (out / "figures").exists()

  missing = _evaluate_cli(f"--run={tmp_path / 'nope'}", f"--out={out}")
  assert missing.returncode == 1
  last_line = missing.stderr.strip().splitlines()[-1]
  assert last_line == f"error: run folder {tmp_path / 'nope'} not found"

  (tmp_path / "empty").mkdir()
  empty = _evaluate_cli(f"--run={tmp_path / 'empty'}", f"--out={out}")
  assert empty.returncode == 1 and "neither a training run" in empty.stderr
  assert "Traceback" not in empty.stderr

  split = _evaluate_cli(f"--run={trained_run / 'a'}", "--split=nope", f"--out={out}",
                        "--lpips=none")
  assert split.returncode == 1 and "has no split 'nope'" in split.stderr

  # A checkpoint that does not fit its config (another width) is refused in one line.
  other = tmp_path / "other"
  shutil.copytree(trained_run / "a", other)
  config = json.loads((other / "config.json").read_text())
  config["model"]["width"] = 16
  (other / "config.json").write_text(json.dumps(config))
  refused = _evaluate_cli(f"--run={other}", f"--out={out}", "--lpips=none")
  assert refused.returncode == 1
  assert "params.down_up.RRDB_0.ResidualDenseBlock_0.Conv_0.kernel of shape (3, 3, 8, 4), the " \
         "config builds (3, 3, 16, 4): it was written by another model or configuration" \
         in refused.stderr
  assert "Traceback" not in refused.stderr
  ledger.tried("evaluate: missing run, not a run, unknown split, foreign checkpoint", 4)


@pytest.mark.slow
def test_evaluate_on_a_folder_of_the_users_micrographs(trained_run, tmp_path, ledger):
  """--images: each file's image area above its databar, LR by the run's degradation, scored
  like a split; unusable files skipped with a reason."""
  import tifffile
  from test_micrograph_files import _content, _fei_tiff, fei_frame, zeiss_frame

  from sinsr_jax.data import input_pipeline
  from sinsr_jax.inference import micrographs

  ledger.tried("evaluate --images: too small, not an image", 2)
  rng = np.random.default_rng(0)
  folder = tmp_path / "mine"
  folder.mkdir()
  Image.fromarray(zeiss_frame(rng, 192, 256, 158)).save(folder / "zeiss.png")
  _fei_tiff(folder / "fei.tif", (fei_frame(rng).astype(np.uint16) * 16 + 15264))
  tifffile.imwrite(folder / "plain.tif", _content(rng, 96, 128))
  Image.fromarray(_content(rng, 40, 40)).save(folder / "tiny.png")
  (folder / "notes.tif").write_text("not an image")
  out = tmp_path / "scored"
  result = evaluate.evaluate([str(trained_run / "a")], labels=["mine"], split="test",
                             out_dir=str(out), lpips="none", figures=1, images=[str(folder)])
  names = [os.path.basename(r["filename"]) for r in result["per_image"]["bicubic"]]
  assert names == ["fei.tif", "plain.tif", "zeiss.png"]
  assert [r["class"] for r in result["per_image"]["mine"]] == ["mine"] * 3
  source = runs.load(str(trained_run / "a"))
  data = evaluate.data_config(source.config, split="images", max_images=0, crop=0,
                              data_dir=None)
  degrade = input_pipeline.degradation_from_config(data)
  for i, (name, rows) in enumerate((("fei.tif", 400), ("plain.tif", 96), ("zeiss.png", 158))):
    hr = micrographs.model_input(micrographs.read(str(folder / name)).for_image_area(rows),
                                 1)[:rows]
    hr = hr[:hr.shape[0] // 4 * 4, :hr.shape[1] // 4 * 4]
    assert hr.max() > 0.5  # 12 bits in 16: the image area's range, not 15264..20096 / 65535
    lr = degrade(hr, np.random.default_rng([source.config.seed, 7919, i]))
    expected = float(metrics.psnr_db(degradations.bicubic_upscale(lr[None], 4), hr[None],
                                     crop_border=4)[0])
    assert result["per_image"]["bicubic"][i]["psnr_db"] == pytest.approx(expected, abs=1e-4)
    # Downstream sizes: at the file's pixel size (FEI's metadata; HR pixels where none), on
    # the metrics' view, LR measured at its own pixel size.
    pixel = micrographs.read(str(folder / name)).instrument.pixel_size_nm
    view = lambda x: np.clip(x, 0, 1)[4:-4, 4:-4].mean(axis=-1)  # noqa: E731
    bicubic = degradations.bicubic_upscale(lr[None], 4)[0]
    want = downstream.size_scores(view(bicubic), view(hr), pixel[0] if pixel else 1.0, 4)
    got = result["per_image"]["bicubic"][i]
    for key in ("width_mean_nm", "particles_count", "pores_rel_error"):
      assert got[key] == pytest.approx(want[key], nan_ok=True), (name, key)
    lr_sizes = json.loads((out / "results.json").read_text())["lr_sizes"]
    assert lr_sizes[str(folder / name)]["unit"] == ("nm" if pixel else "HR px")
  assert micrographs.read(str(folder / "fei.tif")).instrument.pixel_size_nm  # one calibrated
  text = (out / "results.md").read_text()
  assert f"on {folder} (image areas above the databars): 3 images" in text
  assert len(list((out / "figures").iterdir())) == 1
  none = tmp_path / "none"
  none.mkdir()
  Image.fromarray(_content(rng, 40, 40)).save(none / "small.png")
  with pytest.raises(UserError, match="small.png: image area 40x40 px is smaller than 64 px"):
    evaluate.evaluate([str(trained_run / "a")], labels=[], split="test", out_dir=str(out),
                      lpips="none", figures=0, images=[str(none)])


@pytest.mark.slow
def test_evaluate_adapt_and_test_time_rows(trained_run, tmp_path):
  """--adapt rows (fine-tuned per image, then ZSSR's refinements) and --ensemble on the plain
  rows; the self-ensembled row scores what an independent 8-pose average gives."""
  from test_micrograph_files import _content
  from test_test_time import _reference_ensemble

  from sinsr_jax.data import input_pipeline

  folder = tmp_path / "mine"
  folder.mkdir()
  Image.fromarray(_content(np.random.default_rng(1), 256, 256)).save(folder / "frame.png")
  result = evaluate.evaluate([str(trained_run / "a")], labels=["mine"], split="test",
                             out_dir=str(tmp_path / "out"), lpips="none", figures=0,
                             images=[str(folder)], adapt=2, ensemble=True)
  assert list(result["per_image"]) == ["bicubic", "mine +ens", "mine +adapt 2 +ens +cons"]
  assert "adaptation" in result["per_image"]["mine +adapt 2 +ens +cons"][0]
  source = runs.load(str(trained_run / "a"))
  data = evaluate.data_config(source.config, split="images", max_images=0, crop=0,
                              data_dir=None)
  hr = np.asarray(Image.open(folder / "frame.png"), np.float32)[..., None] / 255.0
  lr = input_pipeline.degradation_from_config(data)(
      hr, np.random.default_rng([source.config.seed, 7919, 0]))
  sr_fn = source.sr_fn()
  expected = _reference_ensemble(lambda x: np.asarray(sr_fn(x)), lr[None])
  psnr = float(metrics.psnr_db(np.clip(expected, 0, 1), hr[None], crop_border=4)[0])
  assert result["per_image"]["mine +ens"][0]["psnr_db"] == pytest.approx(psnr, abs=1e-3)
  text = (tmp_path / "out" / "results.md").read_text()
  assert "+ens: geometric self-ensemble" in text and "+adapt 2: the run fine-tuned" in text
