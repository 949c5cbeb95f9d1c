"""With per-prompt seeds, sampled decoding of a batch equals decoding each prompt alone with its seed, in every
mode that draws random numbers: rows that end thinking at different steps (Cold Stop), finish at different
steps (EOS / length) and share a prompt with another row included."""

import numpy as np
import pytest
import torch

import softthink
from softthink.errors import SoftthinkInputError
from tests.conftest import tiny

PROMPTS = ["a much longer prompt than the others, to force padding", "hi", "What is 3*4?", "hi"]
SEEDS = [11, 12, 13, 14]
# Cold Stop at 1 nat after one low step makes rows leave thinking at different steps (the tiny model's step
# entropies spread over ~0.3-2.6 nats), so batches mix thinking and answering rows.
# Stopping at "#" makes rows finish at different steps, so the loop drops rows from the batch mid-way.
COMMON = dict(
    max_new_tokens=24,
    temperature=1.0,
    do_sample=True,
    answer_do_sample=True,
    cold_stop_entropy=1.0,
    cold_stop_patience=1,
    stop_strings=["#"],
)
SAMPLED_MODES = {
    "discrete": dict(mode="discrete", top_k=20),
    "soft_gumbel": dict(mode="soft", noise="gumbel", gumbel_tau=0.7, max_topk=5),
    "soft_dirichlet": dict(mode="soft", noise="dirichlet", dirichlet_alpha=2.0, max_topk=5),
    "gated": dict(mode="gated", entropy_threshold=1.5, noise="gumbel", max_topk=4),
    "mixture_of_inputs": dict(mode="mixture_of_inputs", max_topk=5),
    "swir": dict(mode="swir", noise="dirichlet", max_topk=4),
    "forking_temperature": dict(mode="forking_temperature", fork_temperature=1.5, fork_threshold=1.0),
    "multiplex": dict(mode="multiplex", multiplex_k=3, top_k=20),
}


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("name", list(SAMPLED_MODES))
def test_seeded_batch_equals_one_by_one(arch, name, tiny_tokenizer):
    model = tiny(arch, dtype=torch.float64)
    settings = {**COMMON, **SAMPLED_MODES[name]}
    batch = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, seeds=SEEDS, **settings)
    for prompt, seed, b in zip(PROMPTS, SEEDS, batch):
        single = softthink.generate(model, prompt, tokenizer=tiny_tokenizer, seeds=[seed], **settings)
        assert b.token_ids == single.token_ids
        assert b.think_tokens == single.think_tokens
        assert b.trace.soft == single.trace.soft
        np.testing.assert_allclose(b.trace.entropy, single.trace.entropy, atol=1e-9)
        for wb, ws in zip(b.trace.kept_weights, single.trace.kept_weights):
            np.testing.assert_allclose(wb, ws, atol=1e-9)
    # the batch really mixed phases and lengths
    assert len({g.think_tokens for g in batch}) > 1, [g.think_tokens for g in batch]
    assert len({len(g.token_ids) for g in batch}) > 1, [len(g.token_ids) for g in batch]


def test_same_seed_same_sample_and_seeds_replace_config_seed(tiny_tokenizer):
    model = tiny("llama", dtype=torch.float64)
    settings = {**COMMON, **SAMPLED_MODES["soft_gumbel"]}
    twice = softthink.generate(model, ["hi", "hi"], tokenizer=tiny_tokenizer, seeds=[5, 5], **settings)
    assert twice[0].token_ids == twice[1].token_ids
    assert twice[0].trace.kept_weights == twice[1].trace.kept_weights
    differ = softthink.generate(model, ["hi", "hi"], tokenizer=tiny_tokenizer, seeds=[5, 6], **settings)
    assert differ[0].token_ids != differ[1].token_ids
    other_config_seed = softthink.generate(model, "hi", tokenizer=tiny_tokenizer, seeds=[5], **{**settings, "seed": 99})
    assert other_config_seed.token_ids == twice[0].token_ids


@pytest.mark.parametrize(
    "seeds, message",
    [
        ([1], "1 entries but there are 2 prompts"),
        (3, "list of ints"),
        ([1, "2"], "list of ints"),
        ([1, -1], "non-negative"),
    ],
)
def test_bad_seeds_are_clear_errors(seeds, message, tiny_tokenizer):
    with pytest.raises(SoftthinkInputError, match=message):
        softthink.generate(tiny("llama"), ["a", "b"], tokenizer=tiny_tokenizer, seeds=seeds, max_new_tokens=2)
