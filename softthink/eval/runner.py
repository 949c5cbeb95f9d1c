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

Data parallel: under ``accelerate launch`` (GPUs) or ``torchrun`` (CPU) each process takes every
``num_processes``-th batch of the plan and appends to its own shard; the main process merges the shards and writes
the report.
"""
from __future__ import annotations

import hashlib
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkError
from softthink.eval.aggregate import summarize
from softthink.eval.datasets import BenchmarkEntry, Problem, get_benchmark, load_benchmark
from softthink.eval.grading import GraderConfig, grade
from softthink.eval.prompts import PromptBuilder, PromptSpec, prompt_hash, select_exemplars
from softthink.eval.records import RECORD_SCHEMA_VERSION, CellStore
from softthink.eval.suite import Cell, Suite, parse_set_option

GenerateFn = Callable[..., list[Any]]
LoadModelFn = Callable[[str], tuple[Any, Any]]


@dataclass
class CellResult:
    """Outcome of one grid cell: its records (only those of the requested plan), summary, or error."""

    cell: Cell
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    grader: GraderConfig | None = None
    hash: str | None = None
    dir: Path | None = None
    generated: int = 0
    resumed: int = 0
    error: str | None = None


@dataclass
class EvalResults:
    """What `run` returns (and the CLI writes): per-cell records and summaries, comparisons, errors."""

    suite: Suite
    output_dir: Path
    cells: list[CellResult]
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One summary row per (model, mode, benchmark), seeds pooled: the report's table."""
    is_main: bool = True
    """False in the non-main processes of a data-parallel run (their records are merged by the main one)."""

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for c in self.cells for r in c.records]

    @property
    def summary(self) -> list[dict[str, Any]]:
        return self.rows

    @property
    def errors(self) -> list[str]:
        return [f"{c.cell}: {c.error}" for c in self.cells if c.error]


# ----------------------------------------------------------------------------------------------------------------
# Planning and sharding (pure functions, tested without processes)

@dataclass(frozen=True)
class WorkItem:
    position: int       # index of the problem in the cell's problem list
    problem: Problem
    sample_index: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem.id, self.sample_index)


def plan_batches(problems: list[Problem], samples: int, batch_size: int) -> list[list[WorkItem]]:
    """All work of a cell in a fixed order (problem, then sample index), cut into batches."""
    items = [WorkItem(i, p, s) for i, p in enumerate(problems) for s in range(samples)]
    return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]


def shard_batches(batches: list[list[WorkItem]], num_processes: int, process_index: int) -> list[list[WorkItem]]:
    """The batches process ``process_index`` of ``num_processes`` runs: every ``num_processes``-th one."""
    if not 0 <= process_index < num_processes:
        raise SoftthinkConfigError(f"process_index must be in [0, {num_processes}), got {process_index}.",
                                   param="process_index", value=process_index)
    return batches[process_index::num_processes]


def derive_seed(seed: int, problem_id: str, sample_index: int) -> int:
    """A 31-bit seed determined by (cell seed, problem id, sample index)."""
    digest = hashlib.sha256(f"{seed}|{problem_id}|{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def select_problems(problems: list[Problem], limit: int | None, ids: tuple[str, ...] | list[str] | None,
                    benchmark: str) -> list[Problem]:
    """``ids`` (in the given order) or the first ``limit`` problems; unknown ids are an error naming them."""
    if ids is not None:
        index = {p.id: p for p in problems}
        missing = [i for i in ids if i not in index]
        if missing:
            sample = ", ".join(list(index)[:5])
            raise SoftthinkDataError(f"benchmark {benchmark!r} has no problem id(s) {missing[:10]} "
                                     f"(ids look like: {sample}, ...).")
        problems = [index[i] for i in ids]
    return problems[:limit] if limit is not None else problems


# ----------------------------------------------------------------------------------------------------------------
# Records

def _entropy_summary(entropy: list[float]) -> dict[str, float | None]:
    values = np.asarray([e for e in entropy if e is not None and not math.isnan(e)], dtype=float)
    if values.size == 0:
        return {"mean": None, "max": None, "p90": None, "n": 0}
    return {"mean": float(values.mean()), "max": float(values.max()), "p90": float(np.quantile(values, 0.9)),
            "n": int(values.size)}


def grade_fields(text: str, gold: str, grader: GraderConfig, choices: list[str] | None = None) -> dict[str, Any]:
    """The grading part of a record (recomputed when the grader changes; generation is not). ``choices``: the
    options of a multiple-choice problem (kept in its record, for regrading)."""
    result = grade(text, gold, grader, choices=choices)
    return {"extracted": result.extracted, "rule": result.rule, "correct": result.correct,
            "grader_method": result.method, "grader_timed_out": result.timed_out, "grader_error": result.error,
            "grader": grader.fingerprint()}


