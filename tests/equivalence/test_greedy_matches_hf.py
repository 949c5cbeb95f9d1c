"""Our discrete greedy decoding equals `model.generate(do_sample=False)` token for token; soft thinking with one
kept token equals greedy decoding."""

import pytest

import softthink
from tests.conftest import tiny

PROMPTS = ["hello there", "What is 12+7? Think step by step.", "x"]
ARCHS = [
    ("llama", False),
    ("llama", True),
    ("qwen2", False),
    ("gpt2", False),
    ("gemma", False),
    ("gemma3", False),
    ("qwen2", True),
]


def hf_greedy(model, tokenizer, gens, max_new_tokens):
    """model.generate on the same left-padded batch of rendered prompts."""
    tokenizer.padding_side = "left"
    enc = tokenizer([g.prompt for g in gens], return_tensors="pt", padding=True, add_special_tokens=False)
    # Only ids and mask: older tokenizers also return token_type_ids, which older model.generate rejects.
    enc = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[:, enc["input_ids"].shape[1] :].tolist()


def assert_same_prefix_until_stop(ours, ref, eos_ids):
    for row, (g, r) in enumerate(zip(ours, ref)):
        assert g.token_ids == r[: len(g.token_ids)], f"row {row} differs"
        if g.stop_reason == "eos":
            assert r[len(g.token_ids) - 1] in eos_ids


@pytest.mark.parametrize("arch, tied", ARCHS)
def test_discrete_greedy_equals_model_generate(arch, tied, tiny_tokenizer):
    model = tiny(arch, tied)
    ours = softthink.generate(
        model, PROMPTS, tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=24, think_end=None
    )
    ref = hf_greedy(model, tiny_tokenizer, ours, 24)
    assert_same_prefix_until_stop(ours, ref, {tiny_tokenizer.eos_token_id})
    assert all(g.answer_tokens == g.num_tokens and g.think_tokens == 0 for g in ours)


@pytest.mark.parametrize("arch, tied", ARCHS)
def test_soft_with_one_kept_token_equals_greedy(arch, tied, tiny_tokenizer):
    model = tiny(arch, tied)
    greedy = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=24)
    soft = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, mode="soft", max_topk=1, max_new_tokens=24)
    for g, s in zip(greedy, soft):
        assert s.token_ids == g.token_ids
        assert s.trace.entropy == pytest.approx(g.trace.entropy, abs=1e-5)
        assert s.soft_steps == s.think_tokens - (1 if s.think_end_reason else 0)
        assert all(len(k) == 1 for k in s.trace.kept_ids)


@pytest.mark.slow
def test_discrete_greedy_equals_model_generate_on_smollm2(smollm2):
    model, tokenizer = smollm2
    prompts = ["What is 15 + 27? Answer briefly.", "Name a prime number larger than 10."]
    ours = softthink.generate(model, prompts, tokenizer=tokenizer, mode="discrete", max_new_tokens=32)
    ref = hf_greedy(model, tokenizer, ours, 32)
    from softthink.decoding.api import eos_token_ids

    assert_same_prefix_until_stop(ours, ref, eos_token_ids(model, tokenizer))
    assert all(g.num_tokens > 3 for g in ours)


@pytest.mark.slow
def test_soft_one_token_equals_greedy_on_smollm2(smollm2):
    model, tokenizer = smollm2
    prompt = "What is 15 + 27? Put the answer in \\boxed{}."
    greedy = softthink.generate(
        model, prompt, tokenizer=tokenizer, mode="discrete", think_end="\\boxed", max_new_tokens=40
    )
    soft = softthink.generate(
        model, prompt, tokenizer=tokenizer, mode="soft", think_end="\\boxed", max_topk=1, max_new_tokens=40
    )
    assert soft.token_ids == greedy.token_ids
    assert soft.soft_steps > 0
