"""The workdir lock's file as a GCS object: an object store has no ``link(2)``, but it has
create-if-absent (an upload with the precondition ``ifGenerationMatch=0`` fails with 412 when
the object exists) and compare-and-delete (``ifGenerationMatch=<generation>``), which give the
same guarantees: one holder at a time, and a stale lock removed only as it was seen.

The object's ``updated`` time is the heartbeat (the holder rewrites it, conditioned on its own
generation). Needs google-cloud-storage (the ``gcs`` extra); with ``STORAGE_EMULATOR_HOST`` set
it talks to that emulator, anonymously.
"""

from __future__ import annotations

import json
import os

from sinsr_jax.errors import UserError


class GcsLockFile:
  """Create-if-absent, read, touch and compare-and-delete of one ``gs://bucket/name`` object."""

  def __init__(self, url: str):
    if not url.startswith("gs://"):
      raise UserError(f"{url}: a workdir lock in this store is not supported (gs:// is)")
    bucket, _, self.name = url[len("gs://"):].partition("/")
    try:
      from google.api_core import exceptions
      from google.cloud import storage
    except ImportError:
      raise UserError(f"{url}: a workdir on gs:// needs google-cloud-storage: pip install -e "
                      f"\".[gcs]\"") from None
    self._errors = exceptions
    credentials = None
    if os.environ.get("STORAGE_EMULATOR_HOST"):
      from google.auth.credentials import AnonymousCredentials

      credentials = AnonymousCredentials()
    client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
                            credentials=credentials)
    self._bucket = client.bucket(bucket)
    self.generation: int | None = None  # of the object this process wrote

  def create(self, holder: dict) -> bool:
    """Writes ``holder`` unless the object exists; whether it did."""
    blob = self._bucket.blob(self.name)
    try:
      blob.upload_from_string(json.dumps(holder), content_type="application/json",
                              if_generation_match=0)
    except self._errors.PreconditionFailed:
      return False
    self.generation = blob.generation
    return True

  def read(self) -> dict | None:
    """The holder with its ``heartbeat`` (the object's update time) and ``generation``, or
    None when there is no lock."""
    try:
      blob = self._bucket.get_blob(self.name)
      if blob is None:
        return None
      text = blob.download_as_text(if_generation_match=blob.generation)
    except (self._errors.NotFound, self._errors.PreconditionFailed):
      return None  # deleted or replaced meanwhile: look again
    seen = {"heartbeat": blob.updated.timestamp(), "generation": blob.generation}
    try:
      return {**json.loads(text), **seen}
    except ValueError:  # garbage: judged by its age
      return seen

  def touch(self, holder: dict) -> bool:
    """Rewrites the holder's own object (a fresh ``updated`` time); False when it is no longer
    this process's."""
    blob = self._bucket.blob(self.name)
    try:
      blob.upload_from_string(json.dumps(holder), content_type="application/json",
                              if_generation_match=self.generation)
    except (self._errors.PreconditionFailed, self._errors.NotFound):
      return False
    self.generation = blob.generation
    return True

  def delete(self, generation: int | None) -> None:
    """Deletes the object if it is still the one of ``generation``."""
    try:
      self._bucket.blob(self.name).delete(if_generation_match=generation)
    except (self._errors.PreconditionFailed, self._errors.NotFound):
      pass