def regrade(record: dict[str, Any], grader: GraderConfig) -> dict[str, Any]:
    """``record`` graded by ``grader`` (unchanged when it already was)."""
    if record.get("grader") == grader.fingerprint():
        return record
    return {**record, **grade_fields(record["output_text"], record["gold"], grader, record.get("choices"))}


def make_record(cell: Cell, item: WorkItem, gen: Any, grader: GraderConfig, prompt_text_hash: str,
                wall_time: float, decode_seed: int, cell_hash: str, model_path: str) -> dict[str, Any]:
    """One JSONL record: identity, output, grading, token counts, soft/entropy statistics, timing.

    ``decode_seed`` is the seed the sample was decoded with (its batch's, or its own under ``seed_per_sample``);
    the record keeps it under the key ``batch_seed`` it had before per-sample seeds existed."""
    return {
        "problem_id": item.problem.id, "sample_index": item.sample_index, "benchmark": cell.benchmark.label,
        "model": cell.model.label, "model_path": model_path, "mode": cell.decode.label,
        "decode_mode": getattr(gen, "mode", None), "seed": cell.seed, "batch_seed": decode_seed,
        "cell_hash": cell_hash, "prompt_hash": prompt_text_hash, "gold": item.problem.answer,
        "output_text": gen.text, "answer_text": gen.answer_text,
        **grade_fields(gen.text, item.problem.answer, grader, item.problem.meta.get("choices")),
        **({"choices": item.problem.meta["choices"]} if item.problem.meta.get("choices") else {}),
        "think_tokens": gen.think_tokens, "answer_tokens": gen.answer_tokens, "total_tokens": gen.num_tokens,
        "stop_reason": gen.stop_reason, "think_end_reason": gen.think_end_reason,
        "soft_steps": gen.soft_steps, "soft_fraction": gen.soft_fraction,
        "entropy": _entropy_summary(list(getattr(getattr(gen, "trace", None), "entropy", []) or [])),
        "wall_time": wall_time,
    }


# ----------------------------------------------------------------------------------------------------------------
# The runner

def _partial_state():
    """accelerate's process state. Without an accelerator, ``cpu=True`` is what makes a multi-process launch
    (``torchrun`` / ``accelerate launch --multi_gpu``-style env vars) a MULTI_CPU run instead of N copies of rank 0."""
    import torch
    from accelerate import PartialState

    accelerator = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    return PartialState(cpu=not accelerator)


