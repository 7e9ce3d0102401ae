"""launch/study.py: the stages' commands, the budgets, and the whole study at the smoke budget."""

import hashlib
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_launch import _launch

from conftest import REPO

sys.path.insert(0, str(REPO / "launch"))
import study  # noqa: E402  (launch/study.py)


def _args(*argv):
  return study._parse(["train", *argv])


def _flag(argv, name):
  return next(x.split("=", 1)[1] for x in argv if x.startswith(f"--config.{name}="))


def _plan(*argv):
  a = _args(*argv)
  return {(r.name, r.seed): r for r in study.make_plan(a).runs}


def test_cpu_budget_trains_every_model_and_ablation_on_one_step_budget():
  runs = study.runs(_args("--budget=cpu"))
  baselines = {"bicubic", "vdsr", "srresnet", "srgan", "esrgan", "spsr", "dsrvae", "swinir"}
  assert baselines | {"sinsr", "sinsr_gradient_branch", "sinsr_pixel"} <= set(runs)
  # The ablations shared with the study are trained once; no_perceptual changes nothing at the
  # quick budget (its perceptual weight is 0 already) and is not trained at all.
  assert {"no_adversarial", "no_gradient", "no_second_order", "no_ssim", "no_auxiliary",
          "fixed_weights"} <= set(runs)
  assert not {"full", "gradient_branch", "no_perceptual"} & set(runs)
  for name, argv in runs.items():
    if name != "sinsr_pretrain":
      assert _flag(argv, "train.num_steps") == "600", name
    assert argv[4] == f"--workdir=runs/study-cpu/runs/{name}/seed0"
  # Each run keeps its own pretrain : GAN proportion; pixel-only baselines never enter a GAN phase.
  assert _flag(runs["sinsr"], "train.pretrain_steps") == "510"  # quick: 850 of 1000
  for pixel_only in ("vdsr", "srresnet", "swinir", "sinsr_pixel"):
    assert _flag(runs[pixel_only], "train.pretrain_steps") == "600"
  assert runs["sinsr_gradient_branch"][3] == "--config=configs/sinsr.py:gradient_branch,quick"
  assert runs["no_ssim"][3] == "--config=configs/ablations.py:no_ssim,quick"
  # The shared pixel-loss phase: trained first, to the GAN phase's start, and only once.
  assert list(runs)[0] == "sinsr_pretrain" and _flag(runs["sinsr_pretrain"],
                                                     "train.num_steps") == "510"


def test_converged_budget_seeds_phases_and_shared_pretraining():
  plan = _plan("--budget=converged")
  family = {"sinsr", "sinsr_pixel", "sinsr_gradient_branch", "no_adversarial", "no_gradient",
            "no_second_order", "no_ssim", "no_auxiliary", "fixed_weights"}
  for seed in (0, 1, 2):  # every SINSR run a verdict rests on, at three seeds
    assert {n for n, s in plan if s == seed} >= family | {"sinsr_pretrain"}
    config = study.study_plan.resolved(plan["sinsr", seed])
    assert config.seed == seed and config.train.num_steps == 1500
    assert config.data.name == "sem_synthetic:2.0.0"  # a later default version changes nothing
    # The structure-informed loss acts for at least 40% of the steps.
    assert (config.train.num_steps - config.train.pretrain_steps) / config.train.num_steps >= 0.4
  assert plan["sinsr", 1].folder(study.pathlib.Path("r")).as_posix() == "r/runs/sinsr/seed1"
  # Ablations differing only in the GAN-phase loss start from their seed's stem; the gradient
  # branch (another generator) and the baselines train from scratch.
  for name in family - {"sinsr_gradient_branch"}:
    assert plan[name, 2].stem == "sinsr_pretrain", name
  assert not plan["sinsr_gradient_branch", 0].stem and not plan["esrgan", 0].stem
  # Every GAN model gets the same GAN phase; the baselines past seed 0 wait for the choice.
  assert study.study_plan.resolved(plan["esrgan", 0]).train.pretrain_steps == 800
  assert ("esrgan", 1) not in plan and ("bicubic", 1) not in plan
  # Where VGG19 weights can be had, the perceptual term joins SINSR's runs (not the
  # baselines'), and no_perceptual, then a real ablation, keeps it off.
  vgg = _plan("--budget=converged", "--family_set=loss.weights.perceptual=(2.0,1.5)")
  resolved = study.study_plan.resolved
  assert resolved(vgg["sinsr", 0]).loss.weights.perceptual == (2.0, 1.5)
  assert resolved(vgg["no_perceptual", 1]).loss.weights.perceptual == (0.0,)
  assert resolved(vgg["esrgan", 0]).loss.weights.perceptual == (0.0,)
  assert ("no_perceptual", 0) not in plan
  chosen = {(r.name, r.seed) for r in study.make_plan(_args("--budget=converged"),
                                                      ["vdsr", "esrgan"]).runs}
  assert {("vdsr", 1), ("vdsr", 2), ("esrgan", 2)} <= chosen and ("spsr", 1) not in chosen


