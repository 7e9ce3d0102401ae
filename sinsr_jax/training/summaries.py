"""The run's TensorBoard summaries (clu's metric writers), in a local workdir or a bucket.

clu writes event files through TensorFlow's file layer, which appends to a file as it goes. On
``gs://`` that would need TensorFlow's own GCS client (which cannot be pointed at an emulator,
so it could not be tested here) and objects cannot be appended to: the events are written to a
local staging folder and uploaded through epath at every flush (each validation, and the end).
A run killed between two flushes loses only the events since the last one; its checkpoints and
metrics.json do not depend on them.
"""

from __future__ import annotations

from sinsr_jax.runtime import paths


class Summaries:
  """``writer`` (clu's default writer) for ``workdir``; ``flush()`` also uploads."""

  def __init__(self, workdir: str, is_chief: bool):
    from clu import metric_writers  # imports TensorFlow (~4 s): only once a run starts

    self.workdir = workdir
    self.local = paths.staging_dir(workdir)
    self.writer = metric_writers.create_default_writer(self.local, just_logging=not is_chief)

  def flush(self) -> None:
    self.writer.flush()
    paths.upload(self.local, self.workdir)
