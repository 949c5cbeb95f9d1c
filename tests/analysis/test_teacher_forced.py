"""Teacher-forced token entropies on tiny random-init models: chunked == one full forward, batched == one by one."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config, LlamaForCausalLM

from softthink.analysis import TokenEntropies, entropy_from_logits, token_entropies, token_entropies_from_ids
from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module", params=["llama", "gpt2", "gemma"])
def model(request):
    return build_tiny_model(request.param)


def full_forward_entropies(model, ids: list[int]) -> list[float]:
    """Reference: one plain forward, entropy at every position but the last."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1]
    return entropy_from_logits(logits).tolist()


def test_chunked_matches_full_forward_batch_1(model, tok, texts):
    rec = token_entropies(model, tok, texts[0], chunk_size=5, progress=False)[0]
    ids = [tok.bos_token_id] + tok(texts[0])["input_ids"]
    assert rec.token_ids == ids[1:]
    assert rec.tokens[:5] == list(texts[0][:5])
    assert rec.entropies == pytest.approx(full_forward_entropies(model, ids), abs=1e-4)


def test_batched_with_padding_matches_one_by_one(model, tok, texts):
    batched = token_entropies(model, tok, texts, batch_size=3, chunk_size=7, progress=False)
    assert [len(r) for r in batched] == [len(t) for t in texts]  # char-level tokenizer, BOS as context
    for text, rec in zip(texts, batched):
        single = token_entropies(model, tok, [text], batch_size=1, chunk_size=10_000, progress=False)[0]
        assert rec.text == text and rec.token_ids == single.token_ids
        assert rec.entropies == pytest.approx(single.entropies, abs=1e-4)


def test_forward_path_matches_head_path(tok, texts):
    model = build_tiny_model("qwen2")
    head = token_entropies(model, tok, texts, batch_size=2, method="head", progress=False)
    forward = token_entropies(model, tok, texts, batch_size=2, chunk_size=6, method="forward", progress=False)
    for a, b in zip(head, forward):
        assert a.entropies == pytest.approx(b.entropies, abs=1e-4)


def test_prompts_score_only_the_completion(tok):
    model = build_tiny_model("llama")
    prompt, completion = "Q: 2+3? A:", " 5, because 2+3=5."
    rec = token_entropies(model, tok, [completion], prompts=[prompt], progress=False)[0]
    ids = tok(prompt)["input_ids"] + tok(completion)["input_ids"]
    assert rec.token_ids == tok(completion)["input_ids"] and rec.prompt == prompt
    assert rec.entropies == pytest.approx(full_forward_entropies(model, ids)[len(prompt) - 1 :], abs=1e-4)


def test_from_ids_without_context_uses_first_token(tok, texts):
    model = build_tiny_model("llama")
    ids = tok(texts[1])["input_ids"]
    rec = token_entropies_from_ids(model, None, [ids], progress=False)[0]
    assert rec.token_ids == ids[1:] and rec.tokens == [str(i) for i in ids[1:]]
    assert rec.entropies == pytest.approx(full_forward_entropies(model, ids), abs=1e-4)


def test_prepend_bos_false_drops_the_unpredicted_first_token(tok, texts):
    model = build_tiny_model("llama")
    rec = token_entropies(model, tok, texts[1], prepend_bos=False, progress=False)[0]
    assert rec.tokens == list(texts[1][1:])


def test_max_length_cuts_and_says_so(tok, texts):
    model = build_tiny_model("llama")
    with pytest.warns(UserWarning, match="1 of 2 sequences were cut"):
        recs = token_entropies(model, tok, [texts[2], texts[1]], max_length=10, progress=False)
    assert len(recs[0]) == 9 and recs[0].truncated and not recs[1].truncated


def test_empty_text_gives_an_empty_record_and_mode_is_restored(tok, texts):
    model = build_tiny_model("llama")
    model.train()
    recs = token_entropies(model, tok, ["", texts[1]], progress=False)
    assert len(recs[0]) == 0 and len(recs[1]) == len(texts[1])
    assert model.training  # switched to eval for scoring, then back


def tiny_softcapped_gemma2(vocab_size: int):
    cfg = Gemma2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        final_logit_softcapping=2.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(30.0)  # raw logits far beyond the cap, so the capping matters
    return model


def test_final_logit_softcapping_is_applied(tok, texts):
    model = tiny_softcapped_gemma2(len(tok))
    ids = [tok.bos_token_id] + tok(texts[0])["input_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the head path must verify, with no fallback warning
        rec = token_entropies(model, tok, texts[0], method="head", chunk_size=4, progress=False)[0]
    reference = full_forward_entropies(model, ids)
    assert rec.entropies == pytest.approx(reference, abs=1e-4)
    with torch.no_grad():  # without the cap the entropies would be far off: the test exercises the cap
        uncapped = entropy_from_logits(model.lm_head(model.model(torch.tensor([ids])).last_hidden_state)[0, :-1])
    assert (uncapped - torch.tensor(reference)).abs().max() > 0.1


class HalvedLogitsLlama(LlamaForCausalLM):
    """A model that post-processes its logits in a way the head path cannot know."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = out.logits * 0.5
        return out


def test_unknown_postprocessing_falls_back_to_forward_path(tok, texts):
    base = build_tiny_model("llama")
    model = HalvedLogitsLlama(base.config).eval()
    model.load_state_dict(base.state_dict())
    ids = [tok.bos_token_id] + tok(texts[1])["input_ids"]
    with pytest.warns(UserWarning, match="does not reproduce the model's logits"):
        rec = token_entropies(model, tok, texts[1], chunk_size=2, progress=False)[0]
    assert rec.entropies == pytest.approx(full_forward_entropies(model, ids), abs=1e-4)
    with pytest.raises(SoftthinkInputError, match="method='head' cannot be used"):
        token_entropies(model, tok, texts[1], method="head", progress=False)


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"max_length": 1}, "max_length"),
        ({"method": "fast"}, "method"),
    ],
)
def test_bad_arguments_name_the_parameter(tok, kwargs, param, texts):
    with pytest.raises(SoftthinkConfigError) as err:
        token_entropies(build_tiny_model("llama"), tok, texts, progress=False, **kwargs)
    assert err.value.param == param


def test_prompt_count_must_match(tok, texts):
    with pytest.raises(SoftthinkInputError, match="one prompt per text"):
        token_entropies(build_tiny_model("llama"), tok, texts, prompts=["a"], progress=False)


def test_records_are_aligned_and_serialisable(tok, texts):
    rec = token_entropies(build_tiny_model("llama"), tok, texts[1], progress=False)[0]
    assert TokenEntropies(**rec.to_dict()) == rec
    with pytest.raises(SoftthinkInputError, match="aligned"):
        TokenEntropies(token_ids=[1, 2], tokens=["a"], entropies=[0.1, 0.2])
