"""The training script: a 1-step smoke run and an interrupted run that resumes where it stopped."""

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from softthink.errors import SoftthinkConfigError
from softthink.testbed.train import STATE_FILE, TrainConfig, learning_rate, main, parse_overrides, train

TINY = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=2,
    batch_size=4,
    warmup_steps=1,
    log_interval=1,
    eval_interval=2,
    save_interval=100,
    final_eval_problems=2,
    num_threads=1,
)


def test_one_step_writes_a_loadable_checkpoint(tmp_path):
    assert (
        main(
            ["--out", str(tmp_path), "--set", "max_steps=1"] + sum((["--set", f"{k}={v}"] for k, v in TINY.items()), [])
        )
        == 0
    )
    for name in ("model.safetensors", "config.json", "tokenizer.json", "train_config.json", "training_log.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / STATE_FILE).exists()
    log = json.loads((tmp_path / "training_log.json").read_text())
    assert [r["step"] for r in log["records"]] == [1] and log["records"][0]["loss"] > 0
    assert 0.0 <= log["final_val_greedy_accuracy"] <= 1.0
    assert json.loads((tmp_path / "train_config.json").read_text())["max_steps"] == 1
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.config.model_type == "llama" and model.config.hidden_size == 32
    assert AutoTokenizer.from_pretrained(tmp_path).convert_tokens_to_ids("</think>") == 5


def test_interrupted_run_resumes_the_step_count(tmp_path):
    cfg = TrainConfig(max_steps=3, **TINY)
    first = train(cfg, tmp_path, stop_after_steps=2, progress=False)
    assert (tmp_path / STATE_FILE).exists() and [r["step"] for r in first["records"]] == [1, 2]
    with pytest.raises(SoftthinkConfigError, match="different config"):
        train(TrainConfig(max_steps=4, **TINY), tmp_path, progress=False)
    log = train(cfg, tmp_path, progress=False)
    assert [r["step"] for r in log["records"]] == [1, 2, 3] and [e["step"] for e in log["evals"]] == [2, 3]
    assert not (tmp_path / STATE_FILE).exists()
    uninterrupted = train(cfg, tmp_path / "straight", progress=False)
    assert [r["loss"] for r in uninterrupted["records"]] == pytest.approx([r["loss"] for r in log["records"]], rel=1e-4)


def test_config_validation_and_overrides():
    with pytest.raises(SoftthinkConfigError, match="divisible"):
        TrainConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(SoftthinkConfigError, match="max_steps"):
        parse_overrides(["max_stepz=3"])
    assert parse_overrides(["max_steps=7", "learning_rate=0.01"]) == {"max_steps": 7, "learning_rate": 0.01}
    cfg = TrainConfig(max_steps=100, warmup_steps=10)
    assert learning_rate(cfg, 0) < learning_rate(cfg, 9) == pytest.approx(cfg.learning_rate)
    assert learning_rate(cfg, 100) == pytest.approx(cfg.min_learning_rate)
