"""Upscaling micrographs: the tile grid, tiled == whole-image inference, file formats, the
databar, and the command line's answer to every bad input.

Models with global pooling (SINSR's default CBAM attention, squeeze-excite) see each tile's own
statistics, so their tiled output differs slightly from whole-image inference; the CBAM test
measures that deviation and prints it (run with -s) instead of asserting equality.
"""

import io
import os
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import REPO
from sinsr_jax import models
from sinsr_jax.data import degradations
from sinsr_jax.inference import micrographs, tiling, upscaling
from sinsr_jax.inference.micrographs import MicrographError
from sinsr_jax.training import runs
from tfds_sem.sem_images import to_gray

SMALL = {
    "vdsr": {"width": 8, "depth": 4},
    "esrgan": {"width": 8, "num_blocks": 1, "growth": 4},
    "sinsr": {"stem_width": 8, "width": 8, "num_rrdb": 1, "growth": 4, "attention": "none"},
}


def _random_variables(g, channels: int, seed: int = 0):
  """Lecun-normal kernels, zero biases: flax's init without compiling it (seconds saved)."""
  shapes = jax.eval_shape(g.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, channels)))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype) if len(s.shape) < 2 else (
      rng.standard_normal(s.shape) / np.sqrt(np.prod(s.shape[:-1]))).astype(s.dtype), shapes)


def _run(name: str, scale: int = 4, channels: int = 1, **options) -> runs.Run:
  g = models.create_generator(name, scale=scale, channels=channels, **options)
  variables = _random_variables(g, channels)
  config = ml_collections.ConfigDict({"data": {"scale": scale},
                                      "model": {"name": name, "channels": channels}})
  state = {k: v for k, v in variables.items() if k != "params"}
  return runs.Run(name, config, g, variables["params"], state, 0)


def _image(height: int, width: int, channels: int = 1, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).random((height, width, channels)).astype(np.float32)


# --- the tile grid ------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 7, 64, 65, 100, 129, 300, 1024])
@pytest.mark.parametrize("tile,context,blend", [(64, 16, 8), (128, 32, 16), (40, 10, 10),
                                                (24, 4, 0)])
def test_tile_grid_covers_every_pixel_with_weights_summing_to_one(length, tile, context, blend):
  spans = tiling.axis_spans(length, tile, context, blend)
  assert {s.size for s in spans} == {min(tile, length)}  # one tile shape: one compile
  assert spans[0].keep_start == 0 and spans[-1].keep_stop == length
  for s in spans:
    assert 0 <= s.start and s.start + s.size <= length
    assert s.start == 0 or s.keep_start - s.start >= context  # interior edges keep context
    assert s.start + s.size == length or s.start + s.size - s.keep_stop >= context
  for left, right in zip(spans, spans[1:], strict=False):
    assert right.keep_start == left.keep_stop - blend  # the cross-fade zone, no gap
  for scale in (2, 3, 4):
    rows = tiling.axis_weight_sum(spans, scale)
    assert rows.shape == (length * scale,)
    np.testing.assert_allclose(rows, 1.0, atol=1e-6)
  rows, cols = tiling.tile_grid(length, 50, tile, context, blend)
  weights = np.zeros((length * 2, 100), np.float32)  # the 2-D weights of every tile, summed
  for r in rows:
    for c in cols:
      weights[r.keep_start * 2:r.keep_stop * 2, c.keep_start * 2:c.keep_stop * 2] += np.outer(
          tiling.span_weights(r, 2), tiling.span_weights(c, 2))
  np.testing.assert_allclose(weights, 1.0, atol=1e-6)


def test_tile_settings_that_cannot_blend_are_refused():
  with pytest.raises(ValueError, match="at least 2 \\* context \\+ 2 \\* blend = 96"):
    tiling.check_settings(64, 32, 16)
  tiling.check_settings(96, 32, 16)


# --- tiled == whole-image inference -------------------------------------------------------

