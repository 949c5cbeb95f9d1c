"""End-to-end runs on a tiny random model: every recipe trains, logs its dynamics, saves a loadable policy,
resumes after an interruption; the real-GPU recipes pass a one-step dry run."""

from __future__ import annotations

import json
import zlib
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerCallback

from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkInputError
from softthink.rl.dynamics import DYNAMICS_FIELDS, read_dynamics

FAST = dict(
    max_steps=2,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=1,
    steps_per_generation=2,
    num_generations=4,
    max_completion_length=8,
    num_problems=8,
    learning_rate=1e-2,
    save_steps=1,
)


def coin_grade(text, gold):
    """Fake grader with reward variance on a random model: 'correct' for about half of all texts (by hash)."""
    return SimpleNamespace(correct=zlib.crc32(text.encode()) % 2 == 0, extracted=text[-1:] or None, rule="fake")


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "question": f"{i}+1=?", "answer": str(i + 1)}) + "\n" for i in range(8))
    )
    return str(path)


def run(recipe, problems, out, model="tiny:llama", **kw):
    from softthink.rl import CorrectnessReward, train

    return train(recipe, model, problems, out, reward=CorrectnessReward(coin_grade), progress=False, **{**FAST, **kw})


@pytest.mark.parametrize(
    "recipe,counter",
    [
        ("full", None),
        ("forking", None),
        ("clip_cov", "clip_cov_detached_fraction"),
        ("kl_cov", "kl_cov_penalised_fraction"),
        ("gppo", "tokens_clipped"),
        ("entropy_advantage", "entropy_adv_bonus"),
    ],
)
def test_two_steps_per_recipe_change_the_weights_and_log_dynamics(tmp_path, problems, recipe, counter):
    from transformers import AutoModelForCausalLM

    from softthink.testbed.tiny import build_tiny_model

    result = run(recipe, problems, tmp_path / recipe)
    assert result.global_step == 2 and result.label == recipe and result.recipe == recipe
    trained = AutoModelForCausalLM.from_pretrained(result.output_dir)
    initial = dict(build_tiny_model("llama").named_parameters())
    unchanged = [n for n, p in trained.named_parameters() if torch.equal(p, initial[n])]
    assert unchanged == []

    rows = read_dynamics(result.dynamics_path)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert set(DYNAMICS_FIELDS) <= set(row)
        assert row["entropy_all"] > 0 and 0 <= row["frac_above"] <= 1
        assert row["entropy_forking"] >= row["entropy_all"] >= row["entropy_execution"]
        assert row["reward"] is not None and row["accuracy"] == row["reward"]
    if counter:
        assert all(r[counter] is not None for r in rows)
    for row in rows:
        assert row["tokens_valid"] > 0 and row["cov_logp_adv"] is not None
        assert row["entropy_p10"] <= row["entropy_p50"] <= row["entropy_p90"] <= row["entropy_p99"]
    if recipe == "kl_cov":
        assert rows[1]["kl_cov_penalty"] > 0  # the 2nd step on the same rollouts is off-policy
        assert rows[1]["tokens_penalised"] >= 1
    if recipe in ("forking", "clip_cov"):
        assert all(r["tokens_selected"] is not None for r in rows)
    if recipe == "entropy_advantage":
        assert all(r["entropy_adv_bonus"] > 0 for r in rows)  # min(alpha H, |A| / kappa) > 0 where A != 0
    provenance = json.loads((result.output_dir / "softthink_rl.json").read_text())
    assert provenance["label"] == recipe and provenance["config"]["recipe"] == recipe
    assert provenance["provenance"]["git_commit"] and provenance["provenance"]["versions"]["trl"]
    assert (result.output_dir / "dynamics.png").exists()


@pytest.mark.parametrize("recipe", ["forking", "clip_cov", "kl_cov"])
def test_batch_selection_trains_over_a_split_accumulation_window(tmp_path, problems, recipe):
    result = run(
        recipe,
        problems,
        tmp_path / recipe,
        selection="batch",
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        steps_per_generation=4,
        clip_cov_low=-1e9,
        clip_cov_high=1e9,
    )
    assert result.global_step == 2
    rows = read_dynamics(result.dynamics_path)
    key = "tokens_penalised" if recipe == "kl_cov" else "tokens_selected"
    assert all(r[key] is not None and r[key] > 0 for r in rows)
    if recipe == "kl_cov":
        assert rows[1]["kl_cov_penalty"] > 0


