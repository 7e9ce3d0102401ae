"""Command line: a trained run's generator as an ONNX model or a bioimage.io model package.

    python -m sinsr_jax.export --run=runs/sinsr --format=onnx --out=sinsr.onnx
    python -m sinsr_jax.export --run=runs/sinsr --format=bioimageio --out=sinsr.zip \
        --sample=micrograph.tif

ONNX: opset 18, input ``lr`` (N, C, tile, tile) in [0, 1], output ``sr``; the normalisation,
scale and tile are in the model's metadata. bioimage.io: a model package (spec 0.5) that Fiji's
deepImageJ and ``bioimageio test`` run, with test tensors cut from ``--sample`` (a real frame).
The output appears whole or not at all. Needs the ``export`` extra (pip install -e ".[export]").
Exit status: 0 written, 1 the run or output unusable, 2 bad flags.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import flags  # noqa: E402

from sinsr_jax.errors import UserError  # noqa: E402
from sinsr_jax.runtime.cli import fail as _fail  # noqa: E402

_RUN = flags.DEFINE_string("run", None, "Training run folder (the newest checkpoint's EMA "
                           "weights).")
_FORMAT = flags.DEFINE_enum("format", "onnx", ["onnx", "bioimageio"],
                            "onnx: one .onnx file; bioimageio: a model package (.zip).")
_OUT = flags.DEFINE_string("out", None, "The file to write (.onnx, or .zip for bioimageio).")
_TILE = flags.DEFINE_integer("tile", 128, "The model's LR tile side (fixed: MATLAB bicubic is a "
                             "matrix of that size); even.")
_SAMPLE = flags.DEFINE_string("sample", None, "bioimageio: a micrograph whose top-left tile "
                              "becomes the package's test input (and cover).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")


def parse_flags(argv: list[str]) -> list[str]:
  """Parses flags; a bad flag is one ``error:`` line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e), 2)


def _check_flags() -> None:
  if not _RUN.value or not _OUT.value:
    _fail("--run and --out are required", 2)
  if _TILE.value < 8 or _TILE.value % 2:
    _fail(f"--tile={_TILE.value}: an even number >= 8", 2)
  if _FORMAT.value == "bioimageio" and not _SAMPLE.value:
    _fail("--format=bioimageio needs --sample=MICROGRAPH (its test tensors are cut from it)", 2)
  if os.path.exists(_OUT.value) and not _OVERWRITE.value:
    _fail(f"{_OUT.value} exists; pass --overwrite to replace it")
  folder = os.path.dirname(os.path.abspath(_OUT.value))
  if not os.path.isdir(folder):
    _fail(f"output folder {folder} does not exist")


def _missing_extra(error: ImportError) -> str:
  return (f"the export needs the 'export' extra ({error.name} is missing): "
          f"pip install -e \".[export]\"")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  _check_flags()
  from sinsr_jax.training import runs

  try:
    run = runs.load(os.path.expanduser(_RUN.value))
    if _FORMAT.value == "onnx":
      from sinsr_jax.export import onnx_model

      onnx_model.write_onnx(run, _OUT.value, _TILE.value)
    else:
      from sinsr_jax.export import bioimageio_package

      bioimageio_package.write_package(run, _OUT.value, _TILE.value, _SAMPLE.value)
  except UserError as e:
    _fail(str(e))
  except ImportError as e:
    _fail(_missing_extra(e))
  print(f"wrote {_OUT.value} ({_FORMAT.value}, {run.config.model.name} x{run.scale}, "
        f"tile {_TILE.value})")
