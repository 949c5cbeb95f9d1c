"""`softthink analyze` on tiny models saved to a temporary directory."""

from __future__ import annotations

import json

import pytest

from softthink.cli.analyze import read_texts
from softthink.cli.main import main
from softthink.errors import SoftthinkDataError, SoftthinkInputError
from softthink.testbed.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return str(save_tiny("llama", root / "base", seed=0)), str(save_tiny("llama", root / "policy", seed=1))


def test_text_file_writes_every_output(tiny_dirs, tmp_path, capsys):
    src = tmp_path / "essay.txt"
    src.write_text("First, we add 2 and 3.\nThen <b>we</b> check: 5.", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["analyze", "--model", tiny_dirs[0], str(src), "--out", str(out), "--quantile", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "80th percentile" in printed and "forking words" in printed
    expected = {"stats.json", "entropies.jsonl", "tokens.html", "tokens.png", "histogram.png", "sequence.png"}
    assert expected == {p.name for p in out.iterdir()}
    assert all((out / name).stat().st_size > 0 for name in expected)
    summary = json.loads((out / "stats.json").read_text())
    assert summary["stats"]["n_tokens"] == len(src.read_text()) and summary["stats"]["quantile"] == 0.1
    assert summary["settings"]["model"] == tiny_dirs[0]
    assert ">&lt;</span>" in (out / "tokens.html").read_text()  # the char-level token "<", escaped
    assert (out / "tokens.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_jsonl_with_prompts_and_comparison(tiny_dirs, tmp_path, capsys):
    src = tmp_path / "gens.jsonl"
    rows = [{"q": "2+3?", "a": " It is 5."}, {"q": "Name a colour.", "a": " Blue."}, {"q": "x", "a": " y"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "cmp"
    code = main(
        [
            "analyze",
            "--model",
            tiny_dirs[0],
            "--compare",
            tiny_dirs[1],
            str(src),
            "--field",
            "a",
            "--prompt-field",
            "q",
            "--limit",
            "2",
            "--threshold",
            "1.0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "share of total |delta| at forking positions" in capsys.readouterr().out
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["n_tokens"] == len(" It is 5.") + len(" Blue.") and comparison["threshold"] == 1.0
    for name in ("comparison_scatter.png", "comparison_box.png", "comparison_hist.png"):
        assert (out / name).stat().st_size > 0
    records = [json.loads(line) for line in (out / "entropies.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["2+3?", "Name a colour."]


def test_literal_text_and_errors(tiny_dirs, tmp_path, capsys):
    assert main(["analyze", "--model", tiny_dirs[0], "Just a short sentence."]) == 0
    assert "tokens                    22 in 1 text(s)" in capsys.readouterr().out
    assert main(["analyze", "--model", tiny_dirs[0], str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_read_texts_validates_records(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(SoftthinkDataError, match=r"bad.jsonl:2 has no string field 'text'"):
        read_texts(str(src))
    with pytest.raises(SoftthinkInputError, match="needs a .jsonl"):
        read_texts("literal text", prompt_field="q")
    assert read_texts("x" * 10_000)[0] == ["x" * 10_000]  # too long for a file name: a text
