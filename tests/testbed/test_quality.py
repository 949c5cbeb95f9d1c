"""The quality measures: grading, and the entropy-profile statistics on hand-made entropies."""

import pytest

from softthink.testbed.quality import entropy_profile, extract_boxed, is_correct


def test_grading_takes_the_last_boxed_integer():
    assert extract_boxed("<think>1+2=3</think>\\boxed{3}</s>") == "3"
    assert extract_boxed("\\boxed{1} then \\boxed{12}") == "12"
    assert extract_boxed("<think>no answer</think>") is None
    assert is_correct("</think>\\boxed{42}", "42") and not is_correct("</think>\\boxed{4}", "42")


def test_entropy_profile_statistics():
    # 10 tokens: 8 near zero, 2 decisions holding almost all the mass
    ent = [0.001] * 8 + [1.5, 0.5]
    roles = ["copied"] * 4 + ["computed"] * 4 + ["decision", "decision"]
    prof = entropy_profile(ent, roles)
    assert prof["num_tokens"] == 10
    assert prof["frac_below_0.01"] == pytest.approx(0.8)
    assert prof["top20_entropy_share"] == pytest.approx(2.0 / 2.008)
    assert prof["role_share_top20"]["decision"] == 1.0 and prof["role_share_all"]["decision"] == pytest.approx(0.2)
    assert prof["mean_entropy_by_role"]["decision"] == pytest.approx(1.0)
    assert prof["top20_threshold"] == pytest.approx(0.5) and prof["role_share_top5"]["decision"] == 1.0
    assert prof["entropy_mass_by_role"]["decision"] == pytest.approx(2.0 / 2.008)


def test_decode_accuracy_under_the_greedy_preset_equals_greedy_generate():
    import softthink
    from softthink.testbed.quality import decode_accuracy, sample_completions
    from softthink.testbed.tasks import load_problems

    model, tokenizer = softthink.load_model("testbed", device="cpu")
    problems = load_problems("test", 6, seed=0)
    greedy = decode_accuracy(model, tokenizer, problems, "greedy", batch_size=4, max_new_tokens=96)
    hf = [c[0] for c in sample_completions(model, tokenizer, problems, max_new_tokens=96)]
    hf_correct = sum(is_correct(tokenizer.decode(c), p["answer"]) for c, p in zip(hf, problems))
    assert greedy["accuracy"] == hf_correct / len(problems) > 0
    assert greedy["mean_tokens"] == sum(map(len, hf)) / len(problems) and greedy["soft_share"] == 0
    soft = decode_accuracy(model, tokenizer, problems, "soft", batch_size=4, max_new_tokens=96)
    assert 0.5 < soft["soft_share"] <= 1
