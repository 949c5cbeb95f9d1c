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
    # the default comparison: the base and the best soft-trained policy, each under discrete and soft decoding
    assert sorted((r["model"], r["mode"]) for r in rows) == [
        ("testbed", "discrete"),
        ("testbed", "soft"),
        ("testbed-soft-rl", "discrete"),
        ("testbed-soft-rl", "soft"),
    ]
    assert all(int(r["n_samples"]) == 4 for r in rows)
    for row in rows:  # the printed table is the written one: each cell's accuracy appears on its line
        line = next(ln for ln in printed.splitlines() if ln.startswith(f"| {row['model']} | {row['mode']} |"))
        assert f"{100 * float(row['accuracy']):.1f}" in line
    assert "Paired differences from testbed under discrete" in printed
    assert sum(ln.startswith("Verdict: ") for ln in printed.splitlines()) == 1


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


def _fake_results(correct: dict[tuple[str, str], list[bool]]):
    """What `verdict_lines` reads of an `EvalResults`: cells with labels and records, rows, the suite's models."""
    from types import SimpleNamespace as NS

    cells = [
        NS(
            cell=NS(model=NS(label=model), decode=NS(label=mode), key=(model, mode, "testbed", 0)),
            records=[{"problem_id": f"p{i}", "correct": c} for i, c in enumerate(flags)],
        )
        for (model, mode), flags in correct.items()
    ]
    rows = [{"model": m, "mode": d, "accuracy": sum(f) / len(f)} for (m, d), f in correct.items()]
    models = list(dict.fromkeys(m for m, _ in correct))
    return NS(cells=cells, rows=rows, suite=NS(models=[NS(label=m) for m in models]))


@pytest.mark.parametrize(
    "soft_flags,verdict",
    [
        ([True] * 10 + [False] * 50, "Soft Thinking still loses"),
        ([True] * 60, "Soft Thinking wins"),
        ([True] * 30 + [False] * 30, "no evidence of a difference"),
    ],
)
def test_demo_verdict_follows_the_paired_confidence_interval(soft_flags, verdict):
    """Reference: the base under discrete decoding, 30 of 60 right (alternating). The best soft cell decides."""
    from softthink.cli.demo import verdict_lines

    base = [i % 2 == 0 for i in range(60)]
    lines = verdict_lines(
        _fake_results(
            {
                ("testbed", "discrete"): base,
                ("testbed", "soft"): [False] * 60,
                ("testbed-soft-rl", "discrete"): base,
                ("testbed-soft-rl", "soft"): soft_flags,
            }
        )
    )
    assert lines[-1].startswith("Verdict:") and verdict in lines[-1]
    assert "testbed-soft-rl under soft" in lines[-1]  # the best soft cell, not the base's
    assert any("testbed" in ln and "soft" in ln and "-50.0" in ln for ln in lines)  # base soft: 0 vs 30 of 60


def test_demo_without_a_discrete_cell_says_why_there_is_no_verdict():
    from softthink.cli.demo import verdict_lines

    lines = verdict_lines(_fake_results({("testbed", "soft"): [True, False]}))
    assert lines == ["(no verdict: the first model has no 'discrete' cell to compare against)"]