@pytest.mark.parametrize("name,size,tile,context,blend", [
    ("vdsr", (70, 100), 32, 8, 4),        # receptive radius ~3 LR px
    ("esrgan", (70, 100), 64, 20, 8),     # ~18 LR px: 15 dense-block convs + the tail
    ("sinsr", (120, 150), 104, 40, 8),    # ~36 LR px: its half-resolution path doubles it
])
def test_tiled_equals_whole_image_for_local_models(name, size, tile, context, blend):
  # Sizes: several tiles, no multiple of the stride; even sides for SINSR, whose 2x2-pooled
  # path is resized by a factor other than 2 on odd sides in whole-image inference.
  sr_fn = _run(name, **SMALL[name]).sr_fn()
  lr = _image(*size)
  assert tiling.count_tiles(*size, tile, context, blend) >= 6
  whole = np.asarray(sr_fn(lr[None]))[0]
  tiled = tiling.upscale_tiled(sr_fn, lr, 4, tile=tile, context=context, blend=blend)
  assert tiled.shape == whole.shape == (size[0] * 4, size[1] * 4, 1)
  np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_batched_tiles_and_rows_streamed_to_a_sink():
  sr_fn = _run("esrgan", **SMALL["esrgan"]).sr_fn()
  lr = _image(70, 100)
  single = tiling.upscale_tiled(sr_fn, lr, 4, tile=64, context=20, blend=8)
  chunks = []
  done = []
  tiling.upscale_tiled(sr_fn, lr, 4, tile=64, context=20, blend=8, batch=3,
                       sink=lambda row, rows: chunks.append((row, rows)), progress=done.append)
  assert sum(done) == tiling.count_tiles(70, 100, 64, 20, 8)
  assert [row for row, _ in chunks] == list(np.cumsum([0] + [len(r) for _, r in chunks[:-1]]))
  assert len(chunks) > 1 and max(len(r) for _, r in chunks) <= 64 * 4  # bounded by the tile
  np.testing.assert_allclose(np.concatenate([r for _, r in chunks]), single, atol=1e-6)


def test_image_smaller_than_a_tile_is_one_tile_equal_to_whole_image():
  sr_fn = _run("esrgan", **SMALL["esrgan"]).sr_fn()
  lr = _image(30, 45)
  assert tiling.count_tiles(30, 45, 128, 32, 16) == 1
  tiled = tiling.upscale_tiled(sr_fn, lr, 4, tile=128, context=32, blend=16)
  np.testing.assert_allclose(tiled, np.asarray(sr_fn(lr[None]))[0], atol=1e-6)


def test_model_needing_even_sides_gets_a_mirrored_pixel():
  run = _run("esrgan", scale=2, **SMALL["esrgan"])  # RRDBNet x2 folds 2x2 pixels
  sr_fn = run.sr_fn()
  assert upscaling.size_multiple(sr_fn, 1) == 2
  # Rows: one odd tile, mirrored to 32; columns: tiles of 80 (context: the dense blocks run at
  # half resolution here, a receptive radius of ~34 LR px).
  lr = _image(31, 100)
  tiled = tiling.upscale_tiled(sr_fn, lr, 2, tile=80, context=36, blend=4, multiple=2)
  padded = np.pad(lr, ((0, 1), (0, 0), (0, 0)), mode="symmetric")
  whole = np.asarray(sr_fn(padded[None]))[0, :62]
  assert tiled.shape == (62, 200, 1)
  np.testing.assert_allclose(tiled, whole, atol=1e-4)
  assert tiling.upscale_tiled(sr_fn, lr[:, :21], 2, tile=80, context=36, blend=4,
                              multiple=2).shape == (62, 42, 1)


def test_cbam_tiled_deviation_is_measured_not_asserted():
  """CBAM pools each tile's whole extent: tiles differ slightly from whole-image inference."""
  sr_fn = _run("sinsr", **{**SMALL["sinsr"], "attention": "cbam"}).sr_fn()
  lr = _image(120, 150)
  whole = np.asarray(sr_fn(lr[None]))[0]
  tiled = tiling.upscale_tiled(sr_fn, lr, 4, tile=104, context=40, blend=8)
  deviation = np.abs(tiled - whole)
  print(f"\nCBAM SINSR (random init) tiled vs whole-image: max {deviation.max():.2e}, "
        f"mean {deviation.mean():.2e}")
  assert np.isfinite(deviation).all() and deviation.max() < 0.05


# --- files: formats, channels, databar ----------------------------------------------------

def _bicubic_model(scale: int = 2, channels: int = 1) -> upscaling.Model:
  return upscaling.Model(lambda x: degradations.bicubic_upscale(x, scale), scale, channels)


