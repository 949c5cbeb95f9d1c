"""The grid runner: every (model, decode config, benchmark, seed) cell gets the same problems and samples.

Per cell: resolve the decode config and the prompts, plan the work (problems x sample indices, in batches), skip
what is already on disk for this cell's config hash, generate batch by batch, grade, append records, then merge.
Each model is loaded once. A cell that fails (bad preset, data, model) is reported and the others keep running.

Seeding: a batch is decoded with ``seed = derive_seed(cell seed, first (problem, sample index) of the batch)``.
The plan is fixed by (problems, samples, batch_size), so a resumed run redoes a missing batch with the same seed.
The decoder draws one RNG stream per batch, so with ``batch_size > 1`` a sample also depends on its batch
neighbours; ``batch_size: 1`` or ``seed_per_sample: true`` (each sample decoded with its own
``derive_seed(cell seed, problem, sample index)`` through ``generate(seeds=...)``) makes each sample a function of
(problem, sample index, seed) alone.

Resume equals an uninterrupted run: a batch that an interrupted run wrote only in part (a kill mid-write) is
decoded again whole, with the same prompts in the same order and the same seed, and only its missing samples are
written (`items_to_decode`): a sample depends on its batch's padding, and without ``seed_per_sample`` on its RNG
stream too. A batch whose records on disk come from another plan (``samples``, ``limit`` or ``batch_size``
changed) decodes its missing samples alone.

Before any model loads, every cell's decode preset and benchmark name is resolved: one bad name fails the whole run
at once, listing every bad name (`check_names`). Data and model failures still fail their cells only. A write that
fails (disk full, read-only folder) stops the run with a `SoftthinkStorageError`. The output folder is locked for
the run (`softthink.eval.lock.RunLock`): a second run into it exits naming the holder, or waits (``wait_for_lock``).

Continuous batching (``continuous_batching``, with ``seed_per_sample``): one `softthink.generate` call decodes up to
`REFILL_BATCHES` planned batches with ``batch_size`` slots (``max_batch_size``), refilling a finished row's slot from
the rest; its records are written after the call, so an interruption loses at most that window per process.

Data parallel: under ``accelerate launch`` (GPUs) or ``torchrun`` (CPU) each process takes every
``num_processes``-th batch of the plan and appends to its own shard; the main process merges the shards and writes
the report.

`rebuild_report` reads a suite's cells back from disk instead (no model, nothing generated) and rewrites the report.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from tqdm.auto import tqdm

from softthink.decoding import DecodeConfig, generate, load_decode_config
from softthink.errors import (
    SoftthinkConfigError,
    SoftthinkDataError,
    SoftthinkError,
    SoftthinkLockedError,
    SoftthinkStorageError,
)
from softthink.eval.aggregate import build_rows, compare_cells, summarize
from softthink.eval.datasets import BenchmarkEntry, Problem, get_benchmark, load_benchmark
from softthink.eval.grading import GraderConfig
from softthink.eval.lock import RunLock
from softthink.eval.prompts import PromptBuilder, PromptSpec, prompt_hash, select_exemplars
from softthink.eval.report import write_report as write_report_files
from softthink.eval.results import CELL_SCHEMA_VERSION, CellResult, EvalResults, SampleInfo, make_record, regrade
from softthink.eval.store import CellStore, writing
from softthink.eval.suite import Cell, ModelSpec, Suite, apply_overrides, parse_suite_set
from softthink.models import load_model
from softthink.provenance import code_identity

GenerateFn = Callable[..., list[Any]]
LoadModelFn = Callable[[str], tuple[Any, Any]]


# ----------------------------------------------------------------------------------------------------------------
# Planning and sharding (pure functions, tested without processes)


@dataclass(frozen=True)
class WorkItem:
    position: int  # index of the problem in the cell's problem list
    problem: Problem
    sample_index: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem.id, self.sample_index)


REFILL_BATCHES = 8
"""Planned batches per continuous-batching `generate` call: the slots refill from this window."""


def generation_windows(
    todo: list[tuple[list[WorkItem], list[WorkItem]]], continuous: bool
) -> list[list[tuple[list[WorkItem], list[WorkItem]]]]:
    """``todo``'s ``(batch, pending)`` pairs grouped per `generate` call: `REFILL_BATCHES` at a time with
    continuous batching, else one each."""
    size = REFILL_BATCHES if continuous else 1
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _refuse_other_code(done: dict[tuple[str, int], dict[str, Any]], result: CellResult) -> None:
    """`SoftthinkConfigError` if records ``done`` of a cell that is about to get more samples were written by other
    softthink code than this process runs (`softthink.provenance.code_identity`): the cell would mix them."""
    current = code_identity()
    other = collections.Counter(str(r.get("code", "unrecorded")) for r in done.values() if r.get("code") != current)
    if not other:
        return
    seen = ", ".join(f"{count} by {code!r}" for code, count in sorted(other.items()))
    raise SoftthinkConfigError(
        f"cell {result.dir} holds records written by other softthink code ({seen}; 'unrecorded': records from "
        f"before records named their code), and this run ({current!r}) would add samples to them, mixing two "
        "versions' behaviour in one result. Run into a new output_dir, delete that cell folder to redo it, or set "
        "resume_other_code: true in the suite (--set resume_other_code=true) to keep them."
    )


def plan_batches(problems: list[Problem], samples: int, batch_size: int) -> list[list[WorkItem]]:
    """All work of a cell in a fixed order (problem, then sample index), cut into batches."""
    items = [WorkItem(i, p, s) for i, p in enumerate(problems) for s in range(samples)]
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]


def shard_batches(batches: list[list[WorkItem]], num_processes: int, process_index: int) -> list[list[WorkItem]]:
    """The batches process ``process_index`` of ``num_processes`` runs: every ``num_processes``-th one."""
    if not 0 <= process_index < num_processes:
        raise SoftthinkConfigError(
            f"process_index must be in [0, {num_processes}), got {process_index}.",
            param="process_index",
            value=process_index,
        )
    return batches[process_index::num_processes]


def items_to_decode(
    batch: list[WorkItem],
    pending: list[WorkItem],
    done: dict[tuple[str, int], dict[str, Any]],
    unmerged: set[tuple[str, int]],
    cell_seed: int,
    seed_per_sample: bool,
) -> list[WorkItem]:
    """What to decode for a planned ``batch`` whose ``pending`` items are not on disk.

    The whole batch when an interrupted run of this plan wrote part of it: some of its records are in an unmerged
    shard (``unmerged``; a finished cell is merged) and, with batch seeds, carry this batch's seed. The missing
    samples are then decoded exactly as an uninterrupted run decodes them (same prompts, order, padding and seed).
    Else ``pending`` alone: a fresh batch, or records of another plan."""
    if len(pending) == len(batch) or not any(it.key in unmerged for it in batch):
        return pending
    if not seed_per_sample:
        batch_seed = derive_seed(cell_seed, *batch[0].key)
        if not any(done[it.key].get("sample_seed") == batch_seed for it in batch if it.key in done):
            return pending
    return list(batch)


def derive_seed(seed: int, problem_id: str, sample_index: int) -> int:
    """A 31-bit seed determined by (cell seed, problem id, sample index)."""
    digest = hashlib.sha256(f"{seed}|{problem_id}|{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def select_problems(
    problems: list[Problem], limit: int | None, ids: tuple[str, ...] | list[str] | None, benchmark: str
) -> list[Problem]:
    """``ids`` (in the given order) or the first ``limit`` problems; unknown ids are an error naming them."""
    if ids is not None:
        index = {p.id: p for p in problems}
        missing = [i for i in ids if i not in index]
        if missing:
            sample = ", ".join(list(index)[:5])
            raise SoftthinkDataError(
                f"benchmark {benchmark!r} has no problem id(s) {missing[:10]} (ids look like: {sample}, ...)."
            )
        problems = [index[i] for i in ids]
    return problems[:limit] if limit is not None else problems


# ----------------------------------------------------------------------------------------------------------------
# The runner


@dataclass(frozen=True)
class ResolvedCell:
    """A cell resolved without a model: its decode config, prompt spec, grader config, the problems it runs (the
    suite's subset) and the benchmark they come from."""

    config: DecodeConfig
    prompt: PromptSpec
    grader: GraderConfig
    problems: list[Problem]
    entry: BenchmarkEntry


@dataclass
class GenerationJob:
    """One process's pending generation for one cell: what to decode with, where records go, what is left.

    ``todo`` holds ``(batch, pending)`` pairs: a planned batch (its first item fixes the batch seed) and its items
    not yet on disk; ``done`` the records already on disk (for the running accuracy), ``unmerged`` the keys of
    those in shards an interrupted run left (see `items_to_decode`)."""

    cell: Cell
    model: Any
    tokenizer: Any
    config: DecodeConfig
    builder: PromptBuilder
    grader: GraderConfig
    store: CellStore
    todo: list[tuple[list[WorkItem], list[WorkItem]]]
    done: dict[tuple[str, int], dict[str, Any]]
    unmerged: set[tuple[str, int]]


@dataclass(frozen=True)
class CellPlan:
    """What `Runner._run_cell` leaves for the main process to merge: the cell's store, its problem order, the
    keys ``(problem id, sample index)`` it must end with, and the grader its records are regraded with."""

    store: CellStore
    order: list[str]
    wanted: set[tuple[str, int]]
    grader: GraderConfig


def _check_complete(result: CellResult, wanted: set[tuple[str, int]]) -> None:
    """Mark ``result`` incomplete (unless it already failed) when it has fewer records than its plan."""
    if len(result.records) < len(wanted) and not result.error:
        result.error = f"incomplete: {len(result.records)} of {len(wanted)} samples on disk."


def _partial_state():
    """accelerate's process state. Without an accelerator, ``cpu=True`` is what makes a multi-process launch
    (``torchrun`` / ``accelerate launch --multi_gpu``-style env vars) a MULTI_CPU run instead of N copies of rank 0."""
    accelerator = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    return PartialState(cpu=not accelerator)


class Runner:
    """Runs a `Suite`. ``generate_fn``/``load_model_fn`` default to `softthink.generate`/`softthink.load_model`
    and can be replaced (tests use a fake generate)."""

    def __init__(
        self,
        suite: Suite,
        *,
        generate_fn: GenerateFn | None = None,
        load_model_fn: LoadModelFn | None = None,
        num_processes: int | None = None,
        process_index: int | None = None,
        progress: bool = True,
    ):
        self.suite = suite
        self.generate_fn = generate_fn
        self.load_model_fn = load_model_fn
        self.progress = progress
        self._state = None
        if num_processes is None:
            self._state = _partial_state()
            num_processes, process_index = self._state.num_processes, self._state.process_index
        self.num_processes, self.process_index = num_processes, process_index or 0
        self.output_dir = suite.resolved_output_dir()
        self._benchmarks: dict[str, tuple[BenchmarkEntry, list[Problem]] | SoftthinkError] = {}
        self._storage_error: SoftthinkStorageError | None = None

    @property
    def is_main(self) -> bool:
        return self.process_index == 0

    def _barrier(self) -> None:
        if self._state is not None and self.num_processes > 1:
            self._state.wait_for_everyone()

    def _from_main(self, value: str | None) -> str | None:
        """``value`` as the main process has it, on every process (a broadcast under a multi-process launch)."""
        if self._state is None or self.num_processes <= 1:
            return value
        from accelerate.utils import broadcast_object_list

        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]

    @contextlib.contextmanager
    def locked(self, wait: bool = False) -> Iterator[None]:
        """Hold the output folder's `RunLock` for the block (the main process takes it for all processes). Raises
        `SoftthinkLockedError` on every process when another run holds it (unless ``wait``)."""
        lock = RunLock(self.output_dir, wait=wait) if self.is_main else None
        failure: SoftthinkError | None = None
        if lock is not None:
            try:
                lock.acquire()
            except SoftthinkError as err:
                failure = err
        message = self._from_main(str(failure) if failure else None)
        if failure is not None:
            raise failure
        if message is not None:
            raise SoftthinkLockedError(message)
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    # -- resolution --------------------------------------------------------------------------------------------
    def benchmark(self, cell: Cell) -> tuple[BenchmarkEntry, list[Problem]]:
        ref = cell.benchmark
        if ref.label not in self._benchmarks:
            try:
                entry = get_benchmark(ref.name)
                self._benchmarks[ref.label] = (
                    entry,
                    entry.load(data_dir=self.suite.data_dir, split=ref.split, **ref.options),
                )
            except SoftthinkError as err:
                self._benchmarks[ref.label] = err
        got = self._benchmarks[ref.label]
        if isinstance(got, SoftthinkError):
            raise got
        return got

    def resolve(self, cell: Cell) -> ResolvedCell:
        """Decode config, prompt spec, grader config and problem subset of a cell (no model needed)."""
        entry, problems = self.benchmark(cell)
        ref = cell.benchmark
        prompt = PromptSpec.from_dict({**(entry.prompt or {}), **self.suite.prompt, **ref.prompt})
        grader = GraderConfig.from_dict({**(entry.grader or {}), **self.suite.grader, **ref.grader})
        cfg = load_decode_config(cell.decode.preset, **{**self.suite.decode_overrides, **cell.decode.overrides})
        stops = list(dict.fromkeys(list(cfg.stop_strings) + prompt.resolved_stop_strings))
        cfg = cfg.replace(seed=cell.seed, chat_template=prompt.uses_chat_template, stop_strings=stops)
        subset = select_problems(
            problems, ref.limit or self.suite.limit, ref.ids if ref.ids is not None else self.suite.ids, ref.label
        )
        return ResolvedCell(cfg, prompt, grader, subset, entry)

    def cell_config(
        self, cell: Cell, cfg: Any, prompt: PromptSpec, problems_all: list[Problem], entry: BenchmarkEntry
    ) -> dict[str, Any]:
        """Everything that shapes one generated sample; its hash names the cell folder. Limit, ids, samples and
        batch size are left out (they choose which samples exist, not what a sample is), and so is the grader:
        records graded otherwise are regraded from their text."""
        fingerprint = hashlib.sha256(
            "\n".join(f"{p.id}\t{p.question}\t{p.answer}" for p in problems_all).encode()
        ).hexdigest()[:16]
        return {
            "schema": CELL_SCHEMA_VERSION,
            "model": {"label": cell.model.label, "path": cell.model.path},
            "decode": {"label": cell.decode.label, **cfg.identity_dict()},
            "benchmark": {
                "name": cell.benchmark.name,
                "split": cell.benchmark.split,
                "options": cell.benchmark.options,
                "data_fingerprint": fingerprint,
                "spec": entry.spec.to_dict() if entry.spec else None,
            },
            "prompt": prompt.to_dict(),
            "seed": cell.seed,
            # only when on, so that the hashes of cells run before this option existed stay the same
            **({"seed_per_sample": True} if self.suite.seed_per_sample else {}),
        }

    def check_names(self) -> None:
        """Resolve every decode preset (with the suite's and its own overrides) and every benchmark name of the
        suite, without data or a model; raise one `SoftthinkConfigError` that lists every one that fails, so that
        a typo stops the run before any cell runs."""
        failures = []
        for spec in self.suite.decode:
            try:
                load_decode_config(spec.preset, **{**self.suite.decode_overrides, **spec.overrides})
            except SoftthinkError as err:
                failures.append(f"decode {spec.label!r}: {err}")
        for ref in self.suite.benchmarks:
            try:
                get_benchmark(ref.name)
            except SoftthinkError as err:
                failures.append(f"benchmark {ref.label!r}: {err}")
        if failures:
            raise SoftthinkConfigError(
                f"{len(failures)} name(s) of the suite do not resolve; nothing was run. Fix them and rerun:\n  "
                + "\n  ".join(failures),
                param="decode" if failures[0].startswith("decode") else "benchmarks",
            )

    # -- running -----------------------------------------------------------------------------------------------
    def run(self) -> list[CellResult]:
        """Every cell of the suite, model by model. Raises the first `SoftthinkStorageError` (disk full, read-only
        folder) after the cells: the cells after it are not run."""
        self.check_names()
        results: list[CellResult] = []
        cells = self.suite.cells()
        for model_spec in self.suite.models:
            model_cells = [c for c in cells if c.model == model_spec]
            try:
                model, tokenizer = self._load_model(model_spec)
            except Exception as err:  # every reason a model cannot load ends this model's cells, not the grid
                hint = f" {model_spec.hint}" if model_spec.hint else ""
                message = f"model {model_spec.label!r} ({model_spec.path}) failed to load: {err}{hint}"
                results += [CellResult(c, error=message) for c in model_cells]
                continue
            for cell in model_cells:
                results.append(self._run_cell_safely(cell, model, tokenizer))
            del model
        if self._storage_error is not None:
            raise self._storage_error
        return results

    def _load_model(self, spec: ModelSpec):
        path = spec.resolved_path
        if self.load_model_fn is not None:
            return self.load_model_fn(path)
        if spec.tp_plan is not None:  # each process holds a shard, on its own device
            return load_model(path, tp_plan=spec.tp_plan)
        device = self._state.device if self._state is not None and self.num_processes > 1 else None
        return load_model(path, device=device)

    def _run_cell_safely(self, cell: Cell, model: Any, tokenizer: Any) -> CellResult:
        """Generate this process's share of a cell, then (main process) merge and summarise. Every process
        reaches the barrier exactly once per cell, whatever failed."""
        result = CellResult(cell)
        plan = None
        try:
            if self._storage_error is not None:  # the disk is full or read-only: do not decode what cannot be kept
                raise SoftthinkError(f"not run: {self._storage_error}")
            plan = self._run_cell(cell, model, tokenizer, result)
        except SoftthinkStorageError as err:
            self._storage_error = err
            result.error = str(err)
        except SoftthinkError as err:
            result.error = str(err)
        except Exception as err:  # a crash in one cell must not lose the others; keep the traceback's tail
            result.error = f"{type(err).__name__}: {err}\n" + "".join(traceback.format_exc(limit=-3))
        self._barrier()
        if plan is not None and self.is_main:
            grader = plan.grader
            try:
                records = plan.store.merge(plan.order, lambda record: regrade(record, grader))
            except SoftthinkStorageError as err:
                self._storage_error = err
                result.error = str(err)
                records = []
            result.records = [r for r in records if (str(r["problem_id"]), int(r["sample_index"])) in plan.wanted]
            _check_complete(result, plan.wanted)
        result.summary = summarize(result.records, self.suite.resolved_pass_k)
        return result

    def _open_store(self, cell: Cell, resolved: ResolvedCell, result: CellResult) -> CellStore:
        """The cell's store (its folder named by the hash of its config); fills ``result``'s config, grader, hash
        and folder."""
        result.config = self.cell_config(
            cell, resolved.config, resolved.prompt, self.benchmark(cell)[1], resolved.entry
        )
        result.grader = resolved.grader
        store = CellStore(self.output_dir, cell.key[:3] + (f"seed{cell.seed}",), result.config)
        result.hash, result.dir = store.hash, store.dir
        return store

    def _plan(self, resolved: ResolvedCell) -> tuple[list[list[WorkItem]], set[tuple[str, int]]]:
        """The cell's batches and the keys ``(problem id, sample index)`` it must end with."""
        plan = plan_batches(resolved.problems, self.suite.samples, self.suite.batch_size)
        return plan, {item.key for batch in plan for item in batch}

    def _run_cell(self, cell: Cell, model: Any, tokenizer: Any, result: CellResult) -> CellPlan:
        """This process's generation for one cell; returns what the main process needs to merge it."""
        resolved = self.resolve(cell)
        builder = PromptBuilder(resolved.prompt, tokenizer, self._exemplars(resolved.prompt))
        store = self._open_store(cell, resolved, result)
        store.prepare()
        store.repair_shard(self.process_index)
        done, unmerged = store.load(), store.unmerged_keys()
        plan, wanted = self._plan(resolved)
        result.resumed = sum(1 for key in done if key in wanted)
        # A tensor-parallel model needs every process in every forward pass: each decodes (and appends to its own
        # shard) every batch, and the merge keeps one copy of each record.
        shards = (1, 0) if cell.model.tp_plan else (self.num_processes, self.process_index)
        todo = [(batch, [it for it in batch if it.key not in done]) for batch in shard_batches(plan, *shards)]
        todo = [(batch, pending) for batch, pending in todo if pending]
        if todo and not self.suite.resume_other_code:  # only records this run's result would include count
            _refuse_other_code({key: record for key, record in done.items() if key in wanted}, result)
        result.generated += self._generate(
            GenerationJob(
                cell,
                model,
                tokenizer,
                resolved.config,
                builder,
                resolved.grader,
                store,
                todo,
                done,
                unmerged,
            )
        )
        return CellPlan(store, [p.id for p in resolved.problems], wanted, resolved.grader)

    def stored_cell(self, cell: Cell) -> CellResult:
        """A cell's result from the records already on disk, in plan order and graded by the suite's grader: no
        model is loaded, nothing is generated and no file is changed. Missing samples make it ``incomplete``."""
        result = CellResult(cell)
        try:
            resolved = self.resolve(cell)
            store = self._open_store(cell, resolved, result)
            on_disk = store.load()
            plan, wanted = self._plan(resolved)
            result.records = [
                regrade(on_disk[item.key], resolved.grader) for batch in plan for item in batch if item.key in on_disk
            ]
            result.resumed = len(result.records)
            _check_complete(result, wanted)
        except SoftthinkError as err:
            result.error = str(err)
        result.summary = summarize(result.records, self.suite.resolved_pass_k)
        return result

    def _exemplars(self, prompt: PromptSpec) -> list[tuple[str, str]]:
        if prompt.style != "few_shot" or prompt.n_shots == 0:
            return []
        return select_exemplars(prompt, load_benchmark("gsm8k", data_dir=self.suite.data_dir, split="train"))

    def _generate(self, job: GenerationJob) -> int:
        """Decode, grade and append every pending batch of ``job``; returns the number of records written."""
        generate_fn = self.generate_fn or generate
        cell, cfg = job.cell, job.config
        total = sum(len(pending) for _, pending in job.todo)
        n_correct = sum(bool(r["correct"]) for r in job.done.values())
        n_seen = len(job.done)
        written = 0
        with tqdm(
            total=total, desc=str(cell), disable=not (self.progress and self.is_main), unit="sample", dynamic_ncols=True
        ) as bar:
            continuous = self.suite.seed_per_sample and self.suite.continuous_batching
            for window in generation_windows(job.todo, continuous):
                items = [
                    item
                    for planned, waiting in window
                    for item in items_to_decode(
                        planned, waiting, job.done, job.unmerged, cell.seed, self.suite.seed_per_sample
                    )
                ]
                pending = [item for _, waiting in window for item in waiting]
                batch = window[0][0]
                inputs = [job.builder.model_input(item.problem.question) for item in items]
                start = time.perf_counter()
                if self.suite.seed_per_sample:
                    sample_seeds = [derive_seed(cell.seed, *item.key) for item in items]
                    # more items than slots only in a continuous-batching window of several planned batches
                    slots: dict[str, Any] = (
                        {"max_batch_size": self.suite.batch_size} if len(items) > self.suite.batch_size else {}
                    )
                    gens = generate_fn(
                        job.model, inputs, tokenizer=job.tokenizer, config=cfg, seeds=sample_seeds, **slots
                    )
                else:
                    batch_seed = derive_seed(cell.seed, *batch[0].key)
                    sample_seeds = [batch_seed] * len(items)
                    gens = generate_fn(job.model, inputs, tokenizer=job.tokenizer, config=cfg.replace(seed=batch_seed))
                per_sample = (time.perf_counter() - start) / len(items)
                if not isinstance(gens, list):
                    raise SoftthinkError(
                        f"generate returned a {type(gens).__name__} for a batch of {len(items)} prompts; "
                        "it must return a list of generations."
                    )
                if len(gens) != len(items):
                    raise SoftthinkError(f"generate returned {len(gens)} generations for {len(items)} prompts.")
                missing = {item.key for item in pending}
                kept = [(it, gen, seed) for it, gen, seed in zip(items, gens, sample_seeds) if it.key in missing]
                prompts = {prompt_hash(gen.prompt): gen.prompt for _, gen, _ in kept}
                records = [
                    make_record(
                        SampleInfo(
                            cell, item.problem, item.sample_index, seed, job.store.hash, cell.model.resolved_path
                        ),
                        gen,
                        job.grader,
                        prompt_hash(gen.prompt),
                        per_sample,
                    )
                    for item, gen, seed in kept
                ]
                job.store.add_prompts(prompts, self.process_index)
                job.store.append(self.process_index, records)
                written += len(records)
                n_seen += len(records)
                n_correct += sum(r["correct"] for r in records)
                bar.update(len(records))
                bar.set_postfix(acc=f"{n_correct / n_seen:.3f}")
        return written