def test_a_run_is_finished_only_with_its_own_seed_and_config(tmp_path):
  # A finished seed-0 run in the folder of another seed, or with another loss weight, is not
  # taken for it (before, only the final step was compared).
  plan = _plan("--budget=smoke")
  run = plan["no_ssim", 0]
  folder = run.folder(tmp_path)
  folder.mkdir(parents=True)
  config = study.study_plan.resolved(run)
  (folder / "config.json").write_text(config.to_json_best_effort())
  (folder / "metrics.json").write_text(json.dumps({"step": 4}))
  assert study.study_plan.finished(run, tmp_path)
  config.seed = 1
  (folder / "config.json").write_text(config.to_json_best_effort())
  assert not study.study_plan.finished(run, tmp_path)
  config.seed, config.loss.weights.ssim = 0, (300.0, 350.0)
  (folder / "config.json").write_text(config.to_json_best_effort())
  assert study.study_plan.config_differences(run, tmp_path) == ["loss.weights.ssim"]
  config.loss.weights.ssim, config.data.data_dir = (0.0,), "/elsewhere"  # another machine's
  (folder / "config.json").write_text(config.to_json_best_effort())
  assert study.study_plan.finished(run, tmp_path)


def test_paper_budget_keeps_each_papers_steps_and_real_data_goes_through_variants():
  runs = study.runs(_args("--budget=paper", "--data=nffa_sem", "--set=data.data_dir=/tfds"))
  assert runs["esrgan"][3] == "--config=configs/baselines/esrgan.py:data=nffa_sem"
  assert not any(x.startswith("--config.train.") for x in runs["esrgan"])
  assert runs["esrgan"][-1] == "--config.data.data_dir=/tfds"
  assert "no_perceptual" in runs  # the paper configs have the VGG19 term: the ablation counts
  assert _flag(runs["sinsr_pretrain"], "train.num_steps") == "100000"
  folder = study.runs(_args("--budget=cpu", "--data=folder", "--path=/img", "--only=vdsr"))
  assert list(folder) == ["vdsr"]
  assert folder["vdsr"][3] == "--config=configs/baselines/vdsr.py:quick,data=folder,path=/img"


def test_unknown_runs_are_refused_in_one_line():
  bad = _launch("study.py", "train", "--only=sinsr,nope", "--emit")
  assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith(
      "error: nope not in the study; valid: sinsr, ")
  budget = _launch("study.py", "train", "--budget=huge", "--emit")
  assert budget.returncode == 2 and "invalid choice: 'huge'" in budget.stderr


def _frames_manifest(tmp_path, monkeypatch):
  import study_eval

  good, other = tmp_path / "src" / "good.tif", tmp_path / "src" / "changed.tif"
  good.parent.mkdir()
  good.write_bytes(b"a real frame")
  other.write_bytes(b"another file under the same name")
  manifest = tmp_path / "frames.json"
  manifest.write_text(json.dumps({"frames": [
      {"file": "good.tif", "url": "", "sha256": hashlib.sha256(
          b"a real frame").hexdigest(), "measure": "particles"},
      {"file": "changed.tif", "url": "", "sha256": "0" * 64, "measure": "width"},
      {"file": "absent.tif", "url": "http://127.0.0.1:9/absent.tif", "sha256": "1" * 64,
       "measure": "width"}]}))
  monkeypatch.setattr(study_eval, "MANIFEST", manifest)
  return study_eval, good.parent


