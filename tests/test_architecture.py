"""The shape of the code: imports form no cycle (between modules or between packages), modules stay small,
every command answers --help in both its forms, and the tests mirror the modules one to one."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

PACKAGES = ("tfxmed", "tfrecords_tools")


def _modules() -> dict[str, str]:
    """Dotted module name → file, for every module of the two packages (entry-point `__main__`s excluded)."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                if not name.endswith(".py") or name == "__main__.py":
                    continue
                parts = os.path.relpath(os.path.join(folder, name), REPO)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = os.path.join(folder, name)
    return found


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports, at module level or inside functions."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as stream:
            tree = ast.parse(stream.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from a.b import c` imports a.b.c when c is a module, else a name of a.b
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                           for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def package_of(module: str) -> str:
    """Sub-packages are one node each; the top-level modules of `tfxmed` are nodes of their own."""
    parts = module.split(".")
    if parts[0] == "tfrecords_tools":
        return "tfrecords_tools"
    return ".".join(parts[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules():
    assert _cycles(import_graph()) == []


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        source = package_of(module)
        packages.setdefault(source, set()).update(package_of(t) for t in targets if package_of(t) != source)
    assert _cycles(packages) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_stay_small():
    too_long = {name: n for name, path in _modules().items()
                if (n := sum(1 for _ in open(path, encoding="utf-8"))) > 450}
    assert too_long == {}


COMMANDS = ("train", "evaluate", "explain", "export", "report", "audit", "study", "tune", "ablate", "crossval", "auto",
            "demo")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_one_entry_lists_every_command():
    from tfxmed.commands import COMMANDS as registered

    result = _run("-m", "tfxmed", "--help")
    assert result.returncode == 0, result.stderr
    for name in (*COMMANDS, "convert", "inspect"):
        assert name in registered and f"  {name} " in result.stdout
    unknown = _run("-m", "tfxmed", "trian")
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_in_both_forms(command):
    from tfxmed.commands import main

    new = _run("-m", "tfxmed", command, "--help")
    old = _run("-m", f"tfxmed.{command}", "--help")
    assert new.returncode == 0 and old.returncode == 0, (new.stderr, old.stderr)
    assert f"python -m tfxmed {command}" in new.stdout
    assert f"python -m tfxmed.{command}" in old.stdout
    # Same flags either way: the old form runs the same command module.
    assert new.stdout.split("options:")[1] == old.stdout.split("options:")[1]
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0


# Modules without a mirroring test file, each with why. Every other module `tfxmed/a/b.py` has
# `tests/a/test_b.py` (and `tfrecords_tools/b.py` has `tests/tfrecords_tools/test_b.py`); package
# `__init__`s re-export names (the dispatcher in `tfxmed/commands/__init__.py` is tested above).
ALIASES = ("train", "evaluate", "export", "report", "audit", "study", "tune", "ablate", "crossval", "auto", "compare",
           "ensemble", "demo")
COMMAND_MODULES = ("train", "evaluate", "explain", "export", "report", "audit", "tune", "ablate", "crossval", "auto",
                   "compare", "ensemble", "demo", "convert", "inspect_records")
WITHOUT_MIRROR = {
    # `python -m tfxmed.<command>`: the older form of each command, an 8-line alias of its command module.
    # test_every_command_answers_help_in_both_forms runs both forms (the explain alias is a `__main__`).
    **{f"tfxmed.{name}": "alias of tfxmed.commands." + name for name in ALIASES},
    # A command module parses flags and calls one library function, whose own module is tested; --help of
    # both forms is run above, tests/test_workflow.py runs demo, evaluate, export and explain end to end,
    # tests/commands/test_common.py tests what they share, and convert / inspect delegate to
    # tfrecords_tools.convert / .inspect (tests/tfrecords_tools/test_convert.py, test_inspect.py).
    **{f"tfxmed.commands.{name}": "thin command module" for name in COMMAND_MODULES},
    # Three exception classes: each is raised and matched by its users' tests (test_runs.py for
    # RunDirectoryError, test_exporting.py and tfrecords_tools/test_boundary.py for OutputExistsError and
    # Refusal, commands/test_common.py for how a command reports any of them).
    "tfxmed.errors": "exception classes, tested through their users",
}
# Test files that mirror no single module, each with what it covers instead.
NOT_MIRRORING = {
    "test_architecture.py": "the layout of both packages",
    "test_cloudbuild.py": "cloudbuild.yaml and the Dockerfile (the cloud build and image)",
    "explain/test_volume_memory.py": "the explainers' peak memory on a batch of 64³ volumes, across methods",
    "tfrecords_tools/test_properties.py": "properties every converter keeps, on generated inputs (hypothesis)",
    "tfrecords_tools/test_resume_and_corpus.py": "resumed and parallel conversions and a corrupt corpus, "
                                                 "across the converters",
}


def _mirror_of(module: str) -> str:
    """tfxmed.explain.grad_cam → explain/test_grad_cam.py; tfrecords_tools.writer → tfrecords_tools/test_writer.py"""
    parts = module.split(".")
    folders = parts[1:-1] if parts[0] == "tfxmed" else parts[:-1]
    return "/".join([*folders, f"test_{parts[-1]}.py"])


def _plain_modules() -> dict[str, str]:
    """The modules that hold code of their own (package `__init__`s and `__main__`s excluded)."""
    return {name: path for name, path in _modules().items() if not path.endswith("__init__.py")}


def test_every_module_has_a_mirroring_test_file():
    missing = [f"{name} → tests/{_mirror_of(name)}" for name in _plain_modules()
               if name not in WITHOUT_MIRROR and not os.path.exists(os.path.join(REPO, "tests", _mirror_of(name)))]
    assert missing == [], "add a test file for each (or a justified entry in WITHOUT_MIRROR)"


def test_the_allow_list_holds_only_thin_untested_modules():
    modules = _plain_modules()
    assert sorted(set(WITHOUT_MIRROR) - set(modules)) == []  # no stale entries
    mirrored = [name for name in WITHOUT_MIRROR if os.path.exists(os.path.join(REPO, "tests", _mirror_of(name)))]
    assert mirrored == [], "these have a test file now: remove them from WITHOUT_MIRROR"
    grown = {name: n for name in WITHOUT_MIRROR if (n := sum(1 for _ in open(modules[name], encoding="utf-8"))) > 40}
    assert grown == {}, "a module that grows logic of its own gets its own test file"


def test_every_test_file_mirrors_a_module_or_a_config():
    mirrored = {_mirror_of(name) for name in _plain_modules()}
    orphans = []
    for folder, _, files in os.walk(os.path.join(REPO, "tests")):
        for name in files:
            path = os.path.relpath(os.path.join(folder, name), os.path.join(REPO, "tests")).replace(os.sep, "/")
            if not name.startswith("test_") or not name.endswith(".py") or path in mirrored or path in NOT_MIRRORING:
                continue
            # tests/scripts/test_<name>.py runs scripts/<name>.py
            if path.startswith("scripts/") and os.path.exists(os.path.join(REPO, "scripts", f"{name[5:]}")):
                continue
            # tests/configs/test_<name>.py trains and evaluates the recipe configs/<name>.yaml
            if path.startswith("configs/") and os.path.exists(os.path.join(REPO, "configs", f"{name[5:-3]}.yaml")):
                continue
            orphans.append(path)
    assert orphans == [], "name each test file after the module it tests (or list it in NOT_MIRRORING)"
