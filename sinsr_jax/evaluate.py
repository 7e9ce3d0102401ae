"""``python -m sinsr_jax.evaluate``: score trained runs and bicubic on a dataset split or the
user's micrographs.

The command lives in sinsr_jax/evaluation/command.py; this module only runs it.
"""

from absl import app, flags

from sinsr_jax.evaluation import command

if __name__ == "__main__":
  # absl's --help lists the main module's key flags only: the command's flags become them.
  flags.adopt_module_key_flags(command)
  __doc__ = command.__doc__  # what absl's --help prints: the __main__ module's docstring
  app.run(command.main)