def test_frames_are_kept_only_with_their_sha256(tmp_path, monkeypatch, capsys):
  study_eval, source = _frames_manifest(tmp_path, monkeypatch)
  a = study._parse(["frames", f"--root={tmp_path}/study", f"--from={source}"])
  assert study_eval.frames(a) == 2
  errors = capsys.readouterr().err.strip().splitlines()
  changed = hashlib.sha256(b"another file under the same name").hexdigest()
  assert errors[0] == (f"error: changed.tif from {source}/changed.tif: sha256 {changed}, the "
                       f"manifest says {'0' * 64}: refused")
  assert errors[1].startswith("error: absent.tif: not in --from=") and "--from=DIR" in errors[1]
  kept = sorted(p.name for p in (tmp_path / "study" / "frames").iterdir())
  assert kept == ["good.tif"]  # nothing refused or partial is left behind
  assert study_eval.frames(a) == 2
  assert "good.tif: present, sha256 checked" in capsys.readouterr().out
  missing = study._parse(["frames", f"--root={tmp_path}/s2", f"--from={tmp_path}/nowhere"])
  assert study_eval.frames(missing) == 2
  assert capsys.readouterr().err.strip() == f"error: --from={tmp_path}/nowhere is not a folder"
  (tmp_path / "empty").mkdir()
  empty = study._parse(["frames", f"--root={tmp_path}/s3", f"--from={tmp_path}/empty"])
  assert study_eval.frames(empty) == 2
  assert capsys.readouterr().err.strip() == (f"error: --from={tmp_path}/empty holds none of the "
                                             "3 frames of frames.json (by file name)")


def _final_state(workdir):
  from sinsr_jax.training import checkpointing, parallel, runs, train

  config = runs.read_config(str(workdir))
  mesh = parallel.make_mesh()
  template = train.initial_state(config, *train.build_models(config),
                                 *train.build_optimizers(config.optim,
                                                         config.train.pretrain_steps), mesh)
  manager = checkpointing.make_manager(str(workdir), None, read_only=True)
  try:
    return jax.device_get(checkpointing.restore_latest(manager, template, read_only=True))
  finally:
    manager.close()


def tiny_sets(data_dir: str) -> list[str]:
  return ["data.builder_config=tiny", f"data.data_dir={data_dir}", "data.patch_size=32",
          "data.num_workers=0", "data.eval_max_images=2", "model.stem_width=8", "model.width=8",
          "model.growth=4", "model.attention=none", "discriminator.width=4",
          "discriminator.stage_widths=(8,8,16,16)", "train.batch_size=4"]


