"""``python -m sinsr_jax.weights {list,convert,verify}``: the weights cache from a shell."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sinsr_jax.errors import UserError
from sinsr_jax.models import vgg
from sinsr_jax.weights.cache import _convert, _load_tree, check_hash, default_cache_dir, file_hashes
from sinsr_jax.weights.readers import WeightsError
from sinsr_jax.weights.sources import SOURCES, Source, WeightsNotFound, source


def _describe(src: Source, tree) -> str:
  if src.kind == "lpips_heads":
    return f"{len(tree)} heads, channels {' '.join(str(v.shape[0]) for v in tree.values())}"
  widths = " ".join(map(str, vgg.widths_of(src.arch, tree)))
  return f"arch {src.arch} ({src.preprocessing} preprocessing), widths {widths}"


def _cmd_list(args) -> None:
  cache = args.cache_dir or default_cache_dir()
  print(f"cache: {cache}")
  for src in SOURCES.values():
    if os.path.isfile(os.path.join(cache, f"{src.name}.msgpack")):
      status = "converted"
    elif os.path.isfile(os.path.join(cache, src.filename)):
      status = "source file"
    else:
      status = "missing"
    print(f"{src.name:12} {src.arch:8} {status:12} {src.url}")


def _cmd_convert(args) -> None:
  src = source(args.name)
  if args.file.endswith(".msgpack"):
    raise WeightsError(f"{args.file} is already converted: pass it as the weights path")
  cache = args.cache_dir or default_cache_dir()
  tree, meta = _load_tree(src, args.file, cache, not args.no_download, reconvert=True)
  checkpoint = os.path.join(cache, f"{src.name}.msgpack")
  if not os.path.isfile(checkpoint):
    raise WeightsError(f"could not write {checkpoint}: set SINSR_WEIGHTS_DIR or --cache-dir "
                       "to a writable directory")
  print(f"{src.name}: {checkpoint}")
  print(f"  {_describe(src, tree)}")
  print(f"  from {meta['source_file']} (sha256 {meta['source_sha256']})")


def _cmd_verify(args) -> None:
  src = source(args.name)
  path = args.file or os.path.join(args.cache_dir or default_cache_dir(), src.filename)
  if not os.path.isfile(path):
    raise WeightsNotFound(f"{path} does not exist")
  digests = file_hashes(path)
  check_hash(src, digests, path)
  tree, _ = _convert(src, path, digests["sha256"])
  print(f"{src.name}: {path}: sha256 {digests['sha256']} (matches the pinned {src.hash})")
  print(f"  {_describe(src, tree)}")


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m sinsr_jax.weights",
                                   description="Pretrained weights: list, convert, verify.")
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--cache-dir", default="",
                      help="default: $SINSR_WEIGHTS_DIR or ~/.cache/sinsr_jax/weights")
  commands = parser.add_subparsers(dest="command", required=True)
  commands.add_parser("list", parents=[common], help="known weights and their cache status")
  convert = commands.add_parser("convert", parents=[common],
                                help="convert to <cache>/<name>.msgpack")
  convert.add_argument("name", choices=SOURCES)
  convert.add_argument("--file", default="", help="source file (default: cache or download)")
  convert.add_argument("--no-download", action="store_true")
  verify = commands.add_parser("verify", parents=[common], help="check a source file")
  verify.add_argument("name", choices=SOURCES)
  verify.add_argument("--file", default="", help="default: the source file in the cache")
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
  try:
    {"list": _cmd_list, "convert": _cmd_convert, "verify": _cmd_verify}[args.command](args)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0

