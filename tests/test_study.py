"""launch/study.py: the stages' commands, the budgets, and the whole study at the smoke budget."""

import json
import sys

import pytest
from PIL import Image
from test_launch import _launch

from conftest import REPO

sys.path.insert(0, str(REPO / "launch"))
import study  # noqa: E402  (launch/study.py)


def _args(*argv):
  return study._parse(["train", *argv])


def _flag(argv, name):
  return next(x.split("=", 1)[1] for x in argv if x.startswith(f"--config.{name}="))


def test_cpu_budget_trains_every_model_and_ablation_on_one_step_budget():
  runs = study.runs(_args("--budget=cpu"))
  baselines = {"bicubic", "vdsr", "srresnet", "srgan", "esrgan", "spsr", "dsrvae", "swinir"}
  assert baselines | {"sinsr", "sinsr_gradient_branch"} <= set(runs)
  # The ablations shared with the study are trained once; no_perceptual changes nothing at the
  # quick budget (its perceptual weight is 0 already) and is not trained at all.
  assert {"no_adversarial", "no_gradient", "no_second_order", "no_ssim", "no_auxiliary",
          "fixed_weights"} <= set(runs)
  assert not {"full", "gradient_branch", "no_perceptual"} & set(runs)
  for name, argv in runs.items():
    assert _flag(argv, "train.num_steps") == "600", name
    assert argv[4] == f"--workdir=runs/study-cpu/runs/{name}"
  # Each run keeps its own pretrain : GAN proportion; pixel-only baselines never enter a GAN phase.
  assert _flag(runs["sinsr"], "train.pretrain_steps") == "510"  # quick: 850 of 1000
  for pixel_only in ("vdsr", "srresnet", "swinir"):
    assert _flag(runs[pixel_only], "train.pretrain_steps") == "600"
  assert runs["sinsr_gradient_branch"][3] == "--config=configs/sinsr.py:gradient_branch,quick"
  assert runs["no_ssim"][3] == "--config=configs/ablations.py:no_ssim,quick"


def test_paper_budget_keeps_each_papers_steps_and_real_data_goes_through_variants():
  runs = study.runs(_args("--budget=paper", "--data=nffa_sem", "--set=data.data_dir=/tfds"))
  assert runs["esrgan"][3] == "--config=configs/baselines/esrgan.py:data=nffa_sem"
  assert not any(x.startswith("--config.train.") for x in runs["esrgan"])
  assert runs["esrgan"][-1] == "--config.data.data_dir=/tfds"
  assert "no_perceptual" in runs  # the paper configs have the VGG19 term: the ablation counts
  folder = study.runs(_args("--budget=cpu", "--data=folder", "--path=/img", "--only=vdsr"))
  assert list(folder) == ["vdsr"]
  assert folder["vdsr"][3] == "--config=configs/baselines/vdsr.py:quick,data=folder,path=/img"


def test_evaluations_label_the_ablations_and_unknown_runs_are_refused():
  jobs = study.evaluations(study._parse(["evaluate", "--budget=cpu"]))
  study_runs = [x for x in jobs["study"] if x.startswith("--run=")]
  assert len(study_runs) == 10 and "--out=runs/study-cpu/evaluation/study" in jobs["study"]
  labels = [x[len("--label="):] for x in jobs["ablations"] if x.startswith("--label=")]
  runs = [x[len("--run="):] for x in jobs["ablations"] if x.startswith("--run=")]
  assert labels[0] == "full" and runs[0] == "runs/study-cpu/runs/sinsr"
  assert runs[labels.index("gradient_branch")] == "runs/study-cpu/runs/sinsr_gradient_branch"
  assert len(labels) == len(runs) == 8  # no no_perceptual at the quick budget
  bad = _launch("study.py", "train", "--only=sinsr,nope", "--emit")
  assert bad.returncode != 0 and "nope not in the study" in bad.stderr


