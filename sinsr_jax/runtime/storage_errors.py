"""Telling a storage hiccup from damage: a timeout, a reset connection or a permission blip says
nothing about the bytes stored, so a read failing that way is retried (and, still failing,
reported), never taken as proof that a checkpoint is broken."""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Callable
from typing import TypeVar

from absl import logging

T = TypeVar("T")

# Waits between tries of a read failing with a transient error (seconds): ~30 s in all, longer
# than a typical object-store brown-out or an NFS server failover, short beside a training.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)

_TRANSIENT_ERRNOS = {errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED,
                     errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EAGAIN,
                     errno.EINTR, errno.EBUSY, errno.EACCES, errno.EPERM, errno.ESTALE,
                     errno.EIO, errno.EPIPE}
# Status codes (absl / gRPC, which tensorstore and the cloud clients report in their messages)
# of a failure of the service, not of the data.
# (Not CANCELLED: a read that fails on damage cancels its sibling reads.)
_TRANSIENT_STATUS = re.compile(r"\b(UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|ABORTED|"
                               r"PERMISSION_DENIED|UNAUTHENTICATED)\b")
# Cloud clients' exception classes, by name: importing them would make them dependencies.
_TRANSIENT_CLASSES = {"ServiceUnavailable", "TooManyRequests", "InternalServerError",
                      "GatewayTimeout", "DeadlineExceeded", "BadGateway", "Forbidden",
                      "Unauthorized", "RetryError", "TransportError", "ReadTimeout",
                      "ConnectTimeout", "ChunkedEncodingError", "ServerDisconnectedError",
                      "ClientConnectionError", "RefreshError"}


def chain(error: BaseException) -> list[BaseException]:
  """``error`` and every exception it was raised from or during, outermost first."""
  seen = [error]
  while (nxt := seen[-1].__cause__ or seen[-1].__context__) is not None and nxt not in seen:
    seen.append(nxt)
  return seen


def is_transient(error: BaseException) -> bool:
  """Whether ``error`` (or anything it wraps) is the storage failing, not the data."""
  for e in chain(error):
    if isinstance(e, (TimeoutError, ConnectionError, PermissionError)):
      return True
    if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
      return True
    if any(k.__name__ in _TRANSIENT_CLASSES for k in type(e).__mro__):
      return True
    if _TRANSIENT_STATUS.search(str(e).split("\n", 1)[0]):
      return True
  return False


class StillFailing(Exception):
  """A read still failing with a transient error after every retry; ``error`` is the last."""

  def __init__(self, error: BaseException, tries: int):
    super().__init__(f"{type(error).__name__}: {error}")
    self.error, self.tries = error, tries


def retry(read: Callable[[], T], what: str, delays=None) -> T:
  """``read()``, tried again after each of ``delays`` (default RETRY_DELAYS) while it fails
  with a transient error; raises StillFailing after the last, any other error at once."""
  delays = RETRY_DELAYS if delays is None else delays
  for attempt in range(len(delays) + 1):
    try:
      return read()
    except Exception as e:
      if not is_transient(e):
        raise
      if attempt == len(delays):
        raise StillFailing(e, attempt + 1) from e
      logging.warning("Reading %s failed with a storage error (%s: %s); trying again in %.0f s.",
                      what, type(e).__name__, str(e).split("\n", 1)[0][:200], delays[attempt])
      time.sleep(delays[attempt])
  raise AssertionError("unreachable")
