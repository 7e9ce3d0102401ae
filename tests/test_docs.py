"""The documentation: README length, relative links, the commands it tells users to type, and
the strict MkDocs build (when the `docs` extra is installed).

Cheap by design: flags are read from the command modules' source (absl ``DEFINE_*`` calls and
argparse ``add_argument`` calls), not by importing JAX; ``--config.`` keys are checked against
the config file the command names, loaded as ``sinsr_jax.main`` loads it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_FILES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
MAX_README_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
COMMAND_START = re.compile(r"python -m ((?:sinsr_jax|tfds_sem)(?:\.\w+)+)")
INLINE_COMMAND = re.compile(r"`(python -m (?:sinsr_jax|tfds_sem)\.\w[^`]*)`")
SHELL_STOP = {"&", "&&", "|", "||", ";", ">", ">>", "2>&1"}
# absl's own flags, defined by absl.app / absl.logging for every program.
ABSL_BUILTIN = {"help", "helpfull", "helpshort", "helpxml", "flagfile", "undefok", "verbosity",
                "v", "logtostderr", "alsologtostderr", "log_dir", "stderrthreshold",
                "showprefixforinfo", "only_check_args", "pdb_post_mortem", "run_with_pdb"}


def _text(path: pathlib.Path) -> str:
  return path.read_text(encoding="utf-8")


def _name(path: pathlib.Path) -> str:
  return str(path.relative_to(ROOT))


def test_readme_is_a_front_page():
  lines = _text(README).splitlines()
  assert len(lines) <= MAX_README_LINES, (
      f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move detail into docs/")


def test_quickstart_block_is_install_train_test():
  """.ci/run types lines 1 and 3 of the first code block under '## Quickstart'."""
  text = _text(README)
  quickstart = text[text.index("\n## Quickstart"):]
  block = FENCE.search(quickstart).group(0).splitlines()[1:-1]
  assert block == ['pip install -e ".[test,torch]"',
                   "python -m sinsr_jax.main --config=configs/sinsr.py:quick --workdir=runs/quick",
                   "python -m pytest -q -n 2"]


def _links(path: pathlib.Path) -> list[str]:
  """Relative link targets outside code blocks, their #anchors and ?queries dropped."""
  text = FENCE.sub("", _text(path))
  text = re.sub(r"`[^`]*`", "", text)
  targets = []
  for target in LINK.findall(text):
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
      continue  # http(s)://, mailto:, an anchor on the same page
    targets.append(target.split("#")[0].split("?")[0])
  return targets


def test_every_relative_link_points_to_an_existing_file():
  broken = []
  for path in DOC_FILES:
    for target in _links(path):
      if not (path.parent / target).exists():
        broken.append(f"{_name(path)}: {target}")
  assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_link_checker_sees_links():
  """The checker finds links (a regex that matched nothing would pass everything)."""
  assert "docs/getting-started.md" in _links(README)
  assert any(t.endswith("SUMMARY.md") for t in _links(ROOT / "docs" / "evaluation" / "study.md"))


def _commands(path: pathlib.Path) -> list[str]:
  """``python -m sinsr_jax.X ...`` / ``tfds_sem.X`` commands in code blocks and inline code."""
  text = _text(path)
  commands = []
  for block in (m.group(0) for m in FENCE.finditer(text)):
    for line in block.replace("\\\n", " ").splitlines():
      start = COMMAND_START.search(line)
      if start:
        commands.append(line[start.start():])
  prose = FENCE.sub("", text)
  commands += [m.group(1).replace("\n", " ") for m in INLINE_COMMAND.finditer(prose)]
  return commands


def _module_file(module: str) -> pathlib.Path | None:
  base = ROOT.joinpath(*module.split("."))
  for candidate in (base.with_suffix(".py"), base / "__main__.py", base / "__init__.py"):
    if candidate.is_file():
      return candidate
  return None


def _imported_files(tree: ast.Module) -> list[pathlib.Path]:
  """The project's modules a module imports directly (a flag may live in a shared module)."""
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
        "sinsr_jax", "tfds_sem"):
      names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    elif isinstance(node, ast.Import):
      names += [a.name for a in node.names if a.name.split(".")[0] in ("sinsr_jax", "tfds_sem")]
  files = [_module_file(name) for name in names]
  return [f for f in files if f is not None]


