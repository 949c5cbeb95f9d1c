"""Silent wrong behaviour made explicit (issue 13): null gold answers, texts beyond the model's context, characters
the tokenizer cannot represent, a missing --config file, `eval --limit` against a benchmark's own limit, and an
unknown key in a suite entry. Each test states the old behaviour it replaces."""

from __future__ import annotations

import json
import warnings

import pytest
import yaml

import softthink
from softthink.cli.main import main
from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkInputError


@pytest.fixture(scope="module")
def testbed():
    return softthink.load_model("testbed", device="cpu")


# --- gold answers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, pattern",
    [
        ({"id": "b", "q": "2+2?", "a": None}, r"b\.jsonl:2: field 'a' is null; every record needs a gold answer"),
        ({"id": "b", "q": "2+2?", "a": "  "}, r"b\.jsonl:2: field 'a' is empty"),
        ({"id": None, "q": "2+2?", "a": "4"}, r"b\.jsonl:2: id field 'id' is null or empty"),
    ],
)
def test_a_null_or_empty_gold_answer_is_a_data_error(tmp_path, record, pattern):
    """Before: ``"answer": null`` loaded as the gold text "None"; validate said ok and the run scored 0 %."""
    from softthink.eval.datasets import load_benchmark

    rows = [{"id": "a", "q": "1+1?", "a": "2"}, record]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"name": "b", "path": "b.jsonl", "question_field": "q", "answer_field": "a", "id_field": "id"}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(SoftthinkDataError, match=pattern):
        load_benchmark(tmp_path / "b.yaml")


def test_a_numeric_gold_zero_is_kept(tmp_path):
    from softthink.eval.datasets import load_benchmark

    (tmp_path / "b.jsonl").write_text(json.dumps({"question": "1-1?", "answer": 0}) + "\n")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"name": "b", "path": "b.jsonl", "question_field": "question"}))
    assert load_benchmark(tmp_path / "b.yaml")[0].answer == "0"


# --- analyze: texts beyond the context ---------------------------------------------------------------------------


def test_analyze_refuses_a_text_longer_than_the_context(testbed):
    """Before: a 600-token text was scored under a 384-token model as if nothing were wrong."""
    from softthink.analysis import token_entropies

    model, tok = testbed
    text = "1 + 2 = 3\n" * 70  # 70 lines: longer than the testbed's context of 384 tokens
    with pytest.raises(SoftthinkInputError, match=r"1 of 1 sequences are longer than the model's context of 384"):
        token_entropies(model, tok, [text], progress=False)
    with pytest.warns(UserWarning, match=r"1 of 1 sequences were cut to max_length=384"):
        (rec,) = token_entropies(model, tok, [text], max_length=384, progress=False)
    assert rec.truncated and len(rec) == 383  # BOS is the context of the first scored token


def test_analyze_cli_says_how_to_cut(tmp_path, capsys):
    src = tmp_path / "long.txt"
    src.write_text("1 + 2 = 3\n" * 80)
    assert main(["analyze", "--model", "testbed", str(src)]) == 2
    assert "Pass max_length=384 (softthink analyze --max-length 384)" in capsys.readouterr().err
    assert main(["analyze", "--model", "testbed", str(src), "--max-length", "384"]) == 0


def test_analyze_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "longer than the model's context is then an error" in " ".join(capsys.readouterr().out.split())


# --- characters the tokenizer cannot represent ----------------------------------------------------------------


def test_generate_warns_where_the_prompt_became_unk(testbed):
    """Before: '€' and 'hello' silently became <unk> in the testbed's prompt."""
    model, tok = testbed
    with pytest.warns(UserWarning, match=r"prompt 1 .*2 piece\(s\) .*became '<unk>': ' hello' at 2, '€' at 13"):
        softthink.generate(
            model, ["Q: 1 + 2", "Q: hello 1 + € 2"], tok, mode="discrete", max_new_tokens=2, chat_template=False
        )
    with pytest.warns(UserWarning, match=r"prompt 0 \('<s>Q: 1 ~ 2.*'~' at 8 \(character offsets"):
        softthink.generate(model, "1 ~ 2", tok, mode="discrete", max_new_tokens=2)  # offsets in the templated text


def test_no_warning_when_everything_is_representable(testbed):
    model, tok = testbed
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        softthink.generate(model, "Q: 1 + 2", tok, mode="discrete", max_new_tokens=2)
        softthink.generate(model, "Q: <unk> 1", tok, mode="discrete", max_new_tokens=2)  # a literal <unk>


def test_analyze_warns_where_the_text_became_unk(testbed):
    from softthink.analysis import token_entropies

    model, tok = testbed
    with pytest.warns(UserWarning, match=r"text 1: 1 piece\(s\) .*'é' at 2"):
        token_entropies(model, tok, ["1 + 2", "1 é 2"], progress=False)
    with pytest.warns(UserWarning, match=r"prompt 0: .*'%' at 0"):
        token_entropies(model, tok, [" 2"], prompts=["% 1"], progress=False)


