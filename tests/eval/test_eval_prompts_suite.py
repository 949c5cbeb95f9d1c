"""Prompt styles (exact text reproducible from the spec) and suite YAML: include, overrides, validation."""

from __future__ import annotations

import pytest

from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.eval.datasets import Problem
from softthink.eval.prompts import (
    BOXED_INSTRUCTION,
    PromptBuilder,
    PromptSpec,
    format_exemplar_solution,
    prompt_hash,
    select_exemplars,
)
from softthink.eval.suite import Suite, apply_overrides, expand_path, parse_suite_set

TRAIN = [Problem(str(i), f"Q{i}?", str(i), {"answer": f"a <<1+1=2>>2 b\n#### {i}"}) for i in range(20)]


def test_chat_prompt_is_the_template_through_the_chat_template(tok):
    builder = PromptBuilder(PromptSpec(), tok)
    assert builder.model_input("What is 2+2?") == [{"role": "user", "content": "What is 2+2?\n" + BOXED_INSTRUCTION}]
    assert builder.text("What is 2+2?") == f"user: What is 2+2?\n{BOXED_INSTRUCTION}\nassistant: "


def test_template_keeps_other_braces(tok):
    builder = PromptBuilder(PromptSpec(template="Solve {question} and write \\boxed{}."), tok)
    assert builder.model_input("x+1=2")[0]["content"] == "Solve x+1=2 and write \\boxed{}."


def test_system_message_and_think_style(tok):
    builder = PromptBuilder(PromptSpec(style="think", system="Be brief."), tok)
    text = builder.model_input("Q")
    assert text.startswith("system: Be brief.\nuser: Q\n") and text.endswith("assistant: <think>\n")


def test_few_shot_prompt(tok):
    spec = PromptSpec(style="few_shot", n_shots=2)
    builder = PromptBuilder(spec, tok, select_exemplars(spec, TRAIN))
    text = builder.model_input("How many?")
    assert text == (
        "Question: Q0?\nAnswer: a 2 b\nThe answer is 0.\n\n"
        "Question: Q1?\nAnswer: a 2 b\nThe answer is 1.\n\n"
        "Question: How many?\nAnswer:"
    )
    assert spec.resolved_stop_strings == ["\n\nQuestion:"] and not spec.uses_chat_template


def test_few_shot_seeded_exemplars_are_reproducible():
    spec = PromptSpec(style="few_shot", n_shots=3, shots_seed=7)
    assert select_exemplars(spec, TRAIN) == select_exemplars(spec, TRAIN)
    assert select_exemplars(spec, TRAIN) != select_exemplars(PromptSpec(style="few_shot", n_shots=3), TRAIN)


def test_exemplar_formatting():
    assert format_exemplar_solution("x <<2*3=6>>6 y\n#### 6") == "x 6 y\nThe answer is 6."


def test_chat_style_without_chat_template_is_an_error(tok):
    import copy

    plain = copy.deepcopy(tok)
    plain.chat_template = None
    with pytest.raises(SoftthinkInputError, match="few_shot"):
        PromptBuilder(PromptSpec(), plain)


@pytest.mark.parametrize(
    "options, param",
    [
        ({"style": "chatty"}, "prompt.style"),
        ({"template": "no placeholder"}, "prompt.template"),
        ({"n_shots": -1}, "prompt.n_shots"),
        ({"nshots": 2}, "prompt"),
    ],
)
def test_prompt_spec_errors(options, param):
    with pytest.raises(SoftthinkConfigError) as info:
        PromptSpec.from_dict(options)
    assert info.value.param == param


def test_prompt_hash_is_stable():
    assert prompt_hash("abc") == prompt_hash("abc") != prompt_hash("abd") and len(prompt_hash("abc")) == 16


# -- suites ----------------------------------------------------------------------------------------------------------


