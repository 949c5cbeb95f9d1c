"""A batch equals its prompts decoded one by one; the KV-cached loop equals recomputing the whole sequence from
the recorded concept tokens; the fed embedding is the independent sum of p_i * E_i."""

import numpy as np
import pytest
import torch

import softthink
from tests.conftest import tiny

PROMPTS = ["a much longer prompt than the others, to force padding", "hi", "What is 3*4?"]
SOFT = dict(mode="soft", max_topk=5, top_p=0.9, temperature=0.8, max_new_tokens=20)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gemma3"])
@pytest.mark.parametrize(
    "settings",
    [
        SOFT,
        dict(mode="discrete", max_new_tokens=20),
        dict(mode="gated", entropy_threshold=1.0, max_topk=4, max_new_tokens=20),
    ],
)
def test_batch_equals_one_by_one(arch, settings, tiny_tokenizer):
    model = tiny(arch, dtype=torch.float64)
    batch = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, **settings)
    for prompt, b in zip(PROMPTS, batch):
        single = softthink.generate(model, prompt, tokenizer=tiny_tokenizer, **settings)
        assert b.token_ids == single.token_ids
        assert b.trace.soft == single.trace.soft
        np.testing.assert_allclose(b.trace.entropy, single.trace.entropy, atol=1e-9)
        for wb, ws in zip(b.trace.kept_weights, single.trace.kept_weights):
            np.testing.assert_allclose(wb, ws, atol=1e-9)


def recompute_logits(model, gen):
    """Logits at every generated position from one uncached forward over prompt + fed embeddings."""
    embed = model.get_input_embeddings()
    prompt = embed(torch.tensor([gen.prompt_token_ids]))
    fed = [
        sum(w * embed(torch.tensor([[i]]))[0, 0] for i, w in zip(ids, ws))
        for ids, ws in zip(gen.trace.kept_ids[:-1], gen.trace.kept_weights[:-1])
    ]
    inputs = torch.cat([prompt, torch.stack(fed)[None]], 1) if fed else prompt
    with torch.no_grad():
        logits = model(inputs_embeds=inputs, use_cache=False).logits[0]
    return logits[len(gen.prompt_token_ids) - 1 :]


def reference_weights(logits, temperature, top_k, top_p, min_p, max_topk):
    """The concept-token rule written out independently, in float64 numpy."""
    x = logits.double().numpy() / temperature
    p = np.exp(x - x.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order][: top_k or len(p)]
    sorted_p = sorted_p / sorted_p.sum()
    keep = (np.cumsum(sorted_p) - sorted_p) < top_p
    keep &= sorted_p >= min_p * sorted_p[0]
    keep[0] = True
    n = min(int(keep.sum()), max_topk)
    kept = sorted_p[:n][keep[:n]]
    return order[:n][keep[:n]], kept / kept.sum()


@pytest.mark.parametrize(
    "arch, tied", [("llama", False), ("llama", True), ("gemma", False), ("gemma3", False), ("gpt2", True)]
)
def test_cached_soft_decoding_equals_recomputation(arch, tied, tiny_tokenizer):
    model = tiny(arch, tied, dtype=torch.float64)
    settings = dict(mode="soft", max_topk=6, top_k=20, top_p=0.95, min_p=0.01, temperature=0.7, max_new_tokens=24)
    gen = softthink.generate(model, "What is 3*4?", tokenizer=tiny_tokenizer, **settings)
    assert gen.soft_steps > 5 and any(len(k) > 1 for k in gen.trace.kept_ids)
    logits = recompute_logits(model, gen)
    assert logits.shape[0] == gen.num_tokens
    entropy = softthink.analysis.entropy_from_logits(logits, temperature=0.7)
    np.testing.assert_allclose(gen.trace.entropy, entropy.numpy(), atol=1e-9)
    for step, (ids, weights, soft) in enumerate(zip(gen.trace.kept_ids, gen.trace.kept_weights, gen.trace.soft)):
        if not soft:
            continue
        ref_ids, ref_w = reference_weights(logits[step], 0.7, 20, 0.95, 0.01, 6)
        assert ids == ref_ids.tolist(), f"step {step}"
        np.testing.assert_allclose(weights, ref_w, atol=1e-9)
        assert gen.trace.token_ids[step] == ref_ids[0]


@pytest.mark.parametrize("arch", ["llama", "gemma", "gemma3"])
def test_fed_embedding_is_the_weighted_sum_of_input_embeddings(arch, tiny_tokenizer):
    model = tiny(arch)
    fed = []
    hook = model.register_forward_pre_hook(
        lambda mod, args, kwargs: fed.append(kwargs.get("inputs_embeds")), with_kwargs=True
    )
    try:
        gen = softthink.generate(model, "hello", tokenizer=tiny_tokenizer, mode="soft", max_topk=4, max_new_tokens=8)
    finally:
        hook.remove()
    decode_inputs = [e for e in fed if e is not None]
    assert len(decode_inputs) == gen.num_tokens - 1
    embed = model.get_input_embeddings()
    for step, tensor in enumerate(decode_inputs):
        ids, ws = gen.trace.kept_ids[step], gen.trace.kept_weights[step]
        # Independent: one id at a time through the model's own embedding module (Gemma 3 scales in there).
        expected = sum(w * embed(torch.tensor([i])).double()[0] for i, w in zip(ids, ws))
        torch.testing.assert_close(tensor[0, 0].double(), expected, atol=1e-5, rtol=1e-5)
    if arch == "gemma3":
        raw = embed.weight[gen.trace.kept_ids[0][0]]
        assert not torch.allclose(embed(torch.tensor([gen.trace.kept_ids[0][0]]))[0], raw)  # the module scales
