# ruff: noqa: F811  (the imported `problems` fixture is named by the tests' parameters)
"""The soft-thinking recipes end to end on a tiny random model: they train and log their dynamics, a run
interrupted and resumed equals an uninterrupted one (rollout RNG included), they dry-run like the other recipes,
and bad configurations fail naming the field."""

from __future__ import annotations

import json

import pytest
import torch

from softthink.errors import SoftthinkConfigError
from softthink.rl.dynamics import DYNAMICS_FIELDS, read_dynamics
from tests.rl.test_train import FAST, Crash, coin_grade, problems  # noqa: F401  (the shared fixture; its uses: F811)

GAUSSIAN = dict(gaussian_sigma=0.05)  # the tiny model's embeddings have RMS ~0.16


def run(recipe, problems, out, model="tiny:llama", callbacks=None, **kw):
    from softthink.rl import CorrectnessReward, train

    return train(
        recipe,
        model,
        problems,
        out,
        reward=CorrectnessReward(coin_grade),
        progress=False,
        callbacks=callbacks,
        **{**FAST, **kw},
    )


@pytest.mark.parametrize(
    "recipe,extra",
    [
        ("soft_grpo", {}),
        ("soft_grpo", dict(rollout_mode="gated", entropy_threshold=1.2)),
        ("soft_gaussian", GAUSSIAN),
        ("soft_gaussian", dict(GAUSSIAN, gaussian_variant="fuzzy")),
        ("soft_gaussian", dict(GAUSSIAN, gaussian_variant="hard")),
        ("soft_grpo", dict(rollout_batch_size=3)),
    ],
    ids=[
        "soft_grpo",
        "soft_grpo-gated",
        "soft_gaussian",
        "soft_gaussian-fuzzy",
        "soft_gaussian-hard",
        "soft_grpo-slots",
    ],
)
def test_soft_recipes_train_and_log_soft_dynamics(tmp_path, problems, recipe, extra):
    from transformers import AutoModelForCausalLM

    from softthink.testbed.tiny import build_tiny_model

    result = run(recipe, problems, tmp_path / "run", **extra)
    assert result.global_step == 2 and result.recipe == recipe
    trained = AutoModelForCausalLM.from_pretrained(result.output_dir)
    initial = dict(build_tiny_model("llama").named_parameters())
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, initial[n])]
    assert changed, "no parameter changed"
    rows = read_dynamics(result.dynamics_path)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert set(DYNAMICS_FIELDS) <= set(row)
        assert row["tokens_valid"] > 0
        # fuzzy thinks at temperature 1e-4: its thinking steps' entropy is ~0
        assert row["entropy_all"] >= 0 if extra.get("gaussian_variant") == "fuzzy" else row["entropy_all"] > 0
        assert 0 < row["soft_step_share"] <= 1
        assert row["mixture_width"] >= 1 and row["mixture_kept"] >= 1
    if extra.get("gaussian_variant") in ("hard", "fuzzy"):
        assert rows[0]["mixture_width"] == pytest.approx(1.0, abs=1e-3)  # one-hot (hard) / near one-hot (fuzzy)
    if extra.get("rollout_mode") == "gated":
        assert rows[0]["soft_step_share"] < 1
    provenance = json.loads((result.output_dir / "softthink_rl.json").read_text())
    assert provenance["config"]["recipe"] == recipe and provenance["config"]["max_topk"] >= 1


@pytest.mark.parametrize("recipe,extra", [("soft_grpo", {}), ("soft_gaussian", GAUSSIAN)])
def test_interrupted_run_equals_an_uninterrupted_one(tmp_path, problems, recipe, extra):
    """4 steps straight == 2 steps, a crash, and a resumed run to step 4: same weights and same dynamics."""
    from transformers import AutoModelForCausalLM

    sizes = dict(max_steps=4, save_steps=2, **extra)
    straight = run(recipe, problems, tmp_path / "straight", **sizes)
    with pytest.raises(KeyboardInterrupt):
        run(recipe, problems, tmp_path / "resumed", callbacks=[Crash()], **sizes)
    resumed = run(recipe, problems, tmp_path / "resumed", **sizes)
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-2")
    a = AutoModelForCausalLM.from_pretrained(straight.output_dir).state_dict()
    b = AutoModelForCausalLM.from_pretrained(resumed.output_dir).state_dict()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst == 0.0, f"resumed weights differ by {worst}"
    rows_a, rows_b = read_dynamics(straight.dynamics_path), read_dynamics(resumed.dynamics_path)
    assert [r["reward"] for r in rows_a] == [r["reward"] for r in rows_b]
    assert [r["soft_step_share"] for r in rows_a] == [r["soft_step_share"] for r in rows_b]


