"""softthink as a transformers custom_generate: same tokens as softthink.generate, greedy == stock generate,
padding invariance, GenerationConfig fields, scores, stopping criteria, and the exported Hub folder."""

import pytest
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

import softthink
from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.integrations.transformers import SoftthinkGenerateOutput
from softthink.integrations.transformers import generate as st_generate
from tests.conftest import tiny

PROMPTS = ["hello there", "What is 12+7? Think step by step.", "x"]


@pytest.fixture()
def tok(tiny_tokenizer):
    tiny_tokenizer.padding_side = "left"
    return tiny_tokenizer


def encode(tok, prompts=PROMPTS, side="left"):
    tok.padding_side = side
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = "left"
    return enc


def st(model, enc, tok, **kwargs):
    """model.generate with softthink as the Callable custom_generate."""
    return model.generate(**enc, custom_generate=st_generate, softthink_tokenizer=tok, **kwargs)


def new_tokens(sequences, enc, pad):
    """Generated ids per row, without the trailing padding."""
    rows = sequences[:, enc.input_ids.shape[1] :].tolist()
    return [r[: max([i + 1 for i, t in enumerate(r) if t != pad], default=0)] for r in rows]


@pytest.mark.parametrize("mode", ["soft", "discrete", "gated"])
def test_custom_generate_equals_softthink_generate(tok, mode):
    model = tiny("llama")
    enc = encode(tok)
    extra = {"entropy_threshold": 0.5} if mode == "gated" else {}
    out = st(model, enc, tok, mode=mode, max_new_tokens=16, return_dict_in_generate=True, **extra)
    ref = softthink.generate(
        model, PROMPTS, tokenizer=tok, mode=mode, max_new_tokens=16, chat_template=False, seed=None, **extra
    )
    assert [g.token_ids for g in out.generations] == [r.token_ids for r in ref]
    for g, r in zip(out.generations, ref):
        assert g.trace.entropy == pytest.approx(r.trace.entropy)
    assert [g.soft_steps for g in out.generations] == [r.soft_steps for r in ref]
    pad = tok.pad_token_id
    for row, g in enumerate(out.generations):
        assert (
            out.sequences[row, enc.input_ids.shape[1] : enc.input_ids.shape[1] + g.num_tokens].tolist() == g.token_ids
        )
        assert out.sequences[row, enc.input_ids.shape[1] + g.num_tokens :].eq(pad).all()
    assert torch.equal(out.sequences[:, : enc.input_ids.shape[1]], enc.input_ids)


@pytest.mark.parametrize("arch, tied", [("llama", False), ("qwen2", True), ("gpt2", False)])
def test_greedy_equals_stock_generate_on_padded_batch(tok, arch, tied):
    model = tiny(arch, tied)
    enc = encode(tok)
    ref = model.generate(**enc, max_new_tokens=20, do_sample=False, pad_token_id=tok.pad_token_id)
    ours = model.generate(
        **enc,
        max_new_tokens=20,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
        custom_generate=st_generate,
        softthink_tokenizer=tok,
        mode="discrete",
    )
    assert enc.attention_mask.eq(0).any()  # the batch really is padded
    assert ours.shape[0] == ref.shape[0]
    width = min(ours.shape[1], ref.shape[1])
    assert torch.equal(ours[:, :width], ref[:, :width])


def test_padded_batch_equals_rows_one_by_one(tok):
    model = tiny("llama")
    batch = model.generate(
        **encode(tok), custom_generate=st_generate, softthink_tokenizer=tok, mode="soft", max_new_tokens=12
    )
    enc = encode(tok)
    got = new_tokens(batch, enc, tok.pad_token_id)
    for row, prompt in enumerate(PROMPTS):
        one = encode(tok, [prompt])
        single = model.generate(
            **one, custom_generate=st_generate, softthink_tokenizer=tok, mode="soft", max_new_tokens=12
        )
        assert new_tokens(single, one, tok.pad_token_id)[0] == got[row]


def test_right_padded_input_decodes_like_left_padded(tok):
    model = tiny("llama")
    left, right = encode(tok), encode(tok, side="right")
    a = model.generate(
        **left,
        custom_generate=st_generate,
        softthink_tokenizer=tok,
        mode="soft",
        max_new_tokens=10,
        return_dict_in_generate=True,
    )
    b = model.generate(
        **right,
        custom_generate=st_generate,
        softthink_tokenizer=tok,
        mode="soft",
        max_new_tokens=10,
        return_dict_in_generate=True,
    )
    assert [g.token_ids for g in a.generations] == [g.token_ids for g in b.generations]


def test_greedy_scores_and_logits_match_the_tokens(tok):
    model = tiny("llama")
    enc = encode(tok)
    out = st(
        model,
        enc,
        tok,
        mode="discrete",
        max_new_tokens=8,
        do_sample=False,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
    )
    ref = model.generate(
        **enc,
        max_new_tokens=8,
        do_sample=False,
        return_dict_in_generate=True,
        output_scores=True,
        pad_token_id=tok.pad_token_id,
    )
    assert isinstance(out, SoftthinkGenerateOutput)
    generated = out.sequences.shape[1] - enc.input_ids.shape[1]
    assert len(out.scores) == len(out.logits) == generated
    for t, step in enumerate(out.scores):
        assert step.shape == (3, model.config.vocab_size)
        assert torch.equal(step.argmax(-1), out.sequences[:, enc.input_ids.shape[1] + t])
        if t < len(ref.scores):
            live = [r for r, g in enumerate(out.generations) if t < g.num_tokens]
            assert torch.allclose(step[live], ref.scores[t][live].to(step.dtype), atol=1e-4)


