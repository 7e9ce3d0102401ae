"""Run folders on a local disk or in a bucket (``gs://...``), through one set of functions.

Local paths go through ``os`` (as before: fast, and what NFS/Lustre workdirs need); anything
with a scheme goes through ``etils.epath``, the path layer orbax and TFDS use, so a
``--workdir=gs://b/r`` is the bucket on every worker instead of a local folder ``./gs:/b/r``.
epath reaches GCS through TensorFlow's filesystem, or gcsfs with ``EPATH_USE_TF=false`` (the
``gcs`` extra; what the emulator tests use, since TensorFlow's GCS client has no endpoint
override).

Object stores have no folders and no atomic rename: ``makedirs`` is a no-op there, and
``write_atomic`` writes the object whole in one upload (GCS never shows a partial object).
"""

from __future__ import annotations

import os
import posixpath


def is_remote(path: str | os.PathLike) -> bool:
  """Whether ``path`` names an object store (``gs://``, ``s3://``, ...), not a local file."""
  return "://" in os.fspath(path)


def _epath(path):
  from etils import epath

  return epath.Path(os.fspath(path))


def refresh(path: str) -> None:
  """gcsfs keeps folder listings for the life of the process, and orbax writes through
  tensorstore, which that cache never hears of: each look at a folder forgets them first."""
  import sys

  if "gcsfs" in sys.modules and path.startswith("gs://"):
    import fsspec

    fsspec.filesystem("gcs", finalize_on_close=True).invalidate_cache()


def join(path: str, *parts: str) -> str:
  return posixpath.join(path, *parts) if is_remote(path) else os.path.join(path, *parts)


def absolute(path: str) -> str:
  return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def exists(path: str) -> bool:
  if not is_remote(path):
    return os.path.exists(path)
  refresh(path)
  return _epath(path).exists()


def isdir(path: str) -> bool:
  if not is_remote(path):
    return os.path.isdir(path)
  refresh(path)
  return _epath(path).is_dir()


def isfile(path: str) -> bool:
  if not is_remote(path):
    return os.path.isfile(path)
  refresh(path)
  return _epath(path).is_file()


def listdir(path: str) -> list[str]:
  """Names in the folder ``path`` (FileNotFoundError if there is none)."""
  if not is_remote(path):
    return os.listdir(path)
  refresh(path)
  folder = _epath(path)
  if not folder.is_dir():
    raise FileNotFoundError(path)
  return [p.name for p in folder.iterdir()]


def makedirs(path: str) -> None:
  if is_remote(path):
    _epath(path).mkdir(parents=True, exist_ok=True)
  else:
    os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
  if is_remote(path):
    return _epath(path).read_bytes()
  with open(path, "rb") as f:
    return f.read()


def walk_files(path: str, recursive: bool) -> list[str]:
  """Files in the folder ``path`` (and its subfolders when ``recursive``), sorted."""
  if not is_remote(path):
    found = ((os.path.join(root, n) for root, _, names in os.walk(path) for n in names)
             if recursive else (os.path.join(path, n) for n in os.listdir(path)))
    return sorted(p for p in found if os.path.isfile(p))
  refresh(path)
  files = []
  for item in _epath(path).iterdir():  # epath refuses glob("**") in a bucket
    child = join(path, item.name)
    if item.is_dir():
      files += walk_files(child, recursive) if recursive else []
    else:
      files.append(child)
  return sorted(files)


def glob(pattern: str, recursive: bool = False) -> list[str]:
  """Paths matching ``pattern`` (``*``, ``?``, ``[...]``; ``**`` when ``recursive``), sorted."""
  import glob as glob_

  if not is_remote(pattern):
    return sorted(glob_.glob(pattern, recursive=recursive))
  if "**" in pattern:
    raise ValueError("** is not supported in a bucket (one listing per folder); name the "
                     "folder instead, with --recursive")
  scheme, rest = pattern.split("://", 1)
  bucket, _, key = rest.partition("/")
  refresh(pattern)
  root = _epath(f"{scheme}://{bucket}")
  return sorted(f"{scheme}://{bucket}/{p.relative_to(root).as_posix()}" for p in root.glob(key))