def test_suite_from_yaml_with_include_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "name: base\nmodels: [{label: m, path: /x/m.gguf}]\ndecode: [discrete, soft]\n"
        "benchmarks: [gsm8k]\nsamples: 2\ndecode_overrides: {max_new_tokens: 64, think_end: '</think>'}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "include: base.yaml\nname: child\ndecode_overrides: {max_new_tokens: 128}\nseeds: [0, 1]\n"
    )
    suite = Suite.from_yaml(tmp_path / "child.yaml", {"benchmarks.0.limit": 5, "samples": 4})
    assert suite.name == "child" and suite.seeds == [0, 1] and suite.samples == 4
    assert suite.decode_overrides == {"max_new_tokens": 128, "think_end": "</think>"}  # mappings merge
    assert suite.benchmarks[0].name == "gsm8k" and suite.benchmarks[0].limit == 5
    assert suite.pass_k == [1, 2, 4]
    assert len(suite.cells()) == 1 * 2 * 1 * 2
    assert suite.to_dict()["benchmarks"][0]["limit"] == 5


def test_parse_suite_set_values_are_yaml():
    assert parse_suite_set(["samples=4"]) == {"samples": 4}
    assert parse_suite_set(["seeds=[0, 1]"]) == {"seeds": [0, 1]}
    assert parse_suite_set(["decode_overrides.think_end=\\boxed"]) == {"decode_overrides.think_end": "\\boxed"}
    with pytest.raises(SoftthinkConfigError):
        parse_suite_set(["samples"])


def test_overrides_reach_into_lists():
    data = {"models": ["a.gguf"], "decode": ["soft"], "benchmarks": ["gsm8k"]}
    apply_overrides(data, {"models.0.label": "m", "decode.0.overrides.max_new_tokens": 8})
    assert data["models"][0] == {"path": "a.gguf", "label": "m"}
    assert data["decode"][0] == {"preset": "soft", "overrides": {"max_new_tokens": 8}}
    with pytest.raises(SoftthinkConfigError, match="not an index"):
        apply_overrides(data, {"benchmarks.3.limit": 1})
    with pytest.raises(SoftthinkConfigError, match="unknown suite key 'sample'"):
        apply_overrides(data, {"sample": 1})


BASE = {"name": "s", "models": ["m.gguf"], "decode": ["soft"], "benchmarks": ["gsm8k"]}


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"samples": 0}, r"suite\.samples must be an int >= 1, got 0"),
        ({"seeds": []}, r"suite\.seeds must list at least one entry"),
        ({"seeds": [0, 0]}, r"suite\.seeds must not repeat"),
        ({"decode": ["soft", "soft"]}, r"suite\.decode labels must be unique"),
        ({"pass_k": [4]}, r"pass_k must hold ints in \[1, samples=1\]"),
        ({"baseline": "greedy"}, r"suite\.baseline must be one of the decode labels"),
        ({"limit": 0}, r"suite\.limit must be an int >= 1"),
        ({"sampels": 2}, r"unknown suite key\(s\) 'sampels' \(did you mean 'samples'\?\)"),
        (
            {"benchmarks": [{"name": "gsm8k", "lmit": 3}]},
            r"suite\.benchmarks\[0\]: unknown benchmark entry key\(s\) 'lmit' \(did you mean 'limit'\?\)",
        ),
        ({"benchmarks": [{"lmit": 3}]}, r"suite\.benchmarks\[0\] must be a string or a mapping with 'name'"),
        ({"name": "has space"}, r"suite\.name must be"),
    ],
)
def test_suite_validation_messages(changes, pattern):
    with pytest.raises(SoftthinkConfigError, match=pattern):
        Suite.from_dict({**BASE, **changes}, source="s.yaml")


def test_missing_suite_file():
    with pytest.raises(SoftthinkConfigError, match="does not exist"):
        Suite.from_yaml("nope/none.yaml")


def test_expand_path(monkeypatch):
    monkeypatch.setenv("ST_TEST_DIR", "/models")
    assert expand_path("${ST_TEST_DIR}/a.gguf") == "/models/a.gguf"
    monkeypatch.delenv("ST_TEST_DIR")
    assert expand_path("${ST_TEST_DIR:-/cache}/a.gguf") == "/cache/a.gguf"
    with pytest.raises(SoftthinkConfigError, match="ST_TEST_DIR is not set"):
        expand_path("${ST_TEST_DIR}/a.gguf")
