"""JAX's persistent compilation cache, on by default for the project's command lines.

A SINSR GAN step compiles for about 40 s at the quick width on a 2-core CPU and for minutes at
the paper width; a resumed run, ``--mode=evaluate``, ``evaluate`` and ``upscale`` compile the same
programs again. With the cache, every compilation after the first one of its kind is read back
from disk (README "Performance"). The user's own settings win:

- ``JAX_COMPILATION_CACHE_DIR`` (or ``jax.config``) picks the folder; without it the cache lives
  in ``$SINSR_CACHE_DIR/xla``, default ``$XDG_CACHE_HOME/sinsr_jax/xla`` or
  ``~/.cache/sinsr_jax/xla``;
- ``JAX_ENABLE_COMPILATION_CACHE=false`` turns it off;
- ``JAX_COMPILATION_CACHE_MAX_SIZE`` (bytes) bounds it; the default bound is ``DEFAULT_MAX_BYTES``,
  least recently used entries are evicted first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
from absl import logging

DEFAULT_MAX_BYTES = 4 << 30


def default_dir(environ: Mapping[str, str] = os.environ) -> str:
  """The cache folder used when the user has named none."""
  if environ.get("SINSR_CACHE_DIR"):
    return os.path.join(os.path.expanduser(environ["SINSR_CACHE_DIR"]), "xla")
  base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "sinsr_jax", "xla")


def enable(environ: Mapping[str, str] = os.environ) -> str | None:
  """Points JAX's persistent cache at the project's folder unless the user chose otherwise.

  Returns the cache folder in use, or None when the cache is off. Call before the first
  compilation (JAX opens the cache once per process).
  """
  if not jax.config.jax_enable_compilation_cache:
    return None
  if not jax.config.jax_compilation_cache_dir:
    path = default_dir(environ)
    try:
      os.makedirs(path, exist_ok=True)
    except OSError as e:  # a read-only home: compile every time rather than fail
      logging.warning("No persistent compilation cache (%s); set JAX_COMPILATION_CACHE_DIR to a "
                      "writable folder to keep compiled programs between runs.", e)
      jax.config.update("jax_enable_compilation_cache", False)
      return None
    jax.config.update("jax_compilation_cache_dir", path)
  if "JAX_COMPILATION_CACHE_MAX_SIZE" not in environ and \
      jax.config.jax_compilation_cache_max_size == -1:
    jax.config.update("jax_compilation_cache_max_size", DEFAULT_MAX_BYTES)
  return jax.config.jax_compilation_cache_dir