def _nearest_model(scale: int = 2) -> upscaling.Model:
  return upscaling.Model(lambda x: np.repeat(np.repeat(x, scale, 1), scale, 2), scale, 1)


def _smooth(height, width, seed=0) -> np.ndarray:
  """A smooth frame in [0.1, 0.9] (bicubic does not overshoot out of [0, 1] on it)."""
  y, x = np.mgrid[0:height, 0:width] / 7.0
  phase = np.random.default_rng(seed).random()
  return (0.5 + 0.4 * np.sin(x + phase) * np.cos(0.7 * y)).astype(np.float32)


def _save(path, pixels):
  if str(path).endswith((".tif", ".tiff")):
    tifffile.imwrite(path, pixels)
  elif pixels.dtype == np.uint16:
    cv2.imwrite(str(path), pixels)
  else:
    Image.fromarray(pixels).save(path, quality=95)


@pytest.mark.parametrize("name,dtype", [("a.png", np.uint8), ("a.tif", np.uint16),
                                        ("a.png", np.uint16), ("a.jpg", np.uint8),
                                        ("a.tiff", np.float32), ("a.bmp", np.uint8)])
def test_round_trip_keeps_pixel_type_format_and_scales_the_shape(tmp_path, name, dtype):
  unit = _smooth(24, 36)
  if dtype == np.float32:
    pixels = (unit * 2000.0 - 500.0).astype(np.float32)  # physical units, not [0, 1]
  else:
    pixels = np.round(unit * np.iinfo(dtype).max).astype(dtype)
  source = tmp_path / name
  _save(source, pixels)
  dest = upscaling.output_path(str(source), str(tmp_path / "out"), 2)
  os.makedirs(tmp_path / "out")
  upscaling.upscale_file(str(source), dest, _bicubic_model(), upscaling.Settings())
  expected_suffix = ".png" if name.endswith(".bmp") else os.path.splitext(name)[1]
  assert dest.endswith(f"a_x2{expected_suffix}")
  out = micrographs.read(dest)
  assert out.pixels.dtype == dtype and out.pixels.shape == (48, 72, 1)
  assert out.format == {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg"}[
      expected_suffix]
  source_unit = micrographs.model_input(micrographs.read(str(source)), 1)
  expected = np.clip(degradations.bicubic_upscale(source_unit, 2), 0, 1)  # clipped as stored
  got = micrographs.to_unit(out.pixels, micrographs.read(str(source)).value_range)
  lo, hi = micrographs.read(str(source)).value_range  # 16 bits: the frame's own range
  tolerance = 1e-5 if dtype == np.float32 else 0.6 / (hi - lo)
  if name.endswith(".jpg"):
    tolerance = 4 / 255  # JPEG's own loss at quality 95
  assert np.abs(got - expected).max() <= tolerance


def test_float_tiff_maps_back_to_its_own_range(tmp_path):
  pixels = (_smooth(20, 20) * 1e-3 + 5e-3).astype(np.float32)
  tifffile.imwrite(tmp_path / "f.tif", pixels)
  upscaling.upscale_file(str(tmp_path / "f.tif"), str(tmp_path / "f_x2.tif"),
                         _bicubic_model(), upscaling.Settings())
  out = tifffile.imread(tmp_path / "f_x2.tif")
  assert out.dtype == np.float32 and out.shape == (40, 40)
  assert pixels.min() <= out.min() and out.max() <= pixels.max()
  assert abs(out.mean() - pixels.mean()) < 1e-5


def test_rgb_becomes_one_luma_channel_for_a_gray_model_and_stays_rgb_for_an_rgb_one(tmp_path):
  rgb = np.stack([_smooth(16, 20, seed) for seed in range(3)], -1)
  pixels = np.round(rgb * 255).astype(np.uint8)
  Image.fromarray(pixels).save(tmp_path / "c.png")
  micrograph = micrographs.read(str(tmp_path / "c.png"))
  gray = upscaling.upscale_pixels(micrograph, _nearest_model(), upscaling.Settings(), np.uint8)
  assert gray.shape == (32, 40, 1)
  np.testing.assert_array_equal(gray[::2, ::2], to_gray(pixels))
  color = upscaling.upscale_pixels(micrograph, upscaling.Model(
      lambda x: np.repeat(np.repeat(x, 2, 1), 2, 2), 2, 3), upscaling.Settings(), np.uint8)
  np.testing.assert_array_equal(color[::2, ::2], pixels)
  micrograph = micrographs.Micrograph.of(to_gray(pixels), "png")  # gray into an RGB model
  gray = upscaling.upscale_pixels(micrograph, upscaling.Model(
      lambda x: np.repeat(np.repeat(x, 2, 1), 2, 2), 2, 3), upscaling.Settings(), np.uint8)
  np.testing.assert_array_equal(gray[::2, ::2], to_gray(pixels))