def test_sampling_settings_reach_the_sampler(tok):
    model = tiny("llama")
    enc = encode(tok)
    out = st(
        model,
        enc,
        tok,
        mode="discrete",
        do_sample=True,
        temperature=0.7,
        top_k=3,
        max_new_tokens=10,
        seed=5,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
    )
    again = st(model, enc, tok, mode="discrete", do_sample=True, temperature=0.7, top_k=3, max_new_tokens=10, seed=5)
    assert torch.equal(out.sequences, again)  # seed= makes sampling reproducible
    for t, (scores, logits) in enumerate(zip(out.scores, out.logits)):
        for row, g in enumerate(out.generations):
            if t >= g.num_tokens:
                continue
            finite = torch.isfinite(scores[row])
            assert finite.sum() <= 3  # top_k=3 applied
            assert finite[g.token_ids[t]]  # the sampled token was allowed
            top3 = logits[row].topk(3).indices
            assert set(finite.nonzero().flatten().tolist()) <= set(top3.tolist())
            assert torch.allclose(scores[row][finite], logits[row][finite] / 0.7)


def test_eos_and_pad_ids_from_generation_config(tok):
    model = tiny("llama")
    enc = encode(tok)
    free = st(model, enc, tok, mode="discrete", max_new_tokens=12, return_dict_in_generate=True)
    stop_token = free.generations[1].token_ids[3]
    out = st(
        model,
        enc,
        tok,
        mode="discrete",
        max_new_tokens=12,
        eos_token_id=stop_token,
        pad_token_id=7,
        return_dict_in_generate=True,
    )
    g = out.generations[1]
    assert g.stop_reason == "eos" and g.token_ids == free.generations[1].token_ids[: g.num_tokens]
    assert g.token_ids[-1] == stop_token and g.num_tokens <= 4
    assert out.sequences[1, enc.input_ids.shape[1] + g.num_tokens :].eq(7).all()


class StopOn(StoppingCriteria):
    def __init__(self, token):
        self.token = token

    def __call__(self, input_ids, scores, **kwargs):
        return input_ids[:, -1] == self.token


def test_user_stopping_criteria_cut_rows(tok):
    model = tiny("llama")
    enc = encode(tok)
    free = st(model, enc, tok, mode="soft", max_new_tokens=12, return_dict_in_generate=True)
    token = free.generations[0].token_ids[2]
    out = st(
        model,
        enc,
        tok,
        mode="soft",
        max_new_tokens=12,
        stopping_criteria=StoppingCriteriaList([StopOn(token)]),
        return_dict_in_generate=True,
    )
    first = free.generations[0].token_ids.index(token) + 1
    g = out.generations[0]
    assert g.token_ids == free.generations[0].token_ids[:first]
    assert g.stop_reason == "stopping_criteria"
    assert len(g.trace.entropy) == len(g.trace.kept_ids) == first
    assert g.think_tokens + g.answer_tokens == first
    assert out.sequences[0, enc.input_ids.shape[1] + first :].eq(tok.pad_token_id).all()


def test_unsupported_settings_raise(tok):
    model = tiny("llama")
    enc = encode(tok)
    with pytest.raises(SoftthinkConfigError, match="RepetitionPenaltyLogitsProcessor"):
        st(model, enc, tok, max_new_tokens=4, repetition_penalty=1.3)
    with pytest.raises(SoftthinkConfigError, match="output_attentions"):
        st(model, enc, tok, max_new_tokens=4, output_attentions=True, return_dict_in_generate=True)
    with pytest.raises(SoftthinkInputError, match="softthink_tokenizer"):
        model.generate(**enc, custom_generate=st_generate, max_new_tokens=4)


def test_softthink_config_and_stop_strings(tok):
    model = tiny("llama")
    enc = encode(tok)
    free = softthink.generate(
        model, PROMPTS[1], tokenizer=tok, mode="discrete", think_end=None, max_new_tokens=16, chat_template=False
    )
    stop = tok.decode(free.token_ids[4:6])
    out = st(
        model,
        enc,
        tok,
        max_new_tokens=16,
        softthink_config={"mode": "discrete", "stop_strings": [stop]},
        think_end=None,
        return_dict_in_generate=True,
    )
    g = out.generations[1]
    assert g.stop_reason == "stop_string" and stop in g.text and g.mode == "discrete"


def test_exported_folder_loads_from_a_local_path(tok, tmp_path):
    from softthink.cli.main import main

    assert main(["export", "custom-generate", str(tmp_path / "cg")]) == 0
    assert "custom_generate" in (tmp_path / "cg" / "README.md").read_text()
    assert (tmp_path / "cg" / "custom_generate" / "requirements.txt").read_text().startswith("softthink")
    model = tiny("llama")
    enc = encode(tok)
    via_folder = model.generate(
        **enc,
        custom_generate=str(tmp_path / "cg"),
        trust_remote_code=True,
        tokenizer=tok,
        mode="soft",
        max_new_tokens=10,
    )
    via_callable = st(model, enc, tok, mode="soft", max_new_tokens=10)
    assert torch.equal(via_folder, via_callable)
    assert main(["export", "custom-generate", str(tmp_path / "cg")]) == 2  # no silent overwrite
    assert main(["export", "custom-generate", str(tmp_path / "cg"), "--overwrite"]) == 0
