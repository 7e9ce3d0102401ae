"""``python -m sinsr_jax.export``: a run's generator as ONNX or a bioimage.io model package.

The command lives in sinsr_jax/export/command.py; this module only runs it.
"""

from absl import app

from sinsr_jax.export import command

if __name__ == "__main__":
  __doc__ = command.__doc__  # what absl's --help prints: the __main__ module's docstring
  app.run(command.main, flags_parser=command.parse_flags)