def load_suite(suite_or_path: Suite | str | Path, overrides: dict[str, Any] | None = None) -> Suite:
    """A `Suite` from an object or a YAML path, with dotted overrides applied (``{"samples": 4}``)."""
    if isinstance(suite_or_path, Suite):
        if not overrides:
            return suite_or_path
        data = suite_or_path.to_dict()
        data.pop("source", None)
        apply_overrides(data, overrides)
        return Suite.from_dict(data, source=suite_or_path.source)
    return Suite.from_yaml(suite_or_path, overrides)


def _suite_with(suite_or_path: Suite | str | Path, set_options: list[str] | None, overrides: dict[str, Any]) -> Suite:
    """The suite with ``--set`` strings folded into ``overrides`` (in place) and every override applied."""
    overrides.update(parse_suite_set(set_options))
    return load_suite(suite_or_path, overrides)


def _finish(results: EvalResults, overrides: dict[str, Any], write_report: bool) -> EvalResults:
    """Rows and comparisons of ``results``; the report files too (main process, unless ``write_report=False``)."""
    results.rows = build_rows(results)
    results.comparisons = compare_cells(results)
    if write_report and results.is_main:
        with writing(results.output_dir, "write the report into"):
            write_report_files(results, overrides=overrides)
    return results


def run(
    suite_or_path: Suite | str | Path,
    *,
    generate_fn: GenerateFn | None = None,
    load_model_fn: LoadModelFn | None = None,
    num_processes: int | None = None,
    process_index: int | None = None,
    progress: bool = True,
    write_report: bool = True,
    wait_for_lock: bool = False,
    set_options: list[str] | None = None,
    **overrides: Any,
) -> EvalResults:
    """Run a suite (object or YAML path) and return its records and summary; the same as ``softthink eval run``.

    The output dir is locked for the run: when another run holds it this raises `SoftthinkLockedError` naming the
    holder, or with ``wait_for_lock=True`` waits for it to finish and then resumes from its records.

    Overrides are suite keys (``limit=5``, ``samples=4``, ``output_dir=...``), dotted keys passed as a dict
    (``**{"decode_overrides.max_new_tokens": 64}``) or ``set_options=["benchmarks.0.limit=10"]`` (the CLI's
    ``--set`` strings).
    The main process writes the report (``report.md``, ``results.csv``, plot, resolved config) to the suite's
    output dir unless ``write_report=False``.
    """
    suite = _suite_with(suite_or_path, set_options, overrides)
    runner = Runner(
        suite,
        generate_fn=generate_fn,
        load_model_fn=load_model_fn,
        num_processes=num_processes,
        process_index=process_index,
        progress=progress,
    )
    with runner.locked(wait_for_lock):
        cells = runner.run()
        return _finish(EvalResults(suite, runner.output_dir, cells, is_main=runner.is_main), overrides, write_report)


def rebuild_report(
    suite_or_path: Suite | str | Path,
    *,
    write_report: bool = True,
    wait_for_lock: bool = False,
    set_options: list[str] | None = None,
    **overrides: Any,
) -> EvalResults:
    """The results of a suite from the records already on its output dir, and its report rewritten from them;
    the same as ``softthink eval report``. No model is loaded and nothing is generated: a cell with missing
    samples is reported as incomplete. Overrides as in `run` (they must describe the run that wrote the
    records, or its cells hash to other folders). Takes the output dir's lock like `run` (a running suite's
    report is written by that run)."""
    suite = _suite_with(suite_or_path, set_options, overrides)
    runner = Runner(suite, num_processes=1, process_index=0, progress=False)
    with runner.locked(wait_for_lock):
        cells = [runner.stored_cell(cell) for cell in suite.cells()]
        return _finish(EvalResults(suite, runner.output_dir, cells), overrides, write_report)
