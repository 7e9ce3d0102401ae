"""The command line as a user meets it: a tiny real run, and one clear line for each mistake."""

import os
import subprocess
import sys

import pytest

from conftest import REPO


def _main(*args, env=None):
  # os.environ carries the suite's compilation cache (conftest): same steps, no second compile.
  env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
  return subprocess.run([sys.executable, "-m", "sinsr_jax.main", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def _tiny_flags(data_dir):
  return ["--config=configs/sinsr.py:quick", "--config.data.builder_config=tiny",
          f"--config.data.data_dir={data_dir}", "--config.data.patch_size=32",
          "--config.data.num_workers=0", "--config.data.eval_max_images=2",
          "--config.model.stem_width=8", "--config.model.width=8", "--config.model.growth=4",
          "--config.model.attention=none",
          "--config.discriminator.width=4", "--config.discriminator.stage_widths=(8,8,16,16)",
          "--config.train.batch_size=4", "--config.train.num_steps=2",
          "--config.train.pretrain_steps=1"]


@pytest.mark.slow
def test_cli_trains_and_reports_against_bicubic(tiny_data_dir, tmp_path):
  # The default model, CBAM attention on: the one end-to-end training of it in the suite.
  flags = [*_tiny_flags(tiny_data_dir), "--config.model.attention=cbam"]
  result = _main(*flags, f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "SR PSNR" in result.stdout and "bicubic PSNR" in result.stdout
  assert (tmp_path / "metrics.json").exists()
  evaluated = _main(*flags, f"--workdir={tmp_path}", "--mode=evaluate")
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert "step 2:" in evaluated.stdout


def _assert_one_clear_error(result, status, *fragments):
  assert result.returncode == status, (result.returncode, result.stderr[-2000:])
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: "), last
  for fragment in fragments:
    assert fragment in last, last


@pytest.mark.parametrize("args,status,fragments", [
    (["--config.model.wdth=3"], 2, ["--config.model.wdth", "valid keys of config.model",
                                     "width"]),
    (["--config.modl.width=3"], 2, ["--config.modl", "data, discriminator, loss, model"]),
    (["--config.model.width=abc"], 2, ["--config.model.width=abc"]),
    (["--config.data.scale=5"], 1, ["cannot upscale x5", "x2, x3, x4"]),
    (["--config.data.patch_size=66"], 1, ["patch_size=66", "not divisible by data.scale=4"]),
    (["--config.train.batch_size=6"], 1, ["batch_size=6", "4 devices"]),
    (["--config.loss.weights.ssim=-1.0"], 1, ["loss.weights.ssim must be non-negative"]),
])
def test_bad_config_values(tmp_path, args, status, fragments, ledger):
  ledger.tried("config")
  result = _main("--config=configs/sinsr.py:quick", *args, f"--workdir={tmp_path}")
  _assert_one_clear_error(result, status, *fragments)


def test_unknown_variant_and_missing_config_file(tmp_path, ledger):
  ledger.tried("config")
  _assert_one_clear_error(_main("--config=configs/sinsr.py:quik", f"--workdir={tmp_path}"), 2,
                          "unknown config variant 'quik'", "quick")
  _assert_one_clear_error(_main("--config=configs/nope.py", f"--workdir={tmp_path}"), 2,
                          "configs/nope.py not found")


def test_unwritable_workdir_and_data_dir(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  _assert_one_clear_error(_main("--config=configs/sinsr.py:quick", f"--workdir={blocker}/run"),
                          1, "workdir", "not writable")
  _assert_one_clear_error(_main("--config=configs/sinsr.py:quick",
                                f"--config.data.data_dir={blocker}/data",
                                f"--workdir={tmp_path}/run"), 1, "data directory", "not writable")


def test_evaluate_without_a_checkpoint(tiny_data_dir, tmp_path):
  result = _main(*_tiny_flags(tiny_data_dir), f"--workdir={tmp_path}", "--mode=evaluate")
  _assert_one_clear_error(result, 1, "no checkpoint in", "train first")


@pytest.mark.parametrize("command,own_flags", [
    (["sinsr_jax.upscale"], ["--run:", "--out:", "--scale:", "--databar:", "--pixel-size:"]),
    (["sinsr_jax.evaluate"], ["--run:", "--split:", "--images:", "--out:", "--[no]bicubic"]),
    (["sinsr_jax.main"], ["--config:", "--workdir:", "--mode:"]),
    (["sinsr_jax.weights"], ["list", "convert", "verify"]),
    (["sinsr_jax.weights", "convert"], ["--cache-dir", "--file", "--no-download"]),
    (["tfds_sem.build"], ["--data_dir", "--manual_dir", "--path", "--split_percent"]),
])
def test_help_lists_the_commands_own_flags(command, own_flags):
  # absl's --help shows the flags of the __main__ module only; thin entry points must adopt
  # their command's flags or a newcomer's first command lists none.
  result = subprocess.run([sys.executable, "-m", *command, "--help"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode in (0, 1), result.stderr[-2000:]  # absl's --help exits with 1
  assert "Traceback" not in result.stderr
  missing = [flag for flag in own_flags if flag not in result.stdout]
  assert not missing, (missing, result.stdout[-2000:])
