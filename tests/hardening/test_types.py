"""Every config field checks its type (issue 13): string booleans, strings for numbers, None for lists, bools for
numbers. Before these checks ``DecodeConfig(do_sample="no")`` sampled (a non-empty string is truthy),
``chat_template="false"`` applied the template, and ``temperature="hot"`` / ``stop_strings=None`` were raw
TypeErrors; each case below is one of those."""

from __future__ import annotations

import numpy as np
import pytest

import softthink
from softthink.config_io import check_type
from softthink.decoding.config import DecodeConfig, load_decode_config
from softthink.errors import SoftthinkConfigError

# --- the one helper ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, annotation, ok",
    [
        (True, "bool", True),
        ("no", "bool", False),
        (1, "bool", False),  # an int is not a bool
        (3, "int", True),
        (np.int64(3), "int", False),  # Python ints only, as the configs' own range checks expect
        (np.float64(0.5), "float", True),  # (a subclass of float)
        (True, "int", False),  # a bool is not an int
        (2.0, "int", False),
        (1, "float", True),  # ints where floats are expected are fine
        (0.5, "float", True),
        (False, "float", False),
        ("0.5", "float", False),
        (None, "float | None", True),
        (None, "float", False),
        (["a"], "list[str]", True),
        ("a", "list[str]", False),
        ([1, "a"], "list[int]", False),
        ({"a": 1}, "dict[str, Any]", True),
        ([], "dict[str, Any]", False),
        (object(), "list[ModelSpec]", True),  # annotations the helper does not know are left to the config
        ("x", int | None, False),  # real types as well as the strings of `from __future__ import annotations`
    ],
)
def test_check_type(value, annotation, ok):
    if ok:
        check_type("f", value, annotation, what="cfg")
    else:
        with pytest.raises(SoftthinkConfigError, match=r"cfg\.f must be .*, got") as info:
            check_type("f", value, annotation, what="cfg")
        assert info.value.param == "f"


# --- DecodeConfig and the rule params ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("do_sample", "no", r"decode\.do_sample must be true or false, got 'no' \(str\)\. Write do_sample=False"),
        ("chat_template", "false", r"decode\.chat_template must be true or false, got 'false'.*chat_template=False"),
        ("trace", "yes", r"decode\.trace must be true or false"),
        ("answer_do_sample", "no", r"decode\.answer_do_sample must be true or false or null"),
        ("do_sample", 1, r"decode\.do_sample must be true or false, got 1 \(int\)"),
        ("temperature", "hot", r"decode\.temperature must be a number, got 'hot' \(str\)"),
        ("temperature", True, r"decode\.temperature must be a number, got True \(bool\)"),
        ("top_p", "0.9", r"decode\.top_p must be a number.*without quotes"),
        ("top_k", 2.0, r"decode\.top_k must be an integer, got 2\.0"),
        ("max_new_tokens", True, r"decode\.max_new_tokens must be an integer, got True"),
        ("stop_strings", None, r"decode\.stop_strings must be a list of strings, got None"),
        ("stop_strings", ["a", 3], r"decode\.stop_strings must be a list of strings"),
        ("seed", "0", r"decode\.seed must be an integer or null"),
        ("mode", 3, r"decode\.mode must be a string, got 3"),
        # the rule params (declared in softthink/decoding/rules/*)
        ("max_topk", "3", r"decode\.max_topk must be an integer, got '3'"),
        ("noise", 3, r"decode\.noise must be a string, got 3"),
        ("gumbel_tau", "1e-5", r"decode\.gumbel_tau must be a number.*write 1\.0e-5"),
        ("entropy_threshold", "0.5", r"decode\.entropy_threshold must be a number or null"),
        ("swir_max_switches", True, r"decode\.swir_max_switches must be an integer or null, got True"),
        ("fork_temperature", [1.0], r"decode\.fork_temperature must be a number"),
        ("moi_beta", "1", r"decode\.moi_beta must be a number"),
    ],
)
def test_decode_fields_check_their_types(field, value, pattern):
    with pytest.raises(SoftthinkConfigError, match=pattern) as info:
        DecodeConfig(**{field: value})
    assert info.value.param == field and info.value.value == value


