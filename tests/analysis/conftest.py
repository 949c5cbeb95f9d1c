"""Fixtures for the analysis tests: hand-built records and tiny random-init models (see tests/conftest.py)."""

from __future__ import annotations

import pytest

from softthink.analysis import TokenEntropies


def make_record(entropies, tokens=None, **kwargs) -> TokenEntropies:
    """A record with the given entropies; tokens default to 't0', 't1', ..."""
    tokens = tokens if tokens is not None else [f"t{i}" for i in range(len(entropies))]
    return TokenEntropies(
        token_ids=list(range(len(entropies))), tokens=list(tokens), entropies=[float(h) for h in entropies], **kwargs
    )


@pytest.fixture(name="make_record")
def make_record_fixture():
    """The `make_record` helper, for tests."""
    return make_record


@pytest.fixture
def texts() -> list[str]:
    """Three texts of different lengths (padding in a batch), for the tiny char-level tokenizer."""
    return ["Hello world, this is a test.", "Hi!", "A somewhat longer sentence, with more characters in it."]
