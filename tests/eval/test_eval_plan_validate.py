"""`eval plan` (cells, samples, prompt tokens, token budget; no weights loaded), the validate-time checks against local
tokenizers and configs (think marker, prompt + max_new_tokens vs context), and published figures beside a run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from softthink.cli.main import main
from softthink.errors import SoftthinkConfigError
from softthink.eval import Suite, run
from softthink.eval.aggregate import published_comparison
from softthink.eval.plan import plan_suite
from softthink.eval.published import PublishedFigure
from softthink.eval.validate import validate_suite
from tests.eval.fakes import FakeGenerate

REPO = Path(__file__).resolve().parents[2]

# The tiny tokenizer is character-level over printable ASCII ("\n" is one <unk> token) and its chat template renders
# one user message as "user: {content}\nassistant: ". The arith benchmark's prompt is the bare question, so the
# prompt of "compute 0+1" is "user: " (6) + "compute 0+1" (11) + "\n" (1) + "assistant: " (11) = 29 tokens, and so
# are those of "compute 1+2" and "compute 2+3".
ARITH_PROMPT_TOKENS = 29


def _save_tiny(directory: Path, *, think_token: bool = True) -> Path:
    from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer

    build_tiny_model("llama").save_pretrained(directory)
    build_tiny_tokenizer(think_token=think_token).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny Llama folder (context 512) whose tokenizer has </think> as one token."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-think"))


@pytest.fixture(scope="module")
def tiny_no_think_dir(tmp_path_factory) -> Path:
    """The same model with a tokenizer that has no single-token </think>."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-nothink"), think_token=False)


@pytest.fixture
def small_suite(suite_dict, tiny_dir):
    """1 model x 2 decode configs (16 and 8 new tokens) x 1 benchmark (3 problems) x 2 seeds, 2 samples each."""

    def make(**changes):
        data = suite_dict(
            models=[{"label": "tiny", "path": str(tiny_dir)}],
            decode=["discrete", {"label": "short", "preset": "discrete", "overrides": {"max_new_tokens": 8}}],
            seeds=[0, 1],
            limit=3,
        )
        data.update(changes)
        return data

    return make


# ------------------------------------------------------------------------------------------------ plan


def test_plan_counts_cells_samples_prompt_tokens_and_budget_by_hand(small_suite):
    plan = plan_suite(Suite.from_dict(small_suite()))
    assert plan.errors == [] and plan.notes == []
    assert [(c.cell.decode.label, c.cell.seed) for c in plan.cells] == [
        ("discrete", 0),
        ("discrete", 1),
        ("short", 0),
        ("short", 1),
    ]
    for c in plan.cells:
        assert c.counted and c.samples == 3 * 2
        assert c.prompt_tokens == [ARITH_PROMPT_TOKENS] * 3 and c.longest_prompt == (ARITH_PROMPT_TOKENS, "p0")
        assert c.prompt_budget == 3 * ARITH_PROMPT_TOKENS * 2
    # 6 samples x 16 tokens (discrete) + 6 x 8 (short), for each of 2 seeds
    assert plan.samples == 24 and plan.generated_budget == (6 * 16 + 6 * 8) * 2 == 288
    assert plan.prompt_budget == 4 * 3 * ARITH_PROMPT_TOKENS * 2 == 696
    assert plan.gpu_hours(0.02) == pytest.approx(288 / 0.02 / 3600) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="tokens_per_second must be > 0"):
        plan.gpu_hours(0)


def test_plan_prompt_count_is_what_generate_encodes(small_suite, tiny_dir):
    """The counted prompt of a cell is the prompt `softthink.generate` actually feeds the model."""
    import softthink

    plan = plan_suite(Suite.from_dict(small_suite()))
    model, tokenizer = softthink.load_model(str(tiny_dir), device="cpu")
    gen = softthink.generate(
        model, [{"role": "user", "content": "compute 0+1"}], tokenizer=tokenizer, mode="discrete", max_new_tokens=1
    )
    assert len(gen.prompt_token_ids) == plan.cells[0].prompt_tokens[0] == ARITH_PROMPT_TOKENS


