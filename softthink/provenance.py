"""Provenance of a run, written beside its outputs: the resolved config plus git commit, library versions, platform
and time. One writer for every kind of run (eval suites, RL training), so they all record the same facts.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata as _md
import json
import platform
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent

DEFAULT_PACKAGES = ("softthink", "torch", "transformers", "accelerate")
"""Libraries whose versions every provenance record lists; writers add their own (e.g. trl, math-verify)."""


def _version(name: str) -> str | None:
    try:
        return _md.version(name)
    except _md.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        return (
            subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=PACKAGE_DIR).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def environment(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Where and with what a run ran: UTC time, git commit of the softthink source, whether that source
    (the ``softthink/`` package folder) had uncommitted changes, python, platform and library versions (of
    `DEFAULT_PACKAGES` plus ``packages``; None for one not installed)."""
    names = list(dict.fromkeys([*DEFAULT_PACKAGES, *packages]))
    return {
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", ".")),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in names},
    }


@functools.cache
def code_identity() -> str:
    """Which softthink code is running: ``"softthink <version>"``, plus `` @ <commit>`` (and ``+dirty`` when the
    ``softthink/`` folder has uncommitted changes) for a git checkout. Evaluation records carry it, so a resumed run
    can tell records of other code from its own. Computed once per process."""
    identity = f"softthink {_source_version()}"
    # Only a checkout that tracks this package (not, say, a virtualenv inside some other repository) names a commit.
    commit = _git("rev-parse", "HEAD") if _git("ls-files", "--", "__init__.py") else None
    if commit:
        identity += f" @ {commit[:12]}" + ("+dirty" if _git("status", "--porcelain", "--", ".") else "")
    return identity


def _source_version() -> str:
    """``__version__`` as the running package's source states it (read, not imported: this module is imported by
    the package itself), else the installed distribution's version."""
    match = re.search(r'^__version__ = "([^"]+)"', (PACKAGE_DIR / "__init__.py").read_text(), re.MULTILINE)
    return match.group(1) if match else str(_version("softthink"))


def write_provenance(path: str | Path, resolved: dict[str, Any], packages: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``resolved`` (the run's resolved config and facts) plus ``"provenance": environment(packages)`` to
    ``path``: YAML for ``.yaml``/``.yml``, JSON otherwise. Returns what was written."""
    path = Path(path)
    record = {**resolved, "provenance": environment(packages)}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    else:
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record
