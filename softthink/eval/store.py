"""The record store: one folder per grid cell, named by a hash of everything that shapes a sample.

Layout under a suite's output dir::

    cells/<model>__<decode>__<benchmark>__seed<k>__<hash12>/
        config.json            resolved cell config (model, decode config, benchmark data, prompt, seed)
        records.jsonl          merged records, in problem order then sample index
        records.rank<r>.jsonl  what process r appended while running (merged and removed at the end)
        prompts.jsonl          exact prompt text per prompt hash

A changed config gets a new hash and so a new folder: old results never mix in. The grader is not part of the
hash: a record carries the fingerprint of the grader that graded it and is regraded from its text when the suite's
grader (options or `GRADER_VERSION`) differs. Within a folder a record is
keyed by ``(problem_id, sample_index)``; a rerun skips keys already on disk and drops duplicates, so an
interrupted run resumes with nothing lost and nothing twice. Records are appended and fsynced batch by batch; a
line cut short by a crash is dropped (and the batch redone). Records of older schemas are upgraded as they are
read (`softthink.eval.results.upgrade_record`); the merge writes them back in the current schema.

A write that fails (disk full, read-only folder) raises a `SoftthinkStorageError` naming the file and leaves no
partial line (an append is cut back) and no ``.tmp`` file (whole-file writes go through a temporary that is removed).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from softthink.errors import SoftthinkDataError, SoftthinkStorageError
from softthink.eval.results import upgrade_record


def storage_error(path: Path, err: OSError, doing: str) -> SoftthinkStorageError:
    """A `SoftthinkStorageError` for ``err`` raised while ``doing`` something with ``path``: what failed and what
    to do (free space, make the folder writable, or choose another output folder)."""
    reasons = {
        errno.ENOSPC: ("the disk is full", "Free disk space"),
        errno.EDQUOT: ("the disk quota is exhausted", "Free space in your quota"),
        errno.EROFS: ("the file system is read-only", "Make the folder writable"),
        errno.EACCES: ("permission denied", "Make the folder writable"),
        errno.EPERM: ("operation not permitted", "Make the folder writable"),
    }
    reason, remedy = reasons.get(err.errno or 0, (err.strerror or str(err), "Fix the folder"))
    return SoftthinkStorageError(
        f"cannot {doing} {path}: {reason} ({errno.errorcode.get(err.errno or 0, 'OSError')}). {remedy} or "
        "choose another output folder (--output-dir, suite key output_dir); what was written before is kept and "
        "the same command resumes from it.",
        path=str(path),
    )


@contextlib.contextmanager
def writing(path: Path, doing: str) -> Iterator[None]:
    """Turn an `OSError` (disk full, read-only folder, ...) raised inside into a `storage_error` naming ``path``."""
    try:
        yield
    except OSError as err:
        if isinstance(err, SoftthinkStorageError):
            raise
        raise storage_error(path, err, doing) from err


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file moved into place, removed again if anything fails."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with writing(path, "write"):
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def append_text(path: Path, text: str) -> None:
    """Append ``text`` durably (written, then fsynced); if that fails the file is cut back to its old length, so no
    partial line is left behind."""
    data = memoryview(text.encode("utf-8"))
    with writing(path, "append to"):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def config_hash(config: Any) -> str:
    """12 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", text).strip("-")[:40] or "x"


def record_key(record: dict[str, Any]) -> tuple[str, int]:
    return (str(record["problem_id"]), int(record["sample_index"]))


