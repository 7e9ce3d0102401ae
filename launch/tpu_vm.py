"""Train on a Cloud TPU VM (one host, or a pod slice of many), from creation to deletion.

    python launch/tpu_vm.py all --name=sinsr --zone=us-central2-b --type=v4-8 --spot \
        --config=configs/sinsr.py --workdir=gs://my-bucket/runs/sinsr \
        --data_dir=gs://my-bucket/tensorflow_datasets --to=runs/

``all`` creates the VM, installs the project on every worker, starts the training, waits for it
to end (polling the workers; a dropped ssh is retried), copies the run folder back and deletes
the VM (``--keep`` leaves it). A Spot VM that is preempted (``PREEMPTED``, or gone) is
recreated and the training started again with the same ``gs://`` workdir, where it resumes from
its newest checkpoint, up to ``--max_preemptions`` times. A training that fails leaves the VM
for inspection (the log is printed; the delete command too).

The steps also run one by one: ``create``, ``install``, ``train`` (starts it, detached),
``wait`` (blocks until it ends), ``logs`` (follows worker 0), ``copy``, ``delete``. Every step
runs the same command on all workers (``--worker=all``): each worker is one JAX process;
``--distributed`` makes ``jax.distributed.initialize()`` find the slice from the TPU metadata.
On a pod slice, and for any run that must survive a preemption, the workdir must be a
``gs://`` bucket every worker sees. ``--dry-run`` prints the gcloud commands instead.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

STEPS = ("create", "install", "train", "wait", "logs", "copy", "delete")
_STATUS = "sinsr-status:"  # the prefix of each worker's answer to the poll
STOPPED = 75  # the training's exit status when a signal (preemption) stopped it: not the end


class LaunchError(Exception):
  """One line for the user; the VM is left as it is."""


def _tpu(args, verb: str, *rest: str) -> list[str]:
  project = [f"--project={args.project}"] if args.project else []
  return ["gcloud", "compute", "tpus", "tpu-vm", verb, *rest, f"--zone={args.zone}", *project]


def _ssh(args, worker: str, command: str) -> list[str]:
  return _tpu(args, "ssh", args.name, f"--worker={worker}", f"--command={command}")


def train_command(args) -> str:
  """The command every worker runs: the training, detached (closing the ssh session does not
  stop it), its exit status left in ~/train.exit and its pid in ~/train.pid for the poll."""
  flags = [f"--config={args.config}", f"--workdir={args.workdir}", "--distributed",
           *([f"--config.data.data_dir={args.data_dir}"] if args.data_dir else []),
           *[f"--config.{o}" for o in args.set], f"--exit_code_when_stopped={STOPPED}"]
  main = f"~/venv/bin/python -m sinsr_jax.main {shlex.join(flags)}"
  run = shlex.quote(f"{main}; echo $? > ~/train.exit")
  return (f"cd ~/sinsr_jax && rm -f ~/train.exit && "
          f"(nohup sh -c {run} > ~/train.log 2>&1 & echo $! > ~/train.pid)")


# Each worker says whether its training runs, ended (with its status), or is absent (never
# started, or the VM restarted under it).
POLL = (f"if [ -f ~/train.exit ]; then echo {_STATUS} exit $(cat ~/train.exit); "
        f"elif [ -f ~/train.pid ] && kill -0 $(cat ~/train.pid) 2>/dev/null; then "
        f"echo {_STATUS} running; else echo {_STATUS} absent; fi")


def commands(step: str, args) -> list[list[str]]:
  if step == "create":
    extra = ["--spot"] if args.spot else []
    return [_tpu(args, "create", args.name, f"--accelerator-type={args.type}",
                 f"--version={args.runtime}", *extra)]
  if step == "install":
    ref = shlex.quote(args.ref)
    setup = (f"(test -d ~/sinsr_jax || git clone {shlex.quote(args.repo)} ~/sinsr_jax) && "
             f"cd ~/sinsr_jax && git fetch --all --tags && git checkout {ref} && "
             f"python3 -m venv ~/venv && ~/venv/bin/pip install -q -e '.[tpu,gcs]'")
    return [_ssh(args, "all", setup)]
  if step == "train":
    return [_ssh(args, "all", train_command(args))]
  if step == "wait":
    return [_ssh(args, "all", POLL)]
  if step == "logs":
    return [_ssh(args, "0", "tail -n 200 -f ~/train.log")]
  if step == "copy":
    if args.workdir.startswith("gs://"):
      return [["gcloud", "storage", "cp", "--recursive", args.workdir, args.to]]
    return [_tpu(args, "scp", "--recurse", f"{args.name}:{args.workdir}", args.to, "--worker=0")]
  if step == "delete":
    return [_tpu(args, "delete", args.name, "--quiet")]
  raise ValueError(step)


def _run(command: list[str], capture: bool = False) -> subprocess.CompletedProcess:
  try:
    return subprocess.run(command, check=False, text=True, capture_output=capture)
  except FileNotFoundError:
    raise LaunchError("gcloud not found: install the Google Cloud CLI "
                      "(https://cloud.google.com/sdk/docs/install)") from None


def _step(step: str, args, tolerate: bool = False) -> None:
  """Runs one step's commands, or raises LaunchError naming it; ``tolerate``: a failure is
  only reported (the poll that follows tells whether it took effect)."""
  for command in commands(step, args):
    print(f"# {step}\n{shlex.join(command)}", flush=True)
    if args.dry_run:
      continue
    done = _run(command)
    if done.returncode != 0 and tolerate:
      print(f"# {step}: gcloud exited {done.returncode} (a dropped ssh?); the next poll tells",
            flush=True)
    elif done.returncode != 0:
      raise LaunchError(f"{step} failed (exit {done.returncode})")


def vm_state(args) -> str:
  """READY, CREATING, PREEMPTED, ... of the VM, or GONE when it no longer exists."""
  done = _run(_tpu(args, "describe", args.name, "--format=value(state)"), capture=True)
  if done.returncode != 0:
    if "NOT_FOUND" in done.stderr or "not found" in done.stderr.lower():
      return "GONE"
    return "UNKNOWN"  # gcloud or the network failed: ask again at the next poll
  return done.stdout.strip() or "UNKNOWN"


def poll(args) -> str | None:
  """'running', 'absent', 'stopped' (by a signal, e.g. a maintenance event: to start again),
  'exit <n>' (the worst of the workers), or None when the workers could not be reached (a
  dropped ssh)."""
  done = _run(commands("wait", args)[0], capture=True)
  answers = [line.split(_STATUS, 1)[1].split() for line in done.stdout.splitlines()
             if _STATUS in line]
  if done.returncode != 0 and not answers:
    return None
  if any(a[:1] == ["running"] for a in answers):
    return "running"
  if any(a == ["exit", str(STOPPED)] for a in answers):
    return "stopped"
  failed = [a[1] for a in answers if a[:1] == ["exit"] and a[1:] != ["0"]]
  if failed:
    return f"exit {failed[0]}"
  if answers and all(a == ["exit", "0"] for a in answers):
    return "exit 0"
  return "absent" if answers else None


def wait(args) -> None:
  """Blocks until the training ends on every worker; recreates a preempted VM and starts the
  training again (it resumes from the workdir), at most ``max_preemptions`` times."""
  preemptions, unreachable, restarts = 0, 0, 0
  while True:
    status = poll(args)
    if status == "exit 0":
      print("# the training has ended", flush=True)
      return
    if status is not None and status.startswith("exit"):
      raise LaunchError(f"the training failed ({status}); see `python launch/tpu_vm.py logs` "
                        f"and its ~/train.log on each worker. The VM is left running: "
                        f"{shlex.join(commands('delete', args)[0])}")
    state = vm_state(args) if status in (None, "absent", "stopped") else "READY"
    if state in ("PREEMPTED", "GONE", "TERMINATED"):
      preemptions += 1
      if preemptions > args.max_preemptions:
        raise LaunchError(f"the VM was preempted {preemptions} times (--max_preemptions="
                          f"{args.max_preemptions}); the same `all` command resumes the run "
                          f"from {args.workdir}")
      print(f"# the VM is {state.lower()}: recreating it ({preemptions}/"
            f"{args.max_preemptions}); the run resumes from {args.workdir}", flush=True)
      if state != "GONE":
        _step("delete", args)  # a preempted TPU VM keeps its name until deleted
      _step("create", args)
      _step("install", args)
      _step("train", args, tolerate=True)
      unreachable = 0
      continue
    if status is None:
      unreachable += 1  # a dropped ssh, or the VM restarting: ask again
      if unreachable > args.max_unreachable:
        raise LaunchError(f"the workers did not answer {unreachable} polls in a row (VM "
                          f"{state}); the VM is left as it is")
    elif status in ("absent", "stopped"):  # its start's ssh dropped, the VM restarted under
      restarts += 1                          # it, or a signal stopped it (checkpoint written)
      if restarts > args.max_preemptions + 2:
        raise LaunchError(f"the training keeps stopping on the workers ({status}); see "
                          f"~/train.log")
      print(f"# the training is {status} on the workers: starting it (it resumes from the "
            f"workdir)", flush=True)
      _step("train", args, tolerate=True)
    else:
      unreachable = 0
    time.sleep(args.poll)


def _origin() -> str:
  try:
    return subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return ""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("step", choices=(*STEPS, "all"))
  parser.add_argument("--name", required=True, help="TPU VM name")
  parser.add_argument("--zone", required=True)
  parser.add_argument("--project", default="")
  parser.add_argument("--type", default="v4-8", help="accelerator type: v4-8 is one host, "
                      "v4-32 a 4-host pod slice, v5litepod-8, ...")
  parser.add_argument("--runtime", default="tpu-ubuntu2204-base", help="TPU VM software version")
  parser.add_argument("--spot", action="store_true", help="preemptible (Spot) capacity: `all` "
                      "recreates a preempted VM and the run resumes from its gs:// workdir")
  parser.add_argument("--max_preemptions", type=int, default=5,
                      help="how many times `all` recreates a preempted VM")
  parser.add_argument("--max_unreachable", type=int, default=30,
                      help="polls in a row the workers may not answer before `all` gives up")
  parser.add_argument("--poll", type=float, default=60.0, help="seconds between polls")
  parser.add_argument("--keep", action="store_true", help="`all` leaves the VM at the end")
  parser.add_argument("--repo", default=_origin(), help="git URL the workers clone (default: "
                      "this checkout's origin)")
  parser.add_argument("--ref", default="main", help="commit, tag or branch to install")
  parser.add_argument("--config", default="configs/sinsr.py")
  parser.add_argument("--workdir", default="runs/sinsr", help="gs://... for a pod slice or Spot")
  parser.add_argument("--data_dir", default="", help="TFDS data dir, gs://... for a pod slice")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override, e.g. train.batch_size=64")
  parser.add_argument("--to", default="runs/", help="local folder that `copy` fills")
  parser.add_argument("--dry-run", action="store_true", help="print the commands only")
  return parser.parse_args(argv)


def run_all(args) -> None:
  _step("create", args)
  _step("install", args)
  _step("train", args, tolerate=True)  # a dropped ssh here: the poll finds it absent
  if args.dry_run:
    _step("wait", args)  # what each poll runs
  else:
    wait(args)
  _step("copy", args)
  if args.keep:
    print(f"# --keep: the VM {args.name} stays; delete it with: "
          f"{shlex.join(commands('delete', args)[0])}", flush=True)
  else:
    _step("delete", args)


def main(argv: list[str] | None = None) -> int:
  args = parse(argv)
  if args.step in ("install", "all") and not args.repo:
    print("error: --repo=URL is needed: the git URL the workers clone (this checkout has no "
          "origin remote)", file=sys.stderr)
    return 2
  if args.step == "all" and args.spot and not args.workdir.startswith("gs://"):
    print("error: --spot needs --workdir=gs://...: a preempted VM's disk is lost, so the run "
          "can resume only from a bucket", file=sys.stderr)
    return 2
  try:
    if args.step == "all":
      run_all(args)
    elif args.step == "wait" and not args.dry_run:
      wait(args)
    else:
      _step(args.step, args)
  except LaunchError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