def _defined_flags(tree: ast.Module) -> tuple[set[str], set[str], bool]:
  """(flag names, boolean absl flags, uses absl) of one module's source."""
  names, booleans, absl = set(), set(), False
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
      continue
    func = node.func.attr
    strings = [a.value for a in node.args if isinstance(a, ast.Constant)
               and isinstance(a.value, str)]
    if func.startswith("DEFINE_") and strings:
      absl = True
      names.add(strings[0])
      if func in ("DEFINE_bool", "DEFINE_boolean"):
        booleans.add(strings[0])
    elif func == "add_argument":
      names.update(s.lstrip("-") for s in strings if s.startswith("-"))
  return names, booleans, absl


@functools.cache
def module_flags(module: str) -> set[str] | None:
  """Every ``--name`` the command line of ``python -m module`` accepts; None: no such module."""
  path = _module_file(module)
  if path is None:
    return None
  tree = ast.parse(path.read_text(encoding="utf-8"))
  names, booleans, absl = _defined_flags(tree)
  thin = not names  # an entry point that only runs another module's command takes its flags
  for imported in _imported_files(tree):
    more_names, more_booleans, more_absl = _defined_flags(ast.parse(imported.read_text()))
    absl |= thin and more_absl
    if more_absl or thin:  # absl flags of an imported module are parsed with the command's own
      names |= more_names
      booleans |= more_booleans
  if absl:
    names |= ABSL_BUILTIN | {f"no{name}" for name in booleans}
  return names | {"help"}


@functools.cache
def _config(spec: str):
  """The ConfigDict of ``--config=FILE[:VARIANTS]``, loaded as sinsr_jax.main loads it."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_docs_config", ROOT / path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def _has_key(config, dotted: str) -> bool:
  node = config
  for part in dotted.split("."):
    if not hasattr(node, "keys") or part not in node.keys():
      return False
    node = node[part]
  return True


def check_command(command: str) -> list[str]:
  """What is wrong with one documented command: unknown module, flag or config key."""
  try:
    tokens = shlex.split(command, comments=True)
  except ValueError as e:
    return [f"cannot parse ({e})"]
  module = COMMAND_START.match(command).group(1)
  for i, token in enumerate(tokens):
    if token in SHELL_STOP:
      tokens = tokens[:i]
      break
  accepted = module_flags(module)
  if accepted is None:
    return [f"no module {module}"]
  problems = []
  config_spec = next((t.split("=", 1)[1] for t in tokens if t.startswith("--config=")), None)
  for token in tokens[3:]:
    if not token.startswith("--") or token.startswith("--config="):
      continue
    name = token[2:].split("=", 1)[0]
    if name.startswith("config.") and "config" in accepted:
      config = _config(config_spec or "configs/sinsr.py")
      if not _has_key(config, name[len("config."):]):
        problems.append(f"{module}: no config key {name} in {config_spec}")
    elif name not in accepted:
      problems.append(f"{module}: no flag --{name}")
  return problems


def test_documented_commands_use_existing_modules_flags_and_config_keys():
  problems, count = [], 0
  for path in DOC_FILES:
    for command in _commands(path):
      count += 1
      problems += [f"{_name(path)}: {p}\n    {command}" for p in check_command(command)]
  assert count >= 40, f"only {count} commands found: the extraction is broken"
  assert not problems, "documented commands that would fail:\n" + "\n".join(problems)


def test_command_checker_catches_mistakes():
  """The checker rejects what it should (it is the only guard on the docs' commands)."""
  good = "python -m sinsr_jax.upscale --run=runs/quick --out=up --adapt-save=a --noquiet x.tif"
  assert check_command(good) == []
  assert check_command("python -m sinsr_jax.upscale --run=r --tiles=3 x.tif") == [
      "sinsr_jax.upscale: no flag --tiles"]
  assert check_command("python -m sinsr_jax.nothing --x=1") == ["no module sinsr_jax.nothing"]
  assert check_command("python -m sinsr_jax.main --config=configs/sinsr.py:quick "
                       "--config.model.wdth=3 --workdir=w") == [
      "sinsr_jax.main: no config key config.model.wdth in configs/sinsr.py:quick"]
  assert check_command("python -m sinsr_jax.main --config=configs/sinsr.py:quick "
                       "--config.train.init_from=r --workdir=w &") == []
  assert check_command("python -m sinsr_jax.weights convert vgg19 --file f --bogus") == [
      "sinsr_jax.weights: no flag --bogus"]


@pytest.mark.slow
def test_docs_build_strictly(tmp_path):
  """`mkdocs build --strict`: a broken link or anchor, or a page missing from nav, fails."""
  if importlib.util.find_spec("mkdocs") is None or shutil.which("mkdocs") is None:
    pytest.skip('MkDocs is not installed: pip install -e ".[docs]" to build the site')
  result = subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert (tmp_path / "site" / "api" / "models" / "index.html").is_file()
