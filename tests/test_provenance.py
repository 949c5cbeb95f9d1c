"""One provenance writer for every kind of run: the resolved config plus git commit, versions, platform, time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

import softthink
from softthink import provenance
from softthink.provenance import DEFAULT_PACKAGES, environment, write_provenance

REPO = Path(__file__).resolve().parents[1]


def test_environment_names_commit_versions_and_platform():
    env = environment(packages=("numpy", "no-such-package-xyz"))
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    assert env["git_commit"] == head and isinstance(env["git_dirty"], bool)
    assert list(env["versions"]) == [*DEFAULT_PACKAGES, "numpy", "no-such-package-xyz"]
    assert env["versions"]["torch"] and env["versions"]["numpy"] and env["versions"]["no-such-package-xyz"] is None
    assert env["python"].count(".") == 2 and env["platform"] and env["time"].endswith("+00:00")


def test_write_provenance_json_and_yaml(tmp_path):
    resolved = {"label": "run", "config": {"lr": 1e-5, "path": tmp_path}}
    written = write_provenance(tmp_path / "sub" / "run.json", resolved, packages=("trl",))
    on_disk = json.loads((tmp_path / "sub" / "run.json").read_text())
    assert on_disk["label"] == "run" and on_disk["config"] == {"lr": 1e-5, "path": str(tmp_path)}
    assert on_disk["provenance"]["versions"]["trl"] == written["provenance"]["versions"]["trl"]
    assert set(on_disk["provenance"]) == {"time", "git_commit", "git_dirty", "python", "platform", "versions"}
    assert "provenance" not in resolved  # the caller's dict is not modified
    write_provenance(tmp_path / "run.yaml", {"suite": {"name": "s"}})
    data = yaml.safe_load((tmp_path / "run.yaml").read_text())
    assert data["suite"] == {"name": "s"} and data["provenance"]["git_commit"] == written["provenance"]["git_commit"]


def _fake_git(answers: dict[str, str | None]):
    return lambda *args: answers.get(args[0])


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"ls-files": "__init__.py", "rev-parse": "0123456789abcdef", "status": None}, " @ 0123456789ab"),
        ({"ls-files": "__init__.py", "rev-parse": "0123456789abcdef", "status": " M loop.py"}, " @ 0123456789ab+dirty"),
        # a repository that does not track the package (a virtualenv inside another project) names no commit
        ({"ls-files": None, "rev-parse": "fedcba9876543210", "status": None}, ""),
    ],
)
def test_code_identity(answers, expected, monkeypatch):
    monkeypatch.setattr(provenance, "_git", _fake_git(answers))
    provenance.code_identity.cache_clear()
    try:
        assert provenance.code_identity() == f"softthink {softthink.__version__}{expected}"
    finally:
        provenance.code_identity.cache_clear()
