"""``python -m sinsr_jax.evaluate``: score trained runs and bicubic on a dataset split or the
user's micrographs.

The command lives in sinsr_jax/evaluation/command.py; this module only runs it.
"""

from absl import app

from sinsr_jax.evaluation import command

if __name__ == "__main__":
  __doc__ = command.__doc__  # what absl's --help prints: the __main__ module's docstring
  app.run(command.main)