def test_decode_values_of_the_right_type_still_pass():
    cfg = DecodeConfig(temperature=1, top_p=1, stop_strings=("a", "b"), noise="GUMBEL", seed=3)
    assert (cfg.temperature, cfg.stop_strings, cfg.noise) == (1, ["a", "b"], "gumbel")
    assert DecodeConfig(stop_strings="Question:").stop_strings == ["Question:"]
    assert DecodeConfig(noise=None).noise == "none"  # the rule's normalisation runs before the type check


def test_preset_yaml_with_a_quoted_bool_names_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text('mode: discrete\ndo_sample: "no"\n')
    with pytest.raises(SoftthinkConfigError, match=r"decode\.do_sample must be true or false.*mine\.yaml"):
        load_decode_config(path)


def test_generate_keyword_arguments_check_their_types(tiny_tokenizer):
    from tests.conftest import tiny

    model = tiny("llama")
    for kwargs, field in ((dict(do_sample="no"), "do_sample"), (dict(chat_template="false"), "chat_template")):
        with pytest.raises(SoftthinkConfigError, match=rf"decode\.{field} must be true or false"):
            softthink.generate(model, "hi", tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=2, **kwargs)
    with pytest.raises(SoftthinkConfigError, match=r"decode\.temperature must be a number"):
        softthink.generate(model, "hi", tokenizer=tiny_tokenizer, config={"temperature": "hot"})
    # the same call with real bools runs
    out = softthink.generate(model, "hi", tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=2, do_sample=False)
    assert out.num_tokens == 2


# --- suites, their entries and benchmark YAML --------------------------------------------------------------------

BASE = {"name": "s", "models": ["m.gguf"], "decode": ["soft"], "benchmarks": ["gsm8k"]}


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"seed_per_sample": "no"}, r"suite\.seed_per_sample must be true or false, got 'no'.*s\.yaml"),
        ({"samples": "4"}, r"suite\.samples must be an integer, got '4'"),
        ({"samples": True}, r"suite\.samples must be an integer, got True"),
        ({"output_dir": 5}, r"suite\.output_dir must be a string or null, got 5"),
        ({"description": ["x"]}, r"suite\.description must be a string"),
        ({"pass_k": 5}, r"suite\.pass_k must be a list of integers or null, got 5"),
        ({"seeds": 3}, r"suite\.seeds must be a list of integers, got 3"),
        ({"decode_overrides": [1]}, r"suite\.decode_overrides must be a mapping"),
        ({"decode_overrides": {1: 2}}, r"suite\.decode_overrides keys must be option names, got 1 \(int\)"),
        ({"ids": 5}, r"suite\.ids must be a list of problem ids"),
        ({"models": [{"path": 5}]}, r"suite\.models\[0\]\.path must be a string, got 5"),
        ({"models": [{"path": "m", "hint": ["h"]}]}, r"suite\.models\[0\]\.hint must be a string or null"),
        ({"decode": [{"preset": "soft", "label": 3}]}, r"suite\.decode\[0\]\.label must be a string, got 3"),
        ({"decode": [{"preset": "soft", "overrides": [1]}]}, r"suite\.decode\[0\]\.overrides must be a mapping"),
        ({"benchmarks": [{"name": "gsm8k", "limit": "5"}]}, r"suite\.benchmarks\[0\]\.limit must be an integer"),
        ({"benchmarks": [{"name": "gsm8k", "split": 5}]}, r"suite\.benchmarks\[0\]\.split must be a string or null"),
        ({"benchmarks": [{"name": "gsm8k", "options": [1]}]}, r"suite\.benchmarks\[0\]\.options must be a mapping"),
        ({"benchmarks": [{"name": "gsm8k", "ids": "a,b"}]}, r"suite\.benchmarks\[0\]\.ids must be a list"),
        ({"benchmarks": [{"name": "gsm8k", "prompt": {None: 1}}]}, r"benchmarks\[0\]\.prompt keys must be option"),
    ],
)
def test_suite_fields_and_entries_check_their_types(changes, pattern):
    from softthink.eval.suite import Suite

    with pytest.raises(SoftthinkConfigError, match=pattern):
        Suite.from_dict({**BASE, **changes}, source="s.yaml")


