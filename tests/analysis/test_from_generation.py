"""Entropies of generations from their traces, checked against teacher forcing of the same tokens."""

from __future__ import annotations

import pytest

import softthink
from softthink.analysis import from_generation, from_generations, token_entropies_from_ids
from softthink.decoding.output import Generation, StepTrace
from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer


def fake_generation() -> Generation:
    think_end = build_tiny_tokenizer().convert_tokens_to_ids("</think>")
    trace = StepTrace(
        token_ids=[40, 41, think_end, 42, 43],
        entropy=[1.0, 0.5, 0.1, 0.2, 0.0],
        soft=[True, False, False, False, False],
        thinking=[True, True, True, False, False],
    )
    return Generation(
        text="HI</think>JK",
        thinking_text="HI",
        answer_text="JK",
        token_ids=trace.token_ids,
        prompt="user: hi\n",
        prompt_token_ids=[4, 5],
        think_tokens=3,
        answer_tokens=2,
        soft_steps=1,
        stop_reason="eos",
        think_end_reason="think_marker",
        mode="soft",
        trace=trace,
    )


def test_reads_trace_and_parts():
    g, tok = fake_generation(), build_tiny_tokenizer()
    rec = from_generation(g, tok)
    assert rec.entropies == [1.0, 0.5, 0.1, 0.2, 0.0] and rec.source == "generation"
    assert rec.tokens == tok.batch_decode([[i] for i in g.trace.token_ids])
    assert rec.soft == [True, False, False, False, False] and rec.meta["stop_reason"] == "eos"
    thinking = from_generation(g, tok, part="thinking")
    answer = from_generation(g, part="answer")
    assert thinking.entropies == [1.0, 0.5, 0.1] and thinking.tokens[-1] == "</think>"
    assert answer.token_ids == [42, 43] and answer.tokens == ["42", "43"]


def test_dict_form_works_too():
    g = fake_generation()
    assert from_generation(g.to_dict()).entropies == from_generation(g).entropies


def test_missing_trace_and_bad_part():
    g = fake_generation()
    with pytest.raises(SoftthinkConfigError):
        from_generation(g, part="middle")
    d = g.to_dict(trace=False)
    with pytest.raises(SoftthinkInputError, match="trace=True"):
        from_generation(d)


def test_trace_entropy_equals_teacher_forced_entropy():
    """Greedy discrete decoding at temperature 1: the decoder's per-step entropy is the teacher-forced one."""
    model, tok = build_tiny_model("llama"), build_tiny_tokenizer()
    gens = softthink.generate(
        model, ["What is 2+3?", "Hello"], tokenizer=tok, mode="discrete", max_new_tokens=12, temperature=1.0
    )
    traced = from_generations(gens, tok)
    forced = token_entropies_from_ids(
        model, tok, [g.trace.token_ids for g in gens], context_ids=[g.prompt_token_ids for g in gens], progress=False
    )
    for t, f in zip(traced, forced):
        assert t.token_ids == f.token_ids and t.tokens == f.tokens
        assert t.entropies == pytest.approx(f.entropies, abs=1e-4)