def test_verdict_compares_the_best_sinsr_run_and_the_best_baseline_image_by_image():
  import numpy as np

  rng = np.random.default_rng(0)
  base = rng.uniform(20, 35, 30)  # image difficulty varies far more than the models differ

  def model(name, psnr_offset, gmsd):
    images = [{"psnr_db": p + psnr_offset, "gmsd": gmsd} for p in base]
    return name, images, {"model": name, "class": "all", "psnr_db": float(np.mean(base)) +
                          psnr_offset, "gmsd": gmsd, "time_ms": 1.0}

  models = [model("bicubic", -5.0, 0.15), model("sinsr", 0.3, 0.06),
            model("sinsr_gradient_branch", 0.1, 0.07), model("esrgan", 0.0, 0.04)]
  results = {"rows": [m[2] for m in models], "per_image": {m[0]: m[1] for m in models}}
  lines = study.verdict(results)
  # +0.3 dB on every image: far inside the spread of the images, but paired, a clear win.
  assert lines[0].startswith("- PSNR (dB): **SINSR ahead** — sinsr ")
  assert "best baseline esrgan" in lines[0] and "paired difference +0.3 ± " in lines[0]
  assert lines[1].startswith("- GMSD: **baseline ahead** — sinsr 0.06, best baseline esrgan 0.04")
  only = study.verdict(results, only="sinsr_gradient_branch")
  assert only[0].startswith("- PSNR (dB): **SINSR ahead** — sinsr_gradient_branch 2")
  noisy = rng.normal(0, 1, 30)  # sinsr = esrgan + noise: a tie
  results["per_image"]["sinsr"] = [{"psnr_db": p + n, "gmsd": 0.06}
                                   for p, n in zip(base, noisy - noisy.mean() + 0.05, strict=True)]
  assert study.verdict(results)[0].startswith("- PSNR (dB): tie — sinsr")
  del results["rows"][3], results["rows"][0]
  assert study.verdict(results) == []  # no baseline to compare with


@pytest.mark.slow
def test_smoke_study_runs_every_stage_from_the_command_line(tiny_data_dir, tmp_path):
  tiny = ["data.builder_config=tiny", f"data.data_dir={tiny_data_dir}", "data.patch_size=32",
          "data.num_workers=0", "data.eval_max_images=2", "model.stem_width=8", "model.width=8",
          "model.growth=4", "model.attention=none", "discriminator.width=4",
          "discriminator.stage_widths=(8,8,16,16)", "train.batch_size=4"]
  # 2 steps: the pixel-loss phase only (the GAN phase of every model: test_baselines, test_cli).
  common = ["--budget=smoke", "--steps=2", f"--root={tmp_path}/study",
            "--only=sinsr,bicubic,no_ssim",
            *[f"--set={s}" for s in tiny]]
  prepared = _launch("study.py", "prepare", *common, timeout=300)
  assert prepared.returncode == 0, prepared.stderr[-3000:]
  assert "sem_synthetic/tiny" in prepared.stdout and "train 16" in prepared.stdout
  out = tmp_path / "report"
  done = _launch("study.py", "all", *common, "--split=validation", "--lpips=none",
                 "--figures=1", f"--out={out}", timeout=1500)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
  assert "[1/3] sinsr: done" in done.stdout and "[3/3] no_ssim: done" in done.stdout
  for name in ("sinsr", "no_ssim"):
    record = json.loads((tmp_path / "study" / "runs" / name / "metrics.json").read_text())
    assert record["step"] == 2
    info = json.loads((tmp_path / "study" / "runs" / name / "run_info.json").read_text())
    assert len(info["git_commit"]) >= 7 and info["seed"] == 0
  study_table = (out / "study" / "results.md").read_text()
  assert "| bicubic |" in study_table and "| sinsr |" in study_table
  ablation_table = (out / "ablations" / "results.md").read_text()
  assert "| full |" in ablation_table and "| no_ssim |" in ablation_table
  results = json.loads((out / "study" / "results.json").read_text())
  assert {r["model"] for r in results["rows"]} == {"bicubic", "sinsr"}
  summary = (out / "SUMMARY.md").read_text()
  assert "python launch/study.py train --budget=smoke --steps=2" in summary
  assert "- PSNR (dB): " in summary and "Not trained: no_perceptual" in summary
  figures = sorted((out / "study" / "figures").glob("*.png"))
  assert figures and all(Image.open(f).width <= study.FIGURE_WIDTH for f in figures)
  # Started again, nothing is trained twice.
  again = _launch("study.py", "train", *common, timeout=300)
  assert again.returncode == 0 and again.stdout.count("finished already") == 3


@pytest.mark.parametrize("stage", ["evaluate", "report"])
def test_later_stages_say_what_is_missing(stage, tmp_path):
  done = _launch("study.py", stage, "--budget=smoke", f"--root={tmp_path}", "--only=bicubic,vdsr",
                 f"--out={tmp_path}/report", timeout=120)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1] == {
      "evaluate": f"error: not trained yet under {tmp_path}/runs: bicubic, vdsr; run the train "
                  "stage first (or leave them out with --only)",
      "report": f"error: no evaluation under {tmp_path}/evaluation; run the evaluate stage "
                "first"}[stage]
  assert not (tmp_path / "report").exists()


def test_one_set_list_shrinks_every_model_and_a_typo_is_refused():
  runs = study.runs(_args("--only=bicubic,vdsr", "--set=model.depth=4"))
  assert runs["vdsr"][-1] == "--config.model.depth=4"
  assert not any("model.depth" in x for x in runs["bicubic"])  # bicubic has no depth
  with pytest.raises(SystemExit, match="train.num_stepz: no run's config has it"):
    study.runs(_args("--set=train.num_stepz=4"))