def read_text(path: str) -> str:
  if is_remote(path):
    return _epath(path).read_text()
  with open(path) as f:
    return f.read()


def write_atomic(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` so that a reader (or a resume after a kill at any moment) finds
  the old content or the new, never a part: locally a temporary file, flushed, then renamed
  over; in a bucket one upload (an object appears whole or not at all). An unchanged file is
  left as it is (same bytes, same mtime)."""
  try:
    if read_text(path) == text:
      return
  except (OSError, UnicodeDecodeError):
    pass
  if is_remote(path):
    _epath(path).write_text(text)
    return
  directory, name = os.path.split(path)
  # One name: the workdir has one writer (its lock), and a temporary cut by a kill is replaced
  # by the next write rather than left behind.
  tmp = os.path.join(directory, f".{name}.tmp")
  try:
    with open(tmp, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def put(local_file: str, path: str) -> None:
  """Copies the local file ``local_file`` to ``path`` (a bucket's object appears whole: one
  upload; locally a copy renamed into place)."""
  import shutil

  if is_remote(path):
    with open(local_file, "rb") as f:
      _epath(path).write_bytes(f.read())
    return
  tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp")
  shutil.copyfile(local_file, tmp)
  os.replace(tmp, path)


def rename(source: str, target: str) -> None:
  """Moves a file or a folder (in a bucket: copied, then deleted, object by object)."""
  if not is_remote(source):
    os.rename(source, target)
    return
  src = _epath(source)
  if src.is_dir():
    copy_tree(source, target)
    src.rmtree()
  else:
    src.rename(_epath(target))


def copy_tree(source: str, target: str) -> None:
  """Copies the folder ``source`` to ``target``, file by file where either is in a bucket."""
  if not is_remote(source) and not is_remote(target):
    import shutil

    shutil.copytree(source, target)
    return
  for item in walk_files(source, recursive=True):
    dest = _epath(target) / posixpath.relpath(item, source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _epath(item).copy(dest, overwrite=True)


def remove(path: str) -> None:
  if is_remote(path):
    _epath(path).unlink()
  else:
    os.remove(path)


def staging_dir(path: str) -> str:
  """A local folder standing in for the remote folder ``path`` where a library needs a local
  file it appends to (log.txt, TensorBoard's event files): filled there, then ``upload``ed."""
  import hashlib
  import tempfile

  if not is_remote(path):
    return path
  tag = hashlib.sha256(path.encode()).hexdigest()[:12]
  folder = os.path.join(tempfile.gettempdir(), "sinsr_jax-staging",
                        f"{os.path.basename(path.rstrip('/'))}-{tag}-{os.getpid()}")
  os.makedirs(folder, exist_ok=True)
  return folder


def appendable_folder(path: str, name: str) -> str:
  """The folder to append to the file ``name`` of ``path`` in: ``path`` itself, or for a bucket
  (objects cannot be appended to) a local staging folder holding a copy of the bucket's file,
  uploaded at exit (and by each ``upload``)."""
  import atexit

  folder = staging_dir(path)
  if folder == path:
    os.makedirs(path, exist_ok=True)
    return folder
  remote, local = join(path, name), os.path.join(folder, name)
  if exists(remote) and not os.path.exists(local):
    with open(local, "w", encoding="utf-8") as f:
      f.write(read_text(remote))  # what earlier starts logged: appended to, as locally
  atexit.register(upload, folder, path)
  return folder


def upload(local_folder: str, path: str) -> None:
  """Copies each file under ``local_folder`` to the same name under the remote ``path`` when
  it is new or has changed size since the last upload (event files and logs only grow)."""
  if not is_remote(path) or not os.path.isdir(local_folder):
    return
  sizes = _uploaded.setdefault((local_folder, path), {})
  for root, _, names in os.walk(local_folder):
    for name in names:
      local = os.path.join(root, name)
      size = os.path.getsize(local)
      if sizes.get(local) == size:
        continue
      target = _epath(join(path, os.path.relpath(local, local_folder).replace(os.sep, "/")))
      target.parent.mkdir(parents=True, exist_ok=True)
      with open(local, "rb") as f:
        target.write_bytes(f.read())
      sizes[local] = size


_uploaded: dict[tuple[str, str], dict[str, int]] = {}
