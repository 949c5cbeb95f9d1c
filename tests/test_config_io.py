"""The one config I/O (softthink.config_io): include/merge rules, key checks and --set coercion, table-driven."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from softthink.config_io import check_keys, coerce, dataclass_fields, merge, parse_set, read_config
from softthink.errors import SoftthinkConfigError, unknown_name_message

# -- merge -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base, top, expected",
    [
        ({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}),  # top wins
        ({"m": {"x": 1, "y": 2}}, {"m": {"y": 3, "z": 4}}, {"m": {"x": 1, "y": 3, "z": 4}}),  # mappings merge
        ({"m": {"n": {"x": 1}}}, {"m": {"n": {"y": 2}}}, {"m": {"n": {"x": 1, "y": 2}}}),  # ... recursively
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),  # lists replace
        ({"m": {"x": 1}}, {"m": None}, {"m": None}),  # a scalar replaces a mapping
        ({"s": 1}, {"s": {"x": 1}}, {"s": {"x": 1}}),  # a mapping replaces a scalar
    ],
)
def test_merge_rules(base, top, expected):
    before = repr(base)
    assert merge(base, top) == expected
    assert repr(base) == before  # inputs are not modified


# -- read_config: include --------------------------------------------------------------------------------------


def write(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"top.yaml": "a: 1\n"}, {"a": 1}),
        ({"top.yaml": ""}, {}),  # an empty file is an empty mapping
        ({"base.yaml": "a: 1\nb: 1\n", "top.yaml": "include: base.yaml\nb: 2\n"}, {"a": 1, "b": 2}),
        ({"base.yaml": "m: {x: 1, y: 1}\n", "top.yaml": "include: base.yaml\nm: {y: 2}\n"}, {"m": {"x": 1, "y": 2}}),
        (
            {"a.yaml": "k: a\nonly_a: 1\n", "b.yaml": "k: b\n", "top.yaml": "include: [a.yaml, b.yaml]\n"},
            {"k": "b", "only_a": 1},
        ),  # a list: later includes win
        ({"a.yaml": "k: a\n", "b.yaml": "k: b\n", "top.yaml": "include: [a.yaml, b.yaml]\nk: top\n"}, {"k": "top"}),
        # relative to the including file, not to the current directory
        (
            {
                "sub/base.yaml": "a: 1\n",
                "sub/mid.yaml": "include: base.yaml\nb: 2\n",
                "top.yaml": "include: sub/mid.yaml\n",
            },
            {"a": 1, "b": 2},
        ),
        (
            {
                "base.yaml": "a: 1\n",
                "l.yaml": "include: base.yaml\n",
                "r.yaml": "include: base.yaml\n",
                "top.yaml": "include: [l.yaml, r.yaml]\n",
            },
            {"a": 1},
        ),  # a diamond is not a cycle
    ],
)
def test_read_config_include_rules(tmp_path, files, expected):
    write(tmp_path, files)
    assert read_config(tmp_path / "top.yaml", what="thing") == expected


@pytest.mark.parametrize(
    "files, pattern",
    [
        ({}, r"thing file .*top\.yaml does not exist"),
        (
            {"top.yaml": "include: nope.yaml\n"},
            r"top\.yaml includes 'nope\.yaml', which does not exist at .*nope\.yaml",
        ),
        ({"top.yaml": "a: [1, 2\n"}, r"thing file .*top\.yaml is not valid YAML"),
        ({"top.yaml": "- a\n- b\n"}, r"thing file .*top\.yaml must hold a mapping of key: value, got list"),
        ({"base.yaml": "just text\n", "top.yaml": "include: base.yaml\n"}, r"base\.yaml must hold a mapping.*got str"),
        (
            {"a.yaml": "include: b.yaml\n", "b.yaml": "include: a.yaml\n", "top.yaml": "include: a.yaml\n"},
            r"thing include cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml",
        ),
        ({"top.yaml": "include: top.yaml\n"}, r"include cycle"),
        ({"top.yaml": "include: {a: 1}\n"}, r"include must be a file name or a list of file names"),
    ],
)
def test_read_config_errors_name_the_file(tmp_path, files, pattern):
    write(tmp_path, files)
    with pytest.raises(SoftthinkConfigError, match=pattern):
        read_config(tmp_path / "top.yaml", what="thing")


def test_read_config_custom_locate(tmp_path):
    write(tmp_path, {"presets/soft.yaml": "mode: soft\nx: 1\n", "top.yaml": "include: soft\nx: 2\n"})
    values = read_config(
        tmp_path / "top.yaml", what="preset", locate=lambda name, including: tmp_path / "presets" / f"{name}.yaml"
    )
    assert values == {"mode": "soft", "x": 2}


# -- keys and did-you-mean ---------------------------------------------------------------------------------------


def test_check_keys():
    check_keys(["a", "b"], ["a", "b", "c"], what="key")
    with pytest.raises(
        SoftthinkConfigError,
        match=r"unknown key 'samles'\. Did you mean 'samples'\? "
        r"Available: samples, seeds\. \(in f\.yaml\)",
    ) as info:
        check_keys(["samles"], ["seeds", "samples"], what="key", source="f.yaml")
    assert info.value.param == "samles"
    with pytest.raises(SoftthinkConfigError, match=r"unknown key\(s\) 'samles' \(did you mean 'samples'\?\), 'zz'"):
        check_keys(["samles", "zz"], ["seeds", "samples"], what="key", all_at_once=True)
    with pytest.raises(SoftthinkConfigError, match=r"Did you mean 'lr'\? See the docs\.$"):
        check_keys(["lr_"], ["lr"], what="key", listing="See the docs.")


def test_unknown_name_message_without_close_match():
    assert unknown_name_message("mode", "zzz", ["soft", "gated"]) == "unknown mode 'zzz'. Available: gated, soft."


# -- --set KEY=VALUE ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    flag: bool = False
    maybe_flag: bool | None = None
    count: int = 1
    maybe_count: int | None = None
    rate: float = 1.0
    ratio: float | int = 1
    text: str = "x"
    maybe_text: str | None = "auto"
    items: list[str] = field(default_factory=list)
    nested: dict = field(default_factory=dict)


@pytest.mark.parametrize(
    "pair, expected",
    [
        ("flag=false", False),
        ("flag=False", False),
        ("flag=no", False),
        ("flag=true", True),
        ("flag=yes", True),
        ("maybe_flag=null", None),
        ("maybe_flag=true", True),
        ("count=3", 3),
        ("count=-2", -2),
        ("maybe_count=null", None),
        ("maybe_count=~", None),
        ("maybe_count=7", 7),
        ("rate=1e-5", 1e-5),
        ("rate=3.0e-5", 3e-5),
        ("rate=2", 2.0),
        ("rate=0.5", 0.5),
        ("rate=.inf", float("inf")),
        ("ratio=2", 2),
        ("ratio=0.5", 0.5),
        ("text=\\boxed", "\\boxed"),
        ("text=</think>", "</think>"),
        ("text=null", "null"),
        ("text=3", "3"),
        ("text=a=b", "a=b"),
        ("text=", ""),
        ("maybe_text=null", None),
        ("maybe_text=\\boxed", "\\boxed"),
        ("items=[a, b]", ["a", "b"]),
        ("items=Question:", "Question:"),
        ("nested={x: 1}", {"x": 1}),
    ],
)
def test_set_values_are_coerced_to_the_field_type(pair, expected):
    key = pair.split("=", 1)[0]
    value = parse_set([pair], dataclass_fields(Target), what="option")[key]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "pair, pattern",
    [
        ("flag=2", "expected true or false"),
        ("flag=on", "expected true or false"),
        ("flag=1", "true or false"),
        ("flag=", "true or false"),
        ("count=1.5", "expected an integer"),
        ("count=true", "expected an integer"),
        ("count=three", "integer"),
        ("count=null", "integer"),
        ("maybe_count=1.5", "an integer or null"),
        ("rate=fast", "expected a number"),
        ("rate=true", "a number"),
        ("rate=null", "a number"),
        ("coutn=3", r"unknown option 'coutn'\. Did you mean 'count'\?"),
        ("count", "--set expects key=value"),
        ("=3", "--set expects key=value"),
        ("nested.x=1", r"unknown option 'nested\.x'"),  # dotted keys only where the caller allows them
    ],
)
def test_set_rejects_bad_values_and_keys(pair, pattern):
    with pytest.raises(SoftthinkConfigError, match=pattern) as info:
        parse_set([pair], dataclass_fields(Target), what="option")
    assert info.value.param


def test_set_dotted_keys_and_nested_schemas():
    fields = dataclass_fields(Target)
    nested = {"nested": {"flag": bool, "n": int}}
    assert parse_set(
        ["nested.flag=no", "nested.n=4", "items.0=zz"], fields, what="option", dotted=True, nested=nested
    ) == {"nested.flag": False, "nested.n": 4, "items.0": "zz"}
    with pytest.raises(SoftthinkConfigError, match=r"unknown nested key 'nn'\. Did you mean 'n'\?"):
        parse_set(["nested.nn=4"], fields, what="option", dotted=True, nested=nested)
    with pytest.raises(SoftthinkConfigError, match="expected an integer"):
        parse_set(["nested.n=4.5"], fields, what="option", dotted=True, nested=nested)
    with pytest.raises(SoftthinkConfigError, match=r"unknown option 'nestd'"):
        parse_set(["nestd.n=4"], fields, what="option", dotted=True, nested=nested)


@pytest.mark.parametrize(
    "annotation, raw, expected",
    [
        ("int | None", "null", None),
        ("Optional[int]", "5", 5),
        ("Union[int, None]", "null", None),
        ("bool", "no", False),
        ("float", "1e-3", 1e-3),
        ("str | None", "auto", "auto"),
        ("list[str]", "[a]", ["a"]),
        (None, "[1, 2]", [1, 2]),
        (None, "plain", "plain"),
    ],
)
def test_coerce_understands_string_annotations(annotation, raw, expected):
    assert coerce("k", raw, annotation) == expected


# -- the callers use it ------------------------------------------------------------------------------------------


def test_testbed_train_reads_false_as_false():
    """The old testbed parser turned every non-empty string into True for a bool field."""
    from softthink.testbed.train import parse_overrides

    @dataclass
    class WithFlag:
        flag: bool = True

    assert parse_set(["flag=false"], dataclass_fields(WithFlag), what="TrainConfig field") == {"flag": False}
    assert parse_overrides(["learning_rate=1e-5", "max_steps=7", "difficulty=hard"]) == {
        "learning_rate": 1e-5,
        "max_steps": 7,
        "difficulty": "hard",
    }
    with pytest.raises(SoftthinkConfigError, match="expected an integer"):
        parse_overrides(["max_steps=1.5"])


def test_decode_cli_overrides_are_typed():
    from softthink.cli.options import parse_overrides

    assert parse_overrides(
        ["do_sample=no", "top_p=0.9", "think_end=\\boxed", "max_think_tokens=null", "stop_strings=[a, b]"]
    ) == {
        "do_sample": False,
        "top_p": 0.9,
        "think_end": "\\boxed",
        "max_think_tokens": None,
        "stop_strings": ["a", "b"],
    }
    with pytest.raises(SoftthinkConfigError, match="(?i)did you mean 'top_p'"):
        parse_overrides(["topp=0.9"])


def test_suite_set_types_decode_overrides_like_decode_config():
    from softthink.eval.suite import parse_suite_set

    assert parse_suite_set(
        [
            "decode_overrides.max_new_tokens=32",
            "decode_overrides.do_sample=no",
            "benchmarks.0.limit=10",
            "seed_per_sample=yes",
            "name=run-1",
        ]
    ) == {
        "decode_overrides.max_new_tokens": 32,
        "decode_overrides.do_sample": False,
        "benchmarks.0.limit": 10,
        "seed_per_sample": True,
        "name": "run-1",
    }
    with pytest.raises(SoftthinkConfigError, match="(?i)did you mean 'max_new_tokens'"):
        parse_suite_set(["decode_overrides.max_new_token=32"])
    with pytest.raises(SoftthinkConfigError, match="expected an integer"):
        parse_suite_set(["samples=2.5"])


# -- environment variables are read when called ------------------------------------------------------------------


def test_rl_recipe_dir_is_read_when_called(tmp_path, monkeypatch):
    from softthink.rl import recipes

    monkeypatch.setenv("SOFTTHINK_RL_RECIPES", str(tmp_path))  # after the module was imported
    (tmp_path / "mine.yaml").write_text("recipe: full\nmodel: tiny:llama\ndataset: testbed\n")
    (tmp_path / "_base.yaml").write_text("recipe: full\n")
    assert recipes.recipe_dir() == tmp_path
    assert recipes.available_recipes() == ["mine"]
    assert recipes.load_recipe("mine").run.model == "tiny:llama"
    monkeypatch.delenv("SOFTTHINK_RL_RECIPES")
    assert "forking" in recipes.available_recipes()


def test_decode_preset_dir_is_read_when_called(tmp_path, monkeypatch):
    import softthink

    (tmp_path / "decode").mkdir()
    (tmp_path / "decode" / "my_soft.yaml").write_text("include: soft\nmax_topk: 4\n")
    monkeypatch.setenv("SOFTTHINK_CONFIG_DIR", str(tmp_path))  # after softthink was imported
    assert "my_soft" in softthink.available_presets()
    config = softthink.load_decode_config("my_soft")
    assert (config.mode, config.max_topk) == ("soft", 4)
