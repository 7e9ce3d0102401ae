"""The package's XLA CPU defaults: added to XLA_FLAGS, never over the user's own setting."""

import subprocess
import sys

from conftest import REPO
from sinsr_jax.runtime import xla_cpu


def test_defaults_are_added_and_user_flags_win():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  flags = xla_cpu.apply(env)
  assert flags == env["XLA_FLAGS"]
  assert flags.startswith("--xla_force_host_platform_device_count=2 ")
  assert "--xla_cpu_experimental_ynn_fusion_type=" in flags
  assert xla_cpu.apply(env) == flags  # idempotent
  mine = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"}
  assert xla_cpu.apply(mine) == "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"
  assert xla_cpu.apply({}) == "--xla_cpu_experimental_ynn_fusion_type="


def test_importing_the_package_sets_the_flags_before_jax_starts():
  code = ("import os, sinsr_jax, jax.numpy as jnp; jnp.ones(2).block_until_ready(); "
          "print(os.environ['XLA_FLAGS'])")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "--xla_cpu_experimental_ynn_fusion_type=" in out.stdout
