"""Thinking phase: marker, budget, Cold Stop, stop strings, EOS, seeds — and never a soft step after thinking."""

import copy

import pytest
import torch

import softthink
from tests.conftest import tiny

MARKER = 4  # '</think>' in the tiny tokenizer
PROMPT = "What is 12+7? Think step by step."


def assert_phases_consistent(g):
    th = g.trace.thinking
    assert len(th) == len(g.token_ids) == len(g.trace.entropy) == len(g.trace.soft)
    assert sum(th) == g.think_tokens and th == sorted(th, reverse=True)  # thinking is a prefix
    assert not any(s for s, t in zip(g.trace.soft, th) if not t), "soft step after thinking"
    assert g.soft_steps == sum(g.trace.soft)


@pytest.mark.parametrize("mode", ["soft", "discrete"])
def test_think_budget_injects_marker(mode, tiny_tokenizer):
    g = softthink.generate(
        tiny("qwen2"), PROMPT, tokenizer=tiny_tokenizer, mode=mode, max_think_tokens=5, max_new_tokens=12
    )
    assert g.think_end_reason == "think_budget"
    assert g.think_tokens == 6 and g.token_ids[5] == MARKER
    assert not g.trace.soft[5] and g.trace.kept_ids[5] == [MARKER]
    assert g.answer_tokens == g.num_tokens - 6 > 0
    assert_phases_consistent(g)
    assert "</think>" not in g.thinking_text and g.text.startswith(g.thinking_text)


