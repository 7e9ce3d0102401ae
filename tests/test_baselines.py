"""Every model of the zoo trains through the command line from its config (tiny settings)."""

import json
import math

import pytest
from test_cli import _main

TINY = {
    "configs/baselines/bicubic.py": [],
    "configs/baselines/vdsr.py": ["--config.model.width=8", "--config.model.depth=4"],
    "configs/baselines/srresnet.py": ["--config.model.width=8", "--config.model.num_blocks=1"],
    "configs/baselines/srgan.py": ["--config.model.width=8", "--config.model.num_blocks=1",
                                   "--config.discriminator.width=4"],
    "configs/baselines/esrgan.py": ["--config.model.width=8", "--config.model.num_blocks=1",
                                    "--config.model.growth=4", "--config.discriminator.width=4"],
    "configs/baselines/spsr.py": ["--config.model.width=8", "--config.model.num_blocks=2",
                                  "--config.model.growth=4", "--config.discriminator.width=4"],
    "configs/baselines/swinir.py": ["--config.model.embed_dim=8", "--config.model.depths=(1,)",
                                    "--config.model.heads=2", "--config.model.window=4"],
    "configs/baselines/dsrvae.py": ["--config.model.width=8", "--config.model.latent=4",
                                    "--config.model.num_blocks=1",
                                    "--config.discriminator.width=4",
                                    "--config.discriminator.stage_widths=(8,8,16,16)"],
}


# SINSR's own quick config trains through the command line in test_cli (and with every loss
# option in test_objective): each compile of it costs minutes of the suite.
@pytest.mark.slow
@pytest.mark.parametrize("config_file", sorted(TINY))
def test_model_trains_from_its_quick_config(config_file, tiny_data_dir, tmp_path):
  result = _main(f"--config={config_file}:quick", "--config.data.builder_config=tiny",
                 f"--config.data.data_dir={tiny_data_dir}", "--config.data.patch_size=32",
                 "--config.data.num_workers=0", "--config.data.eval_max_images=2",
                 "--config.train.batch_size=4", "--config.train.num_steps=2",
                 "--config.train.pretrain_steps=1", *TINY[config_file], f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  record = json.loads((tmp_path / "metrics.json").read_text())
  assert record["step"] == (0 if "bicubic" in config_file else 2)
  assert math.isfinite(record["psnr_db"]) and math.isfinite(record["ssim"])  # two steps only
  if "bicubic" in config_file:  # the model is bicubic: it scores exactly as the reference
    assert record["psnr_db"] == pytest.approx(record["bicubic_psnr_db"], abs=1e-3)