class CellStore:
    """The folder of one grid cell: its config, its record shards and its merged records."""

    def __init__(self, root: str | Path, labels: Iterable[str], config: dict[str, Any]):
        self.config = config
        self.hash = config_hash(config)
        self.dir = Path(root) / "cells" / ("__".join(_slug(label) for label in labels) + f"__{self.hash}")
        self.merged_path = self.dir / "records.jsonl"
        self.prompts_path = self.dir / "prompts.jsonl"

    def shard_path(self, rank: int) -> Path:
        return self.dir / f"records.rank{rank}.jsonl"

    def prepare(self) -> None:
        """Create the folder and write ``config.json`` (checking an existing one has the same content).

        Safe to call from every process at once: the file is written whole and moved into place."""
        with writing(self.dir, "create the cell folder"):
            self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "config.json"
        if path.exists():
            existing = json.loads(path.read_text())
            if config_hash(existing) != self.hash:
                raise SoftthinkDataError(
                    f"{path} holds a different config than its folder hash {self.hash}; the "
                    "folder was edited by hand. Move it away and rerun."
                )
            return
        write_atomic(path, json.dumps(self.config, indent=2, sort_keys=True, default=str))

    # -- reading -----------------------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        files = [self.merged_path] if self.merged_path.exists() else []
        return files + sorted(self.dir.glob("records.rank*.jsonl"))

    def load(self) -> dict[tuple[str, int], dict[str, Any]]:
        """All records on disk in the current schema, keyed by ``(problem_id, sample_index)``; the first copy of a
        key wins."""
        records: dict[tuple[str, int], dict[str, Any]] = {}
        for path in self._files():
            for record in read_jsonl(path, allow_truncated_tail=True):
                records.setdefault(record_key(record), upgrade_record(record))
        return records

    def unmerged_keys(self) -> set[tuple[str, int]]:
        """Keys of the records in shards not merged yet: what an interrupted run (or a running one) wrote."""
        shards = sorted(self.dir.glob("records.rank*.jsonl"))
        return {record_key(r) for path in shards for r in read_jsonl(path, allow_truncated_tail=True)}

    def repair_shard(self, rank: int) -> None:
        """Cut a partial last line (a crash mid-write) so that new appends start on a clean line."""
        path = self.shard_path(rank)
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            warnings.warn(
                f"{path}: dropping a partial last record ({len(data) - keep} bytes) left by an interrupted "
                "run; its batch is redone.",
                RuntimeWarning,
                stacklevel=2,
            )
            with writing(path, "repair"), path.open("r+b") as handle:
                handle.truncate(keep)

    # -- writing -----------------------------------------------------------------------------------------------
    def append(self, rank: int, records: list[dict[str, Any]]) -> None:
        """Append one batch of records to this process's shard, durably and whole: if the write fails (disk full)
        the shard is cut back, so the batch is either on disk or redone."""
        append_text(self.shard_path(rank), _jsonl(records))

    def add_prompts(self, prompts: dict[str, str], rank: int = 0) -> None:
        """Remember the exact text of each prompt hash (one line per new hash)."""
        path = self.prompts_path if rank == 0 else self.dir / f"prompts.rank{rank}.jsonl"
        known = {row["prompt_hash"] for row in read_jsonl(path, allow_truncated_tail=True)} if path.exists() else set()
        new = {h: t for h, t in prompts.items() if h not in known}
        if new:
            append_text(path, _jsonl({"prompt_hash": h, "prompt": t} for h, t in new.items()))

    def merge(
        self, order: list[str], update: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Write every record once to ``records.jsonl`` (problem order, then sample index; ``update`` applied to
        each, e.g. regrading); remove the shards."""
        position = {pid: i for i, pid in enumerate(order)}
        loaded = self.load().values()
        records = sorted(
            map(update, loaded) if update else loaded,
            key=lambda r: (
                position.get(str(r["problem_id"]), len(position)),
                str(r["problem_id"]),
                int(r["sample_index"]),
            ),
        )
        write_atomic(self.merged_path, _jsonl(records))
        with writing(self.dir, "remove merged shards in"):
            for shard in self.dir.glob("records.rank*.jsonl"):
                shard.unlink()
            for extra in sorted(self.dir.glob("prompts.rank*.jsonl")):
                rows = {row["prompt_hash"]: row["prompt"] for row in read_jsonl(extra, allow_truncated_tail=True)}
                self.add_prompts(rows, rank=0)
                extra.unlink()
        return records


def read_jsonl(path: Path, allow_truncated_tail: bool = False) -> list[dict[str, Any]]:
    """Records of a JSONL file; a bad line is an error naming ``file:line`` (except a cut-off last line)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            is_tail = lineno == len(lines)  # no newline after it: the writer was interrupted
            if allow_truncated_tail and is_tail:
                continue
            raise SoftthinkDataError(
                f"{path}:{lineno}: invalid JSON record ({err.msg}). Remove the line or the file to redo those samples."
            ) from err
    return out