class Runner:
    """Runs a `Suite`. ``generate_fn``/``load_model_fn`` default to `softthink.generate`/`softthink.load_model`
    and can be replaced (tests use a fake generate)."""

    def __init__(self, suite: Suite, *, generate_fn: GenerateFn | None = None,
                 load_model_fn: LoadModelFn | None = None, num_processes: int | None = None,
                 process_index: int | None = None, progress: bool = True):
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

    @property
    def is_main(self) -> bool:
        return self.process_index == 0

    def _barrier(self) -> None:
        if self._state is not None and self.num_processes > 1:
            self._state.wait_for_everyone()

    # -- resolution --------------------------------------------------------------------------------------------
    def benchmark(self, cell: Cell) -> tuple[BenchmarkEntry, list[Problem]]:
        ref = cell.benchmark
        if ref.label not in self._benchmarks:
            try:
                entry = get_benchmark(ref.name)
                self._benchmarks[ref.label] = (entry, entry.load(data_dir=self.suite.data_dir, split=ref.split,
                                                                 **ref.options))
            except SoftthinkError as err:
                self._benchmarks[ref.label] = err
        got = self._benchmarks[ref.label]
        if isinstance(got, SoftthinkError):
            raise got
        return got

    def resolve(self, cell: Cell) -> tuple[Any, PromptSpec, GraderConfig, list[Problem], BenchmarkEntry]:
        """Decode config, prompt spec, grader config and problem subset of a cell (no model needed)."""
        import softthink

        entry, problems = self.benchmark(cell)
        ref = cell.benchmark
        prompt = PromptSpec.from_dict({**(entry.prompt or {}), **self.suite.prompt, **ref.prompt})
        grader = GraderConfig.from_dict({**(entry.grader or {}), **self.suite.grader, **ref.grader})
        cfg = softthink.load_decode_config(cell.decode.preset, **{**self.suite.decode_overrides,
                                                                   **cell.decode.overrides})
        stops = list(dict.fromkeys(list(cfg.stop_strings) + prompt.resolved_stop_strings))
        cfg = cfg.replace(seed=cell.seed, chat_template=prompt.uses_chat_template, stop_strings=stops)
        subset = select_problems(problems, ref.limit or self.suite.limit,
                                 ref.ids if ref.ids is not None else self.suite.ids, ref.label)
        return cfg, prompt, grader, subset, entry

    def cell_config(self, cell: Cell, cfg: Any, prompt: PromptSpec, problems_all: list[Problem],
                    entry: BenchmarkEntry) -> dict[str, Any]:
        """Everything that shapes one generated sample; its hash names the cell folder. Limit, ids, samples and
        batch size are left out (they choose which samples exist, not what a sample is), and so is the grader:
        records graded otherwise are regraded from their text."""
        fingerprint = hashlib.sha256("\n".join(f"{p.id}\t{p.question}\t{p.answer}"
                                               for p in problems_all).encode()).hexdigest()[:16]
        return {"schema": RECORD_SCHEMA_VERSION,
                "model": {"label": cell.model.label, "path": cell.model.path},
                "decode": {"label": cell.decode.label, **cfg.to_dict()},
                "benchmark": {"name": cell.benchmark.name, "split": cell.benchmark.split,
                              "options": cell.benchmark.options, "data_fingerprint": fingerprint,
                              "spec": entry.spec.to_dict() if entry.spec else None},
                "prompt": prompt.to_dict(), "seed": cell.seed,
                # only when on, so that the hashes of cells run before this option existed stay the same
                **({"seed_per_sample": True} if self.suite.seed_per_sample else {})}

    # -- running -----------------------------------------------------------------------------------------------
    def run(self) -> list[CellResult]:
        results: list[CellResult] = []
        cells = self.suite.cells()
        for model_spec in self.suite.models:
            model_cells = [c for c in cells if c.model == model_spec]
            try:
                model, tokenizer = self._load_model(model_spec.resolved_path)
            except Exception as err:  # every reason a model cannot load ends this model's cells, not the grid
                hint = f" {model_spec.hint}" if model_spec.hint else ""
                message = f"model {model_spec.label!r} ({model_spec.path}) failed to load: {err}{hint}"
                results += [CellResult(c, error=message) for c in model_cells]
                continue
            for cell in model_cells:
                results.append(self._run_cell_safely(cell, model, tokenizer))
            del model
        return results

    def _load_model(self, path: str):
        if self.load_model_fn is not None:
            return self.load_model_fn(path)
        import softthink

        device = self._state.device if self._state is not None and self.num_processes > 1 else None
        return softthink.load_model(path, device=device)

    def _run_cell_safely(self, cell: Cell, model: Any, tokenizer: Any) -> CellResult:
        """Generate this process's share of a cell, then (main process) merge and summarise. Every process
        reaches the barrier exactly once per cell, whatever failed."""
        result = CellResult(cell)
        plan = None
        try:
            plan = self._run_cell(cell, model, tokenizer, result)
        except SoftthinkError as err:
            result.error = str(err)
        except Exception as err:  # a crash in one cell must not lose the others; keep the traceback's tail
            result.error = f"{type(err).__name__}: {err}\n" + "".join(traceback.format_exc(limit=-3))
        self._barrier()
        if plan is not None and self.is_main:
            store, order, wanted = plan
            records = store.merge(order, lambda record: regrade(record, result.grader))
            result.records = [r for r in records if (str(r["problem_id"]), int(r["sample_index"])) in wanted]
            if len(result.records) < len(wanted) and not result.error:
                result.error = f"incomplete: {len(result.records)} of {len(wanted)} samples on disk."
        result.summary = summarize(result.records, self.suite.pass_k)
        return result

    def _run_cell(self, cell: Cell, model: Any, tokenizer: Any,
                  result: CellResult) -> tuple[CellStore, list[str], set[tuple[str, int]]]:
        """This process's generation for one cell; returns (its store, problem order, keys the cell must have)."""
        cfg, prompt, grader, problems, entry = self.resolve(cell)
        builder = PromptBuilder(prompt, tokenizer, self._exemplars(prompt))
        result.config = self.cell_config(cell, cfg, prompt, self.benchmark(cell)[1], entry)
        result.grader = grader
        store = CellStore(self.output_dir, cell.key[:3] + (f"seed{cell.seed}",), result.config)
        result.hash, result.dir = store.hash, store.dir
        store.prepare()
        store.repair_shard(self.process_index)
        done = store.load()
        plan = plan_batches(problems, self.suite.samples, self.suite.batch_size)
        wanted = {item.key for batch in plan for item in batch}
        result.resumed = sum(1 for key in done if key in wanted)
        todo = [(batch, [it for it in batch if it.key not in done])
                for batch in shard_batches(plan, self.num_processes, self.process_index)]
        todo = [(batch, pending) for batch, pending in todo if pending]
        self._generate(cell, model, tokenizer, cfg, builder, grader, store, todo, done, result)
        return store, [p.id for p in problems], wanted

    def _exemplars(self, prompt: PromptSpec) -> list[tuple[str, str]]:
        if prompt.style != "few_shot" or prompt.n_shots == 0:
            return []
        return select_exemplars(prompt, load_benchmark("gsm8k", data_dir=self.suite.data_dir, split="train"))

    def _generate(self, cell, model, tokenizer, cfg, builder, grader, store, todo, done, result) -> None:
        from tqdm.auto import tqdm

        generate = self.generate_fn
        if generate is None:
            import softthink

            generate = softthink.generate
        total = sum(len(pending) for _, pending in todo)
        n_correct = sum(bool(r["correct"]) for r in done.values())
        n_seen = len(done)
        model_path = cell.model.resolved_path
        with tqdm(total=total, desc=str(cell), disable=not (self.progress and self.is_main), unit="sample",
                  dynamic_ncols=True) as bar:
            for batch, pending in todo:
                inputs = [builder.model_input(item.problem.question) for item in pending]
                start = time.perf_counter()
                if self.suite.seed_per_sample:
                    sample_seeds = [derive_seed(cell.seed, *item.key) for item in pending]
                    gens = generate(model, inputs, tokenizer=tokenizer, config=cfg, seeds=sample_seeds)
                else:
                    batch_seed = derive_seed(cell.seed, *batch[0].key)
                    sample_seeds = [batch_seed] * len(pending)
                    gens = generate(model, inputs, tokenizer=tokenizer, config=cfg.replace(seed=batch_seed))
                per_sample = (time.perf_counter() - start) / len(pending)
                if len(gens) != len(pending):
                    raise SoftthinkError(f"generate returned {len(gens)} generations for {len(pending)} prompts.")
                prompts = {prompt_hash(g.prompt): g.prompt for g in gens}
                records = [make_record(cell, item, gen, grader, prompt_hash(gen.prompt), per_sample, seed,
                                       store.hash, model_path) for item, gen, seed in zip(pending, gens, sample_seeds)]
                store.add_prompts(prompts, self.process_index)
                store.append(self.process_index, records)
                result.generated += len(records)
                n_seen += len(records)
                n_correct += sum(r["correct"] for r in records)
                bar.update(len(records))
                bar.set_postfix(acc=f"{n_correct / n_seen:.3f}")