def test_cold_stop_fires_exactly_after_patience_low_entropy_steps(tiny_tokenizer):
    model = tiny("qwen2")
    free = softthink.generate(model, PROMPT, tokenizer=tiny_tokenizer, mode="soft", max_new_tokens=40)
    assert free.think_end_reason is None
    threshold, patience = sorted(free.trace.entropy)[len(free.trace.entropy) // 2], 2  # median: some runs exist
    run, expected = 0, None
    for t, h in enumerate(free.trace.entropy):
        run = run + 1 if h < threshold else 0
        if run >= patience:
            expected = t + 1  # the marker is fed right after the patience-th low step
            break
    assert expected is not None
    g = softthink.generate(
        model,
        PROMPT,
        tokenizer=tiny_tokenizer,
        mode="soft",
        max_new_tokens=40,
        cold_stop_entropy=threshold,
        cold_stop_patience=patience,
    )
    assert g.think_end_reason == "cold_stop"
    assert g.token_ids[:expected] == free.token_ids[:expected]
    assert g.token_ids[expected] == MARKER and g.think_tokens == expected + 1
    assert_phases_consistent(g)


def test_cold_stop_never_fires_above_threshold(tiny_tokenizer):
    g = softthink.generate(
        tiny("qwen2"),
        PROMPT,
        tokenizer=tiny_tokenizer,
        mode="soft",
        max_new_tokens=30,
        cold_stop_entropy=1e-9,
        cold_stop_patience=1,
    )
    assert g.think_end_reason is None and g.think_tokens == g.num_tokens


def test_model_emitting_the_marker_ends_thinking_with_a_discrete_step(tiny_tokenizer):
    model = copy.deepcopy(tiny("llama"))
    with torch.no_grad():
        model.lm_head.weight[MARKER] *= 0
        model.lm_head.weight[MARKER] += model.model.norm.weight * 3  # the marker becomes the favourite token
    g = softthink.generate(model, PROMPT, tokenizer=tiny_tokenizer, mode="soft", max_new_tokens=6)
    first = g.token_ids.index(MARKER)
    assert g.think_end_reason == "think_marker" and g.think_tokens == first + 1
    assert g.trace.soft[first] is False and g.trace.kept_ids[first] == [MARKER]
    assert_phases_consistent(g)


def test_multi_token_marker_string_ends_thinking(tiny_tokenizer):
    free = softthink.generate(
        tiny("gpt2"), PROMPT, tokenizer=tiny_tokenizer, mode="discrete", think_end=None, max_new_tokens=20
    )
    marker = free.text[3:5]  # two characters the model writes by itself
    g = softthink.generate(
        tiny("gpt2"), PROMPT, tokenizer=tiny_tokenizer, mode="soft", max_topk=1, think_end=marker, max_new_tokens=20
    )
    assert g.think_end_reason == "think_marker"
    assert g.text[: g.text.index(marker) + len(marker)] == free.text[: free.text.index(marker) + len(marker)]
    assert g.thinking_text == free.text[: free.text.index(marker)]
    assert_phases_consistent(g)


def test_stop_string_and_eos(tiny_tokenizer):
    free = softthink.generate(
        tiny("qwen2"), PROMPT, tokenizer=tiny_tokenizer, mode="discrete", think_end=None, max_new_tokens=20
    )
    stop = free.text[4:6]
    g = softthink.generate(
        tiny("qwen2"),
        PROMPT,
        tokenizer=tiny_tokenizer,
        mode="discrete",
        think_end=None,
        max_new_tokens=20,
        stop_strings=[stop],
    )
    assert g.stop_reason == "stop_string" and g.text.endswith(stop) and stop not in g.text[:-1]
    eos = softthink.generate(
        tiny("gpt2"), "hi", tokenizer=tiny_tokenizer, mode="discrete", think_end=None, max_new_tokens=24
    )
    assert eos.stop_reason == "eos" and eos.token_ids[-1] == tiny_tokenizer.eos_token_id
    assert "</s>" not in eos.text


@pytest.mark.parametrize(
    "settings", [dict(mode="discrete", think_end=None), dict(mode="soft", think_end="qqq", max_topk=1)]
)
def test_ignore_eos_decodes_every_step(settings, tiny_tokenizer):
    model = tiny("gpt2")
    stopped = softthink.generate(model, "hi", tokenizer=tiny_tokenizer, max_new_tokens=24, **settings)
    assert stopped.stop_reason == "eos" and stopped.num_tokens < 24
    longer = softthink.generate(model, "hi", tokenizer=tiny_tokenizer, max_new_tokens=24, ignore_eos=True, **settings)
    assert longer.stop_reason == "max_tokens" and longer.num_tokens == 24
    assert longer.token_ids[: stopped.num_tokens] == stopped.token_ids  # the same decoding, past the EOS


@pytest.mark.parametrize(
    "settings",
    [
        dict(mode="discrete", do_sample=True, temperature=1.5),
        dict(mode="soft", noise="gumbel", gumbel_tau=0.5),
        dict(mode="soft", noise="dirichlet", dirichlet_alpha=0.5),
    ],
)
def test_seeds_make_randomized_modes_reproducible(settings, tiny_tokenizer):
    run = lambda seed: softthink.generate(
        tiny("qwen2"), PROMPT, tokenizer=tiny_tokenizer, max_new_tokens=16, seed=seed, **settings
    )
    a, b, c = run(1), run(1), run(2)
    assert a.token_ids == b.token_ids and a.trace.kept_weights == b.trace.kept_weights
    assert (a.token_ids, a.trace.kept_weights) != (c.token_ids, c.trace.kept_weights)


def test_rng_state_of_the_caller_is_untouched(tiny_tokenizer):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    softthink.generate(
        tiny("qwen2"), PROMPT, tokenizer=tiny_tokenizer, mode="discrete", do_sample=True, max_new_tokens=4
    )
    assert torch.equal(torch.rand(3), expected)


def test_gated_is_soft_exactly_at_high_entropy_steps(tiny_tokenizer):
    g = softthink.generate(
        tiny("qwen2"), PROMPT, tokenizer=tiny_tokenizer, mode="gated", entropy_threshold=1.5, max_new_tokens=30
    )
    assert 0 < g.soft_steps < g.think_tokens
    for h, soft, th in zip(g.trace.entropy, g.trace.soft, g.trace.thinking):
        if th:
            assert soft == (h >= 1.5)


def test_gated_that_never_fires_equals_its_fallback(tiny_tokenizer):
    gated = softthink.generate(
        tiny("llama"), PROMPT, tokenizer=tiny_tokenizer, mode="gated", entropy_threshold=1e6, max_new_tokens=20
    )
    discrete = softthink.generate(tiny("llama"), PROMPT, tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=20)
    assert gated.token_ids == discrete.token_ids and gated.soft_steps == 0


def test_answer_phase_uses_answer_sampling(tiny_tokenizer):
    base = dict(mode="soft", max_think_tokens=3, max_new_tokens=20, seed=0)
    greedy_answer = softthink.generate(tiny("qwen2"), PROMPT, tokenizer=tiny_tokenizer, **base)
    sampled = [
        softthink.generate(
            tiny("qwen2"),
            PROMPT,
            tokenizer=tiny_tokenizer,
            answer_do_sample=True,
            answer_temperature=3.0,
            **{**base, "seed": s},
        )
        for s in range(3)
    ]
    assert all(s.token_ids[:4] == greedy_answer.token_ids[:4] for s in sampled)  # thinking unchanged
    assert any(s.token_ids[4:] != greedy_answer.token_ids[4:] for s in sampled)


def test_to_dict_is_json_ready(tiny_tokenizer):
    import json

    g = softthink.generate(tiny("llama"), PROMPT, tokenizer=tiny_tokenizer, mode="soft", max_new_tokens=5)
    d = json.loads(json.dumps(g.to_dict()))
    assert d["num_tokens"] == 5 and len(d["trace"]["entropy"]) == 5 and d["mode"] == "soft"
