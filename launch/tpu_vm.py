"""Train on a Cloud TPU VM (one host, or a pod slice of many), from creation to deletion.

    python launch/tpu_vm.py create  --name=sinsr --zone=us-central2-b --type=v4-8
    python launch/tpu_vm.py install --name=sinsr --zone=us-central2-b
    python launch/tpu_vm.py train   --name=sinsr --zone=us-central2-b \
        --config=configs/sinsr.py --workdir=gs://my-bucket/runs/sinsr \
        --data_dir=gs://my-bucket/tensorflow_datasets
    python launch/tpu_vm.py logs    --name=sinsr --zone=us-central2-b
    python launch/tpu_vm.py copy    --name=sinsr --zone=us-central2-b \
        --workdir=gs://my-bucket/runs/sinsr --to=runs/
    python launch/tpu_vm.py delete  --name=sinsr --zone=us-central2-b
    python launch/tpu_vm.py all ... --dry-run     # every command of the whole path, run nothing

Every step runs the same command on all workers (``--worker=all``): each worker is one JAX
process; ``--distributed`` makes ``jax.distributed.initialize()`` find the slice from the TPU
metadata, and the global batch is split over the hosts. On a pod slice the workdir and the data
must be on storage every worker sees (a ``gs://`` bucket; orbax and TFDS write there directly).
``--dry-run`` prints the gcloud commands instead of running them.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

STEPS = ("create", "install", "train", "logs", "copy", "delete")


def _tpu(args, verb: str, *rest: str) -> list[str]:
  project = [f"--project={args.project}"] if args.project else []
  return ["gcloud", "compute", "tpus", "tpu-vm", verb, *rest, f"--zone={args.zone}", *project]


def _ssh(args, worker: str, command: str) -> list[str]:
  return _tpu(args, "ssh", args.name, f"--worker={worker}", f"--command={command}")


def train_command(args) -> str:
  """The command every worker runs: the same on all of them."""
  flags = [f"--config={args.config}", f"--workdir={args.workdir}", "--distributed",
           *([f"--config.data.data_dir={args.data_dir}"] if args.data_dir else []),
           *[f"--config.{o}" for o in args.set]]
  main = f"~/venv/bin/python -m sinsr_jax.main {shlex.join(flags)}"
  # Detached, so closing the ssh session does not stop training; the log stays on each worker.
  return f"cd ~/sinsr_jax && nohup {main} > ~/train.log 2>&1 &"


def commands(step: str, args) -> list[list[str]]:
  if step == "create":
    extra = ["--spot"] if args.spot else []
    return [_tpu(args, "create", args.name, f"--accelerator-type={args.type}",
                 f"--version={args.runtime}", *extra)]
  if step == "install":
    ref = shlex.quote(args.ref)
    setup = (f"(test -d ~/sinsr_jax || git clone {shlex.quote(args.repo)} ~/sinsr_jax) && "
             f"cd ~/sinsr_jax && git fetch --all --tags && git checkout {ref} && "
             f"python3 -m venv ~/venv && ~/venv/bin/pip install -q -e '.[tpu]'")
    return [_ssh(args, "all", setup)]
  if step == "train":
    return [_ssh(args, "all", train_command(args))]
  if step == "logs":
    return [_ssh(args, "0", "tail -n 200 -f ~/train.log")]
  if step == "copy":
    if args.workdir.startswith("gs://"):
      return [["gcloud", "storage", "cp", "--recursive", args.workdir, args.to]]
    return [_tpu(args, "scp", "--recurse", f"{args.name}:{args.workdir}", args.to, "--worker=0")]
  if step == "delete":
    return [_tpu(args, "delete", args.name, "--quiet")]
  raise ValueError(step)


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
  parser.add_argument("--spot", action="store_true", help="preemptible (Spot) capacity; the run "
                      "resumes from its checkpoints when started again")
  parser.add_argument("--repo", default=_origin(), help="git URL the workers clone (default: "
                      "this checkout's origin)")
  parser.add_argument("--ref", default="main", help="commit, tag or branch to install")
  parser.add_argument("--config", default="configs/sinsr.py")
  parser.add_argument("--workdir", default="runs/sinsr", help="gs://... for a pod slice")
  parser.add_argument("--data_dir", default="", help="TFDS data dir, gs://... for a pod slice")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override, e.g. train.batch_size=64")
  parser.add_argument("--to", default="runs/", help="local folder that `copy` fills")
  parser.add_argument("--dry-run", action="store_true", help="print the commands only")
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  args = parse(argv)
  if args.step in ("install", "all") and not args.repo:
    print("error: --repo=URL is needed: the git URL the workers clone (this checkout has no "
          "origin remote)", file=sys.stderr)
    return 2
  steps = [s for s in STEPS if s != "logs"] if args.step == "all" else [args.step]
  for step in steps:
    for command in commands(step, args):
      print(f"# {step}\n{shlex.join(command)}", flush=True)
      if not args.dry_run:
        try:
          done = subprocess.run(command, check=False)
        except FileNotFoundError:
          print("error: gcloud not found: install the Google Cloud CLI "
                "(https://cloud.google.com/sdk/docs/install)", file=sys.stderr)
          return 1
        if done.returncode != 0:
          print(f"error: {step} failed (exit {done.returncode})", file=sys.stderr)
          return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