def test_suite_entries_of_the_right_type_still_pass():
    from softthink.eval.suite import Suite

    suite = Suite.from_dict(
        {
            **BASE,
            "benchmarks": [{"name": "gsm8k", "ids": [1, "b"], "options": None, "limit": 2}],
            "decode": [{"preset": "soft", "overrides": None}],
        }
    )
    assert suite.benchmarks[0].ids == ("1", "b") and suite.benchmarks[0].options == {}
    assert suite.decode[0].overrides == {} and suite.benchmarks[0].limit == 2


def test_benchmark_options_are_checked_against_the_loader():
    from softthink.eval.datasets import get_benchmark

    with pytest.raises(SoftthinkConfigError, match=r"unknown option of benchmark 'testbed' 'nn'.*Did you mean 'n'"):
        get_benchmark("testbed").load(nn=3)
    with pytest.raises(SoftthinkConfigError, match=r"benchmark 'testbed' option\.n must be an integer or null"):
        get_benchmark("testbed").load(n="3")
    with pytest.raises(SoftthinkConfigError, match=r"'gsm8k' takes no options"):
        get_benchmark("gsm8k").load(n=3)
    assert len(get_benchmark("testbed").load(n=3)) == 3


@pytest.mark.parametrize(
    "line, pattern",
    [
        ("answer_field: 5", r"benchmark\.answer_field must be a string, got 5 \(int\)"),
        ("layout: [1]", r"benchmark\.layout must be a string, got \[1\]"),
        ("question_field: []", r"benchmark\.question_field must be a field name or a list of field names"),
        ("question_field: 5", r"benchmark\.question_field must be a field name"),
        ("path: [x.jsonl]", r"benchmark\.path must be a string or null"),
        ("grader: multiple_choice", r"benchmark\.grader must be a mapping \(key: value\) or null"),
        ("answer_feild: a", r"unknown benchmark key\(s\) 'answer_feild' \(did you mean 'answer_field'\?\)"),
        ("7: a", r"unknown benchmark key\(s\) '7'"),
    ],
)
def test_benchmark_yaml_fields_check_their_types(tmp_path, line, pattern):
    from softthink.eval.datasets import load_benchmark

    fields = {"name": "b", "path": "b.jsonl", "question_field": "q"}
    key = line.split(":")[0]
    text = "".join(f"{k}: {v}\n" for k, v in fields.items() if k != key) + line + "\n"
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(SoftthinkConfigError, match=pattern):
        load_benchmark(tmp_path / "b.yaml")


# --- RL ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(num_problems="5"), r"run\.num_problems must be an integer or null, got '5'"),
        (dict(num_problems=True), r"run\.num_problems must be an integer or null, got True"),
        (dict(dry_run_arch=["llama"]), r"run\.dry_run_arch must be a string"),
        (dict(prompt_template=None), r"run\.prompt_template must be a string, got None"),
        (dict(model=5), r"run\.model must be a string or null"),
    ],
)
def test_rl_run_config_checks_its_types(kwargs, pattern):
    from softthink.rl.recipes import RunConfig

    with pytest.raises(SoftthinkConfigError, match=pattern):
        RunConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(clip_cov_low="a"), r"rl\.clip_cov_low must be a number, got 'a'"),  # was a raw TypeError
        (dict(forking_quantile=True), r"rl\.forking_quantile must be a number, got True"),
        (dict(recipe=5), r"rl\.recipe must be a string, got 5"),
    ],
)
def test_rl_recipe_fields_check_their_types(tmp_path, kwargs, pattern):
    from softthink.rl.config import SoftthinkGRPOConfig

    with pytest.raises(SoftthinkConfigError, match=pattern):
        SoftthinkGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", **kwargs)


def test_recipe_file_with_a_string_number_names_the_recipe(tmp_path):
    from softthink.rl.recipes import load_recipe

    (tmp_path / "mine.yaml").write_text("recipe: full\nnum_problems: '8'\n")
    with pytest.raises(SoftthinkConfigError, match=r"recipe 'mine'.*run\.num_problems must be an integer"):
        load_recipe(tmp_path / "mine.yaml")
