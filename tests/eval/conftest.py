"""Fixtures of the eval tests: a tiny benchmark on disk, suite builders (the fake generate is in `fakes`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tok():
    from softthink.testbed.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer()


@pytest.fixture
def fake_load(tok):
    return lambda path: (object(), tok)


@pytest.fixture
def arith_bench(tmp_path) -> Path:
    """A 6-problem JSONL benchmark described by YAML ("compute A+B", gold A+B)."""
    rows = [{"uid": f"p{i}", "q": f"compute {i}+{i + 1}", "gold": str(2 * i + 1)} for i in range(6)]
    (tmp_path / "arith.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "arith.yaml").write_text(
        "name: arith\npath: arith.jsonl\nquestion_field: q\nanswer_field: gold\nid_field: uid\n"
        "prompt: {style: chat, template: '{question}'}\n"
    )
    return tmp_path / "arith.yaml"


@pytest.fixture
def suite_dict(arith_bench, tmp_path):
    """A small valid suite over the arith benchmark; tests change what they need."""

    def make(**changes):
        data = {
            "name": "t",
            "models": [{"label": "m", "path": "fake-model"}],
            "decode": ["discrete", "soft"],
            "benchmarks": [str(arith_bench)],
            "samples": 2,
            "batch_size": 4,
            "decode_overrides": {"max_new_tokens": 16, "think_end": "</think>"},
            "output_dir": str(tmp_path / "out"),
        }
        data.update(changes)
        return data

    return make
