"""The package's shape: folders by concept, no import cycle between them, small modules."""

import ast
import importlib
import pathlib

from conftest import REPO

PACKAGE = pathlib.Path(REPO) / "sinsr_jax"
MAX_LINES = 420  # "about 400": a module past this is doing more than one job
# The folders, lowest first: each may import only the ones before it (and errors.py).
ORDER = ("runtime", "data", "models", "weights", "metrics", "losses", "training", "inference",
         "evaluation", "export", "napari")
ENTRY_POINTS = {"main", "evaluate", "upscale"}  # thin command lines: may import anything


def _modules():
  return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(parts: list[str]) -> str:
  """The folder (or top-level module) a dotted sinsr_jax name belongs to."""
  return parts[1] if len(parts) > 1 else "sinsr_jax"


def _imports(path: pathlib.Path) -> set[str]:
  """Every sinsr_jax module or folder the file imports, deferred imports included."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sinsr_jax"):
      parts = node.module.split(".")
      if len(parts) == 1:  # from sinsr_jax import x
        names.update(f"sinsr_jax.{a.name}" for a in node.names)
      else:
        names.add(node.module)
    elif isinstance(node, ast.Import):
      names.update(a.name for a in node.names if a.name.startswith("sinsr_jax."))
  return names


def test_folders_import_only_the_folders_below_them():
  rank = {name: i for i, name in enumerate(ORDER)}
  wrong = []
  for path in _modules():
    here = path.relative_to(PACKAGE).parts
    if len(here) == 1:
      unit = here[0][:-3]
      if unit not in ENTRY_POINTS | {"__init__", "errors"}:
        wrong.append(f"{path.name}: a module outside every folder")
      continue
    unit = here[0]
    assert unit in rank, f"folder {unit} is not in ORDER"
    for name in _imports(path):
      other = _unit(name.split("."))
      if other in ("errors", unit):
        continue
      if other not in rank or rank[other] > rank[unit]:
        wrong.append(f"{'/'.join(here)} imports {name}")
  assert not wrong, "\n".join(wrong)


def test_no_module_is_too_long():
  long = {str(p.relative_to(PACKAGE)): n for p in _modules()
          if (n := len(p.read_text().splitlines())) > MAX_LINES}
  assert not long, long


# Modules of optional extras may need their extra's packages to import: those, and only those,
# are allowed to be missing (the extras' own tests import them where the extra is installed).
OPTIONAL_PACKAGES = {"napari": "napari", "qtpy": "napari", "magicgui": "napari",
                     "superqt": "napari", "onnx": "export", "onnxruntime": "export",
                     "torch": "export", "bioimageio": "bioimageio"}


def test_every_module_imports():
  # The command lines define absl flags of the same names (--run, --out), so one process can
  # import only one of them; tests/test_cli.py and the commands' own tests run each.
  commands = {"main", "evaluate", "upscale", "command", "__main__"}
  for path in _modules():
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] not in commands:
      try:
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
      except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        extra = OPTIONAL_PACKAGES.get(missing)
        # Only an optional extra's package may be missing, and only in its own folder.
        assert extra and parts[1] in ("napari", "export"), f"{'.'.join(parts)}: {e}"