def _frame_with_databar() -> np.ndarray:
  """An 8-bit SEM-like frame: texture above a white databar with black text-like marks."""
  rng = np.random.default_rng(1)
  frame = rng.integers(40, 200, (64, 80, 1), dtype=np.uint8)
  frame[52:] = 255
  for x in range(6, 70, 9):  # "characters", with the bar's top and bottom rows left clean
    frame[55:61, x:x + 5] = 0
  return frame


@pytest.mark.parametrize("mode,height", [("keep", 64), ("crop", 52), ("none", 64)])
def test_databar_kept_bicubic_cropped_or_ignored(mode, height):
  frame = _frame_with_databar()
  micrograph = micrographs.Micrograph.of(frame, "png")
  assert upscaling.databar_row(micrograph, mode) == (64 if mode == "none" else 52)
  out = upscaling.upscale_pixels(micrograph, _nearest_model(), upscaling.Settings(databar=mode),
                                 np.uint8)
  assert out.shape == (height * 2, 160, 1)
  np.testing.assert_array_equal(out[:104:2, ::2], frame[:52])  # the image: the model
  bar = out[104:]
  if mode == "keep":  # the bar alone, MATLAB-bicubic: legible, no model artefacts
    expected = degradations.bicubic_upscale(frame[52:].astype(np.float32) / 255, 2)
    np.testing.assert_array_equal(bar, np.floor(np.clip(expected, 0, 1) * 255 + 0.5))
  elif mode == "none":
    np.testing.assert_array_equal(bar[::2, ::2], frame[52:])


def test_write_is_atomic(tmp_path):
  def fail_halfway(f):
    f.write(b"partial")
    raise OSError(28, "No space left on device")

  with pytest.raises(OSError):
    micrographs.write_atomic(str(tmp_path / "x.png"), fail_halfway)
  assert os.listdir(tmp_path) == []
  micrographs.write_atomic(str(tmp_path / "x.png"), lambda f: f.write(b"ok"))
  assert os.listdir(tmp_path) == ["x.png"]


def test_reader_messages():
  with pytest.raises(MicrographError, match="not a supported image type \\(.txt\\)"):
    micrographs.read("notes.txt")


# --- the command line ---------------------------------------------------------------------

def _upscale(*args, cwd):
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  return subprocess.run([sys.executable, "-m", "sinsr_jax.upscale", *map(str, args)], cwd=cwd,
                        env=env, capture_output=True, text=True, timeout=300)


def _errors(result) -> list[str]:
  return [line for line in result.stderr.splitlines() if line.strip()]


def _jpeg_bytes(height, width) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.round(_smooth(height, width) * 255).astype(np.uint8)).save(buffer, "JPEG")
  return buffer.getvalue()


