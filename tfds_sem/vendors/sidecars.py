"""Text files instruments write beside an image: found by the image's stem, decoded as written.

Hitachi writes ``<stem>.txt`` in UTF-16 with a byte-order mark or in the Windows ANSI code
page, JEOL ``<stem>.txt`` in ASCII; lines end in CRLF. TESCAN can write ``<stem>-<ext>.hdr``.
"""

from __future__ import annotations

import codecs
import os
import pathlib

MAX_BYTES = 1 << 20  # a sidecar is a few KB; a large .txt of the same stem is something else
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def candidates(image_name: str) -> list[str]:
  """Sidecar names for ``image_name`` (a path or a name in an archive), most likely first."""
  path = pathlib.PurePath(image_name)
  stem = str(path.with_suffix(""))
  return [stem + ".txt", stem + ".TXT", f"{stem}-{path.suffix.lstrip('.')}.hdr"]


def find(image_path: str) -> bytes | None:
  """The bytes of the sidecar beside the image file ``image_path``, or None."""
  for name in candidates(image_path):
    try:
      if os.path.isfile(name) and os.path.getsize(name) <= MAX_BYTES:
        with open(name, "rb") as f:
          return f.read()
    except OSError:  # unreadable: the image is still used, without it
      continue
  return None


def decode(data: bytes) -> str:
  """Sidecar bytes -> text: UTF-8/16 by their byte-order mark, UTF-16 without one when every
  other byte is NUL, else UTF-8, else Windows-1252 (the ANSI page of western instruments)."""
  for bom, encoding in _BOMS:
    if data.startswith(bom):
      return data.decode(encoding, errors="replace")
  if len(data) >= 4 and data[1::2].count(0) > 0.4 * len(data) // 2:
    return data.decode("utf-16-le", errors="replace")
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError:
    return data.decode("cp1252", errors="replace")
