"""The persistent compilation cache the command lines turn on (runtime/compile_cache.py)."""

import os
import subprocess
import sys

import jax
import pytest

from conftest import REPO
from sinsr_jax.runtime import compile_cache


def test_default_folder_follows_the_environment():
  assert compile_cache.default_dir({"SINSR_CACHE_DIR": "/c"}) == "/c/xla"
  assert compile_cache.default_dir({"XDG_CACHE_HOME": "/x"}) == "/x/sinsr_jax/xla"
  assert compile_cache.default_dir({}) == os.path.expanduser("~/.cache/sinsr_jax/xla")


@pytest.fixture
def jax_cache_settings():
  """Restores the suite's cache settings after a test changes them."""
  names = ("jax_compilation_cache_dir", "jax_enable_compilation_cache",
           "jax_compilation_cache_max_size")
  saved = {name: getattr(jax.config, name) for name in names}
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def test_the_users_settings_win(jax_cache_settings, tmp_path):
  jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
  jax.config.update("jax_compilation_cache_max_size", -1)
  assert compile_cache.enable({"JAX_COMPILATION_CACHE_MAX_SIZE": "-1"}) == str(tmp_path / "mine")
  assert jax.config.jax_compilation_cache_max_size == -1  # the user's "no bound" stays

  jax.config.update("jax_compilation_cache_dir", None)
  assert compile_cache.enable({"SINSR_CACHE_DIR": str(tmp_path)}) == str(tmp_path / "xla")
  assert jax.config.jax_compilation_cache_max_size == compile_cache.DEFAULT_MAX_BYTES

  jax.config.update("jax_compilation_cache_dir", None)
  jax.config.update("jax_enable_compilation_cache", False)
  assert compile_cache.enable({"SINSR_CACHE_DIR": str(tmp_path / "off")}) is None
  assert jax.config.jax_compilation_cache_dir is None and not (tmp_path / "off").exists()


def test_an_unwritable_folder_turns_the_cache_off(jax_cache_settings, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  jax.config.update("jax_compilation_cache_dir", None)
  assert compile_cache.enable({"SINSR_CACHE_DIR": str(blocker)}) is None
  assert not jax.config.jax_enable_compilation_cache


_COMPILE_AND_COUNT_HITS = """
import jax, jax.numpy as jnp
from sinsr_jax.runtime import compile_cache
hits = []
HIT = "/jax/compilation_cache/cache_hits"
jax.monitoring.register_event_listener(lambda e, **kw: hits.append(e) if e == HIT else None)
print("cache:", compile_cache.enable())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((8, 8))).block_until_ready()
print("hits:", len(hits))
"""


@pytest.mark.slow
def test_a_second_process_reads_the_compiled_program_back(tmp_path):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
  env["SINSR_CACHE_DIR"] = str(tmp_path)

  def run():
    out = subprocess.run([sys.executable, "-c", _COMPILE_AND_COUNT_HITS], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout

  first = run()
  assert f"cache: {tmp_path / 'xla'}" in first and "hits: 0" in first
  assert any(name != ".lockfile" for name in os.listdir(tmp_path / "xla"))
  hits = int(run().split("hits:")[1])
  assert hits >= 1  # the ones(), sin and matmul programs, each read back