def load_suite(suite_or_path: Suite | str | Path, overrides: dict[str, Any] | None = None) -> Suite:
    """A `Suite` from an object or a YAML path, with dotted overrides applied (``{"samples": 4}``)."""
    if isinstance(suite_or_path, Suite):
        if not overrides:
            return suite_or_path
        from softthink.eval.suite import apply_overrides

        data = suite_or_path.to_dict()
        data.pop("source", None)
        apply_overrides(data, overrides)
        return Suite.from_dict(data, source=suite_or_path.source)
    return Suite.from_yaml(suite_or_path, overrides)


def run(suite_or_path: Suite | str | Path, *, generate_fn: GenerateFn | None = None,
        load_model_fn: LoadModelFn | None = None, num_processes: int | None = None,
        process_index: int | None = None, progress: bool = True, write_report: bool = True,
        set_options: list[str] | None = None, **overrides: Any) -> EvalResults:
    """Run a suite (object or YAML path) and return its records and summary; the same as ``softthink eval run``.

    Overrides are suite keys (``limit=5``, ``samples=4``, ``output_dir=...``), dotted keys passed as a dict
    (``**{"decode_overrides.max_new_tokens": 64}``) or ``set_options=["benchmarks.0.limit=10"]`` (the CLI's
    ``--set`` strings).
    The main process writes the report (``report.md``, ``results.csv``, plot, resolved config) to the suite's
    output dir unless ``write_report=False``.
    """
    from softthink.eval.report import build_rows, compare_cells, write_report as write

    for text in set_options or []:
        key, value = parse_set_option(text)
        overrides[key] = value
    suite = load_suite(suite_or_path, overrides)
    runner = Runner(suite, generate_fn=generate_fn, load_model_fn=load_model_fn, num_processes=num_processes,
                    process_index=process_index, progress=progress)
    cells = runner.run()
    results = EvalResults(suite, runner.output_dir, cells, is_main=runner.is_main)
    results.rows = build_rows(results)
    results.comparisons = compare_cells(results)
    if write_report and runner.is_main:
        write(results, overrides=overrides)
    return results
