"""launch/tpu_vm.py `all` against a fake `gcloud` on PATH: it blocks until the training ends,
survives a dropped ssh, recreates a preempted VM (resuming from the same gs:// workdir), and
copies before it deletes."""

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

# The fake: records every call, keeps the VM's state in a JSON file, and answers the poll
# "running" until `done_after` polls, then "exit <exit_code>". `preempt_at` / `drop_at` list
# the polls at which the VM is preempted (its state PREEMPTED, the ssh fails) or the ssh drops.
FAKE_GCLOUD = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    state_path = os.environ["FAKE_GCLOUD_STATE"]
    s = json.load(open(state_path))
    argv = sys.argv[1:]
    s["calls"].append(argv)
    verb = argv[3] if argv[:3] == ["compute", "tpus", "tpu-vm"] else argv[0]
    command = next((a[len("--command="):] for a in argv if a.startswith("--command=")), "")
    rc, out, err = 0, "", ""
    if verb == "create":
      s["vm"], s["started"] = "READY", False
    elif verb == "delete":
      s["vm"] = "GONE"
    elif verb == "describe":
      if s["vm"] == "GONE":
        rc, err = 1, "ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: Resource not found"
      else:
        out = s["vm"] + "\\n"
    elif verb == "ssh":
      if s["vm"] != "READY":
        rc, err = 255, "ssh: connect to host: Connection refused"
      elif "sinsr-status" in command:
        s["polls"] += 1
        if s["polls"] in s["preempt_at"]:
          s["vm"], rc, err = "PREEMPTED", 255, "Connection closed by remote host"
        elif s["polls"] in s["drop_at"]:
          rc, err = 255, "client_loop: send disconnect: Broken pipe"
        elif not s["started"]:
          out = "sinsr-status: absent\\n" * s["workers"]
        elif s["polls"] >= s["done_after"]:
          out = f"sinsr-status: exit {{s['exit_code']}}\\n" * s["workers"]
          if s.get("stopped_once"):  # stopped by a signal once; the next start ends well
            s["exit_code"], s["stopped_once"], s["started"] = 0, False, False
        else:
          out = "sinsr-status: running\\n" * s["workers"]
      elif "nohup" in command:
        if s["drop_start"]:  # the ssh drops before the training has started
          s["drop_start"], rc, err = s["drop_start"] - 1, 255, "Connection reset by peer"
        else:
          s["started"] = True
    json.dump(s, open(state_path, "w"))
    sys.stdout.write(out); sys.stderr.write(err)
    sys.exit(rc)
    """)


@pytest.fixture
def fake_gcloud(tmp_path):
  """(run, calls): run(*flags, **scenario) runs `tpu_vm.py all` with the fake gcloud first on
  PATH; calls() are the recorded gcloud calls, in order."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  gcloud = bin_dir / "gcloud"
  gcloud.write_text(FAKE_GCLOUD.format(python=sys.executable))
  gcloud.chmod(0o755)
  state = tmp_path / "gcloud_state.json"

  def run(*flags, **scenario):
    state.write_text(json.dumps({"calls": [], "vm": "GONE", "started": False, "polls": 0,
                                 "workers": 2, "done_after": 3, "exit_code": 0,
                                 "preempt_at": [], "drop_at": [], "drop_start": 0, **scenario}))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_GCLOUD_STATE": str(state)}
    return subprocess.run(
        [sys.executable, str(REPO / "launch" / "tpu_vm.py"), "all", "--name=sr", "--zone=z",
         "--type=v4-16", "--repo=https://example.org/sinsr_jax.git", "--spot", "--poll=0",
         "--workdir=gs://bucket/runs/a", "--to=back/", *flags],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

  return run, lambda: json.loads(state.read_text())["calls"]


def _verbs(calls) -> list[str]:
  """Each call as one word: create, install, train, poll, describe, copy, delete."""
  verbs = []
  for argv in calls:
    command = next((a for a in argv if a.startswith("--command=")), "")
    if argv[:2] == ["storage", "cp"]:
      verbs.append("copy")
    elif "sinsr-status" in command:
      verbs.append("poll")
    elif "nohup" in command:
      verbs.append("train")
    elif "pip install" in command:
      verbs.append("install")
    else:
      verbs.append(argv[3])
  return verbs


def test_all_blocks_until_the_training_ends_then_copies_then_deletes(fake_gcloud):
  run, calls = fake_gcloud
  done = run(drop_at=[2], done_after=4)
  assert done.returncode == 0, done.stderr
  # The dropped ssh at poll 2: the VM is asked for, found READY, and polled again.
  assert _verbs(calls()) == ["create", "install", "train", "poll", "poll", "describe", "poll",
                             "poll", "copy", "delete"]
  assert calls()[-2] == ["storage", "cp", "--recursive", "gs://bucket/runs/a", "back/"]


def test_a_preempted_vm_is_recreated_and_the_run_resumes_from_the_same_workdir(fake_gcloud):
  run, calls = fake_gcloud
  done = run(preempt_at=[2], done_after=5)
  assert done.returncode == 0, done.stderr
  verbs = _verbs(calls())
  assert verbs == ["create", "install", "train", "poll", "poll", "describe", "delete", "create",
                   "install", "train", "poll", "poll", "poll", "copy", "delete"]
  trains = [c for c in calls() if "nohup" in " ".join(c)]
  assert len(trains) == 2 and trains[0] == trains[1]  # the same command: the same gs:// workdir
  assert "--workdir=gs://bucket/runs/a" in _command(trains[0])
  # The only delete before the copy removes the preempted VM, never a running training's.
  last_poll = max(i for i, v in enumerate(verbs) if v == "poll")
  assert verbs.index("copy") > last_poll and verbs[-1] == "delete"
  assert "recreating it (1/5)" in done.stdout


def test_preemptions_are_bounded_and_keep_leaves_the_vm(fake_gcloud):
  run, calls = fake_gcloud
  done = run("--max_preemptions=1", preempt_at=[1, 2], done_after=9)
  assert done.returncode == 1
  assert "preempted 2 times (--max_preemptions=1)" in done.stderr.strip().splitlines()[-1]
  assert "copy" not in _verbs(calls()) and _verbs(calls()).count("create") == 2

  done = run("--keep", done_after=2)
  assert done.returncode == 0, done.stderr
  assert _verbs(calls()) == ["create", "install", "train", "poll", "poll", "copy"]
  assert "--keep: the VM sr stays" in done.stdout


def test_a_training_stopped_by_a_signal_is_not_taken_for_its_end(fake_gcloud):
  # A maintenance event's SIGTERM on a VM that stays: checkpoint, exit 75, started again.
  run, calls = fake_gcloud
  done = run(done_after=2, exit_code=75, stopped_once=True)
  assert done.returncode == 0, done.stderr
  assert _verbs(calls()) == ["create", "install", "train", "poll", "poll", "describe", "train",
                             "poll", "copy", "delete"]


def test_a_failed_training_leaves_the_vm_and_says_so(fake_gcloud):
  run, calls = fake_gcloud
  done = run(done_after=2, exit_code=1)
  assert done.returncode == 1 and "Traceback" not in done.stderr
  assert "the training failed (exit 1)" in done.stderr and "The VM is left running" in (
      done.stderr)
  assert "delete" not in _verbs(calls()) and "copy" not in _verbs(calls())


def test_a_training_whose_start_dropped_is_started_again(fake_gcloud):
  run, calls = fake_gcloud
  done = run(drop_start=1, done_after=3)
  assert done.returncode == 0, done.stderr
  assert _verbs(calls()) == ["create", "install", "train", "poll", "describe", "train", "poll",
                             "poll", "copy", "delete"]
  script = _command(next(c for c in calls() if "nohup" in " ".join(c)))
  payload = shlex.split(script.split("nohup sh -c ", 1)[1].split(" > ~/train.log", 1)[0])[0]
  main_args = shlex.split(payload.split(";", 1)[0])
  assert main_args == ["~/venv/bin/python", "-m", "sinsr_jax.main", "--config=configs/sinsr.py",
                       "--workdir=gs://bucket/runs/a", "--distributed",
                       "--exit_code_when_stopped=75"]
  assert payload.endswith("; echo $? > ~/train.exit") and "rm -f ~/train.exit" in script


def _command(argv) -> str:
  return next(a for a in argv if a.startswith("--command="))[len("--command="):]
