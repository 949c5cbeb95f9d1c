"""Token suppression at the output head: greedy decoding under the hook never emits the ids and equals a
hand-written greedy loop on masked logits; the token sets of the experiment (forking types, random control)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import softthink
from softthink.analysis.intervention import (
    SUPPRESSED_LOGIT,
    mask_logits,
    random_token_ids,
    suppress_tokens,
    token_counts,
    top_forking_token_ids,
)
from softthink.errors import SoftthinkConfigError
from tests.analysis.conftest import make_record
from tests.conftest import tiny

PROMPTS = ["hello there", "What is 12+7?"]


def _greedy_reference(model, tokenizer, prompt: str, banned: list[int], steps: int) -> list[int]:
    """Greedy decoding without cache on logits masked by hand (no hook)."""
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    out = []
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
        out.append(int(mask_logits(logits, banned).argmax()))
        if out[-1] == tokenizer.eos_token_id:
            break
    return out


def _favourites(model, tokenizer, n: int) -> list[int]:
    """The ids greedy decoding emits most without suppression (so suppressing them changes the output)."""
    gens = softthink.generate(
        model, PROMPTS, tokenizer=tokenizer, mode="discrete", max_new_tokens=16, think_end=None, chat_template=False
    )
    counts = Counter(t for g in gens for t in g.token_ids if t != tokenizer.eos_token_id)
    return [t for t, _ in counts.most_common(n)]


def test_greedy_under_the_hook_never_emits_suppressed_ids_and_equals_hand_masking(tiny_tokenizer):
    model = tiny("llama")
    banned = _favourites(model, tiny_tokenizer, 3)
    with suppress_tokens(model, banned) as ids:
        assert ids == sorted(banned)
        gens = softthink.generate(
            model,
            PROMPTS,
            tokenizer=tiny_tokenizer,
            mode="discrete",
            max_new_tokens=16,
            think_end=None,
            chat_template=False,
        )
    for prompt, g in zip(PROMPTS, gens):
        assert not set(g.token_ids) & set(banned)
        assert g.token_ids == _greedy_reference(model, tiny_tokenizer, prompt, banned, 16)
    # the hook is gone afterwards: the favourite tokens come back
    after = softthink.generate(
        model,
        PROMPTS,
        tokenizer=tiny_tokenizer,
        mode="discrete",
        max_new_tokens=16,
        think_end=None,
        chat_template=False,
    )
    assert {t for g in after for t in g.token_ids} & set(banned)


@pytest.mark.parametrize("mode", ["soft", "gated"])
def test_soft_modes_under_the_hook_give_zero_weight_to_suppressed_ids(mode, tiny_tokenizer):
    model = tiny("llama")
    banned = _favourites(model, tiny_tokenizer, 4)
    with suppress_tokens(model, banned):
        extra = {"entropy_threshold": 0.0} if mode == "gated" else {}  # gated: soft at every thinking step
        gens = softthink.generate(
            model,
            PROMPTS,
            tokenizer=tiny_tokenizer,
            mode=mode,
            max_new_tokens=12,
            chat_template=False,
            trace=True,
            **extra,
        )
    assert any(any(g.trace.soft) for g in gens)  # concept tokens were fed, so the mixtures are tested
    for g in gens:
        assert not set(g.token_ids) & set(banned)
        for kept, weights in zip(g.trace.kept_ids, g.trace.kept_weights):
            assert all(w == 0.0 for t, w in zip(kept, weights) if t in banned)


def test_hook_sets_the_logits_and_is_removed_on_error(tiny_tokenizer):
    model = tiny("llama")
    x = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        plain = model(input_ids=x).logits
        with pytest.raises(RuntimeError, match="boom"), suppress_tokens(model, [9, 10]):
            masked = model(input_ids=x).logits
            raise RuntimeError("boom")
        again = model(input_ids=x).logits
    assert torch.all(masked[..., [9, 10]] == SUPPRESSED_LOGIT)
    keep = [i for i in range(plain.shape[-1]) if i not in (9, 10)]
    assert torch.equal(masked[..., keep], plain[..., keep])
    assert torch.equal(again, plain)
    assert torch.softmax(masked, -1)[..., [9, 10]].max() == 0.0


def test_bad_token_ids_name_the_field():
    model = tiny("llama")
    with pytest.raises(SoftthinkConfigError, match="token_ids is empty") as err, suppress_tokens(model, []):
        pass
    assert err.value.param == "token_ids"
    with pytest.raises(SoftthinkConfigError, match="outside the model's vocabulary"), suppress_tokens(model, [10**6]):
        pass


def test_top_forking_token_ids_counts_forking_occurrences():
    # entropies chosen so the top 20% (2 of 10 tokens) are ids 7 and 7 -> then 3 when the quantile is 0.4
    a = make_record([0.1, 3.0, 0.2, 2.0, 0.1])
    a.token_ids = [1, 7, 2, 3, 1]
    b = make_record([0.1, 2.9, 0.3, 0.2, 0.1])
    b.token_ids = [1, 7, 2, 4, 5]
    assert top_forking_token_ids([a, b], 3) == [7]
    assert top_forking_token_ids([a, b], 3, quantile=0.4) == [7, 2, 3]  # 0.3 (id 2) beats 0.2s by entropy
    assert top_forking_token_ids([a, b], 3, quantile=0.4, exclude=[7]) == [2, 3]
    assert token_counts([a, b]) == Counter({1: 3, 7: 2, 2: 2, 3: 1, 4: 1, 5: 1})
    # by rate: id 7 is forking in 2 of 2 occurrences, id 3 in 1 of 1, id 2 in 1 of 2 (quantile 0.4)
    assert top_forking_token_ids([a, b], 3, quantile=0.4, by="rate", min_count=1) == [7, 3, 2]
    assert top_forking_token_ids([a, b], 3, quantile=0.4, by="rate", min_count=2) == [7, 2]
    with pytest.raises(SoftthinkConfigError, match="k must be >= 1"):
        top_forking_token_ids([a], 0)
    with pytest.raises(SoftthinkConfigError, match="by must be") as err:
        top_forking_token_ids([a], 1, by="entropy")
    assert err.value.param == "by"


def test_random_token_ids_frequency_matched_seeded_and_disjoint():
    counts = Counter({0: 100, 1: 90, 2: 50, 3: 49, 4: 10, 5: 9, 6: 1})
    chosen = random_token_ids([0, 2, 4], 7, seed=3, counts=counts)
    assert chosen == [1, 3, 5]  # the closest count for each target
    assert random_token_ids([0, 2, 4], 7, seed=3, counts=counts) == chosen
    uniform = random_token_ids([0, 2], 50, seed=1, exclude=[3])
    assert len(uniform) == 2 and not set(uniform) & {0, 2, 3}
    assert uniform == random_token_ids([0, 2], 50, seed=1, exclude=[3])
    with pytest.raises(SoftthinkConfigError, match="cannot draw"):
        random_token_ids([0, 1], 3, exclude=[2])
    with pytest.raises(SoftthinkConfigError, match="targets is empty"):
        random_token_ids([], 3)
