"""Reflection tokens: tokenizer-aware word lists, marking in records and traces, the entropy comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import PreTrainedTokenizerFast

from softthink.analysis.reflection import (
    DEFAULT_REFLECTION_WORDS,
    compare_reflection,
    reflection_masks,
    reflection_token_ids,
)
from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from tests.analysis.conftest import make_record

VOCAB = ["<unk>", "Wait", " Wait", "So", " so", " x", " y", "=", "1", " Hmm"]


@pytest.fixture(scope="module")
def word_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(VOCAB)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?[A-Za-z]+|[^A-Za-z]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


def test_words_map_to_ids_with_and_without_a_leading_space(word_tokenizer):
    tokens = reflection_token_ids(word_tokenizer, ["Wait", "So", "Hmm", "Therefore"])
    assert tokens.ids == {
        1: "Wait",
        2: "Wait",
        3: "So",
        9: "Hmm",
    }  # " So" is not in the vocabulary, " so" is another word
    assert tokens.skipped == ("Therefore",)
    assert 2 in tokens and 4 not in tokens and len(tokens) == 4
    bare = reflection_token_ids(word_tokenizer, ["Wait", "Hmm"], leading_space=False)
    assert bare.ids == {1: "Wait"} and bare.skipped == ("Hmm",)


def test_empty_or_unrepresentable_word_lists_raise_naming_words(word_tokenizer, tiny_tokenizer):
    for bad in ([], ["  "], "Wait"):
        with pytest.raises(SoftthinkConfigError) as err:
            reflection_token_ids(word_tokenizer, bad)
        assert err.value.param == "words"
    with pytest.raises(SoftthinkConfigError, match="none of the words") as err:
        reflection_token_ids(tiny_tokenizer, DEFAULT_REFLECTION_WORDS)  # character-level: every word is split
    assert err.value.param == "words"


def test_masks_and_comparison_in_teacher_forced_records(word_tokenizer):
    tokens = reflection_token_ids(word_tokenizer, ["Wait", "So"])
    # 10 tokens; the top 20% by entropy are positions 1 (Wait, 3.0) and 3 (x, 2.5)
    rec = make_record([0.1, 3.0, 0.2, 2.5, 0.3, 1.0, 0.2, 0.1, 0.4, 0.2])
    rec.token_ids = [5, 2, 7, 5, 8, 3, 6, 7, 8, 6]
    (mask,) = reflection_masks([rec], tokens)
    assert mask.tolist() == [False, True, False, False, False, True, False, False, False, False]
    cmp = compare_reflection(rec, tokens, n_boot=200)
    assert cmp.groups["reflection"]["n"] == 2 and cmp.groups["reflection"]["mean"] == pytest.approx(2.0)
    assert cmp.groups["other_forking"]["n"] == 1 and cmp.groups["other_forking"]["mean"] == pytest.approx(2.5)
    execution = [0.1, 0.2, 0.3, 0.2, 0.1, 0.4, 0.2]
    assert cmp.groups["execution"]["n"] == 7 and cmp.groups["execution"]["mean"] == pytest.approx(np.mean(execution))
    assert cmp.groups["execution"]["median"] == pytest.approx(0.2)
    lo, hi = cmp.groups["reflection"]["ci_low"], cmp.groups["reflection"]["ci_high"]
    assert 1.0 <= lo <= 2.0 <= hi <= 3.0
    assert cmp.reflection_forking_share == pytest.approx(0.5)  # Wait is forking, So (1.0) is not
    assert cmp.words == {"Wait": 1, "So": 1}
    threshold = compare_reflection(rec, tokens, threshold=0.5, n_boot=50)
    assert threshold.reflection_forking_share == 1.0 and threshold.groups["other_forking"]["n"] == 1


def test_generations_are_marked_from_their_traces(word_tokenizer):
    from softthink.decoding.output import Generation, StepTrace

    tokens = reflection_token_ids(word_tokenizer, ["Wait"])
    trace = StepTrace(token_ids=[5, 1, 7], entropy=[0.1, 2.0, 0.3], soft=[False] * 3, thinking=[True, True, False])
    gen = Generation(
        text=" xWait=",
        thinking_text=" xWait",
        answer_text="=",
        token_ids=[5, 1, 7],
        prompt="p",
        prompt_token_ids=[],
        think_tokens=2,
        answer_tokens=1,
        soft_steps=0,
        stop_reason="length",
        think_end_reason=None,
        mode="discrete",
        trace=trace,
    )
    assert [m.tolist() for m in reflection_masks([gen], tokens)] == [[False, True, False]]
    cmp = compare_reflection([gen.to_dict()], tokens, quantile=0.34, n_boot=10)
    assert cmp.groups["reflection"]["mean"] == pytest.approx(2.0)
    assert cmp.groups["other_forking"]["n"] == 0 and math.isnan(cmp.groups["other_forking"]["mean"])


def _answer_ll(model, prefix, answer):
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([prefix + answer])).logits[0].double(), -1)
    return sum(float(logp[len(prefix) - 1 + i, a]) for i, a in enumerate(answer))


def test_answer_information_gain_is_the_log_likelihood_difference_of_the_answer():
    from softthink.analysis.reflection import answer_information_gain
    from tests.conftest import tiny

    model = tiny("llama", dtype=torch.float64)
    ids, answer = list(range(10, 22)), [30, 31]
    gains = answer_information_gain(model, ids, answer, start=5, batch_size=3)
    expected = [_answer_ll(model, ids[: t + 1], answer) - _answer_ll(model, ids[:t], answer) for t in range(5, 12)]
    assert gains.shape == (7,) and np.allclose(gains, expected, atol=1e-9)
    assert np.isclose(gains.sum(), _answer_ll(model, ids, answer) - _answer_ll(model, ids[:5], answer))
    strided = answer_information_gain(model, ids, answer, start=5, stride=3)
    assert np.isnan(strided[[1, 2, 4, 5]]).all()
    assert np.isclose(strided[3], _answer_ll(model, ids[:9], answer) - _answer_ll(model, ids[:6], answer))
    assert np.isclose(strided[0], expected[0])


def test_information_peaks_and_bad_arguments():
    from softthink.analysis.reflection import answer_information_gain, information_peaks
    from tests.conftest import tiny

    gains = np.array([0.0, 0.1, -0.1, 5.0, 0.0, np.nan, 0.05, -0.05])
    assert information_peaks(gains).tolist() == [False, False, False, True, False, False, False, False]
    assert not information_peaks(np.array([np.nan, 1.0])).any()
    model = tiny("llama")
    with pytest.raises(SoftthinkConfigError, match="answer_ids is empty") as err:
        answer_information_gain(model, [5, 6, 7], [], start=1)
    assert err.value.param == "answer_ids"
    with pytest.raises(SoftthinkConfigError, match="stride") as err:
        answer_information_gain(model, [5, 6, 7], [8], start=1, stride=0)
    assert err.value.param == "stride"
    with pytest.raises(SoftthinkInputError, match="start=0"):
        answer_information_gain(model, [5, 6, 7], [8], start=0)
