"""``python -m sinsr_jax.upscale``: apply a trained model to micrographs.

The command lives in sinsr_jax/inference/command.py; this module only runs it.
"""

from absl import app, flags

from sinsr_jax.inference import command

if __name__ == "__main__":
  # absl's --help lists the main module's key flags only: the command's flags become them.
  flags.adopt_module_key_flags(command)
  __doc__ = command.__doc__  # what absl's --help prints: the __main__ module's docstring
  app.run(command.main, flags_parser=command.parse_flags)