@pytest.mark.parametrize("recipe", ["soft_grpo", "soft_gaussian"])
def test_soft_recipes_dry_run_one_step_on_a_tiny_model(tmp_path, recipe, data_dir, monkeypatch):
    pytest.importorskip("softthink.eval")
    from softthink.rl import dry_run

    monkeypatch.setenv("SOFTTHINK_DATA_DIR", str(data_dir))
    result = dry_run(recipe, tmp_path / recipe)
    assert result.global_step == 1 and result.recipe == recipe
    rows = read_dynamics(result.dynamics_path)
    assert len(rows) == 1 and rows[0]["soft_step_share"] > 0


def test_soft_recipes_are_listed():
    from softthink.rl.recipes import available_recipes, load_recipe

    names = available_recipes()
    assert {"soft_grpo", "soft_gaussian"} <= set(names)
    assert load_recipe("soft_grpo").config["gumbel_tau"] == 0.1


@pytest.mark.parametrize(
    "recipe,overrides,field",
    [
        ("soft_grpo", dict(gumbel_tau=0.0), "gumbel_tau"),
        ("soft_grpo", dict(gumbel_tau=-1.0), "gumbel_tau"),
        ("soft_grpo", dict(rollout_mode="discrete"), "rollout_mode"),
        ("soft_grpo", dict(rollout_noise="dirichlet"), "rollout_noise"),
        ("soft_grpo", dict(max_topk=0), "max_topk"),
        ("soft_grpo", dict(rollout_batch_size=0), "rollout_batch_size"),
        ("soft_grpo", dict(rollout_mode="gated"), "entropy_threshold"),
        ("soft_gaussian", dict(gaussian_sigma=0.0), "gaussian_sigma"),
        ("soft_gaussian", dict(gaussian_sigma=-0.1), "gaussian_sigma"),
        ("soft_gaussian", dict(GAUSSIAN, fuzzy_temperature=0.0), "fuzzy_temperature"),
        ("soft_gaussian", dict(GAUSSIAN, gaussian_variant="blurry"), "gaussian_variant"),
        ("full", dict(gumbel_tau=0.5), "gumbel_tau"),
    ],
)
def test_bad_soft_configs_name_the_field(tmp_path, problems, recipe, overrides, field):
    with pytest.raises(SoftthinkConfigError) as err:
        run(recipe, problems, tmp_path / "bad", **overrides)
    assert err.value.param == field and field in str(err.value)


def test_a_model_without_a_think_marker_is_refused(tmp_path, problems):
    from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer

    bare = tmp_path / "no-marker"
    build_tiny_model("llama").save_pretrained(bare)
    build_tiny_tokenizer(think_token=False).save_pretrained(bare)
    with pytest.raises(SoftthinkConfigError, match="think_end") as err:
        run("soft_grpo", problems, tmp_path / "x", model=str(bare))
    assert err.value.param == "think_end" and "needs a thinking phase" in str(err.value)


def test_prompts_that_already_close_thinking_are_refused(tmp_path, problems):
    """A dataset whose prompts end the thinking phase (a chat template's empty think block) would train no soft
    step: the first rollout stops with an error naming the dataset and the fix."""
    rows = [json.loads(line) for line in open(problems)]
    closed = tmp_path / "closed.jsonl"
    closed.write_text("".join(json.dumps(dict(r, question=r["question"] + " <think></think>")) + "\n" for r in rows))
    with pytest.raises(SoftthinkConfigError, match="already contains the think-end marker") as err:
        run("soft_grpo", str(closed), tmp_path / "closed")
    assert err.value.param == "dataset" and "thinking enabled" in str(err.value)