def test_plan_without_model_files_estimates_and_says_so(small_suite):
    plan = plan_suite(Suite.from_dict(small_suite()), read_model_files=False)
    assert all(not c.counted for c in plan.cells)
    # "compute 0+1" is 11 characters: ceil(11 / 4) = 3 tokens per prompt
    assert plan.cells[0].prompt_tokens == [3, 3, 3] and plan.generated_budget == 288
    assert plan.notes == [
        "model 'tiny': model files not read; prompt tokens estimated as characters / 4, nothing checked."
    ]


def test_plan_of_a_model_not_here_estimates(small_suite):
    """A Hub id not in the local cache, or a relative folder that is not here, is noted, not an error."""
    for path in ("nobody-xyz/no-such-model", "runs/not-here/checkpoint-500"):
        plan = plan_suite(Suite.from_dict(small_suite(models=[{"label": "hub", "path": path}])))
        assert plan.errors == [] and plan.generated_budget == 288 and not plan.cells[0].counted
        assert plan.notes == [
            f"model 'hub': not checked: not available offline ({path} is neither a folder here nor in the local "
            "Hugging Face cache); prompt tokens estimated as characters / 4."
        ]


def test_cli_plan_prints_cells_totals_and_gpu_hours(small_suite, tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_suite()))
    assert main(["eval", "plan", str(path), "--gpu-tokens-per-second", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "suite t: 4 cells, 24 samples (2 per problem), seeds [0, 1]" in out
    assert "| tiny | discrete | arith | 1 | 3 x 2 | 16 | 174 (29) | 96 |" in out
    assert "| tiny | short | arith | 0 | 3 x 2 | 8 | 174 (29) | 48 |" in out
    assert "generated-token budget 288 tokens" in out and "prompt tokens 696 (counted with the tokenizers)" in out
    assert "GPU-hours at 0.02 generated tokens/s per GPU: 4.00" in out


def test_cli_plan_reports_a_bad_cell_and_exits_nonzero(small_suite, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(small_suite(decode=["discrete", "sofft"])))
    assert main(["eval", "plan", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error: tiny / sofft / arith: " in out and "unknown decode preset 'sofft'" in out
    assert "| tiny | discrete | arith | 0 |" in out  # the good cells are still planned


# ------------------------------------------------------------------------------------------------ validate


def test_validate_passes_a_suite_that_fits(small_suite):
    report = validate_suite(Suite.from_dict(small_suite(decode=["discrete", "soft", "soft_cold_stop"])))
    assert report.ok, report.errors
    assert report.cells == 6 and report.samples == 36 and report.warnings == []


def test_validate_catches_prompt_plus_max_new_tokens_beyond_the_context(small_suite):
    """Context 512, longest prompt 29 tokens: 483 new tokens fit, 484 do not."""
    fits = validate_suite(Suite.from_dict(small_suite(decode_overrides={"max_new_tokens": 483})))
    assert fits.ok, fits.errors
    over = validate_suite(Suite.from_dict(small_suite(decode=["discrete"], decode_overrides={"max_new_tokens": 484})))
    assert over.errors == [
        f"tiny / discrete / arith: the longest prompt (problem 'p0', 29 tokens) + max_new_tokens 484 = 513 tokens "
        f"exceeds the context of {over.suite.models[0].path} (512 tokens). Set decode_overrides.max_new_tokens "
        "(or this decode entry's overrides) to at most 483."
    ]


def test_validate_catches_a_soft_mode_without_a_usable_think_marker(small_suite, tiny_no_think_dir):
    suite = small_suite(
        models=[{"label": "nothink", "path": str(tiny_no_think_dir)}],
        decode=["discrete", "soft"],
        decode_overrides={"max_new_tokens": 16},  # think_end: auto
    )
    report = validate_suite(Suite.from_dict(suite))
    assert len(report.errors) == 1, report.errors  # discrete needs no thinking phase; soft is reported once
    error = report.errors[0]
    assert error.startswith("nothink / soft: decode.think_end: mode 'soft' feeds concept tokens only while thinking")
    assert "no single-token '</think>'" in error and "Name a marker string" in error
    # with a marker the tokenizer can write, the same suite is fine
    marker = {"max_new_tokens": 16, "think_end": "\\boxed{"}
    assert validate_suite(Suite.from_dict({**suite, "decode_overrides": marker})).ok


def test_validate_checks_a_hub_id_found_in_the_local_hf_cache(small_suite, tiny_no_think_dir, tmp_path, monkeypatch):
    """A Hub id is checked when the Hugging Face cache holds it (here a cache laid out by hand), without a network."""
    import shutil

    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--local-test--tiny-nothink"
    shutil.copytree(tiny_no_think_dir, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    suite = small_suite(
        models=[{"label": "cached", "path": "local-test/tiny-nothink"}],
        decode=["soft"],
        decode_overrides={"max_new_tokens": 16},
    )
    report = validate_suite(Suite.from_dict(suite))
    assert report.warnings == [] and len(report.errors) == 1
    assert report.errors[0].startswith("cached / soft: decode.think_end: mode 'soft' feeds concept tokens only")
    assert report.errors[0].endswith("(tokenizer of the local Hugging Face cache (local-test/tiny-nothink))")


def test_validate_catches_a_think_marker_the_tokenizer_cannot_represent(small_suite):
    report = validate_suite(
        Suite.from_dict(small_suite(decode=["soft"], decode_overrides={"max_new_tokens": 16, "think_end": "é"}))
    )
    assert len(report.errors) == 1 and "cannot be represented by this tokenizer" in report.errors[0]


def test_validate_reports_a_model_folder_that_cannot_be_read(small_suite, tmp_path):
    (tmp_path / "not_a_model").mkdir()
    report = validate_suite(
        Suite.from_dict(small_suite(models=[{"label": "x", "path": str(tmp_path / "not_a_model")}]))
    )
    assert len(report.errors) == 1 and report.errors[0].startswith("model 'x': cannot read the tokenizer/config of ")


def test_validate_testbed_budget_beyond_its_context_fails_with_the_fix(capsys):
    """The testbed checkpoint's context is 384 tokens."""
    suite = str(REPO / "eval" / "suites" / "testbed.yaml")
    assert main(["eval", "validate", suite, "--set", "decode_overrides.max_new_tokens=384"]) == 1
    out = capsys.readouterr().out
    assert "exceeds the context of the shipped testbed checkpoint (384 tokens)" in out
    assert "Set decode_overrides.max_new_tokens (or this decode entry's overrides) to at most" in out


# ------------------------------------------------------------------------------------------------ published


def _figure(**changes):
    entry = {"model": "m", "mode": "discrete", "benchmark": "arith", "metric": "accuracy", "value": 90.0}
    entry["source"] = "paper, Table 1"
    entry.update(changes)
    return entry


def test_published_entries_are_validated(suite_dict):
    suite = Suite.from_dict(suite_dict(published=[_figure(), _figure(mode="soft", metric="pass@2", value=50)]))
    assert suite.published == [
        PublishedFigure("m", "discrete", "arith", "accuracy", 90.0, "paper, Table 1"),
        PublishedFigure("m", "soft", "arith", "pass@2", 50.0, "paper, Table 1"),
    ]
    bad = {
        "published[0].model must be one of the suite's model labels ['m']": _figure(model="qwq"),
        "published[0].metric needs a k the report has ([1, 2])": _figure(metric="pass@8"),
        "published[0].metric must be accuracy, pass@K, maj@K or mean_total_tokens": _figure(metric="f1"),
        "published[0].value must be a percentage in [0, 100]": _figure(value=120),
        "published[0].value must be a number": _figure(value=True),
        "published[0].value must be > 0 tokens": _figure(metric="mean_total_tokens", value=0),
        "published[0].source must be a non-empty string": _figure(source=" "),
    }
    for message, entry in bad.items():
        with pytest.raises(SoftthinkConfigError, match=re.escape(message)):
            Suite.from_dict(suite_dict(published=[entry]))
    missing = _figure()
    del missing["source"]
    with pytest.raises(SoftthinkConfigError, match=r"published\[0\]\.source is missing"):
        Suite.from_dict(suite_dict(published=[missing]))
    with pytest.raises(SoftthinkConfigError, match=r"published\[0\]\.year is not a key"):
        Suite.from_dict(suite_dict(published=[_figure(year=2025)]))


def test_published_comparison_by_hand():
    rows = [
        {"model": "m", "mode": "soft", "benchmark": "b", "n_samples": 4, "n_problems": 2, "samples_per_problem": 2}
        | {"accuracy": 0.75, "ci_low": 0.5, "ci_high": 1.0, "pass@2": 1.0, "mean_total_tokens": 120.0},
        {"model": "m", "mode": "discrete", "benchmark": "b", "n_samples": 0},
    ]
    figures = [
        PublishedFigure("m", "soft", "b", "accuracy", 70.0, "s1"),
        PublishedFigure("m", "soft", "b", "pass@2", 95.0, "s2"),
        PublishedFigure("m", "soft", "b", "mean_total_tokens", 100.0, "s3"),
        PublishedFigure("m", "discrete", "b", "accuracy", 80.0, "s4"),
    ]
    got = published_comparison(rows, figures)
    assert [(g["this_run"], g["published"], g["difference"], g["ci"]) for g in got] == [
        (75.0, 70.0, 5.0, (50.0, 100.0)),
        (100.0, 95.0, 5.0, None),
        (120.0, 100.0, 20.0, None),
        (None, 80.0, None, None),
    ]
    assert got[0]["samples"] == "2 x 2" and got[3]["samples"] == "0" and got[2]["source"] == "s3"


def test_report_has_a_published_column(suite_dict, tok, fake_load):
    """The fake generate answers right in discrete mode (100%) and wrong in soft mode (0%)."""
    figures = [_figure(value=90.0, source="claim A"), _figure(mode="soft", value=25.0, source="reproduction B")]
    res = run(
        Suite.from_dict(suite_dict(published=figures)),
        generate_fn=FakeGenerate(tok),
        load_model_fn=fake_load,
        num_processes=1,
        process_index=0,
        progress=False,
    )
    report = (res.output_dir / "report.md").read_text()
    assert "## Published figures" in report
    assert "| m | discrete | arith | accuracy | 6 x 2 | 100.00 [100.0, 100.0] | 90 | +10.00 | claim A |" in report
    assert "| m | soft | arith | accuracy | 6 x 2 | 0.00 [0.0, 0.0] | 25 | -25.00 | reproduction B |" in report
    summary = json.loads((res.output_dir / "summary.json").read_text())
    assert [(p["mode"], p["difference"]) for p in summary["published"]] == [("discrete", 10.0), ("soft", -25.0)]


def test_report_without_published_figures_has_no_such_section(suite_dict, tok, fake_load):
    res = run(
        Suite.from_dict(suite_dict()),
        generate_fn=FakeGenerate(tok),
        load_model_fn=fake_load,
        num_processes=1,
        process_index=0,
        progress=False,
    )
    assert "Published figures" not in (res.output_dir / "report.md").read_text()


def test_committed_reproduction_suites_name_their_figures():
    """Every committed suite validates its published figures at load (labels, metrics, sources)."""
    suites = {p.stem: Suite.from_yaml(p) for p in sorted((REPO / "eval" / "suites").glob("*.yaml"))}
    assert {s.name for s in suites.values() if s.published} >= {
        "softthinking_32b_competition",
        "softthinking_32b_math500_gsm8k",
        "softthinking_small_competition",
    }
    for suite in suites.values():
        assert all(fig.source for fig in suite.published)


REPRODUCTION_SUITES = sorted(
    p for p in (REPO / "eval" / "suites").glob("*.yaml") if p.name.startswith(("softthinking_", "forking_rl_"))
)


@pytest.mark.parametrize("path", REPRODUCTION_SUITES, ids=lambda p: p.stem)
def test_reproduction_suite_headers_state_budget_cost_and_commands(path, data_dir):
    """Each header says what it reproduces, its GPU-hours and the commands, and the token budget it states is the
    one `eval plan` computes."""
    header = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    for needed in ("Reproduces:", "GPU-hours", "softthink eval run", "accelerate launch", "torchrun", "eval plan"):
        assert needed in header, (path.name, needed)
    plan = plan_suite(Suite.from_yaml(path, {"data_dir": str(data_dir)}), read_model_files=False)
    assert plan.errors == []
    stated = rf"budget:? {plan.generated_budget:,} generated tokens"
    assert re.search(stated, " ".join(header.replace("#", " ").split())), (path.name, plan.generated_budget)
