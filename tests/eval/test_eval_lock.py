"""One run per output folder: two real `softthink eval run` processes into one folder never do the work twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from softthink.errors import SoftthinkLockedError
from softthink.eval.lock import LOCK_NAME, RunLock

REPO = Path(__file__).resolve().parents[2]

# `softthink eval run` with the fake generate; generation blocks until the file named by $GO exists, so the test
# decides how long the first run holds the folder. Prints how many batches it generated.
CHILD = r"""
import os, sys, time
from pathlib import Path

import softthink.eval.runner as runner
from softthink.cli.main import main
from softthink.testbed.tiny import build_tiny_tokenizer
from tests.eval.fakes import FakeGenerate

tok = build_tiny_tokenizer()
fake = FakeGenerate(tok)

def gated(*args, **kwargs):
    while not Path(os.environ["GO"]).exists():
        time.sleep(0.05)
    return fake(*args, **kwargs)

runner.generate = gated
runner.load_model = lambda path, device=None: (object(), tok)
code = main(["eval", "run", *sys.argv[1:], "--no-progress"])
print(f"GENERATE CALLS {len(fake.calls)}", flush=True)
sys.exit(code)
"""


@pytest.fixture
def suite_file(suite_dict, tmp_path) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite_dict()))
    return path


def _start(suite_file: Path, go: Path, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GO": str(go)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(suite_file), *extra],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, what: str, procs, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            assert p.poll() is None, f"a run exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _calls(log: Path) -> int:
    return int(log.read_text().split("GENERATE CALLS ")[1].split()[0])


def _check_records(out: Path) -> None:
    """Both cells complete, every (problem, sample) once, no shard, lock or temporary file left."""
    cells = sorted(out.glob("cells/*"))
    assert len(cells) == 2
    for cell in cells:
        records = [json.loads(line) for line in (cell / "records.jsonl").read_text().splitlines()]
        assert len(records) == 12 == len({(r["problem_id"], r["sample_index"]) for r in records})
        assert sorted(p.name for p in cell.iterdir()) == ["config.json", "prompts.jsonl", "records.jsonl"]
    assert not (out / LOCK_NAME).exists() and not list(out.rglob("*.tmp"))


def _procs(*procs):
    class Killer:
        def __enter__(self):
            return procs

        def __exit__(self, *exc):
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()

    return Killer()


@pytest.mark.slow  # two fresh Python processes: ~20 s on a free core
def test_second_run_into_a_busy_folder_exits_naming_the_holder(suite_file, suite_dict, tmp_path):
    """Before the lock both runs generated all 6 batches (12 generate calls for 6 batches of work)."""
    out, go = Path(suite_dict()["output_dir"]), tmp_path / "go"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start(suite_file, go, first_log)
    with _procs(first):
        _wait_for(lambda: (out / LOCK_NAME).exists() and (out / LOCK_NAME).read_text(), "the lock", [first])
        second = _start(suite_file, go, second_log)
        with _procs(second):
            assert second.wait(timeout=240) == 2
        text = second_log.read_text()
        assert f"is in use by another run: pid {first.pid} on host {socket.gethostname()}" in text
        assert "--wait" in text and "Traceback" not in text and _calls(second_log) == 0
        go.touch()
        assert first.wait(timeout=240) == 0
    assert _calls(first_log) == 6
    _check_records(out)


@pytest.mark.slow  # two fresh Python processes: ~20 s on a free core
def test_second_run_with_wait_waits_then_resumes_with_nothing_left_to_do(suite_file, suite_dict, tmp_path):
    out, go = Path(suite_dict()["output_dir"]), tmp_path / "go"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start(suite_file, go, first_log)
    with _procs(first):
        _wait_for(lambda: (out / LOCK_NAME).exists() and (out / LOCK_NAME).read_text(), "the lock", [first])
        second = _start(suite_file, go, second_log, "--wait")
        with _procs(second):
            _wait_for(lambda: "waiting for the run holding" in second_log.read_text(), "the wait", [first, second])
            assert f"pid {first.pid}" in second_log.read_text()
            go.touch()
            assert first.wait(timeout=240) == 0 and second.wait(timeout=240) == 0
    assert _calls(first_log) == 6 and _calls(second_log) == 0
    _check_records(out)


# -- the lock itself, in one process (flock locks belong to open files, so two RunLocks conflict here too) ---------


def test_lock_names_its_holder_and_is_gone_after_release(tmp_path):
    with RunLock(tmp_path / "out") as held:
        holder = json.loads(held.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(SoftthinkLockedError, match=f"in use by another run: pid {os.getpid()}"):
            RunLock(tmp_path / "out").acquire()
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    with RunLock(tmp_path / "out"):  # free again
        pass


def test_a_lock_file_without_a_holder_is_taken_over_with_a_warning(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "started": "x", "command": "y"}))
    with pytest.warns(RuntimeWarning, match="ended without releasing it \\(pid 999999 on host gone"):
        with RunLock(tmp_path) as lock:
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
