"""The shipped testbed checkpoint: loads unchanged with Hugging Face, is small, and answers in the graded format."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from softthink.testbed.default import CHECKPOINT_DIR, SOFT_CHECKPOINT_DIR, TESTBED_MODELS, default_model_path
from softthink.testbed.quality import extract_boxed, sample_completions
from softthink.testbed.tasks import load_problems

MAX_BYTES = 20 * 1024 * 1024


def test_checkpoint_is_complete_and_small():
    path = default_model_path()
    assert path == CHECKPOINT_DIR
    assert default_model_path("testbed-soft") == SOFT_CHECKPOINT_DIR
    # The package-data budget covers every shipped checkpoint together.
    total = sum(f.stat().st_size for d in TESTBED_MODELS.values() for f in d.rglob("*") if f.is_file())
    assert total <= MAX_BYTES, f"shipped checkpoints are {total / 2**20:.1f} MiB > 20 MiB"
    for directory in TESTBED_MODELS.values():
        assert (directory / "QUALITY.md").is_file() and (directory / "training_log.json").is_file()


def test_loads_with_auto_classes_and_answers_in_boxed_format():
    path = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "llama" and model.dtype == torch.float32
    assert 1_000_000 <= sum(p.numel() for p in model.parameters()) <= 10_000_000
    assert len(tok.encode("</think>", add_special_tokens=False)) == 1 and tok.chat_template
    problems = load_problems("test", 8)
    completions = sample_completions(model, tok, problems)
    texts = [tok.decode(c[0]) for c in completions]
    assert all(t.startswith("<think>") and "</think>" in t for t in texts)
    assert all(extract_boxed(t) is not None and extract_boxed(t).isdigit() for t in texts)


def test_shipped_model_meets_the_quality_bands_on_held_out_problems():
    """The issue's bands, re-measured on a subset (QUALITY.md has the full 300-problem figures): greedy accuracy
    within 30-80%, and sampling at temperature 1 leaves room: pass@8 well above pass@1."""
    from softthink.testbed.quality import greedy_accuracy, is_correct

    path = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    problems = load_problems("test", 120)
    greedy = greedy_accuracy(model, tok, problems)
    assert 0.30 <= greedy <= 0.80, greedy
    k = 8
    samples = sample_completions(model, tok, problems[:30], num_samples=k, do_sample=True, seed=0)
    correct = [[is_correct(tok.decode(c), p["answer"]) for c in cs] for cs, p in zip(samples, problems[:30])]
    pass_1 = sum(map(sum, correct)) / (k * len(correct))
    pass_k = sum(any(c) for c in correct) / len(correct)
    assert pass_k >= pass_1 + 0.15, (pass_1, pass_k)


def test_unknown_testbed_name_is_a_clear_error():
    import pytest

    from softthink.errors import SoftthinkDataError

    with pytest.raises(SoftthinkDataError, match="testbed-soft"):
        default_model_path("testbed-sfot")


def test_testbed_soft_is_the_same_model_with_other_weights_and_decodes_concept_tokens_better():
    """``load_model("testbed-soft")``: same architecture and tokenizer as ``testbed``, fine-tuned weights, and (its
    reason to ship) more accurate than the base under soft decoding on held-out problems."""
    import softthink
    from softthink.testbed.quality import decode_accuracy

    base, base_tok = softthink.load_model("testbed", device="cpu")
    soft, soft_tok = softthink.load_model("testbed-soft", device="cpu")

    def architecture(model) -> dict:
        return {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}

    assert architecture(soft) == architecture(base)
    assert soft_tok.get_vocab() == base_tok.get_vocab()
    assert any(not torch.equal(a, b) for a, b in zip(base.state_dict().values(), soft.state_dict().values()))
    problems = load_problems("test", 64)
    soft_on_base = decode_accuracy(base, base_tok, problems, "soft")["accuracy"]
    soft_on_soft = decode_accuracy(soft, soft_tok, problems, "soft")["accuracy"]
    assert soft_on_soft > soft_on_base, (soft_on_base, soft_on_soft)


def test_testbed_soft_rl_ships_float16_weights_that_load_as_float32():
    """The third checkpoint fits the package-data budget by storing float16 weights; every loader gets float32
    (its QUALITY.md compares the rounded weights with the trained ones)."""
    import json

    from safetensors import safe_open

    import softthink
    from softthink.testbed.default import SOFT_RL_CHECKPOINT_DIR

    assert default_model_path("testbed-soft-rl") == SOFT_RL_CHECKPOINT_DIR
    with safe_open(str(SOFT_RL_CHECKPOINT_DIR / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float16}
    assert json.loads((SOFT_RL_CHECKPOINT_DIR / "config.json").read_text())["dtype"] == "float32"
    policy, tok = softthink.load_model("testbed-soft-rl", device="cpu")
    plain = AutoModelForCausalLM.from_pretrained(SOFT_RL_CHECKPOINT_DIR)
    base, base_tok = softthink.load_model("testbed-soft", device="cpu")
    assert policy.dtype == torch.float32 and plain.dtype == torch.float32
    assert tok.get_vocab() == base_tok.get_vocab()
    assert policy.config.num_hidden_layers == base.config.num_hidden_layers
    provenance = json.loads((SOFT_RL_CHECKPOINT_DIR / "train_config.json").read_text())
    assert provenance["recipe"] in ("soft_grpo", "soft_gaussian")