def test_trained_policy_loads_in_softthink_generate(tmp_path, problems):
    import softthink

    result = run("forking", problems, tmp_path / "forking", max_steps=1)
    model, tokenizer = softthink.load_model(str(result.output_dir), device="cpu")
    for mode in ("discrete", "soft"):
        gen = softthink.generate(
            model, ["2+1=?"], tokenizer=tokenizer, config=softthink.DecodeConfig(mode=mode, max_new_tokens=4, seed=0)
        )[0]
        assert 0 < gen.num_tokens <= 4


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("simulated interruption")


def test_interrupted_training_resumes_from_the_last_checkpoint(tmp_path, problems):
    from softthink.rl import CorrectnessReward, train

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(
            "kl_cov",
            "tiny:llama",
            problems,
            out,
            reward=CorrectnessReward(coin_grade),
            progress=False,
            callbacks=[Crash()],
            **{**FAST, "max_steps": 4, "save_steps": 2},
        )
    assert (out / "checkpoint-2").is_dir() and not (out / "checkpoint-3").exists()
    assert [r["step"] for r in read_dynamics(out / "dynamics.jsonl")] == [1, 2]
    result = run("kl_cov", problems, out, max_steps=4, save_steps=2)
    assert result.resumed_from is not None and result.resumed_from.endswith("checkpoint-2")
    assert result.global_step == 4
    assert [r["step"] for r in read_dynamics(result.dynamics_path)] == [1, 2, 3, 4]
    assert result.law is None  # rollouts at steps 1 and 3 only: fewer than the 3 points a fit needs


def test_bad_inputs_to_train(tmp_path, problems, tiny_tokenizer):
    from softthink.rl import train

    with pytest.raises(SoftthinkConfigError, match="(?i)did you mean 'kl_cov'"):
        train("kl_cv", "tiny:llama", problems, tmp_path / "x")
    with pytest.raises(SoftthinkConfigError, match="logging_steps"):
        run("full", problems, tmp_path / "y", logging_steps=2)
    unanswered = tmp_path / "unanswered.jsonl"
    unanswered.write_text(json.dumps({"question": "1+1?"}) + "\n")
    with pytest.raises(SoftthinkDataError, match="no gold 'answer'"):
        run("full", str(unanswered), tmp_path / "z")
    bare = tmp_path / "bare-model"
    from softthink.testbed.tiny import build_tiny_model

    build_tiny_model("llama").save_pretrained(bare)
    tok = tiny_tokenizer.__class__.from_pretrained  # keep the fixture intact: save a copy without a template
    tiny_tokenizer.save_pretrained(bare)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    assert tok(str(bare)).chat_template is None
    with pytest.raises(SoftthinkInputError, match="no chat template"):
        from softthink.rl import train

        train("full", str(bare), problems, tmp_path / "w", progress=False, **FAST)


@pytest.mark.parametrize(
    "recipe",
    [
        "qwen2.5-1.5b-gsm8k-full",
        "qwen2.5-1.5b-gsm8k-forking",
        "qwen2.5-1.5b-gsm8k-clip_cov",
        "qwen2.5-1.5b-gsm8k-kl_cov",
        "qwen2.5-1.5b-gsm8k-gppo",
        "qwen2.5-1.5b-gsm8k-entropy_advantage",
    ],
)
def test_real_gpu_recipes_dry_run_one_step_on_a_tiny_model(tmp_path, recipe, data_dir, monkeypatch):
    pytest.importorskip("softthink.eval")
    from softthink.rl import dry_run

    monkeypatch.setenv("SOFTTHINK_DATA_DIR", str(data_dir))
    result = dry_run(recipe, tmp_path / recipe)
    assert result.global_step == 1
    assert result.recipe == recipe.rsplit("-", 1)[1]
    rows = read_dynamics(result.dynamics_path)
    assert len(rows) == 1 and rows[0]["entropy_all"] is not None


@pytest.mark.slow
def test_one_step_on_a_real_chat_model(tmp_path, problems, smollm2_path):
    """SmolLM2-135M-Instruct (GGUF): real tokenizer and chat template through trl, one forking step."""
    result = run(
        "forking",
        problems,
        tmp_path / "smollm2",
        model=smollm2_path,
        max_steps=1,
        num_generations=2,
        per_device_train_batch_size=2,
        steps_per_generation=1,
        learning_rate=1e-6,
        save_strategy="no",
    )
    assert result.global_step == 1
    row = read_dynamics(result.dynamics_path)[0]
    assert row["entropy_all"] > 0 and row["completion_length"] > 0
