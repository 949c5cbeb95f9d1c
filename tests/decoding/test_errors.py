"""Bad input gets a clear error saying what is wrong and what to do."""

import pytest
import torch

import softthink
from softthink import SoftthinkConfigError, SoftthinkInputError
from tests.conftest import tiny


def test_empty_prompt(tiny_tokenizer):
    with pytest.raises(SoftthinkInputError, match="prompt is empty"):
        softthink.generate(tiny(), "   ", tokenizer=tiny_tokenizer)
    with pytest.raises(SoftthinkInputError, match="empty list"):
        softthink.generate(tiny(), [], tokenizer=tiny_tokenizer)


def test_prompt_longer_than_context(tiny_tokenizer):
    with pytest.raises(SoftthinkInputError, match="context is 512 tokens"):
        softthink.generate(tiny(), "x" * 600, tokenizer=tiny_tokenizer)
    with pytest.raises(SoftthinkInputError, match=r"set max_new_tokens <= \d+"):
        softthink.generate(tiny(), "x" * 400, tokenizer=tiny_tokenizer, max_new_tokens=200)


def test_invalid_option_value(tiny_tokenizer):
    with pytest.raises(SoftthinkConfigError, match="top_p must be in"):
        softthink.generate(tiny(), "hi", tokenizer=tiny_tokenizer, top_p=2.0)


def test_soft_mode_without_a_think_marker_is_an_error_not_a_fallback():
    from softthink.testbed.tiny import build_tiny_tokenizer

    plain = build_tiny_tokenizer(think_token=False)
    with pytest.raises(SoftthinkConfigError, match="think_end"):
        softthink.generate(tiny(), "hi", tokenizer=plain, mode="soft")
    with pytest.raises(SoftthinkConfigError, match="max_think_tokens"):
        softthink.generate(tiny(), "hi", tokenizer=plain, mode="discrete", max_think_tokens=3, max_new_tokens=8)
    g = softthink.generate(tiny(), "hi", tokenizer=plain, mode="discrete", max_new_tokens=4)
    assert g.think_tokens == 0  # discrete decoding needs no thinking phase


def test_unrepresentable_marker(tiny_tokenizer):
    with pytest.raises(SoftthinkConfigError, match="cannot be represented"):
        softthink.generate(tiny(), "hi", tokenizer=tiny_tokenizer, mode="soft", think_end="\u00e9t\u00e9")


def test_encoder_decoder_model_is_rejected(tiny_tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=100, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8))
    with pytest.raises(SoftthinkInputError, match="encoder-decoder"):
        softthink.generate(t5, "hi", tokenizer=tiny_tokenizer)


def test_model_without_input_embeddings_is_rejected(tiny_tokenizer):
    class NoEmbeddings(torch.nn.Module):
        config = tiny().config

        def get_input_embeddings(self):
            raise NotImplementedError

    with pytest.raises(SoftthinkInputError, match="no input-embedding module"):
        softthink.generate(NoEmbeddings(), "hi", tokenizer=tiny_tokenizer)


@pytest.mark.parametrize(
    "settings",
    [
        dict(mode="soft"),
        dict(mode="discrete", do_sample=True),
        dict(mode="gated", entropy_threshold=0.5, do_sample=True),
    ],
)
def test_non_finite_logits_raise(settings, tiny_tokenizer):
    """Sampled modes too: their draws skip torch.multinomial's own checks, so the loop's check must catch it."""
    model = tiny("qwen2")
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: out * float("nan"))
    try:
        with pytest.raises(SoftthinkInputError, match="non-finite logits"):
            softthink.generate(model, "hi", tokenizer=tiny_tokenizer, max_new_tokens=3, **settings)
    finally:
        hook.remove()


def test_loaded_model_needs_its_tokenizer_and_chat_needs_a_template(tiny_tokenizer):
    with pytest.raises(SoftthinkInputError, match="needs its tokenizer"):
        softthink.generate(tiny(), "hi")
    from softthink.testbed.tiny import build_tiny_tokenizer

    no_template = build_tiny_tokenizer()
    no_template.chat_template = None
    with pytest.raises(SoftthinkInputError, match="no chat template"):
        softthink.generate(tiny(), [{"role": "user", "content": "hi"}], tokenizer=no_template, mode="discrete")


def test_chat_messages_and_raw_prompts(tiny_tokenizer):
    chat = softthink.generate(
        tiny(), [{"role": "user", "content": "hi"}], tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=3
    )
    assert chat.prompt == "user: hi\nassistant: "
    raw = softthink.generate(
        tiny(), "hi", tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=3, chat_template=False
    )
    assert raw.prompt == "hi"


def test_model_path_string_loads(tmp_path):
    from softthink.testbed.tiny import save_tiny

    path = save_tiny("llama", tmp_path / "m")
    g = softthink.generate(str(path), "hi", mode="discrete", max_new_tokens=3)
    assert g.num_tokens == 3
    with pytest.raises(SoftthinkInputError, match="missing does not exist"):
        softthink.load_model(str(tmp_path / "missing"))
