"""A local GCS for the tests: gcp-storage-emulator (pinned) in a child process on 127.0.0.1,
with two of its gaps closed here, so the tests see what GCS does:

- uploads and downloads honour ``ifGenerationMatch`` (412 when the object's generation
  differs; ``0``: create only if absent, the workdir lock), downloads ``ifGenerationNotMatch``
  (304 when unchanged) and carry ``x-goog-generation``: tensorstore's OCDBT manifest updates
  rely on them (without, a checkpoint of a few hundred arrays fails with "Malformed
  StorageGeneration"; the emulator ignored the preconditions and sent no generation header);
- a listing with ``startOffset``/``endOffset`` returns only names in that range (the emulator
  ignored them, so tensorstore's delete_range under one prefix deleted the whole bucket).

Run as a script it serves until killed: ``python tests/gcs_emulator.py PORT BUCKET``. It runs
as a child process because in-process, beside TensorFlow, it deadlocks (DESIGN.md section 11).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

PINNED = "gcp-storage-emulator==2026.7.19"
# What the clients need to reach it: gcsfs (etils.epath with EPATH_USE_TF=false), tensorstore
# (orbax's arrays) and google-cloud-storage (the lock). TensorFlow's own GCS filesystem has no
# endpoint override: nothing may reach it (summaries and logs of a gs:// run are staged
# locally and uploaded through epath).
def client_env(url: str) -> dict[str, str]:
  return {"STORAGE_EMULATOR_HOST": url, "EPATH_USE_TF": "false", "FSSPEC_GS_TOKEN": "anon",
          "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false", "TENSORSTORE_GCS_HTTP_URL": url,
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test", "GOOGLE_CLOUD_PROJECT": "test"}


def missing() -> str:
  """Why the emulator tests cannot run here ('' when they can)."""
  import importlib.util

  needed = {"gcp_storage_emulator": PINNED, "gcsfs": 'the gcs extra: pip install -e ".[gcs]"',
            "google.cloud.storage": 'the gcs extra: pip install -e ".[gcs]"'}
  for module, what in needed.items():
    try:
      if importlib.util.find_spec(module) is None:
        return f"{module} is not installed ({what})"
    except ModuleNotFoundError:
      return f"{module} is not installed ({what})"
  return ""


def start(bucket: str = "bucket", timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
  """(process, URL) of an emulator serving ``bucket`` on a free loopback port."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  # Its log to a file: a pipe nobody reads fills up with the tracebacks it prints of clients
  # that hang up, and the server then blocks writing one, holding every client.
  log = tempfile.NamedTemporaryFile(prefix="gcs_emulator.", suffix=".log", delete=False)
  proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(port), bucket],
                          stdout=subprocess.DEVNULL, stderr=log)
  log.close()
  proc.log_path = log.name
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc.poll() is not None:
      with open(log.name) as f:
        raise RuntimeError(f"the GCS emulator ended: {f.read()[-2000:]}")
    try:
      socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
      return proc, f"http://127.0.0.1:{port}"
    except OSError:
      time.sleep(0.1)
  proc.kill()
  raise RuntimeError("the GCS emulator did not start in time")


def _patch() -> None:
  from http import HTTPStatus

  from gcp_storage_emulator import server
  from gcp_storage_emulator.exceptions import NotFound
  from gcp_storage_emulator.handlers import objects

  def create_if_absent(upload):
    def patched(request, response, storage):
      wanted = (request.query.get("ifGenerationMatch") or [None])[0]
      if wanted is not None:
        meta = request.data.get("meta", {}) if isinstance(request.data, dict) else {}
        name = request.query["name"][0] if "name" in request.query else meta.get("name")
        try:
          current = str(storage.get_file_obj(request.params["bucket_name"], name)["generation"])
        except NotFound:
          current = "0"
        if current != wanted:
          response.status = HTTPStatus.PRECONDITION_FAILED
          return None
      return upload(request, response, storage)
    return patched

  download = objects.download

  def download_by_generation(request, response, storage, *args, **kwargs):
    try:
      obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
    except NotFound:
      return download(request, response, storage, *args, **kwargs)
    generation = str(obj["generation"])
    unchanged = (request.query.get("ifGenerationNotMatch") or [None])[0]
    match = (request.query.get("ifGenerationMatch") or [None])[0]
    if unchanged == generation:
      response.status = HTTPStatus.NOT_MODIFIED
      return None
    if match is not None and match != generation:
      response.status = HTTPStatus.PRECONDITION_FAILED
      return None
    response["x-goog-generation"] = generation
    response["x-goog-metageneration"] = str(obj.get("metageneration", "1"))
    return download(request, response, storage, *args, **kwargs)

  objects.download = download_by_generation
  objects._media_upload = create_if_absent(objects._media_upload)
  objects._multipart_upload = create_if_absent(objects._multipart_upload)
  listing = objects.ls

  def ls_in_range(request, response, storage, *args, **kwargs):
    start = (request.query.get("startOffset") or [None])[0]
    end = (request.query.get("endOffset") or [None])[0]
    if start is not None or end is not None:
      send = response.json

      def in_range(body):
        keep = [i for i in body.get("items", []) if (start is None or i["name"] >= start)
                and (end is None or i["name"] < end)]
        send({**body, "items": keep})
      response.json = in_range
    return listing(request, response, storage, *args, **kwargs)

  # It serves one connection at a time: a client that stops sending mid-request would hold
  # every other one; like a real server, drop it after a while (the clients retry).
  server.RequestHandler.timeout = 5

  for _, handlers in server.HANDLERS:
    for method, handler in list(handlers.items()):
      if handler is listing:
        handlers[method] = ls_in_range
      elif handler is download:
        handlers[method] = download_by_generation


if __name__ == "__main__":
  import logging

  logging.basicConfig(level=logging.INFO if os.environ.get("EMU_VERBOSE") else logging.WARNING)
  if not os.environ.get("NO_PATCH"):
    _patch()
  from gcp_storage_emulator.server import create_server

  serving = create_server("127.0.0.1", int(sys.argv[1]), in_memory=True,
                          default_bucket=sys.argv[2])
  serving.run()