@pytest.mark.slow
def test_cli_reports_each_bad_input_once_and_upscales_the_rest(tmp_path, ledger):
  ledger.tried("micrograph", 8)
  src = tmp_path / "in"
  src.mkdir()
  Image.fromarray(np.round(_smooth(20, 30) * 255).astype(np.uint8)).save(src / "good.png")
  tifffile.imwrite(src / "good16.tif", np.round(_smooth(20, 30) * 65535).astype(np.uint16))
  (src / "empty.png").write_bytes(b"")
  (src / "truncated.jpg").write_bytes(_jpeg_bytes(64, 64)[:400])
  (src / "text.tif").write_text("not an image\n")
  Image.fromarray(np.zeros((1, 1), np.uint8)).save(src / "tiny.png")
  tifffile.imwrite(src / "pages.tif", np.zeros((3, 16, 16), np.uint8), photometric="minisblack")
  nan = _smooth(16, 16)
  nan[3, 4] = np.nan
  tifffile.imwrite(src / "nan.tif", nan)
  result = _upscale("--run=bicubic", "--scale=2", "--out=out", "in", "missing.tif",
                    "in/none*.png", cwd=tmp_path)
  assert result.returncode == 1, result.stderr
  assert "Traceback" not in result.stderr
  errors = _errors(result)
  expected = {
      "in/empty.png": "empty file (0 bytes)",
      "in/truncated.jpg": "not a readable JPEG image (OSError: image file is truncated",
      "in/text.tif": "not a readable TIFF file (TiffFileError: not a TIFF file",
      "in/tiny.png": "image is 1x1 px; too small for the model: the minimum is 8x8 px",
      "in/pages.tif": "multi-page TIFF (3 pages)",
      "in/nan.tif": "float TIFF has non-finite pixels (1 NaN); the model needs finite values",
      "missing.tif": "no such file or folder",
      "in/none*.png": "no image file matches",
  }
  assert len(errors) == len(expected), errors
  for path, message in expected.items():
    assert any(e.startswith(f"error: {path}: {message}") for e in errors), (path, errors)
  assert sorted(os.listdir(tmp_path / "out")) == [  # each output and its sidecar; no parts
      "good16_x2.tif", "good16_x2.tif.json", "good_x2.png", "good_x2.png.json"]
  assert tifffile.imread(tmp_path / "out/good16_x2.tif").shape == (40, 60)
  lines = result.stdout.strip().splitlines()
  assert lines[-1].startswith("2 upscaled, 8 failed in ")
  assert lines[-1].endswith("pixel size unknown (--pixel-size sets it)")
  assert sorted(line.split(" -> ")[0] for line in lines[:-1]) == ["in/good.png", "in/good16.tif"]
  # Existing outputs are kept unless --overwrite; folders recurse on request only.
  (src / "sub").mkdir()
  (src / "sub/deep.jpg").write_bytes(_jpeg_bytes(16, 16))
  again = _upscale("--run=bicubic", "--scale=2", "--out=out", "--recursive",
                   "in/good.png", "in/sub", cwd=tmp_path)
  assert again.returncode == 1
  assert _errors(again) == ["error: in/good.png: out/good_x2.png exists; pass --overwrite to "
                            "replace it"]
  assert (tmp_path / "out/deep_x2.jpg").exists()
  replaced = _upscale("--run=bicubic", "--scale=2", "--out=out", "--overwrite", "--format=tif",
                      "in/good.png", "in/good.png", cwd=tmp_path)
  assert replaced.returncode == 0, replaced.stderr
  assert tifffile.imread(tmp_path / "out/good_x2.tif").dtype == np.uint8
  assert replaced.stdout.splitlines()[-1].startswith("1 upscaled, 0 failed")  # once


def test_cli_unwritable_output_folder_and_bad_flags_stop_up_front(tmp_path, ledger):
  ledger.tried("upscale output folder / flags")
  Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
  (tmp_path / "file").write_text("")
  result = _upscale("--run=bicubic", "--scale=2", "--out=file/sub", "a.png", cwd=tmp_path)
  assert result.returncode == 1
  assert _errors(result) == ["error: output folder file/sub is not writable: Not a directory"]
  for args, fragment in [
      (["--run=bicubic", "--out=o", "a.png"], "--run=bicubic needs --scale=2, 3 or 4"),
      (["--run=bicubic", "--scale=2", "--out=o", "--tile=64", "a.png"],
       "tile (64) must be at least 2 * context + 2 * blend = 96"),
      (["--run=bicubic", "--scale=2", "--out=o", "--databar=maybe", "a.png"], "databar"),
      (["--run=bicubic", "--scale=2", "--out=o", "--nope", "a.png"], "nope"),
      (["--run=bicubic", "--scale=2", "--out=o"], "no INPUT given"),
      (["--run=no_such_run", "--out=o", "a.png"], "run folder no_such_run not found"),
  ]:
    result = _upscale(*args, cwd=tmp_path)
    errors = _errors(result)
    assert result.returncode == (1 if "no_such_run" in args[0] else 2), (args, result.stderr)
    assert len(errors) == 1 and errors[0].startswith("error: ") and fragment in errors[0], errors
  assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []
