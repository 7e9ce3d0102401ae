"""Run folders in a bucket, against a local GCS emulator (tests/gcs_emulator.py, a child process
on 127.0.0.1, stopped after the module): a training on gs:// writes its checkpoints, metrics
and sidecars there, is killed and resumes from the bucket to the uninterrupted result; a second
launch is refused by the lock object; two processes train with their workdir in the bucket;
evaluate and upscale read the run, the images and write their --out in gs://."""

import json
import os
import signal
import subprocess
import sys
import time

import gcs_emulator
import jax
import numpy as np
import pytest
import tifffile
from test_micrograph_files import fei_frame
from test_reliability import STEPS, _start, straight_run  # noqa: F401  (a fixture)
from test_train import _final_state
from test_vendor_metadata import HITACHI_TXT

from conftest import REPO
from sinsr_jax.errors import UserError
from sinsr_jax.inference import micrographs
from sinsr_jax.runtime import paths, workdir_lock
from sinsr_jax.runtime.files import ensure_writable_dir
from sinsr_jax.training import runs

pytestmark = pytest.mark.skipif(bool(gcs_emulator.missing()), reason=gcs_emulator.missing() or
                                "ok")


@pytest.fixture(scope="module")
def gcs():
  """The emulator's client environment, set in os.environ for the module (and its children)."""
  from etils.epath import gpath

  proc, url = gcs_emulator.start("bucket")
  env = gcs_emulator.client_env(url)
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  gpath._is_tf_installed.cache_clear()  # epath decides once per process whether to use TF
  try:
    yield env
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    gpath._is_tf_installed.cache_clear()
    proc.kill()
    proc.wait(timeout=30)
    os.unlink(proc.log_path)


