"""Parameter trees between the unrolled and the scanned layout of repeated blocks.

``model.scan`` decides how a model's repeated blocks are stored (sinsr_jax/models/repeat.py):
unrolled, block ``i`` of a stack ``base`` is the subtree ``base_i`` (SRResNet's unrolled blocks
are flat names ``base_i_part``); scanned, blocks ``start .. start+n-1`` are one subtree
``base_scan{start}`` whose leaves carry a leading axis of n. ``to_layout(tree, template)`` gives
``tree`` in ``template``'s layout: anything holding parameter-shaped subtrees converts the same
way (params, batch statistics, Adam's moments, EMA weights, a whole train state), since the
conversion is driven by the names on each leaf's path. Leaves may be arrays (stacked and sliced)
or shape descriptions (anything with ``shape`` and ``dtype``: orbax metadata, ShapeDtypeStruct).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import numpy as np

from sinsr_jax.models.repeat import SCAN_TAG

_SCANNED = re.compile(rf"^(?P<base>.+){SCAN_TAG}(?P<start>\d+)$")
_BLOCK = re.compile(r"^(?P<base>.+)_(?P<index>\d+)$")  # base_i
_PART = re.compile(r"^(?P<base>.+?)_(?P<index>\d+)_(?P<part>.+)$")  # base_i_part (flat)

Path = tuple[str, ...]


class LayoutError(ValueError):
  """A tree that no renaming of repeated blocks brings to the template's names and shapes."""


def path_key(path) -> Path:
  """A jax tree path as strings: dataclass fields, dict keys and sequence indices alike (a
  restored checkpoint holds dicts where the live train state holds dataclasses and tuples)."""
  return tuple(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)


def flatten(tree) -> dict[Path, Any]:
  """{path as strings: leaf}."""
  return {path_key(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _shape(leaf) -> tuple[int, ...]:
  return tuple(getattr(leaf, "shape", ()))


def _is_array(leaf) -> bool:
  return isinstance(leaf, np.ndarray | jax.Array | np.generic)


def _stack(leaves):
  if all(_is_array(x) for x in leaves):
    return np.stack([np.asarray(x) for x in leaves])
  return jax.ShapeDtypeStruct((len(leaves), *_shape(leaves[0])), leaves[0].dtype)


def _take(leaf, i: int):
  if _is_array(leaf):
    return np.asarray(leaf)[i]
  return jax.ShapeDtypeStruct(_shape(leaf)[1:], leaf.dtype)


class _Source:
  """A flattened tree, looked up by the paths of another layout."""

  def __init__(self, flat: dict[Path, Any]):
    self.flat = flat
    self.used: set[Path] = set()
    self.children: dict[Path, set[str]] = {}
    for path in flat:
      for k in range(len(path)):
        self.children.setdefault(path[:k], set()).add(path[k])

  def get(self, path: Path, length: int | None = None):
    """The leaf for ``path`` (stacked from ``length`` blocks when ``path`` names a scanned
    stack the source holds unrolled), or None."""
    if path in self.flat:
      self.used.add(path)
      return self.flat[path]
    for k, name in enumerate(path):
      head, rest = path[:k], path[k + 1:]
      if name in self.children.get(head, ()):
        continue  # the two layouts agree so far
      scanned = _SCANNED.match(name)
      if scanned and length:  # wanted scanned, held unrolled: stack the blocks
        return self._stack(head, scanned["base"], int(scanned["start"]), length, rest)
      return self._slice(head, name, rest)  # wanted unrolled, held scanned
    return None

  def _stack(self, head: Path, base: str, start: int, length: int, rest: Path):
    blocks = []
    for i in range(start, start + length):
      leaf = self.get((*head, f"{base}_{i}", *rest))
      if leaf is None and rest:
        leaf = self.get((*head, f"{base}_{i}_{rest[0]}", *rest[1:]))
      if leaf is None:
        return None
      blocks.append(leaf)
    return _stack(blocks)

  def _slice(self, head: Path, name: str, rest: Path):
    for pattern, inner in ((_BLOCK, ()), (_PART, None)):
      match = pattern.match(name)
      if not match:
        continue
      index, base = int(match["index"]), match["base"]
      inner = inner if inner is not None else (match["part"],)
      for sibling in self.children.get(head, ()):
        held = _SCANNED.match(sibling)
        if not held or held["base"] != base:
          continue
        path = (*head, sibling, *inner, *rest)
        leaf = self.flat.get(path)
        start = int(held["start"])
        if leaf is not None and start <= index < start + _shape(leaf)[0]:
          self.used.add(path)
          return _take(leaf, index - start)
    return None


def convert(tree, template) -> tuple[dict[Path, Any], list[Path], list[Path]]:
  """(``tree``'s leaves under ``template``'s paths, template paths found nowhere, ``tree``
  paths left unused). Shapes are not compared."""
  source = _Source(flatten(tree))
  found, missing = {}, []
  for path, want in flatten(template).items():
    shape = _shape(want)
    leaf = source.get(path, shape[0] if shape else None)
    if leaf is None:
      missing.append(path)
    else:
      found[path] = leaf
  unused = [p for p in source.flat if p not in source.used]
  return found, missing, unused


def same_layout(tree, template) -> bool:
  """Whether the two trees have the same leaf paths (then nothing needs converting)."""
  return set(flatten(tree)) == set(flatten(template))


def to_layout(tree, template):
  """``tree`` with ``template``'s structure and layout (scanned or unrolled blocks): leaves
  are stacked or sliced as numpy arrays (shape descriptions stay descriptions). Raises
  LayoutError naming the first parameter that is missing or of another shape."""
  found, missing, unused = convert(tree, template)
  if missing:
    raise LayoutError(f"no {'.'.join(missing[0])} in the tree to convert")
  if unused:
    raise LayoutError(f"{'.'.join(unused[0])} has no place in the template's layout")
  for path, want in flatten(template).items():
    if _shape(found[path]) != _shape(want):
      raise LayoutError(f"{'.'.join(path)} has shape {_shape(found[path])}, the template "
                        f"{_shape(want)}")
  return jax.tree_util.tree_map_with_path(lambda p, _: found[path_key(p)], template)
