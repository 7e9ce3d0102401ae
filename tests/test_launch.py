"""launch/: the TPU VM path (dry run), the SLURM script, and sweeps that run and gather."""

import json
import os
import shlex
import subprocess
import sys

import pytest
from test_cli import _tiny_flags

from conftest import REPO

sys.path.insert(0, str(REPO / "launch"))
import sweep  # noqa: E402  (launch/sweep.py)


def _launch(script, *args, timeout=60):
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  return subprocess.run([sys.executable, str(REPO / "launch" / script), *args], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=timeout)


def _steps(stdout: str) -> dict[str, list[list[str]]]:
  steps, current = {}, None
  for line in stdout.splitlines():
    if line.startswith("# "):
      current = line[2:]
    else:
      steps.setdefault(current, []).append(shlex.split(line))
  return steps


@pytest.mark.parametrize("accelerator", ["v4-8", "v4-32"])
def test_tpu_vm_dry_run_prints_the_whole_path(accelerator):
  done = _launch("tpu_vm.py", "all", "--name=sr", "--zone=us-central2-b", f"--type={accelerator}",
                 "--repo=https://example.org/sinsr_jax.git", "--ref=v1", "--spot",
                 "--config=configs/sinsr.py:quick", "--workdir=gs://bucket/runs/a",
                 "--data_dir=gs://bucket/tfds", "--set=train.batch_size=64", "--dry-run")
  assert done.returncode == 0, done.stderr
  steps = _steps(done.stdout)
  assert list(steps) == ["create", "install", "train", "wait", "copy", "delete"]
  create = steps["create"][0]
  assert create[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"]
  assert f"--accelerator-type={accelerator}" in create and "--spot" in create
  assert "--zone=us-central2-b" in create
  install, train = steps["install"][0], steps["train"][0]
  for command in (install, train):  # every worker of the slice runs the same command
    assert command[4] == "ssh" and "--worker=all" in command
  install_script = next(a for a in install if a.startswith("--command="))
  assert "git clone https://example.org/sinsr_jax.git" in install_script
  assert "git checkout v1" in install_script
  assert "pip install -q -e '.[tpu,gcs]'" in install_script
  train_script = next(a for a in train if a.startswith("--command="))[len("--command="):]
  assert train_script.startswith("cd ~/sinsr_jax && rm -f ~/train.exit && (nohup sh -c ")
  payload = shlex.split(train_script.split("nohup sh -c ", 1)[1].split(" > ~/train.log", 1)[0])
  main_args = shlex.split(payload[0].split(";", 1)[0])
  assert main_args[:3] == ["~/venv/bin/python", "-m", "sinsr_jax.main"]
  assert main_args[3:] == ["--config=configs/sinsr.py:quick", "--workdir=gs://bucket/runs/a",
                           "--distributed", "--config.data.data_dir=gs://bucket/tfds",
                           "--config.train.batch_size=64", "--exit_code_when_stopped=75"]
  assert "sinsr-status" in steps["wait"][0][-2] and "--worker=all" in steps["wait"][0]
  assert steps["copy"][0] == ["gcloud", "storage", "cp", "--recursive", "gs://bucket/runs/a",
                              "runs/"]
  assert steps["delete"][0][4:6] == ["delete", "sr"] and "--quiet" in steps["delete"][0]


def test_tpu_vm_local_workdir_is_copied_from_worker_0_and_repo_is_required():
  done = _launch("tpu_vm.py", "copy", "--name=sr", "--zone=z", "--workdir=runs/a", "--to=back/",
                 "--dry-run")
  assert done.returncode == 0
  copy = _steps(done.stdout)["copy"][0]
  assert copy[4:8] == ["scp", "--recurse", "sr:runs/a", "back/"] and "--worker=0" in copy
  missing = _launch("tpu_vm.py", "install", "--name=sr", "--zone=z", "--repo=", "--dry-run")
  assert missing.returncode == 2 and "--repo=URL is needed" in missing.stderr
  spot = _launch("tpu_vm.py", "all", "--name=sr", "--zone=z", "--repo=r", "--spot",
                 "--workdir=runs/a", "--dry-run")
  assert spot.returncode == 2 and "--spot needs --workdir=gs://" in spot.stderr


def test_slurm_script_is_valid_bash_and_uses_the_distributed_runtime():
  script = REPO / "launch" / "slurm_gpu.sbatch"
  assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
  text = script.read_text()
  assert "srun python -m sinsr_jax.main" in text and "--distributed" in text
  for directive in ("#SBATCH --requeue", "#SBATCH --signal=TERM@300"):
    assert directive in text


@pytest.mark.parametrize("srun_exit, restarts, exit_code, requeued", [
    (0, 0, 0, False),  # finished
    (75, 0, 0, True),  # stopped with a checkpoint (time limit): requeued, resumes
    (75, 20, 75, False),  # stopped, but requeued MAX_REQUEUES times already
    (1, 0, 1, False),  # failed: not requeued
])
def test_slurm_script_requeues_a_stopped_run_only(tmp_path, srun_exit, restarts, exit_code,
                                                   requeued):
  bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
  bin_dir.mkdir()
  for name, status in (("srun", srun_exit), ("scontrol", 0)):
    fake = bin_dir / name
    fake.write_text(f'#!/bin/bash\necho "{name} $*" >> {calls}\nexit {status}\n')
    fake.chmod(0o755)
  env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
         "SLURM_JOB_ID": "42", "SLURM_RESTART_COUNT": str(restarts),
         "SLURM_SUBMIT_DIR": str(tmp_path)}
  done = subprocess.run(["bash", str(REPO / "launch" / "slurm_gpu.sbatch"), "configs/sinsr.py",
                         "gs://b/runs/a", "--config.train.num_steps=9"], env=env,
                        capture_output=True, text=True, timeout=60)
  assert done.returncode == exit_code, done.stderr
  lines = calls.read_text().splitlines()
  assert lines[0] == ("srun python -m sinsr_jax.main --config=configs/sinsr.py "
                      "--workdir=gs://b/runs/a --distributed --exit_code_when_stopped=75 "
                      "--config.train.num_steps=9")
  assert (lines[1:] == ["scontrol requeue 42"]) == requeued and len(lines) <= 2


