"""Every baseline's quick config trains (pixel-loss and GAN phases) and reports against bicubic."""

import importlib.util
import json
import math

import pytest

from conftest import REPO

TINY = {
    "bicubic": {},
    "vdsr": {"model": {"width": 8, "depth": 4}},
    "srresnet": {"model": {"width": 8, "num_blocks": 1}},
    "srgan": {"model": {"width": 8, "num_blocks": 1}, "discriminator": {"width": 4}},
    "esrgan": {"model": {"width": 8, "num_blocks": 1, "growth": 4},
               "discriminator": {"width": 4}},
    "spsr": {"model": {"width": 8, "num_blocks": 1, "growth": 4}, "discriminator": {"width": 4}},
    "swinir": {"model": {"embed_dim": 8, "depths": (1,), "heads": 2, "window": 4}},
    "dsrvae": {"model": {"width": 8, "latent": 4, "num_blocks": 1},
               "discriminator": {"width": 4, "stage_widths": (8, 8, 16, 16)}},
}


def quick_config(name: str):
  """``configs/baselines/<name>.py:quick``, read from its file as the command line reads it."""
  spec = importlib.util.spec_from_file_location(
      f"baseline_{name}", REPO / "configs" / "baselines" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("quick")


# In-process: the command line is the same for every config and is tested on SINSR's in
# test_cli; a process per baseline only added its imports (TensorFlow, JAX: ~6 s each).
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_model_trains_from_its_quick_config(name, tiny_data_dir, tmp_path):
  from sinsr_jax.training import train

  config = quick_config(name)
  config.data.update(builder_config="tiny", data_dir=tiny_data_dir, patch_size=32,
                     num_workers=0, eval_max_images=2)
  config.train.update(batch_size=4, num_steps=2, pretrain_steps=1)
  for section, values in TINY[name].items():
    config[section].update(values)
  train.train_and_evaluate(config, str(tmp_path))
  record = json.loads((tmp_path / "metrics.json").read_text())
  assert record["step"] == (0 if name == "bicubic" else 2)
  assert math.isfinite(record["psnr_db"]) and math.isfinite(record["ssim"])  # two steps only
  if name == "bicubic":  # the model is bicubic: it scores exactly as the reference
    assert record["psnr_db"] == pytest.approx(record["bicubic_psnr_db"], abs=1e-3)
