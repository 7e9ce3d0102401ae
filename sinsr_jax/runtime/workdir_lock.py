"""One writer per workdir: a lock file held for the life of a training (or any other writer).

Why a file created with ``link(2)`` and not ``flock``: workdirs live on NFS, Lustre or FUSE
mounts of buckets, where flock is emulated, local to one client or missing (Lustre ``noflock``
answers ENOSYS); ``link`` of a fully written private file is atomic on every POSIX filesystem
and NFS (the method open(2) recommends), and readers never see a half-written holder. The
price: a lock is not released by the kernel when its holder dies, so a stale one is recognised
instead: on the holder's host by its pid and boot id, from another host by a heartbeat (the
holder touches the file every ``HEARTBEAT_S``; older than ``STALE_AFTER_S`` is stale).

In a bucket (``gs://``) the lock is an object created with the store's create-if-absent
precondition and removed by compare-and-delete (runtime/object_lock.py), under the same rules.

Several processes: each holds its own file (``lock`` for process 0, ``lock.<i>`` for the
others), so each process of a second launch is refused by itself and none hangs waiting for a
coordinator that already left.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid

from absl import logging

from sinsr_jax.errors import UserError
from sinsr_jax.runtime import paths

HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


class WorkdirBusy(UserError):
  """Another live process holds the workdir."""


def _boot_id() -> str:
  try:
    with open("/proc/sys/kernel/random/boot_id") as f:
      return f.read().strip()
  except OSError:
    return ""


def _start_ticks(pid: int) -> int | None:
  """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return int(f.read().rsplit(")", 1)[1].split()[19])
  except (OSError, IndexError, ValueError):
    return None


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def _command() -> str:
  """The command line as typed: ``python -m sinsr_jax.main ...`` rather than the module's path."""
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  head = [f"python -m {spec.name}"] if spec is not None and spec.name else sys.argv[:1]
  return " ".join(head + sys.argv[1:])


def describe(holder: dict) -> str:
  started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
  return (f"pid {holder.get('pid')} on {holder.get('host')}, started {started}: "
          f"{holder.get('command', '?')}")


class WorkdirLock:
  """``with WorkdirLock(workdir, "training"):`` holds the workdir or raises WorkdirBusy naming
  the holder; a lock whose holder is gone is taken over with a warning."""

  def __init__(self, workdir: str, purpose: str = "training", process_index: int = 0):
    name = "lock" if process_index == 0 else f"lock.{process_index}"
    self.workdir = workdir
    self.path = paths.join(workdir, name)
    self._object = None
    if paths.is_remote(workdir):
      from sinsr_jax.runtime.object_lock import GcsLockFile

      self._object = GcsLockFile(self.path)
    self.purpose = purpose
    self.holder = {"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id(),
                   "start_ticks": _start_ticks(os.getpid()), "started": time.time(),
                   "purpose": purpose, "command": _command(), "token": uuid.uuid4().hex}
    self._stop = threading.Event()
    self._thread = None

  def __enter__(self) -> WorkdirLock:
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()

  def acquire(self) -> None:
    for _ in range(5):
      if self._create():
        self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                        name="workdir-lock-heartbeat")
        self._thread.start()
        return
      current = self._read(self.path)
      if current is None:  # gone meanwhile, or being written: look again
        time.sleep(0.2)
        continue
      why = self._stale(current)
      if why is None:
        raise WorkdirBusy(f"{self.workdir} is in use by another {current.get('purpose', 'run')}"
                          f" ({describe(current)}); wait for it to end or stop it, or use "
                          f"another --workdir")
      logging.warning("Taking over the lock of %s: %s (%s).", self.workdir, why,
                      describe(current))
      self._break(current)
    raise WorkdirBusy(f"{self.workdir}: could not take {self.path} (other processes keep "
                      f"taking it)")

  def release(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=5)
      self._thread = None
    current = self._read(self.path)
    if current is not None and current.get("token") == self.holder["token"]:
      if self._object is not None:
        self._object.delete(current["generation"])
        return
      try:
        os.unlink(self.path)
      except FileNotFoundError:
        pass

  def _create(self) -> bool:
    if self._object is not None:
      return self._object.create(self.holder)
    private = f"{self.path}.{self.holder['host']}.{self.holder['pid']}.tmp"
    with open(private, "w") as f:
      json.dump(self.holder, f)
    try:
      os.link(private, self.path)
      return True
    except FileExistsError:
      return False
    except OSError:  # a filesystem without hard links: O_EXCL, atomic there too
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        return False
      with os.fdopen(fd, "w") as f:
        json.dump(self.holder, f)
      return True
    finally:
      os.unlink(private)

  def _read(self, path: str) -> dict | None:
    if self._object is not None:
      return self._object.read()
    try:
      with open(path) as f:
        holder = json.load(f)
      holder["heartbeat"] = os.stat(path).st_mtime
      return holder
    except FileNotFoundError:
      return None
    except (OSError, ValueError):  # half written (O_EXCL path) or garbage: judged by its age
      try:
        return {"heartbeat": os.stat(path).st_mtime}
      except OSError:
        return None

  def _stale(self, holder: dict) -> str | None:
    """Why ``holder`` is gone, or None if it may be alive."""
    age = time.time() - holder["heartbeat"]
    if "pid" not in holder:
      return "unreadable lock file" if age > 10 else None
    if holder.get("host") == self.holder["host"]:
      if holder.get("boot_id") != self.holder["boot_id"]:
        return "the machine has restarted since it was taken"
      if not _alive(holder["pid"]):
        return f"process {holder['pid']} no longer exists"
      ticks = _start_ticks(holder["pid"])
      if None not in (ticks, holder.get("start_ticks")) and ticks != holder["start_ticks"]:
        return f"process {holder['pid']} no longer exists (its pid was reused)"
      return None
    if age > STALE_AFTER_S:
      return f"no heartbeat from {holder['host']} for {age / 60:.0f} min"
    return None

  def _break(self, seen: dict) -> None:
    """Moves the stale lock aside; a fresh one another process took meanwhile is put back. In a
    bucket: deleted only if it is still the object seen stale."""
    if self._object is not None:
      self._object.delete(seen.get("generation"))
      return
    aside = f"{self.path}.stale.{self.holder['host']}.{self.holder['pid']}"
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return
    moved = self._read(aside)
    if moved is not None and moved.get("token") != seen.get("token"):
      try:
        os.link(aside, self.path)
      except OSError:
        pass
    os.unlink(aside)

  def _heartbeat(self) -> None:
    while not self._stop.wait(HEARTBEAT_S):
      try:
        current = self._read(self.path)
      except Exception as e:  # a storage hiccup (a bucket's timeout): beat at the next turn
        logging.warning("Could not read the lock %s (%s); trying again in %.0f s.", self.path,
                        type(e).__name__, HEARTBEAT_S)
        continue
      if current is None or current.get("token") != self.holder["token"]:
        logging.warning("The lock %s is no longer this process's: another run may write to "
                        "%s.", self.path, self.workdir)
        return
      if self._object is not None:
        try:
          self._object.touch(self.holder)
        except Exception as e:  # as above: the lock stays held while the run lives
          logging.warning("Could not refresh the lock %s (%s).", self.path, type(e).__name__)
        continue
      try:
        os.utime(self.path)
      except OSError:
        pass
