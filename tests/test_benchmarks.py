"""The benchmark scripts run end to end on a tiny setting (no timing is asserted)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_input_pipeline_benchmark_runs(tiny_data_dir, tmp_path):
  out = tmp_path / "pipeline.json"
  result = subprocess.run(
      [sys.executable, "benchmarks/input_pipeline.py", "--config=configs/sinsr.py:quick",
       "--config.data.builder_config=tiny", f"--config.data.data_dir={tiny_data_dir}",
       "--config.data.patch_size=32", "--config.data.num_workers=1",
       "--config.model.stem_width=8", "--config.model.width=8", "--config.model.growth=4",
       "--config.model.attention=none",  # the input pipeline is under test, not the model
       "--config.discriminator.width=4", "--config.discriminator.stage_widths=(8,8,16,16)",
       "--config.train.batch_size=4", "--batches=3", "--steps=1", f"--out={out}"],
      cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads(out.read_text())
  assert saved["pipeline_patches_per_s"] > 0
  assert set(saved["step_patches_per_s"]) == {"pretrain", "gan"}
  assert "pipeline / fastest step" in result.stdout


@pytest.mark.slow
def test_model_table_runs_and_counts_parameters(tmp_path):
  out = tmp_path / "table.json"
  result = subprocess.run(
      [sys.executable, "benchmarks/model_table.py", "--models=vdsr,esrgan,bicubic",
       "--lr_size=16", f"--out={out}"],
      cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = {r["model"]: r for r in json.loads(out.read_text())["rows"]}
  assert rows["esrgan"]["params_3ch"] == 16_697_987 and rows["vdsr"]["params_1ch"] == 665_921
  # VDSR at 64x64 HR (16x16 LR, x4): 20 convs over 4096 pixels, 2 FLOPs per multiply-add.
  macs = 4096 * (9 * 64 + 18 * 9 * 64 * 64 + 9 * 64)
  assert rows["vdsr"]["gflops_1ch"] == pytest.approx(2 * macs / 1e9, rel=0.05)
  assert "| `esrgan` | 16,695,681 | 16,697,987 |" in result.stdout


@pytest.mark.slow
def test_loss_terms_benchmark_runs(tmp_path):
  out = tmp_path / "terms.json"
  result = subprocess.run(
      [sys.executable, "benchmarks/loss_terms.py", "--config=configs/sinsr.py:quick",
       "--config.data.patch_size=32", "--config.train.batch_size=4",
       "--config.train.num_steps=3", "--config.train.pretrain_steps=1",
       "--config.model.stem_width=8", "--config.model.width=8", "--config.model.growth=4",
       "--config.model.attention=none",  # the loss is under test: CBAM would double the compiles
       "--config.discriminator.width=4", "--config.discriminator.stage_widths=(8,8,16,16)",
       "--vgg_widths=4,8,8,8,8", "--repeats=1", f"--out={out}"],
      cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads(out.read_text())
  assert set(saved["term_ms"]) == {"pixel", "perceptual", "ssim", "gradient", "second_order",
                                   "tv", "auxiliary", "gradient_pixel"}
  assert saved["term_over_pixel"]["pixel"] == 1.0
  assert set(saved["gan_steps_per_s"]) == {"without_perceptual", "with_perceptual"}
  assert "GAN step:" in result.stdout


@pytest.mark.slow
def test_upscale_benchmark_runs_one_process_per_image(tmp_path):
  out = tmp_path / "upscale.json"
  result = subprocess.run(
      [sys.executable, "benchmarks/upscale.py", "--tiny", f"--out={out}"],
      cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads(out.read_text())
  assert [r["size"] for r in saved["runs"]] == ["96x64", "192x128"]
  for r in saved["runs"]:
    assert r["wall_s"] > 0 and r["out_mp_per_s"] > 0 and 0 < r["peak_rss_gb"] < 3
  assert saved["runs"][1]["out_megapixels"] == 4 * saved["runs"][0]["out_megapixels"]
  assert "| LR frame | tiles |" in result.stdout


def _run_benchmark(*args, timeout=900):
  # One CPU device, as a user's machine has (the suite simulates 4).
  flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=4", "")
  return subprocess.run([sys.executable, *args], cwd=REPO,
                        env={**os.environ, "PYTHONPATH": str(REPO), "XLA_FLAGS": flags},
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_conv_stack_benchmark_compares_xla_variants_with_torch(tmp_path):
  pytest.importorskip("torch", reason="the reference needs CPU torch (pip install -e .[torch])")
  out = tmp_path / "conv.json"
  result = _run_benchmark("benchmarks/conv_stack.py", "--tiny", "--variants=default,torch_eager",
                          f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads(out.read_text())
  for name in ("default", "torch_eager"):
    assert saved["variants"][name]["step_s"] > 0, saved["variants"][name]
  assert saved["variants"]["default"]["speed_vs_torch"] > 0
  assert "| default |" in result.stdout and "vs best torch" in result.stdout


@pytest.mark.slow
def test_train_step_benchmark_runs_jax_and_torch_side_by_side(tmp_path):
  pytest.importorskip("torch", reason="the reference needs CPU torch (pip install -e .[torch])")
  out = tmp_path / "steps.json"
  result = _run_benchmark("benchmarks/train_step.py", "--tiny", "--models=esrgan",
                          "--torch=eager", "--steps=1", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  (row,) = json.loads(out.read_text())["rows"]
  # The same architecture on both sides: equal generator parameter counts.
  assert row["jax"]["g_params"] == row["torch_eager"]["g_params"] > 0
  assert row["jax_over_torch_eager"] > 0
  assert "JAX / torch eager" in result.stdout


def test_torch_reference_models_match_the_jax_parameter_counts():
  pytest.importorskip("torch", reason="the reference needs CPU torch (pip install -e .[torch])")
  import jax
  import jax.numpy as jnp

  sys.path.insert(0, str(REPO / "benchmarks"))
  import train_step

  from sinsr_jax.training import train

  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))  # noqa: E731
  for model in ("sinsr", "esrgan"):
    config = train_step.load_config(model, "paper", train_step._parse([]))
    g, ds = train.build_models(config)
    p, s, c = config.data.patch_size, config.data.scale, config.model.channels
    lr, hr = jnp.zeros((1, p // s, p // s, c)), jnp.zeros((1, p, p, c))
    g_params = jax.eval_shape(g.init, jax.random.key(0), lr)["params"]
    d_params = jax.eval_shape(ds["image"].init, jax.random.key(0), lr, hr)["params"]
    torch_g, torch_d = train_step.torch_models(model, config)
    assert count(g_params) == sum(p.numel() for p in torch_g.parameters()), model
    assert count(d_params) == sum(p.numel() for p in torch_d.parameters()), model


@pytest.mark.slow
def test_inference_benchmark_runs_jax_and_torch_side_by_side(tmp_path):
  pytest.importorskip("torch", reason="the reference needs CPU torch (pip install -e .[torch])")
  out = tmp_path / "inference.json"
  result = _run_benchmark("benchmarks/inference.py", "--tiny", "--models=sinsr",
                          "--widths=quick", "--torch=eager", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  (row,) = json.loads(out.read_text())["rows"]
  assert row["output_mpix"] == pytest.approx((16 * 4) ** 2 / 1e6)
  assert row["jax"]["mpix_per_s"] > 0 and row["jax_over_torch_eager"] > 0


@pytest.mark.slow
def test_compile_time_benchmark_measures_each_layout_in_its_own_process(tmp_path):
  out = tmp_path / "compile.json"
  result = _run_benchmark("benchmarks/compile_time.py", "--models=esrgan", "--widths=quick",
                          "--what=inference", "--layouts=remat", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  (row,) = json.loads(out.read_text())["results"]
  assert row["layout"] == "remat" and row["compile_s"] > 0
  assert row["peak_rss_gb"] >= row["base_gb"] > 0  # the child's own high-water mark
  assert "esrgan | quick | inference | remat |" in result.stdout
  typo = _run_benchmark("benchmarks/compile_time.py", "--layouts=scaned", f"--out={out}")
  assert typo.returncode == 1
  assert typo.stderr.strip() == "--layouts: unknown scaned (known: scan, unrolled, remat)"
