"""`softthink demo` (the main job) and `softthink generate`, driven through the CLI entry point."""

from __future__ import annotations

import csv
import json

import pytest

import softthink
from softthink.cli.main import main

PROMPT = "3 5 7 -> 22"


@pytest.fixture(scope="module")
def testbed():
    return softthink.load_model("testbed", device="cpu")


def test_demo_prints_the_table_it_writes(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--problems",
            "4",
            "--modes",
            "discrete",
            "soft",
            "--batch-size",
            "4",
            "--max-new-tokens",
            "96",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert {"report.md", "results.csv", "summary.json", "accuracy_vs_tokens.png"} <= {p.name for p in out.iterdir()}
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(r["mode"] for r in rows) == ["discrete", "soft"]
    assert all(int(r["n_samples"]) == 4 for r in rows)
    for row in rows:  # the printed table is the written one: each mode's accuracy appears on its line
        line = next(ln for ln in printed.splitlines() if ln.startswith("|") and f"| {row['mode']} |" in ln)
        assert f"{100 * float(row['accuracy']):.1f}" in line


GENERATE = ["generate", "--model", "testbed", "--device", "cpu", "--mode", "soft", "--set", "max_new_tokens=48"]


def test_generate_prints_what_the_library_decodes(testbed, capsys):
    model, tokenizer = testbed
    expected = softthink.generate(model, PROMPT, tokenizer=tokenizer, mode="soft", max_new_tokens=48)
    assert main([*GENERATE, PROMPT]) == 0
    printed = capsys.readouterr().out
    assert expected.text in printed
    assert f"{expected.think_tokens} thinking + {expected.answer_tokens} answer tokens" in printed
    assert main([*GENERATE, "--json", PROMPT]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["token_ids"] == expected.token_ids and record["text"] == expected.text


def test_generate_rejects_a_budget_beyond_the_context_with_a_message(capsys):
    assert main(["generate", "--model", "testbed", "--device", "cpu", "--set", "max_new_tokens=5000", PROMPT]) == 2
    err = capsys.readouterr().err
    assert "exceeds the model's context" in err and "max_new_tokens" in err
