"""`softthink eval` subcommands, the `evaluate` metric module, and real decoding end to end (tiny + SmolLM2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from softthink.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SUITES = sorted((REPO / "eval" / "suites").glob("*.yaml"))


def test_committed_suites_validate(capsys):
    assert SUITES, "eval/suites/ has no suite"
    assert main(["eval", "validate", *map(str, SUITES)]) == 0
    out = capsys.readouterr().out
    assert all(f"ok   {p}" in out for p in SUITES)


def test_validate_reports_bad_cells_without_loading_a_model(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bad",
                "models": ["/nowhere/m.gguf"],
                "decode": ["discrete", "sofft"],
                "benchmarks": ["gsm8k", "gsm9k"],
            }
        )
    )
    assert main(["eval", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "unknown decode preset 'sofft'" in out and "unknown benchmark 'gsm9k'" in out
    assert "warning: model 'm': /nowhere/m.gguf does not exist" in out


def test_validate_suite_syntax_error_exits_nonzero(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text("name: t\nmodels: [m]\ndecode: [soft]\nbenchmarks: [gsm8k]\nsampels: 2\n")
    assert main(["eval", "validate", str(path)]) == 1
    assert "did you mean 'samples'" in capsys.readouterr().out


def test_ls_lists_benchmarks_and_presets(capsys):
    assert main(["eval", "ls"]) == 0
    out = capsys.readouterr().out
    assert all(
        name in out for name in ("gsm8k", "math500", "aime24", "aime25", "amc23", "testbed", "discrete", "gated")
    )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from softthink.testbed.tiny import save_tiny

    return save_tiny("llama", tmp_path_factory.mktemp("tiny"))


def test_cli_run_with_real_decoder_on_a_tiny_model(tiny_model_dir, tmp_path, capsys):
    """`softthink eval SUITE.yaml` (shorthand) drives softthink.generate end to end and writes the report."""
    suite = {
        "name": "tiny",
        "models": [{"label": "tiny", "path": str(tiny_model_dir)}],
        "decode": ["discrete", "soft", "gated"],
        "benchmarks": [{"name": "testbed", "options": {"n": 3}}],
        "samples": 2,
        "batch_size": 3,
        "decode_overrides": {"max_new_tokens": 6},
        "output_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["eval", str(path), "--no-progress", "--set", "pass_k=[1,2]"]) == 0
    out = capsys.readouterr().out
    assert "| tiny | soft | testbed | 3 x 2 |" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = {r["mode"]: r for r in summary["rows"]}
    assert rows["discrete"]["soft_fraction"] == 0 and rows["soft"]["soft_fraction"] > 0
    assert all(r["n_samples"] == 6 and "pass@2" in r and r["mean_total_tokens"] <= 6 for r in rows.values())


def test_evaluate_metric_module():
    import evaluate

    import softthink.eval

    metric = evaluate.load(softthink.eval.metric_path())
    result = metric.compute(
        predictions=["so \\boxed{\\frac{1}{2}}", "The answer is 41.", "#### 1,000"], references=["0.5", "42", "1000"]
    )
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["rules"] == ["boxed", "answer_is", "hash"] and result["correct"] == [True, False, True]


@pytest.mark.slow
def test_smollm2_gsm8k_two_problems(smollm2, smollm2_path, data_dir, tmp_path):
    """The real model through the whole harness: same problems and samples in every mode, graded records."""
    from softthink.eval import Suite, run

    model, tokenizer = smollm2
    suite = Suite.from_dict(
        {
            "name": "slow",
            "models": [{"label": "smollm2", "path": smollm2_path}],
            "decode": ["discrete", "soft"],
            "benchmarks": [{"name": "gsm8k", "limit": 2}],
            "batch_size": 2,
            "data_dir": str(data_dir),
            "decode_overrides": {"max_new_tokens": 16, "think_end": "\\boxed{"},
            "output_dir": str(tmp_path / "out"),
        }
    )
    res = run(suite, load_model_fn=lambda path: (model, tokenizer), num_processes=1, process_index=0, progress=False)
    assert res.errors == []
    assert sorted((r["mode"], r["problem_id"]) for r in res.records) == [
        ("discrete", "0"),
        ("discrete", "1"),
        ("soft", "0"),
        ("soft", "1"),
    ]
    for record in res.records:
        assert 0 < record["total_tokens"] <= 16 and record["output_text"]
        assert record["entropy"]["n"] == record["total_tokens"]
    assert {r["mode"]: r["soft_fraction"] > 0 for r in res.rows} == {"discrete": False, "soft": True}
    # the prompt the model saw is exactly the one the suite's prompt spec renders
    from softthink.eval import load_benchmark
    from softthink.eval.prompts import PromptBuilder, PromptSpec

    seen = {json.loads(line)["prompt"] for line in (res.cells[0].dir / "prompts.jsonl").read_text().splitlines()}
    builder = PromptBuilder(PromptSpec(), tokenizer)
    assert seen == {builder.text(p.question) for p in load_benchmark("gsm8k", data_dir=data_dir)[:2]}
    assert all("<|im_start|>user\nJanet" in text or "<|im_start|>user\nA robe" in text for text in seen)
