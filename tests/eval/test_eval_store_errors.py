"""A full disk or a read-only output folder during `eval run`: a clear `SoftthinkStorageError`, no partial record,
no stray ``.tmp`` file, nothing decoded that cannot be kept, and the same command resumes once the disk is fixed.

The tests run as root in CI, and root ignores file permissions: the failures are injected where the data reaches
the OS (``os.open``, ``io.open``, ``os.mkdir``, ``os.fsync``), as the kernel would raise them."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from softthink.errors import SoftthinkStorageError
from tests.eval.fakes import FakeGenerate, run_with_fake


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _fail_fsync(monkeypatch, code: int, when) -> None:
    """``os.fsync`` raises ``OSError(code)`` for files whose path satisfies ``when`` (their data was written
    already: as a full disk reports a delayed allocation failure)."""
    real = os.fsync

    def fsync(fd):
        if when(_fd_path(fd)):
            raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _deny_writes_under(monkeypatch, root: Path, code: int) -> None:
    """Every attempt to create or write a file or folder under ``root`` fails with ``OSError(code)``."""
    root = root.resolve()
    real_open, real_io_open, real_mkdir = os.open, io.open, os.mkdir

    def inside(path) -> bool:
        return Path(os.fsdecode(path)).resolve().is_relative_to(root)

    def deny(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
            deny(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def io_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and inside(file) and set(mode) & set("wax+"):
            deny(file)
        return real_io_open(file, mode, *args, **kwargs)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if inside(path):
            deny(path)
        return real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(os, "mkdir", mkdir)


def _leftovers(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith(".tmp") or p.name == "run.lock")


def test_disk_full_while_appending_records_stops_the_run_and_keeps_no_partial_batch(
    suite_dict, tok, fake_load, monkeypatch
):
    """Before: a raw OSError traceback, the rest of the grid decoded anyway (each cell failing on its write)."""
    out = Path(suite_dict()["output_dir"])
    _fail_fsync(monkeypatch, errno.ENOSPC, lambda path: "records.rank" in path)
    fake = FakeGenerate(tok)
    with pytest.raises(SoftthinkStorageError) as err:
        run_with_fake(suite_dict(), fake, fake_load)
    message = str(err.value)
    assert "cannot append to" in message and "records.rank0.jsonl: the disk is full (ENOSPC)" in message
    assert "Free disk space or choose another output folder (--output-dir" in message
    assert "the same command resumes" in message
    assert len(fake.calls) == 1  # the failed batch; no other cell was decoded for nothing
    shards = list(out.glob("cells/*/records.rank0.jsonl"))
    assert len(shards) == 1 and shards[0].read_bytes() == b""  # the batch's bytes were cut back
    assert _leftovers(out) == []
    monkeypatch.undo()
    resumed = FakeGenerate(tok)
    res = run_with_fake(suite_dict(), resumed, fake_load)
    assert res.errors == [] and len(res.records) == 24 and len(resumed.calls) == 6


def test_disk_full_while_merging_leaves_the_shards_and_no_tmp_file(suite_dict, tok, fake_load, monkeypatch):
    out = Path(suite_dict()["output_dir"])
    _fail_fsync(monkeypatch, errno.ENOSPC, lambda path: path.endswith(".tmp") and "records.jsonl" in path)
    with pytest.raises(SoftthinkStorageError, match=r"cannot write .*records\.jsonl: the disk is full \(ENOSPC\)"):
        run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    assert _leftovers(out) == [] and not list(out.glob("cells/*/records.jsonl"))
    shard = next(out.glob("cells/*/records.rank0.jsonl"))
    assert len(shard.read_text().splitlines()) == 12  # nothing lost
    monkeypatch.undo()
    again = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"]), again, fake_load)
    assert again.calls == [] and len(res.records) == 12 and res.errors == []


@pytest.mark.parametrize(
    "code,reason",
    [(errno.EROFS, "the file system is read-only (EROFS)"), (errno.EACCES, "permission denied (EACCES)")],
)
def test_read_only_output_folder_fails_before_decoding(suite_dict, tok, fake_load, monkeypatch, code, reason):
    """Before: every cell was tried and failed with a raw ``OSError`` traceback in its error."""
    out = Path(suite_dict()["output_dir"])
    out.mkdir(parents=True)
    _deny_writes_under(monkeypatch, out, code)
    fake = FakeGenerate(tok)
    with pytest.raises(SoftthinkStorageError) as err:
        run_with_fake(suite_dict(), fake, fake_load)
    assert f"cannot create the lock file {out / 'run.lock'}: {reason}" in str(err.value)
    assert "Make the folder writable or choose another output folder" in str(err.value)
    assert fake.calls == []
    monkeypatch.undo()
    assert list(out.iterdir()) == []


def test_read_only_cell_folder_mid_run_stops_therun_with_fake(suite_dict, tok, fake_load, monkeypatch):
    out = Path(suite_dict()["output_dir"])
    out.mkdir(parents=True)
    _deny_writes_under(monkeypatch, out / "cells", errno.EROFS)
    fake = FakeGenerate(tok)
    with pytest.raises(SoftthinkStorageError, match="cannot create the cell folder .*read-only"):
        run_with_fake(suite_dict(), fake, fake_load)
    assert fake.calls == []
    monkeypatch.undo()
    assert _leftovers(out) == []


def test_disk_full_while_writing_the_report(suite_dict, tok, fake_load, monkeypatch):
    import softthink.eval.runner as runner

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runner, "write_report_files", full)
    with pytest.raises(SoftthinkStorageError, match="cannot write the report into .*the disk is full"):
        run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions (the EACCES case above covers it)")
def test_chmod_read_only_output_folder(suite_dict, tok, fake_load):
    out = Path(suite_dict()["output_dir"])
    out.mkdir(parents=True)
    out.chmod(0o555)
    try:
        with pytest.raises(SoftthinkStorageError, match="permission denied"):
            run_with_fake(suite_dict(), FakeGenerate(tok), fake_load)
    finally:
        out.chmod(0o755)