def test_a_gs_workdir_is_the_bucket_never_a_local_gs_folder(gcs, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  ensure_writable_dir("gs://bucket/runs/probe")
  assert os.listdir(tmp_path) == []  # no ./gs:/bucket/... folder
  assert not any(n.startswith(".write_probe") for n in paths.listdir("gs://bucket/runs/probe")
                 ) if paths.isdir("gs://bucket/runs/probe") else True
  paths.write_atomic("gs://bucket/runs/probe/config.json", '{"a": 1}')
  assert json.loads(paths.read_text("gs://bucket/runs/probe/config.json")) == {"a": 1}
  with pytest.raises(UserError, match=r"^workdir gs://no-such-bucket/r is not writable \("):
    ensure_writable_dir("gs://no-such-bucket/r")
  assert os.listdir(tmp_path) == []


def test_the_lock_object_admits_one_holder_and_takes_over_a_dead_one(gcs, caplog):
  workdir = "gs://bucket/locks/a"
  with workdir_lock.WorkdirLock(workdir, "training"):
    holder = json.loads(paths.read_text(f"{workdir}/lock"))
    assert holder["pid"] == os.getpid()
    with pytest.raises(workdir_lock.WorkdirBusy, match=rf"{workdir} is in use by another "
                       rf"training \(pid {os.getpid()} on "):
      workdir_lock.WorkdirLock(workdir).acquire()  # the emulator refused the create (412)
  assert not paths.exists(f"{workdir}/lock")  # released: deleted
  # A holder on this host whose process is gone: taken over, as on a local disk.
  dead = {**holder, "pid": 2 ** 22 + 1, "token": "theirs"}
  paths.write_atomic(f"{workdir}/lock", json.dumps(dead))
  with workdir_lock.WorkdirLock(workdir, "training"):
    assert json.loads(paths.read_text(f"{workdir}/lock"))["token"] != "theirs"
  assert any("Taking over the lock" in r.getMessage() for r in caplog.records)


def _bucket_steps(workdir):
  """Steps whose checkpoint has begun (as the local test waits for a step's folder)."""
  folder = f"{workdir}/checkpoints"
  return [int(d.split(".")[0]) for d in (paths.listdir(folder) if paths.isdir(folder) else [])
          if d.split(".")[0].isdigit()]


def _wait(predicate, proc, what, timeout=600, poll=0.5):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    if proc.poll() is not None:
      raise AssertionError(f"run ended early: {proc.stdout.read()[-3000:]}")
    time.sleep(poll)
  raise AssertionError(f"no {what} in time")


def _holds_lock(workdir, proc):
  try:
    return json.loads(paths.read_text(f"{workdir}/lock"))["pid"] == proc.pid
  except (OSError, ValueError, KeyError):
    return False


@pytest.mark.slow
def test_a_training_in_the_bucket_is_killed_and_resumes_to_the_uninterrupted_result(
    gcs, straight_run, tmp_path):  # noqa: F811
  config, straight = straight_run
  workdir = "gs://bucket/runs/tiny"
  data_dir = config.data.data_dir
  proc = _start(data_dir, workdir, env=gcs)
  _wait(lambda: _holds_lock(workdir, proc), proc, "lock")
  second = _start(data_dir, workdir, env=gcs)
  refused, _ = second.communicate(timeout=300)
  assert second.returncode == 1 and "Traceback" not in refused, refused[-3000:]
  assert refused.strip().splitlines()[-1].startswith(
      f"error: {workdir} is in use by another training (pid {proc.pid} on "), refused[-2000:]
  _wait(lambda: max(_bucket_steps(workdir), default=0) >= 3, proc, "checkpoint", poll=0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  assert not os.path.exists("gs:")  # nothing local named after the bucket

  final = _start(data_dir, workdir, env=gcs)
  out, _ = final.communicate(timeout=600)
  assert final.returncode == 0, out[-3000:]
  assert "Resumed from the checkpoint at step" in out and "Taking over the lock" in out
  a, b = _final_state(config, straight), _final_state(config, workdir)
  assert int(a.step) == int(b.step) == STEPS
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)

  names = set(paths.listdir(workdir))
  assert {"config.json", "degradation.json", "run_info.json", "metrics.json", "log.txt",
          "checkpoints"} <= names, names
  assert "lock" not in names  # released at the end
  assert any(n.startswith("events.out.tfevents") for n in names), names  # TensorBoard's
  assert json.loads(paths.read_text(f"{workdir}/metrics.json"))["step"] == STEPS
  assert len(json.loads(paths.read_text(f"{workdir}/run_info.json"))["starts"]) == 2
  assert "Resumed from the checkpoint" in paths.read_text(f"{workdir}/log.txt")

  # What evaluate and upscale load: the run's config and EMA weights, from the bucket.
  run = runs.load(workdir)
  assert run.step == STEPS and run.workdir == workdir
  local = runs.load(straight)
  for x, y in zip(jax.tree.leaves(local.params), jax.tree.leaves(run.params), strict=True):
    np.testing.assert_array_equal(x, y)


# --- micrographs, upscale and evaluate on gs:// -------------------------------------------------

def _put_folder(local, remote):
  """Uploads the local folder ``local`` (a run, a folder of frames) to ``remote``."""
  paths.upload(str(local), remote)
  paths._uploaded.clear()  # the next upload of this folder (another test) sends it all again


def _frames(folder, count=2):
  """Hitachi frames with their sidecar (a burned-in strip from row 400, 4.961 nm pixels)."""
  folder.mkdir(parents=True, exist_ok=True)
  for i in range(count):
    tifffile.imwrite(folder / f"h{i}.tif", fei_frame(np.random.default_rng(i)))
    (folder / f"h{i}.txt").write_bytes(HITACHI_TXT.format(size="512x440").encode("utf-16"))
  (folder / "notes.md").write_text("not an image")
  return folder


def test_micrographs_are_read_listed_and_written_in_a_bucket(gcs, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  local = _frames(tmp_path / "frames")
  _put_folder(local, "gs://bucket/frames")
  files, problems = micrographs.expand_inputs(["gs://bucket/frames"], recursive=False)
  assert files == ["gs://bucket/frames/h0.tif", "gs://bucket/frames/h1.tif"] and not problems
  assert micrographs.expand_inputs(["gs://bucket/frames/h1.*"], False)[0] == files[1:]
  assert micrographs.expand_inputs(["gs://bucket/nothing"], False)[1] == [
      "gs://bucket/nothing: no such file or folder"]
  assert micrographs.expand_inputs(["gs://bucket/**/*.tif"], True)[1] == [
      "gs://bucket/**/*.tif: ** is not supported in a bucket (one listing per folder); name the "
      "folder instead, with --recursive"]
  remote, here = micrographs.read(files[0]), micrographs.read(str(local / "h0.tif"))
  np.testing.assert_array_equal(remote.pixels, here.pixels)
  assert remote.instrument == here.instrument  # the sidecar beside it in the bucket was read
  assert remote.instrument.source == "Hitachi"
  assert remote.instrument.pixel_size_nm == pytest.approx((4.961, 4.961))

  def write(f):
    micrographs.encode(np.atleast_3d(here.pixels), "tiff", f, (2.5, 2.5))

  micrographs.write_atomic("gs://bucket/out/a.tif", write)
  micrographs.write_atomic(str(tmp_path / "a.tif"), write)
  assert paths.read_bytes("gs://bucket/out/a.tif") == (tmp_path / "a.tif").read_bytes()
  with pytest.raises(RuntimeError):
    micrographs.write_atomic("gs://bucket/out/b.tif", lambda f: (_ for _ in ()).throw(
        RuntimeError("cut")))
  assert not paths.exists("gs://bucket/out/b.tif")  # nothing partial in the bucket
  assert sorted(os.listdir(tmp_path)) == ["a.tif", "frames"]  # no ./gs:/...


def test_a_folder_in_the_bucket_is_walked_and_moved_whole(gcs):
  for name in ("a", "sub/b", "sub/deeper/c"):
    paths.write_atomic(f"gs://bucket/move/src/{name}", name)
  assert paths.walk_files("gs://bucket/move/src", recursive=True) == [
      "gs://bucket/move/src/a", "gs://bucket/move/src/sub/b", "gs://bucket/move/src/sub/deeper/c"]
  assert paths.walk_files("gs://bucket/move/src", recursive=False) == ["gs://bucket/move/src/a"]
  paths.rename("gs://bucket/move/src", "gs://bucket/move/quarantine/src")  # as a quarantine does
  assert not paths.exists("gs://bucket/move/src")
  assert paths.read_text("gs://bucket/move/quarantine/src/sub/deeper/c") == "sub/deeper/c"
  assert len(paths.walk_files("gs://bucket/move/quarantine", recursive=True)) == 3


def _command(module, *args, cwd):
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_upscale_reads_run_and_images_from_the_bucket_and_writes_its_out_there(
    gcs, trained_tiny_run, tmp_path):
  _put_folder(trained_tiny_run, "gs://bucket/runs/trained")
  _put_folder(_frames(tmp_path / "frames"), "gs://bucket/up_in")
  cloud = _command("sinsr_jax.upscale", "--run=gs://bucket/runs/trained", "--out=gs://bucket/up",
                   "--tile=128", "gs://bucket/up_in", cwd=tmp_path)
  assert cloud.returncode == 0, cloud.stderr[-3000:]
  assert "2 upscaled, 0 failed" in cloud.stdout and "-> gs://bucket/up)" in cloud.stdout
  here = _command("sinsr_jax.upscale", f"--run={trained_tiny_run}", "--out=here", "--tile=128",
                  tmp_path / "frames", cwd=tmp_path)
  assert here.returncode == 0, here.stderr[-3000:]
  assert sorted(os.listdir(tmp_path)) == ["frames", "here"]  # no ./gs:/bucket/up
  assert sorted(paths.listdir("gs://bucket/up")) == sorted(os.listdir(tmp_path / "here")) == [
      "h0_x4.tif", "h0_x4.tif.json", "h1_x4.tif", "h1_x4.tif.json"]
  for name in ("h0_x4.tif", "h1_x4.tif"):
    with tifffile.TiffFile(tmp_path / "here" / name) as a:
      expected, resolution = a.asarray(), a.pages[0].tags["XResolution"].value
    local_copy = tmp_path / f"cloud_{name}"
    local_copy.write_bytes(paths.read_bytes(f"gs://bucket/up/{name}"))
    with tifffile.TiffFile(local_copy) as b:
      np.testing.assert_array_equal(b.asarray(), expected)  # same pixels, bit depth
      assert b.pages[0].tags["XResolution"].value == resolution  # and calibration
    sidecar = json.loads(paths.read_text(f"gs://bucket/up/{name}.json"))
    assert sidecar["output"] == f"gs://bucket/up/{name}"
    assert sidecar["input"]["file"] == f"gs://bucket/up_in/{name.replace('_x4', '')}"
    assert sidecar["input"]["metadata"] == "Hitachi"  # its sidecar .txt read in the bucket
    assert sidecar["provenance"]["run"] == "gs://bucket/runs/trained"
  again = _command("sinsr_jax.upscale", "--run=gs://bucket/runs/trained", "--out=gs://bucket/up",
                   "gs://bucket/up_in/h0.tif", cwd=tmp_path)
  assert again.returncode == 1 and "Traceback" not in again.stderr
  assert "error: gs://bucket/up_in/h0.tif: gs://bucket/up/h0_x4.tif exists; pass --overwrite " \
         "to replace it" in again.stderr


@pytest.mark.slow
def test_evaluate_scores_images_in_the_bucket_and_writes_its_tables_there(
    gcs, trained_tiny_run, tmp_path):
  _put_folder(trained_tiny_run, "gs://bucket/runs/scored")
  _put_folder(_frames(tmp_path / "frames"), "gs://bucket/eval_in")
  flags = ["--crop=128", "--lpips=none", "--figures=1"]
  cloud = _command("sinsr_jax.evaluate", "--run=gs://bucket/runs/scored",
                   "--images=gs://bucket/eval_in", "--out=gs://bucket/eval", *flags, cwd=tmp_path)
  assert cloud.returncode == 0, cloud.stderr[-3000:]
  assert "Wrote gs://bucket/eval/results.md, gs://bucket/eval/results.csv, " \
         "gs://bucket/eval/results.json and 1 figure(s)." in cloud.stdout
  here = _command("sinsr_jax.evaluate", f"--run={trained_tiny_run}",
                  f"--images={tmp_path / 'frames'}", "--out=here", *flags, cwd=tmp_path)
  assert here.returncode == 0, here.stderr[-3000:]
  assert sorted(os.listdir(tmp_path)) == ["frames", "here"]
  names = set(paths.walk_files("gs://bucket/eval", recursive=True))
  assert {f"gs://bucket/eval/results.{e}" for e in ("md", "csv", "json")} <= names
  assert sum("/figures/" in n for n in names) == 1
  a = json.loads(paths.read_text("gs://bucket/eval/results.json"))
  b = json.loads((tmp_path / "here" / "results.json").read_text())
  label = next(k for k in a["per_image"] if k != "bicubic")
  assert [r["filename"] for r in a["per_image"][label]] == [
      "gs://bucket/eval_in/h0.tif", "gs://bucket/eval_in/h1.tif"]
  for x, y in zip(a["per_image"][label], b["per_image"][next(iter(b["per_image"].keys() - {
      "bicubic"}))], strict=True):
    assert x["psnr_db"] == pytest.approx(y["psnr_db"], abs=1e-6)
  assert a["runs"][label]["workdir"] == "gs://bucket/runs/scored"


@pytest.mark.slow
def test_two_processes_train_and_resume_with_their_workdir_in_the_bucket(gcs, tiny_data_dir,
                                                                         tmp_path):
  from test_multiprocess import MODEL, _assert_same_state, _two_processes
  from test_multiprocess import STEPS as TWO_STEPS

  from conftest import tiny_config
  from sinsr_jax.training import train

  if jax.device_count() != 4:
    pytest.skip("needs the suite's 4 simulated CPU devices")
  config = tiny_config(tiny_data_dir, **TWO_STEPS)
  config.model.update(MODEL)
  single = str(tmp_path / "single")
  train.train_and_evaluate(config, single)
  workdir = "gs://bucket/runs/two"
  _two_processes(tiny_data_dir, workdir, 3)  # stops inside the GAN phase
  positions = sorted(n for n in paths.listdir(f"{workdir}/checkpoints/3/data")
                     if n.startswith("process_"))
  assert positions == ["process_0-of-2.json", "process_1-of-2.json"]
  _two_processes(tiny_data_dir, workdir, TWO_STEPS["num_steps"])  # resumed from the bucket
  _assert_same_state(_final_state(config, workdir), _final_state(config, single))
  assert sum(n.startswith("events.out.tfevents") for n in paths.listdir(workdir)) == 2
  assert not os.path.exists(os.path.join(REPO, "gs:"))


# --- the study with its root in the bucket ------------------------------------------------------

def test_study_frames_are_checked_into_the_bucket(gcs, tmp_path, monkeypatch, capsys):
  from test_study import _frames_manifest, study

  study_eval, source = _frames_manifest(tmp_path, monkeypatch)
  a = study._parse(["frames", "--root=gs://bucket/study_frames", f"--from={source}"])
  assert study_eval.frames(a) == 2  # one refused by its sha256, one absent: as locally
  assert paths.listdir("gs://bucket/study_frames/frames") == ["good.tif"]  # no .partial left
  assert paths.read_bytes("gs://bucket/study_frames/frames/good.tif") == b"a real frame"
  capsys.readouterr()
  assert study_eval.frames(a) == 2
  assert "good.tif: present, sha256 checked" in capsys.readouterr().out


@pytest.mark.slow
def test_a_study_with_its_root_in_the_bucket_trains_evaluates_and_resumes(gcs, tiny_data_dir,
                                                                         tmp_path):
  from test_launch import _launch
  from test_study import tiny_sets

  root = "gs://bucket/study"
  common = ["--budget=smoke", "--steps=4", f"--root={root}", "--only=sinsr",
            *[f"--set={s}" for s in tiny_sets(tiny_data_dir)]]
  out = tmp_path / "report"
  # `all`: each run scored as soon as it is trained, so the evaluate stage finds nothing left
  done = _launch("study.py", "all", *common, "--split=validation", "--lpips=none",
                 "--no_real", "--figures=1", f"--out={out}", timeout=1500)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
  lines = done.stdout.splitlines()
  trained = next(i for i, x in enumerate(lines) if x.startswith("[2/2] sinsr seed 0: done in "))
  assert lines[trained + 1] == "[1/1] evaluate synthetic/seed0/sinsr", lines
  assert "== evaluate" in lines and "evaluate synthetic/seed0/sinsr: up to date" in lines
  assert not os.path.exists(os.path.join(REPO, "gs:"))
  seeded = f"{root}/runs/sinsr/seed0"
  assert json.loads(paths.read_text(f"{seeded}/metrics.json"))["step"] == 4
  shared = json.loads(paths.read_text(f"{seeded}/shared_from.json"))
  assert shared["step"] == 3 and shared["stem"] == f"{root}/runs/sinsr_pretrain/seed0"
  assert "checkpoints.partial" not in paths.listdir(seeded)
  assert "Resumed from the checkpoint at step 3" in paths.read_text(f"{root}/logs/sinsr-seed0.log")
  assert [json.loads(x)["what"] for x in paths.read_text(f"{root}/timings.jsonl").splitlines()
          ] == ["sinsr_pretrain seed 0", "sinsr seed 0", "synthetic/seed0/sinsr"]
  assert "Wrote" in paths.read_text(f"{root}/evaluation/synthetic/seed0/sinsr/evaluate.log")
  summary = (out / "SUMMARY.md").read_text()
  assert "| sinsr | 1 |" in summary
  scoring = ["--split=validation", "--lpips=none", "--no_real", "--figures=1"]
  state = _launch("study.py", "status", *common, *scoring, timeout=120)
  assert state.stdout.strip().splitlines()[-2:] == [
      "2 runs: 2 finished, 0 under way, 0 waiting; about 0 min of training left",
      "evaluations (each finished run on each source): 1 of 1 up to date"], state.stdout
  again = _launch("study.py", "train", *common, timeout=300)
  assert again.returncode == 0 and again.stdout.count("finished already") == 2, again.stdout
  again = _launch("study.py", "evaluate", *common, *scoring, timeout=300)
  assert again.returncode == 0 and "evaluate synthetic/seed0/sinsr: up to date" in again.stdout
  # The report's record (local) taken into another root in the bucket: all done there too.
  later = [*[x for x in common if not x.startswith("--root=")], "--root=gs://bucket/later"]
  adopted = _launch("study.py", "adopt", *later, f"--record={out / 'record'}", timeout=120)
  assert adopted.stdout.strip().splitlines()[-1].endswith(
      ": 2 run(s), 1 evaluation(s); 0 the root already had, kept as they were"), adopted.stdout
  state = _launch("study.py", "status", *later, *scoring, timeout=120)
  assert state.stdout.strip().splitlines()[-2:] == [
      "2 runs: 2 finished, 0 under way, 0 waiting; about 0 min of training left",
      "evaluations (each finished run on each source): 1 of 1 up to date"], state.stdout
  job = json.loads(paths.read_text("gs://bucket/later/evaluation/synthetic/seed0/sinsr/job.json"))
  assert "--run=gs://bucket/later/runs/sinsr/seed0" in job  # re-rooted


@pytest.mark.slow
def test_init_from_a_run_in_the_bucket(gcs, trained_tiny_run, tiny_data_dir):
  from test_init_from import _fresh_state

  from conftest import tiny_config
  from sinsr_jax.training import init_from

  _put_folder(trained_tiny_run, "gs://bucket/runs/source")
  fresh, build = _fresh_state(tiny_config(tiny_data_dir))
  state = init_from.initialize(fresh, "gs://bucket/runs/source", build)
  source = runs.load(str(trained_tiny_run))
  for got, ema in zip(jax.tree.leaves(state.g_params), jax.tree.leaves(source.params),
                      strict=True):
    np.testing.assert_array_equal(np.asarray(got), ema)
  with pytest.raises(UserError, match=r"--config.train.init_from=gs://bucket/runs/none: "):
    init_from.initialize(fresh, "gs://bucket/runs/none", build)
