"""Recipe config validation, recipe files and overrides, reward and dataset bad input."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkInputError
from softthink.rl.config import SoftthinkGRPOConfig
from softthink.rl.recipes import available_recipes, load_recipe, parse_overrides


def make(tmp_path, **kw):
    return SoftthinkGRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", activation_checkpointing=False, **kw
    )


def test_forking_recipe_sets_trl_top_entropy_quantile(tmp_path):
    assert make(tmp_path, recipe="forking").top_entropy_quantile == 0.2
    assert make(tmp_path, recipe="forking", forking_quantile=0.5).top_entropy_quantile == 0.5
    assert make(tmp_path, recipe="full").top_entropy_quantile == 1.0


@pytest.mark.parametrize(
    "kwargs,param",
    [
        ({"recipe": "forkng"}, "recipe"),
        ({"recipe": "forking", "forking_quantile": 0.0}, "forking_quantile"),
        ({"recipe": "forking", "forking_normalization": "tokens"}, "forking_normalization"),
        ({"recipe": "forking", "forking_quantile": 0.3, "top_entropy_quantile": 0.5}, "top_entropy_quantile"),
        ({"recipe": "full", "top_entropy_quantile": 0.2}, "top_entropy_quantile"),
        ({"recipe": "clip_cov", "clip_cov_low": 5.0, "clip_cov_high": 1.0}, "clip_cov_low"),
        ({"recipe": "clip_cov", "clip_cov_fraction": 1.5}, "clip_cov_fraction"),
        ({"recipe": "kl_cov", "kl_cov_coef": -1.0}, "kl_cov_coef"),
        ({"recipe": "kl_cov", "loss_type": "cispo"}, "loss_type"),
        ({"recipe": "kl_cov", "selection": "global"}, "selection"),
        ({"recipe": "gppo", "gppo_beta1": -0.5}, "gppo_beta1"),
        ({"recipe": "gppo", "gppo_beta2": float("nan")}, "gppo_beta2"),
        ({"recipe": "gppo", "epsilon": 1.5}, "epsilon"),
        ({"recipe": "gppo", "importance_sampling_level": "sequence"}, "importance_sampling_level"),
        ({"recipe": "gppo", "loss_type": "sapo"}, "loss_type"),
        ({"recipe": "entropy_advantage", "entropy_adv_alpha": -0.1}, "entropy_adv_alpha"),
        ({"recipe": "entropy_advantage", "entropy_adv_kappa": 0.0}, "entropy_adv_kappa"),
        (
            {"recipe": "forking", "selection": "batch", "gradient_accumulation_steps": 2, "steps_per_generation": 3},
            "steps_per_generation",
        ),
    ],
)
def test_bad_recipe_fields_raise_naming_the_field(tmp_path, kwargs, param):
    with pytest.raises(SoftthinkConfigError) as err:
        make(tmp_path, **kwargs)
    assert err.value.param == param
    assert param in str(err.value)


def test_unknown_selection_scope_suggests_the_close_one(tmp_path):
    with pytest.raises(SoftthinkConfigError, match="(?i)selection.*did you mean 'batch'"):
        make(tmp_path, recipe="forking", selection="bacth")


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"recipe": "kl_cov"}, "on-policy"),  # trl default: steps_per_generation == gradient_accumulation_steps
        ({"recipe": "gppo", "num_iterations": 2, "gppo_beta1": 0.0, "gppo_beta2": 0.0}, "beta2 = 0"),
        ({"recipe": "kl_cov", "num_iterations": 2, "kl_cov_coef": 0.0}, "kl_cov_coef=0"),
        ({"recipe": "entropy_advantage", "entropy_adv_alpha": 0.0}, "alpha=0"),
        ({"recipe": "full", "selection": "batch"}, "no effect"),
    ],
)
def test_configurations_that_make_a_term_a_no_op_warn(tmp_path, kwargs, pattern):
    with pytest.warns(UserWarning, match=pattern):
        make(tmp_path, **kwargs)


def test_off_policy_recipes_do_not_warn(tmp_path, recwarn):
    make(tmp_path, recipe="kl_cov", gradient_accumulation_steps=2, steps_per_generation=4)
    make(tmp_path, recipe="gppo", num_iterations=2)
    make(tmp_path, recipe="forking", selection="batch", gradient_accumulation_steps=2, steps_per_generation=4)
    assert not [w for w in recwarn if "on-policy" in str(w.message) or "no effect" in str(w.message)]


def test_unknown_recipe_name_suggests_the_close_one(tmp_path):
    with pytest.raises(SoftthinkConfigError, match="(?i)did you mean 'forking'"):
        make(tmp_path, recipe="forkng")
    with pytest.raises(SoftthinkConfigError, match=r"(?i)did you mean 'clip_cov'"):
        load_recipe("clipcov")


def test_named_recipes_and_includes():
    names = available_recipes()
    assert {"full", "forking", "clip_cov", "kl_cov"} <= set(names)
    assert {"gppo", "entropy_advantage", "qwen2.5-1.5b-gsm8k-gppo", "qwen2.5-1.5b-gsm8k-entropy_advantage"} <= set(
        names
    )
    gppo, ea = load_recipe("gppo"), load_recipe("entropy_advantage")
    assert gppo.config["gppo_beta1"] == gppo.config["gppo_beta2"] == 1.0
    assert ea.config["entropy_adv_alpha"] == 0.4 and ea.config["entropy_adv_kappa"] == 2.0
    kl = load_recipe("kl_cov").config  # KL-Cov must bite: each rollout feeds more than one optimiser step
    assert kl["steps_per_generation"] > kl["gradient_accumulation_steps"] or kl.get("num_iterations", 1) > 1
    assert {f"qwen2.5-1.5b-gsm8k-{r}" for r in ("full", "forking", "clip_cov", "kl_cov")} <= set(names)
    assert not any(n.startswith("_") for n in names)
    forking = load_recipe("forking")
    assert forking.config["recipe"] == "forking" and forking.run.dataset == "testbed"
    assert forking.config["max_steps"] == load_recipe("full").config["max_steps"]  # from the shared base
    real = load_recipe("qwen2.5-1.5b-gsm8k-kl_cov")
    assert real.config["recipe"] == "kl_cov" and real.run.dataset == "gsm8k"
    assert real.label == "qwen2.5-1.5b-gsm8k-kl_cov"


def test_recipe_files_reject_unknown_keys_and_bad_includes(tmp_path):
    (tmp_path / "r.yaml").write_text("recipe: forking\nlearning_rat: 0.1\n")
    with pytest.raises(SoftthinkConfigError, match="(?i)did you mean 'learning_rate'"):
        load_recipe(tmp_path / "r.yaml")
    (tmp_path / "s.yaml").write_text("include: missing.yaml\nrecipe: full\n")
    with pytest.raises(SoftthinkConfigError, match="does not exist"):
        load_recipe(tmp_path / "s.yaml")
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(SoftthinkConfigError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_overrides_are_typed():
    values = parse_overrides(["learning_rate=1e-5", "max_steps=3", "recipe=kl_cov", "bf16=false", "num_problems=8"])
    assert values == {"learning_rate": 1e-5, "max_steps": 3, "recipe": "kl_cov", "bf16": False, "num_problems": 8}
    for bad, match in [
        ("max_steps=three", "integer"),
        ("learning_rate=fast", "number"),
        ("bf16=2", "true or false"),
        ("nokey", "key=value"),
        ("max_stepz=3", "(?i)did you mean 'max_steps'"),
    ]:
        with pytest.raises(SoftthinkConfigError, match=match):
            parse_overrides([bad])


# -- rewards ---------------------------------------------------------------------------------------------------


def fake_grade(text, gold):
    extracted = text.rsplit("=", 1)[-1].strip() if "=" in text else None
    return SimpleNamespace(correct=extracted == gold, extracted=extracted, rule="fake")


def test_correctness_reward_grades_chat_and_text_completions_and_logs_metrics():
    from softthink.rl.rewards import CorrectnessReward

    metrics = {}
    reward = CorrectnessReward(fake_grade)
    completions = [[{"role": "assistant", "content": "so x = 4"}], "x = 5", [{"role": "assistant", "content": "?"}]]
    out = reward(
        prompts=[None] * 3,
        completions=completions,
        answer=["4", "4", "4"],
        log_metric=lambda k, v: metrics.__setitem__(k, v),
    )
    assert out == [1.0, 0.0, 0.0]
    assert metrics == {"accuracy": pytest.approx(1 / 3), "unparsed_fraction": pytest.approx(1 / 3)}
    assert reward.__name__ == "correctness"


def test_correctness_reward_bad_input():
    from softthink.rl.rewards import CorrectnessReward

    reward = CorrectnessReward(fake_grade)
    with pytest.raises(SoftthinkInputError, match="cannot read the reward's completion"):
        reward(prompts=[None], completions=[{"text": "x = 4"}], answer=["4"])
    with pytest.raises(SoftthinkInputError, match="cannot read"):
        reward(prompts=[None], completions=[[{"role": "assistant", "content": 4}]], answer=["4"])
    with pytest.raises(SoftthinkDataError, match="'answer' column"):
        reward(prompts=[None], completions=["x = 4"])
    with pytest.raises(SoftthinkDataError, match="empty gold answer"):
        reward(prompts=[None], completions=["x = 4"], answer=[""])


def test_default_reward_uses_the_eval_grader():
    pytest.importorskip("softthink.eval.grading")
    from softthink.rl.rewards import CorrectnessReward

    out = CorrectnessReward()(
        prompts=[None, None], completions=["the answer is \\boxed{42}", "\\boxed{41}"], answer=["42", "42"]
    )
    assert out == [1.0, 0.0]


# -- data ------------------------------------------------------------------------------------------------------


def test_dataset_without_answers_is_a_clear_error(tmp_path):
    from softthink.rl.data import load_problems

    path = tmp_path / "p.jsonl"
    path.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "2+2?"}\n')
    with pytest.raises(SoftthinkDataError, match="has no gold 'answer'"):
        load_problems(str(path))
    with pytest.raises(SoftthinkConfigError, match="unknown RL dataset"):
        load_problems("gsm9k")


def test_dataset_rows_are_conversational(tmp_path):
    from softthink.rl.data import build_dataset, load_problems

    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "question": "1+1?", "answer": "2"}\n')
    ds = build_dataset(load_problems(str(path)), "{question} Put it in \\boxed{}.")
    assert ds[0]["prompt"] == [{"role": "user", "content": "1+1? Put it in \\boxed{}."}]
    assert ds[0]["answer"] == "2" and ds[0]["id"] == "a"
    with pytest.raises(SoftthinkConfigError, match="must contain"):
        build_dataset(load_problems(str(path)), "no placeholder")


def test_model_without_chat_template_is_a_clear_error(tiny_tokenizer):
    import copy

    from softthink.rl.data import check_chat_template

    check_chat_template(tiny_tokenizer)  # has one
    bare = copy.deepcopy(tiny_tokenizer)
    bare.chat_template = None
    with pytest.raises(SoftthinkInputError, match="no chat template"):
        check_chat_template(bare, "my-base-model")


# -- CLI -------------------------------------------------------------------------------------------------------


def test_cli_lists_recipes_and_reports_bad_input_without_traceback(capsys):
    from softthink.cli.main import main

    assert main(["rl", "list"]) == 0
    listed = capsys.readouterr().out
    assert "forking" in listed and "qwen2.5-1.5b-gsm8k-kl_cov" in listed
    assert "gppo" in listed and "entropy_advantage" in listed
    assert main(["rl", "train", "--recipe", "forkin", "--output", "unused"]) == 2
    assert "did you mean 'forking'" in capsys.readouterr().err.lower()
    assert main(["rl", "train", "--recipe", "forking", "--output", "unused", "--set", "max_steps=x"]) == 2
    assert "expected an integer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, old, new",
    [
        ("softthink.rl", "SofthinkGRPOConfig", "SoftthinkGRPOConfig"),
        ("softthink.rl", "SofthinkGRPOTrainer", "SoftthinkGRPOTrainer"),
        ("softthink.rl.config", "SofthinkGRPOConfig", "SoftthinkGRPOConfig"),
        ("softthink.rl.trainer", "SofthinkGRPOTrainer", "SoftthinkGRPOTrainer"),
    ],
)
def test_misspelt_names_are_deprecated_aliases(module, old, new):
    import importlib

    mod = importlib.import_module(module)
    with pytest.warns(FutureWarning, match=f"use {module}.{new}"):
        alias = getattr(mod, old)
    assert alias is getattr(mod, new)
    with pytest.raises(AttributeError, match="NoSuchName"):
        getattr(mod, "NoSuchName")  # noqa: B009 (the attribute access is what is tested)


def test_run_config_defaults_live_in_the_dataclass():
    from softthink.rl.recipes import RUN_KEYS, RunConfig

    run = RunConfig()
    assert (run.dataset_split, run.prompt_template, run.dry_run_arch, run.num_problems) == (
        "train",
        "{question}",
        "llama",
        None,
    )
    assert set(RUN_KEYS) == set(run.to_dict())
    assert load_recipe("qwen2.5-1.5b-gsm8k-full").run.dry_run_arch == "qwen2"


@pytest.mark.parametrize(
    "line, pattern",
    [
        ("num_problems: 0", r"run\.num_problems must be an int >= 1 or null, got 0"),
        ("num_problems: 2.5", r"run\.num_problems must be an int"),
        ("prompt_template: 'Q: {q}'", r"run\.prompt_template must contain the placeholder '\{question\}'"),
        ("dry_run_arch: lama", r"(?i)unknown tiny architecture 'lama'.*did you mean 'llama'"),
        ("dataset_split: ''", r"run\.dataset_split must be a non-empty split name"),
    ],
)
def test_run_config_is_validated_naming_the_recipe_file(tmp_path, line, pattern):
    path = tmp_path / "r.yaml"
    path.write_text(f"recipe: full\n{line}\n")
    with pytest.raises(SoftthinkConfigError, match=pattern) as info:
        load_recipe(path)
    assert "r.yaml" in str(info.value) and info.value.param == line.split(":")[0]