@pytest.mark.slow
def test_smoke_study_runs_every_stage_from_the_command_line(tiny_data_dir, tmp_path):
  tiny = tiny_sets(tiny_data_dir)
  # 4 steps: 3 of the shared pixel-loss phase, then 1 GAN step of each ablation.
  common = ["--budget=smoke", "--steps=4", f"--root={tmp_path}/study", "--only=sinsr,no_ssim",
            *[f"--set={s}" for s in tiny]]
  prepared = _launch("study.py", "prepare", *common, timeout=300)
  assert prepared.returncode == 0, prepared.stderr[-3000:]
  assert "sem_synthetic/tiny" in prepared.stdout and "train 16" in prepared.stdout
  out = tmp_path / "report"
  for stage in ("train", "evaluate", "report"):
    done = _launch("study.py", stage, *common, "--split=validation", "--lpips=none",
                   "--no_real", "--figures=1", f"--out={out}", timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    if stage == "train":
      assert "[1/3] sinsr_pretrain seed 0: 3 steps" in done.stdout
      assert "[3/3] no_ssim seed 0: done" in done.stdout
  runs = tmp_path / "study" / "runs"
  for name in ("sinsr", "no_ssim"):
    record = json.loads((runs / name / "seed0" / "metrics.json").read_text())
    assert record["step"] == 4
    info = json.loads((runs / name / "seed0" / "run_info.json").read_text())
    assert len(info["git_commit"]) >= 7 and info["seed"] == 0 and len(info["code_digest"]) == 16
    shared = json.loads((runs / name / "seed0" / "shared_from.json").read_text())
    assert shared["step"] == 3 and shared["stem"].endswith("sinsr_pretrain/seed0")
  # The shared pixel-loss phase changes nothing: SINSR from the stem equals SINSR trained from
  # scratch with the same config, bit for bit.
  argv = study.make_plan(study._parse(["train", *common])).runs[1].argv(tmp_path / "study")
  assert argv[4].endswith("sinsr/seed0")
  straight = tmp_path / "straight"
  alone = subprocess.run([*argv[:4], f"--workdir={straight}", *argv[5:]], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
  assert alone.returncode == 0, alone.stderr[-3000:]
  shared_state, straight_state = _final_state(runs / "sinsr" / "seed0"), _final_state(straight)
  assert int(shared_state.step) == int(straight_state.step) == 4
  for x, y in zip(jax.tree.leaves(shared_state), jax.tree.leaves(straight_state), strict=True):
    np.testing.assert_array_equal(x, y)
  summary = (out / "SUMMARY.md").read_text()
  assert "python launch/study.py train --budget=smoke --steps=4" in summary
  assert "| sinsr | 1 |" in summary and "| no_ssim |" in summary
  assert (out / "curves_ablations.png").exists()
  scoring = ["--split=validation", "--lpips=none", "--no_real", "--figures=1"]
  state = _launch("study.py", "status", *common, *scoring, timeout=120)
  assert state.stdout.strip().splitlines()[-2:] == [
      "3 runs: 3 finished, 0 under way, 0 waiting; about 0 min of training left",
      "evaluations (each finished run on each source): 2 of 2 up to date"], state.stdout
  # Started again, nothing is trained twice, nothing evaluated twice.
  again = _launch("study.py", "train", *common, timeout=300)
  assert again.returncode == 0 and again.stdout.count("finished already") == 3
  again = _launch("study.py", "evaluate", *common, *scoring, timeout=300)
  assert again.returncode == 0 and again.stdout.count("up to date") == 2

  # The report's record (no weights) carries the study to a fresh root: there every run counts
  # as finished and every evaluation as up to date ...
  record = out / "record"
  assert json.loads((record / "record.json").read_text())["runs"] == 3
  assert not list(record.rglob("checkpoints"))
  fresh = [x for x in common if not x.startswith("--root=")]
  adopted = _launch("study.py", "adopt", *fresh, f"--root={tmp_path}/fresh", f"--out={out}",
                    timeout=120)
  assert adopted.stdout.strip().splitlines()[-1] == (
      f"adopted from {record}: 3 run(s), 2 evaluation(s); 0 the root already had, kept as they "
      "were"), adopted.stdout + adopted.stderr
  state = _launch("study.py", "status", *fresh, f"--root={tmp_path}/fresh", *scoring,
                  timeout=120)
  assert state.stdout.strip().splitlines()[-2:] == [
      "3 runs: 3 finished, 0 under way, 0 waiting; about 0 min of training left",
      "evaluations (each finished run on each source): 2 of 2 up to date"], state.stdout
  # ... and a run the record lacks starts from its stem trained again, to the same weights.
  shutil.rmtree(record / "runs" / "no_ssim")
  shutil.rmtree(record / "evaluation" / "synthetic" / "seed0" / "no_ssim")
  later = [*fresh, f"--root={tmp_path}/later"]
  assert _launch("study.py", "adopt", *later, f"--record={record}", timeout=120).returncode == 0
  trained = _launch("study.py", "train", *later, timeout=900)
  assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
  assert "sinsr seed 0: finished already" in trained.stdout
  assert "sinsr_pretrain seed 0: finished in the adopted record" in trained.stdout
  assert "no_ssim seed 0: done" in trained.stdout
  for x, y in zip(jax.tree.leaves(_final_state(runs / "no_ssim" / "seed0")),
                  jax.tree.leaves(_final_state(tmp_path / "later" / "runs" / "no_ssim" / "seed0")),
                  strict=True):
    np.testing.assert_array_equal(x, y)
  assert _launch("study.py", "train", *later, timeout=300).stdout.count("finished already") == 3


def test_adopt_without_a_record_is_one_line(tmp_path):
  done = _launch("study.py", "adopt", "--budget=smoke", f"--root={tmp_path}/root",
                 f"--record={tmp_path}", timeout=120)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
      f"error: {tmp_path} holds no study record (record.json); the report stage writes one"]


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


def test_an_evaluation_is_up_to_date_only_for_its_own_command_and_steps(tmp_path):
  import study_eval

  run = tmp_path / "runs" / "sinsr" / "seed0"
  run.mkdir(parents=True)
  (run / "metrics.json").write_text(json.dumps({"step": 40}))
  folder = tmp_path / "evaluation" / "synthetic" / "seed0" / "sinsr"
  folder.mkdir(parents=True)
  argv = ["python", "-m", "sinsr_jax.evaluate", f"--run={run}", "--label=sinsr", "--split=test"]
  (folder / "results.json").write_text(json.dumps({"runs": {
      "bicubic": {"step": 0}, "sinsr": {"step": 40}}}))
  assert not study_eval.up_to_date(folder, argv)  # no job.json: not known to be this command
  (folder / study_eval.JOB).write_text(json.dumps(argv[1:]))
  assert study_eval.up_to_date(folder, argv)
  assert not study_eval.up_to_date(folder, [*argv[:-1], "--split=validation"])
  (run / "metrics.json").write_text(json.dumps({"step": 50}))  # trained further since
  assert not study_eval.up_to_date(folder, argv)


def test_the_report_prints_each_stage_with_the_options_it_reads():
  given = ["--budget=converged", "--from", "/frames", "--split=validation", "--no_real",
           "--out", "docs/x", "--set=model.depth=4", "--emit"]
  assert study.options_for("train", given) == ["--budget=converged", "--set=model.depth=4"]
  assert study.options_for("frames", given) == ["--budget=converged", "--from", "/frames",
                                                "--set=model.depth=4"]
  assert study.options_for("evaluate", given) == ["--budget=converged", "--split=validation",
                                                  "--no_real", "--set=model.depth=4"]
  assert study.options_for("report", given) == ["--budget=converged", "--out", "docs/x",
                                                "--set=model.depth=4"]


def test_a_second_train_stage_of_one_study_is_refused(tmp_path):
  from sinsr_jax.runtime.workdir_lock import WorkdirLock

  root = tmp_path / "study"
  (root / "locks" / "train").mkdir(parents=True)
  with WorkdirLock(str(root / "locks" / "train"), "study train"):
    second = _launch("study.py", "train", "--budget=smoke", f"--root={root}", "--only=bicubic")
  assert second.returncode == 1 and "Traceback" not in second.stderr
  assert second.stderr.strip().splitlines()[-1].startswith(
      f"error: {root}/locks/train is in use by another study train (pid "), second.stderr
  done = _launch("study.py", "train", "--budget=smoke", f"--root={root}", "--only=bicubic",
                 timeout=300)  # released: the next one runs
  assert done.returncode == 0, done.stderr[-2000:]


def test_the_report_says_whether_the_perceptual_term_was_on():
  import study_report

  plan = lambda *argv: study.make_plan(_args(*argv))  # noqa: E731
  assert "is off in every run" in study_report.perceptual_line(plan("--budget=converged"))
  on = study_report.perceptual_line(plan(
      "--budget=converged", "--family_set=loss.weights.perceptual=(2.0,1.5)"))
  assert "is on in SINSR's runs (weights (2.0, 1.5))" in on


def test_a_runs_eta_comes_from_its_own_name_at_another_seed(tmp_path):
  import study_train

  assert study_train._measured_rates(tmp_path) == {}
  for what, seconds, steps in (("sinsr seed 0", 900, 700), ("vdsr seed 0", 300, 1500),
                               ("sinsr_pretrain seed 1", 0, 0)):  # bicubic-like: no steps
    study_train.record_time(tmp_path, "train", what, seconds, steps)
  rates = study_train._measured_rates(tmp_path)
  assert rates == pytest.approx({"sinsr": 900 / 700, "vdsr": 0.2, "": 1200 / 2200})
  assert study_train._rate(rates, "no_ssim") == rates[""]  # never timed: the mean of all
  import study_report  # the summary names the CPU model that trained the runs, where known

  line = json.loads((tmp_path / "timings.jsonl").read_text().splitlines()[0])
  assert line["cpu"] == study_train.cpu_model()
  assert f"CPUs, {line['cpu'] or line['machine']})" in study_report.wall_time(tmp_path)[0]


def test_status_counts_the_baselines_still_to_choose_as_the_runs_they_become(tmp_path):
  import study_train

  lines = []
  a = _args("--budget=converged", f"--root={tmp_path}")
  study_train.status(a, lambda chosen: study.make_plan(a, chosen), say=lines.append)
  # 7 trained baselines are candidates at seeds 1 and 2, but only the 2 strongest are trained
  assert "then 4 more: the 2 strongest of 7 baselines at seeds 1, 2" in lines[-1], lines


def test_only_finished_runs_are_judged_converged_and_the_record_holds_them(tmp_path):
  import study_plan

  a = study._parse(["report", "--budget=converged", f"--root={tmp_path}/root", "--only=sinsr",
                    f"--out={tmp_path}/out"])
  plan = study.make_plan(a)
  root = tmp_path / "root"
  # sinsr seed 0 finished, flat over its last 20%; seed 1 still training, far from flat.
  for seed, step, curve in ((0, 1500, [(1100, 27.0), (1200, 27.05), (1500, 27.1)]),
                            (1, 1000, [(800, 26.0), (1000, 27.0)])):
    run = next(r for r in plan.runs if (r.name, r.seed) == ("sinsr", seed))
    folder = run.folder(root)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(study_plan.resolved(run).to_dict()))
    (folder / "metrics.json").write_text(json.dumps({
        "step": step, "psnr_db": curve[-1][1],
        "history": [{"step": s, "psnr_db": p} for s, p in curve]}))
  assert study_plan.finished(plan.runs[1], root) and plan.runs[1].seed == 0
  scored = root / "evaluation" / "synthetic" / "seed0" / "sinsr"
  scored.mkdir(parents=True)
  records = {label: [{"image": f"{i}.png", "psnr_db": 27.0 + i + bonus, "ssim": 0.7,
                      "gmsd": 0.05, "edge_f1": 0.9} for i in range(3)]
             for label, bonus in (("sinsr", 0.5), ("bicubic", 0.0))}
  (scored / "results.json").write_text(json.dumps({"per_image": records}))
  (scored / "job.json").write_text("[]")
  assert study.report(a) == 0
  summary = (tmp_path / "out" / "SUMMARY.md").read_text()
  # From step 1200 (80%) to 1500: 0.05 dB. Seed 1's partial curve (1.0 dB) is not judged.
  assert "| sinsr | 1 | 0.050 | yes |" in summary, summary
  # --only=sinsr plans the stem and sinsr at 3 seeds; one of the six has finished
  assert f"**Under way: 1 of {len(plan.runs)} runs finished.**" in summary
  record = tmp_path / "out" / "record"
  assert json.loads((record / "record.json").read_text())["runs"] == 1  # seed 0 only
  assert (record / "runs" / "sinsr" / "seed0" / "metrics.json").exists()
  assert not (record / "runs" / "sinsr" / "seed1").exists()
  assert (record / "evaluation" / "synthetic" / "seed0" / "sinsr" / "results.json").exists()


