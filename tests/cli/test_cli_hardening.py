"""CLI hardening: `demo --modes` checks every name before running any; `generate`'s default budget fits the model."""

from __future__ import annotations

import re

import pytest

from softthink.cli.main import main

PROMPT = "3 5 7 -> 22"


def test_demo_checks_every_mode_name_before_running_any(tmp_path, capsys, monkeypatch):
    """Before: the demo loaded the model and decoded every discrete sample, then reported the typo."""
    import softthink.eval.runner as runner

    def no_model(*args, **kwargs):
        raise AssertionError("no model may load before the mode names are checked")

    monkeypatch.setattr(runner, "load_model", no_model)
    out = tmp_path / "demo"
    code = main(["demo", "--modes", "discrete", "sofft", "gatd", "--problems", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "2 name(s) of the suite do not resolve; nothing was run" in err
    assert "unknown decode preset 'sofft'. Did you mean 'soft'" in err and "unknown decode preset 'gatd'" in err
    assert not (out / "cells").exists()


def test_generate_default_budget_fits_the_testbed_context(capsys):
    """Before: the README's first example failed, the default 512 new tokens exceeding the testbed's 384."""
    assert main(["generate", "--model", "testbed", "--device", "cpu", "--mode", "soft", PROMPT]) == 0
    captured = capsys.readouterr()
    note = re.search(
        r"# max_new_tokens: (\d+) \(the default 512 does not fit the model's context of (\d+) tokens after the "
        r"(\d+)-token prompt; --set max_new_tokens=N to choose\)",
        captured.err,
    )
    assert note, captured.err
    room, context, prompt = map(int, note.groups())
    assert context == 384 and room == context - prompt and prompt > 0
    assert f"=== {PROMPT}" in captured.out and '"max_new_tokens": ' + str(room) in captured.out


def test_generate_keeps_an_explicit_budget_and_says_it_does_not_fit(capsys):
    code = main(["generate", "--model", "testbed", "--device", "cpu", "--set", "max_new_tokens=512", PROMPT])
    err = capsys.readouterr().err
    assert code == 2 and "+ max_new_tokens (512) exceeds the model's context of 384 tokens" in err


@pytest.mark.parametrize("flag", ["--wait"])
def test_eval_run_and_report_accept_wait(flag):
    from softthink.cli.eval import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", "s.yaml", flag]).wait and parser.parse_args(["report", "s.yaml", flag]).wait
    assert not parser.parse_args(["run", "s.yaml"]).wait
