"""Every softthink module imports on its own (no import cycle hides behind import order), and the modules whose
cycles were broken keep their softthink imports at module level."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import softthink

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(softthink.__path__, "softthink."))

# Each module is imported after every softthink module is dropped from sys.modules, in one fresh interpreter
# (third-party libraries stay loaded, so that the check takes seconds, not one torch import per module).
_PROBE = """
import importlib, json, sys
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "softthink" or m.startswith("softthink.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as err:
        missing = getattr(err, "name", None) or ""
        if isinstance(err, ModuleNotFoundError) and missing.split(".")[0] != "softthink":
            continue  # an optional third-party dependency that is not installed: not a cycle
        failures[name] = f"{type(err).__name__}: {err}"
print(json.dumps(failures))
"""


def test_module_list_covers_the_package():
    assert {
        "softthink.eval.report",
        "softthink.eval.runner",
        "softthink.eval.results",
        "softthink.eval.store",
        "softthink.provenance",
        "softthink.testbed.quality",
        "softthink.testbed.train",
    } <= set(MODULES)


def test_every_module_imports_in_isolation():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(MODULES)], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def test_report_runner_and_testbed_modules_have_no_function_level_softthink_imports():
    """The eval report <-> runner and testbed quality <-> train cycles are gone, so no import hides in a function."""
    for name in (
        "softthink/eval/report.py",
        "softthink/eval/runner.py",
        "softthink/eval/results.py",
        "softthink/eval/aggregate.py",
        "softthink/eval/store.py",
        "softthink/eval/validate.py",
        "softthink/testbed/quality.py",
        "softthink/testbed/train.py",
        "softthink/provenance.py",
    ):
        tree = ast.parse((REPO / name).read_text())
        nested = [
            f"{name}:{node.lineno}"
            for func in ast.walk(tree)
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(func)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            and any(
                (alias.name if isinstance(node, ast.Import) else node.module or "").startswith("softthink")
                for alias in node.names
            )
        ]
        assert nested == [], nested