def test_the_verdicts_answer_each_question_in_words_from_the_real_frame_comparisons():
  import study_report

  from sinsr_jax.evaluation.paired import Difference

  def d(mean, p):  # a difference, A minus B, with its Holm-adjusted p-value
    return Difference(mean, mean - 0.1, mean + 0.1, p, 8, 3, p_holm=p)

  r = study_report
  psnr, ssim, gmsd = r.REAL[:3]
  found = [
      (r.STRONGEST_CLAIM, "real", [
          ("sinsr", "vdsr", psnr, d(0.3, 0.001)),  # ahead on PSNR only: structure is asked
          ("sinsr", "vdsr", ssim, d(0.0, 0.9)),
          ("sinsr", "vdsr", gmsd, d(0.002, 0.01)),  # GMSD: lower is better
          ("sinsr", "esrgan", ssim, d(0.01, 0.001))]),
      (r.PIXEL_CLAIM, "real", [("sinsr", "sinsr_pixel", psnr, d(-0.1, 0.001)),
                               ("sinsr", "sinsr_pixel", gmsd, d(-0.001, 0.02))]),
      (r.BRANCH_CLAIM, "real", [("sinsr_gradient_branch", "sinsr", ssim, d(0.0, 0.5))]),
      (r.TERMS_CLAIM, "real", [("no_ssim", "sinsr", ssim, d(-0.01, 0.001)),
                               ("no_adversarial", "sinsr", psnr, d(0.05, 0.01)),
                               ("no_second_order", "sinsr", gmsd, d(0.0, 0.7)),
                               ("sinsr_pixel", "sinsr", psnr, d(0.1, 0.001))]),
      (r.STRONGEST_CLAIM, "synthetic", [("sinsr", "vdsr", ssim, d(0.01, 0.001))]),
  ]
  lines = study_report.answers(found, unconverged={"esrgan", "no_ssim"})
  assert lines[0] == ("- **Does SINSR keep structure better than the strongest baselines?** "
                      "sinsr against vdsr: no, behind on GMSD; tie on SSIM; "
                      "sinsr against esrgan: not ranked, esrgan did not converge.")
  assert lines[1].endswith("alone?** yes, ahead on GMSD; on PSNR behind.")
  assert lines[2] == ("- **Does each loss term matter?** the SSIM term: without it worse on "
                      "SSIM (no_ssim not converged); the adversarial term: without it better on "
                      "PSNR (dB); the second-order term: no measurable effect.")
  assert lines[3].endswith("help?** no measurable difference; on PSNR not measured yet.")