def test_sweep_grids_emit_one_command_per_run():
  ablation = sweep.commands("ablations", "runs/abl", "quick")
  assert list(ablation) == list(sweep.ablations.ABLATIONS)
  assert ablation["no_ssim"][3:] == ["--config=configs/ablations.py:no_ssim,quick",
                                     "--workdir=runs/abl/no_ssim"]
  study = sweep.commands("study", "runs/s", "quick", overrides=("train.num_steps=300",))
  assert {"sinsr", "sinsr_gradient_branch", "esrgan", "spsr", "srgan", "srresnet", "vdsr",
          "swinir", "dsrvae", "bicubic"} == set(study)
  assert study["sinsr_gradient_branch"][3] == "--config=configs/sinsr.py:gradient_branch,quick"
  assert study["esrgan"][3:] == ["--config=configs/baselines/esrgan.py:quick",
                                 "--workdir=runs/s/esrgan", "--config.train.num_steps=300"]
  emitted = _launch("sweep.py", "study", "--variants=quick", "--only=sinsr,vdsr", "--emit")
  lines = emitted.stdout.strip().splitlines()
  assert emitted.returncode == 0 and len(lines) == 3
  assert lines[-1] == ("python -m sinsr_jax.evaluate --run=runs/study --split=test "
                       "--out=runs/study/evaluation")
  unknown = _launch("sweep.py", "study", "--only=nope", "--emit")
  assert unknown.returncode != 0 and "nope not in the study grid" in unknown.stderr


@pytest.mark.slow
def test_sweep_runs_records_provenance_and_gathers_a_table(tiny_data_dir, tmp_path):
  # bicubic: the sweep's run-and-gather path without a training to wait for (the study's
  # trainings: tests/test_study.py).
  sets = [f"--set={f[len('--config.'):]}" for f in _tiny_flags(tiny_data_dir)[1:]
          if f.startswith("--config.data.")]
  done = _launch("sweep.py", "study", "--variants=quick", f"--root={tmp_path}",
                 "--only=bicubic", *sets, "--evaluate", "--split=validation", timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "[1/1] bicubic done" in done.stdout
  info = json.loads((tmp_path / "bicubic" / "run_info.json").read_text())
  assert info["seed"] == 0 and len(info["git_commit"]) >= 7
  assert info["versions"]["jax"] and len(info["starts"]) == 1
  assert json.loads((tmp_path / "bicubic" / "config.json").read_text())["model"]["name"] == (
      "bicubic")
  assert "| bicubic |" in (tmp_path / "evaluation" / "results.md").read_text()
  results = json.loads((tmp_path / "evaluation" / "results.json").read_text())
  assert results["runs"]["bicubic"]["workdir"] == str(tmp_path / "bicubic")  # the run is the
  assert list(results["params"]) == ["bicubic"]  # reference: scored once
