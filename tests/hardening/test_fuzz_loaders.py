"""Fuzz the suite, benchmark, recipe and decode-preset YAML loaders with seeded random mutations.

Every mutated file either loads or fails with a `SoftthinkError`; a raw exception (TypeError, AttributeError, ...)
fails the test with the seed, the mutations and the traceback. `tests.hardening.mutate` describes the mutations.
"""

from __future__ import annotations

import random
import shutil
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from softthink.errors import SoftthinkError
from tests.hardening.mutate import mutated_yaml

REPO = Path(__file__).resolve().parents[2]
CASES = 150  # per loader; the four loaders together take a few seconds (plus importing trl)


def _fuzz(base: dict, write: Callable[[str], Path], load: Callable[[Path], object], cases: int = CASES) -> int:
    """Load ``cases`` mutations of ``base``; return how many loaded. Raw exceptions fail with a reproducer."""
    loaded, raw = 0, []
    for seed in range(cases):
        text, what = mutated_yaml(base, random.Random(seed))
        path = write(text)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load(path)
            loaded += 1
        except SoftthinkError:
            pass
        except Exception:  # noqa: BLE001 - the point of the test: nothing but SoftthinkError may escape
            raw.append(f"seed {seed} ({what}):\n{text}\n{traceback.format_exc(limit=-4)}")
    assert not raw, f"{len(raw)} of {cases} mutations raised a raw exception; first:\n" + raw[0]
    return loaded


def _writer(path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path.write_text(text)
        return path

    return write


def _load_suite(suite) -> None:
    """What a run builds from a suite before any model loads: each decode config (as the runner does), and the
    problems of each ``testbed`` benchmark with its options (the other benchmarks read data files)."""
    from softthink.decoding.config import load_decode_config
    from softthink.eval.datasets import get_benchmark

    for spec in suite.decode:
        load_decode_config(spec.preset, **{**suite.decode_overrides, **spec.overrides})
    for ref in suite.benchmarks:
        if ref.name == "testbed":
            get_benchmark(ref.name).load(split=ref.split, **ref.options)


def test_fuzz_suite_loader(tmp_path):
    from softthink.eval.suite import Suite

    base = {
        "name": "fuzz",
        "description": "a suite with every kind of entry",
        "models": ["m.gguf", {"label": "tb", "path": "testbed", "hint": "built in"}],
        "decode": ["soft", {"label": "greedy", "preset": "discrete", "overrides": {"max_new_tokens": 8}}],
        "benchmarks": [
            "gsm8k",
            {"name": "testbed", "label": "tb", "split": "test", "limit": 3, "options": {"n": 4}, "prompt": {}},
            {"name": "math500", "ids": ["a", 2], "grader": {"answer_format": "math"}},
        ],
        "seeds": [0, 1],
        "samples": 2,
        "batch_size": 4,
        "seed_per_sample": False,
        "limit": 5,
        "ids": None,
        "decode_overrides": {"max_new_tokens": 16},
        "prompt": {"style": "chat"},
        "grader": {},
        "pass_k": [1, 2],
        "baseline": "soft",
        "output_dir": "out",
    }
    _load_suite(Suite.from_dict(base))  # the unmutated suite is valid
    loaded = _fuzz(base, _writer(tmp_path / "suite.yaml"), lambda path: _load_suite(Suite.from_yaml(path)))
    assert 0 < loaded < CASES  # some mutations are harmless, most are not


def test_fuzz_benchmark_yaml_loader(tmp_path):
    from softthink.eval.datasets import load_benchmark

    shutil.copy(REPO / "tests" / "fixtures" / "mcq" / "capitals_mcq.jsonl", tmp_path / "capitals_mcq.jsonl")
    base = {
        "name": "capitals",
        "path": "capitals_mcq.jsonl",
        "id_field": "id",
        "question_field": ["question", "problem"],
        "choices_field": "choices",
        "answer_field": "answer",
        "answer_format": "choice",
        "layout": "plain",
        "split": "test",
        "grader": {"answer_format": "multiple_choice"},
        "prompt": {"style": "plain"},
        "hub": None,
        "description": "fuzzed",
    }
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(base))
    assert len(load_benchmark(tmp_path / "ok.yaml")) == 4
    loaded = _fuzz(base, _writer(tmp_path / "bench.yaml"), load_benchmark)
    assert 0 < loaded < CASES


def test_fuzz_recipe_loader(tmp_path):
    from softthink.rl.recipes import load_recipe

    recipes = tmp_path / "rl"
    shutil.copytree(REPO / "configs" / "rl", recipes)  # so that `include: _testbed.yaml` resolves
    base = {
        **yaml.safe_load((recipes / "forking.yaml").read_text()),
        "model": "testbed",
        "dataset": "testbed",
        "num_problems": 8,
        "prompt_template": "{question}",
        "label": "fuzz",
        "learning_rate": 1.0e-5,
    }
    load_recipe(recipes / "forking.yaml")
    loaded = _fuzz(base, _writer(recipes / "fuzz.yaml"), load_recipe)
    assert 0 < loaded < CASES


def test_fuzz_decode_preset_loader(tmp_path):
    from softthink.decoding.config import load_decode_config

    base = {
        "include": "soft",
        "mode": "gated",
        "entropy_threshold": 0.5,
        "max_new_tokens": 64,
        "max_think_tokens": 32,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.95,
        "answer_temperature": None,
        "stop_strings": ["Question:"],
        "chat_template": False,
        "seed": 3,
    }
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(base))
    load_decode_config(tmp_path / "ok.yaml")
    loaded = _fuzz(base, _writer(tmp_path / "preset.yaml"), load_decode_config)
    assert 0 < loaded < CASES


@pytest.mark.parametrize("seed", range(3))
def test_mutations_are_seeded(seed):
    doc = {"a": [1, {"b": 2}], "c": "d"}
    assert mutated_yaml(doc, random.Random(seed)) == mutated_yaml(doc, random.Random(seed))
    assert doc == {"a": [1, {"b": 2}], "c": "d"}  # the base document is never changed