def test_eval_warns_where_a_question_became_unk(testbed, tmp_path):
    from softthink.eval.runner import run

    (tmp_path / "b.jsonl").write_text(json.dumps({"question": "1 + 2 ~ ?", "answer": "3"}) + "\n")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"name": "b", "path": "b.jsonl", "question_field": "question"}))
    suite = {
        "name": "unk",
        "models": [{"label": "tb", "path": "testbed"}],
        "decode": ["discrete"],
        "benchmarks": [{"name": str(tmp_path / "b.yaml"), "prompt": {"style": "chat", "template": "{question}"}}],
        "decode_overrides": {"max_new_tokens": 2},
        "output_dir": str(tmp_path / "out"),
    }
    with pytest.warns(UserWarning, match=r"prompt 0 .*'~' at \d+"):
        run(softthink.eval.suite.Suite.from_dict(suite), progress=False, write_report=False)


def test_unknown_spans_without_an_unk_token():
    from softthink.unknown_tokens import unknown_spans

    class ByteLevel:  # GPT-2-like tokenizers have no unknown token
        unk_token_id = None

    assert unknown_spans(ByteLevel(), "any text €", [1, 2, 3]) == []


# --- --config that does not exist ---------------------------------------------------------------------------------


def test_a_missing_config_file_is_a_missing_file(tmp_path, capsys):
    """Before: ``--config path.yaml`` that does not exist reported "unknown decode preset"."""
    from softthink.decoding.api import build_config

    with pytest.raises(SoftthinkConfigError, match=r"decode preset file .*nope\.yaml does not exist\. Check the path"):
        build_config(str(tmp_path / "nope.yaml"), None, {})
    with pytest.raises(SoftthinkConfigError, match=r"decode preset file presets/soft does not exist"):
        build_config("presets/soft", None, {})
    assert main(["generate", "--model", "testbed", "--config", str(tmp_path / "x.yml"), "1 + 2"]) == 2
    assert "x.yml does not exist" in capsys.readouterr().err
    with pytest.raises(SoftthinkConfigError, match="unknown decode preset 'sofft'"):
        build_config("sofft", None, {})  # a name is still looked up as a preset


# --- eval --limit against a benchmark's own limit ---------------------------------------------------------------


def _suite(tmp_path):
    path = tmp_path / "s.yaml"
    benchmarks = [{"name": "gsm8k", "limit": 5}, "math500", {"name": "testbed", "limit": 1}]
    path.write_text(yaml.safe_dump({"name": "s", "models": ["m.gguf"], "decode": ["soft"], "benchmarks": benchmarks}))
    return path


def _limits(tmp_path, argv):
    from softthink.cli.eval import _overrides, build_parser
    from softthink.eval.runner import load_suite

    path = _suite(tmp_path)
    args = build_parser().parse_args(["validate", str(path), *argv])
    suite = load_suite(path, _overrides(args, str(path)))
    return [ref.limit or suite.limit for ref in suite.benchmarks]  # the runner's rule: own limit, else the suite's


def test_eval_limit_caps_every_benchmark(tmp_path):
    """Before: ``--limit 2`` gave gsm8k its own 5 problems (the benchmark's limit won, silently)."""
    assert _limits(tmp_path, []) == [5, None, 1]
    assert _limits(tmp_path, ["--limit", "2"]) == [2, 2, 1]  # lowers 5, fills in None, keeps 1
    assert _limits(tmp_path, ["--limit", "10"]) == [5, 10, 1]  # never raises a benchmark's own limit
    assert _limits(tmp_path, ["--limit", "2", "--set", "benchmarks.0.limit=8"]) == [2, 2, 1]


def test_eval_limit_help_states_the_precedence(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "wins over a benchmark entry's own `limit` when that is larger" in text


# --- unknown keys of suite entries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, entry, pattern",
    [
        ("benchmarks", {"name": "gsm8k", "limt": 3}, r"benchmarks\[0\]: unknown benchmark entry key\(s\) 'limt' \("),
        ("models", {"path": "m", "lable": "x"}, r"models\[0\]: unknown model entry key\(s\) 'lable' \(did you mean"),
        ("decode", {"preset": "soft", "overides": {}}, r"decode\[0\]: unknown decode entry key\(s\) 'overides'"),
        ("benchmarks", {"name": "gsm8k", 3: 1}, r"unknown benchmark entry key\(s\) '3'"),
    ],
)
def test_an_unknown_entry_key_is_named(section, entry, pattern):
    """Before: the message listed the allowed keys but not the wrong one."""
    from softthink.eval.suite import Suite

    data = {"name": "s", "models": ["m"], "decode": ["soft"], "benchmarks": ["gsm8k"], section: [entry]}
    with pytest.raises(SoftthinkConfigError, match=pattern):
        Suite.from_dict(data)
