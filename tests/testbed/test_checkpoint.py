"""The shipped testbed checkpoint: loads unchanged with Hugging Face, is small, and answers in the graded format."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from softthink.testbed.default import CHECKPOINT_DIR, default_model_path
from softthink.testbed.quality import extract_boxed, sample_completions
from softthink.testbed.tasks import load_problems

MAX_BYTES = 20 * 1024 * 1024


def test_checkpoint_is_complete_and_small():
    path = default_model_path()
    assert path == CHECKPOINT_DIR
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert total <= MAX_BYTES, f"shipped checkpoint is {total / 2**20:.1f} MiB > 20 MiB"
    assert (path / "QUALITY.md").is_file() and (path / "training_log.json").is_file()


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
