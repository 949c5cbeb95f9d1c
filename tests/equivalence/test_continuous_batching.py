"""Continuous batching (``generate(..., max_batch_size=K)``) equals decoding each prompt alone, greedy and
sampled with per-prompt seeds, in every registered mode: more prompts than slots, rows of very different lengths
(prompts of 1 to 55 tokens, answers ending at 1 to 24 tokens), so slots are refilled at different steps and new
prompts join a batch that is narrower or wider than them. Float64 tiny models: identical tokens, entropies and
weights to 1e-9. Gemma 3 has sliding-window layers narrower than the longest prompt."""

import numpy as np
import pytest
import torch

import softthink
from softthink.errors import SoftthinkInputError
from tests.conftest import tiny
from tests.equivalence.test_prompt_seeds import COMMON, SAMPLED_MODES

PROMPTS = [
    "a much longer prompt than the others, to force padding and a wide batch!",
    "x",
    "hi",
    "What is 3*4?",
    "Think about 7+8 step by step, then answer.",
    "ok",
    "hello there",
    "Name a prime larger than 10.",
]
SEEDS = [101, 7, 23, 5, 42, 9, 13, 77]
GREEDY = dict(max_new_tokens=36, cold_stop_entropy=1.0, cold_stop_patience=1, stop_strings=["#"])
GREEDY_MODES = {
    "discrete": dict(mode="discrete"),
    "soft": dict(mode="soft", max_topk=5, top_p=0.9, temperature=0.8),
    "gated": dict(mode="gated", entropy_threshold=1.5, max_topk=4),
    "mixture_of_inputs": dict(mode="mixture_of_inputs", max_topk=5),
    "swir": dict(mode="swir", max_topk=4),
}  # forking_temperature and multiplex always sample: they are in SAMPLED_MODES only


def assert_same(ours, alone):
    for row, (a, b) in enumerate(zip(ours, alone)):
        assert a.token_ids == b.token_ids, f"row {row}"
        assert (a.stop_reason, a.think_end_reason) == (b.stop_reason, b.think_end_reason)
        assert a.think_tokens == b.think_tokens
        assert a.trace.soft == b.trace.soft
        np.testing.assert_allclose(a.trace.entropy, b.trace.entropy, atol=1e-9)
        for wa, wb in zip(a.trace.kept_weights, b.trace.kept_weights):
            np.testing.assert_allclose(wa, wb, atol=1e-9)


def check(model, tokenizer, settings, seeds, slots):
    settings = {**settings, "max_new_tokens": 36}
    alone = [
        softthink.generate(model, p, tokenizer=tokenizer, seeds=None if seeds is None else [s], **settings)
        for p, s in zip(PROMPTS, seeds or PROMPTS)
    ]
    lengths = [g.num_tokens for g in alone]
    # a long tail: slots really refill at different steps
    assert max(lengths) >= 2 * min(lengths) and len(set(lengths)) >= 4, lengths
    for k in slots:
        ours = softthink.generate(model, PROMPTS, tokenizer=tokenizer, seeds=seeds, max_batch_size=k, **settings)
        assert_same(ours, alone)


def test_every_mode_is_covered():
    assert set(GREEDY_MODES) == set(softthink.available_modes()) - {"forking_temperature", "multiplex"}
    assert {s["mode"] for s in SAMPLED_MODES.values()} == set(softthink.available_modes())


@pytest.mark.parametrize("name", list(GREEDY_MODES))
def test_greedy_continuous_batching_equals_one_by_one(name, tiny_tokenizer):
    check(tiny("llama", dtype=torch.float64), tiny_tokenizer, {**GREEDY, **GREEDY_MODES[name]}, None, [3])


@pytest.mark.parametrize("name", list(SAMPLED_MODES))
def test_seeded_continuous_batching_equals_one_by_one(name, tiny_tokenizer):
    check(tiny("llama", dtype=torch.float64), tiny_tokenizer, {**COMMON, **SAMPLED_MODES[name]}, SEEDS, [2])


@pytest.mark.parametrize("arch", ["qwen2", "gpt2", "gemma3"])
def test_other_architectures(arch, tiny_tokenizer):
    settings = {**COMMON, **SAMPLED_MODES["soft_gumbel"]}
    check(tiny(arch, dtype=torch.float64), tiny_tokenizer, settings, SEEDS, [1, 3])


def test_slot_count_at_least_the_prompts_is_one_batch(tiny_tokenizer):
    model = tiny("llama", dtype=torch.float64)
    settings = {**GREEDY, **GREEDY_MODES["soft"]}
    one_batch = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, **settings)
    assert_same(softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, max_batch_size=8, **settings), one_batch)
    assert_same(softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, max_batch_size=50, **settings), one_batch)


def test_the_batch_stays_full_and_the_cache_bounded(tiny_tokenizer):
    """Each forward after the first prefill runs on min(K, prompts left) rows, and the cache is never wider than
    the longest live row (prompt + generated), however many prompts have passed through the slots."""
    model = tiny("llama", dtype=torch.float64)
    prompts = PROMPTS * 3
    seen: list[tuple[int, int]] = []

    def record(module, args, kwargs):
        if kwargs.get("inputs_embeds") is not None:
            seen.append((kwargs["inputs_embeds"].shape[0], kwargs["attention_mask"].shape[1]))

    hook = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        gens = softthink.generate(
            model, prompts, tokenizer=tiny_tokenizer, max_batch_size=4, **{**GREEDY, **GREEDY_MODES["discrete"]}
        )
    finally:
        hook.remove()
    longest = max(g.num_tokens for g in gens)
    # Every token but the first prefill's 4 comes from a decode step (a refilled row's first token too: the step
    # feeds its prompt's last token), so no slot-step is wasted ...
    assert sum(b for b, _ in seen) == sum(g.num_tokens for g in gens) - 4
    # ... the batch is full until the queue is empty, then shrinks for at most one generation's length ...
    sizes = [b for b, _ in seen]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 4
    assert sum(b < 4 for b in sizes) < longest < len(sizes) // 3
    # ... and the cache is never wider than the longest prompt + generation.
    assert max(w for _, w in seen) <= max(len(g.prompt_token_ids) for g in gens) + longest


def test_bad_max_batch_size_is_a_clear_error(tiny_tokenizer):
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(SoftthinkInputError, match="max_batch_size must be None"):
            softthink.generate(
                tiny("llama"), ["a", "b"], tokenizer=tiny_tokenizer, max_batch_size=bad, max_new_tokens=2
            )


@pytest.mark.parametrize(  # soft_gumbel with Cold Stop ends all rows within 2x of each other here: no long tail
    "name, cold_stop",
    [("discrete", 1.0), ("gated", 1.0), ("discrete", None), ("soft_gumbel", None), ("gated", None)],
)
def test_multi_token_text_marker(name, cold_stop):
    """A think marker that is several tokens, matched on the decoded text (models without a ``</think>`` token,
    such as SmolLM2): rows end thinking at different steps (Cold Stop injects the 8 marker tokens one per step; or
    the model writes the marker), and continuous batching still equals decoding each prompt alone."""
    from softthink.testbed.tiny import build_tiny_tokenizer

    settings = {**COMMON, **SAMPLED_MODES[name], "think_end": "</think>", "cold_stop_entropy": cold_stop}
    check(tiny("llama", dtype=torch.float64), build_tiny_tokenizer(think_token=False), settings, SEEDS, [3])
