"""DecodeConfig validation, presets and overrides."""

import warnings

import pytest

from softthink import DecodeConfig, SoftthinkConfigError, load_decode_config
from softthink.decoding.api import build_config


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("top_p", 1.5, "top_p must be in (0, 1]"),
        ("top_p", 0.0, "top_p must be in (0, 1]"),
        ("min_p", 1.0, "min_p must be in [0, 1)"),
        ("top_k", -1, "top_k must be an int >= 0"),
        ("temperature", 0.0, "do_sample=False"),
        ("max_new_tokens", 0, "max_new_tokens must be an int >= 1"),
        ("max_topk", 0, "max_topk must be an int >= 1"),
        ("noise", "uniform", "noise must be one of"),
        ("gumbel_tau", 0, "gumbel_tau must be > 0"),
        ("cold_stop_entropy", -0.1, "cold_stop_entropy must be > 0"),
        ("answer_top_p", 2.0, "answer_top_p must be in (0, 1]"),
        ("mode", "sofft", "did you mean 'soft'"),
    ],
)
def test_invalid_values_name_field_and_remedy(field, value, fragment):
    with pytest.raises(SoftthinkConfigError) as info:
        DecodeConfig(**{field: value})
    assert fragment.lower() in str(info.value).lower()
    assert info.value.param == field


def test_relations():
    with pytest.raises(SoftthinkConfigError, match="max_think_tokens .* must be < max_new_tokens"):
        DecodeConfig(max_new_tokens=10, max_think_tokens=10)
    with pytest.raises(SoftthinkConfigError, match="entropy_threshold is required by mode 'gated'"):
        DecodeConfig(mode="gated")


def test_no_effect_settings_warn():
    with pytest.warns(UserWarning, match="entropy_threshold has no effect in mode 'soft'"):
        DecodeConfig(mode="soft", entropy_threshold=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DecodeConfig(mode="gated", entropy_threshold=1.0, max_topk=5)


def test_unknown_keys_are_errors_with_suggestions():
    with pytest.raises(SoftthinkConfigError, match="(?i)did you mean 'top_p'"):
        build_config(None, None, {"topp": 0.9})


def test_answer_sampling_falls_back_to_thinking():
    c = DecodeConfig(do_sample=True, temperature=0.6, top_p=0.9, answer_temperature=0.3)
    a = c.answer_sampling()
    assert (a.do_sample, a.temperature, a.top_p) == (True, 0.3, 0.9)


def test_presets_load_and_overrides_win(tmp_path):
    soft = load_decode_config("soft")
    assert soft.mode == "soft"
    assert load_decode_config("soft", top_p=0.5).top_p == 0.5
    child = tmp_path / "child.yaml"
    child.write_text("include: soft\nmax_topk: 3\n")
    c = load_decode_config(str(child))
    assert (c.mode, c.max_topk, c.temperature) == ("soft", 3, soft.temperature)


def test_bad_preset_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: soft\ntop_p: 3\n")
    with pytest.raises(SoftthinkConfigError, match=r"bad\.yaml"):
        load_decode_config(str(bad))
    with pytest.raises(SoftthinkConfigError, match="unknown decode preset"):
        load_decode_config("no_such_preset")


def test_every_committed_preset_is_valid():
    from softthink import available_presets

    names = available_presets()
    assert {"discrete", "soft", "gated", "soft_cold_stop"} <= set(names)
    for name in names:
        load_decode_config(name)


def test_gated_rule_needs_its_threshold_when_built_directly():
    # The gate compares entropies with the threshold: building the rule without one fails at once, naming the
    # field (it used to fail later, at the first step, with torch's TypeError on `>= None`).
    from softthink.decoding.rules.entropy_gated import EntropyGated

    config = DecodeConfig()
    with pytest.raises(SoftthinkConfigError, match="entropy_threshold is required by mode 'gated'") as info:
        EntropyGated(config, config.think_sampling())
    assert info.value.param == "entropy_threshold"
    gated = DecodeConfig(mode="gated", entropy_threshold=0.5)
    assert EntropyGated(gated, gated.think_sampling()).threshold == 0.5


def test_identity_dict_leaves_out_later_params_at_their_default():
    """Stored eval cells hash `identity_dict`: a param added after results were stored (multiplex_k) is absent at
    its default, so old cells keep their folders, and present when set, so a changed setting is a new cell."""
    default = DecodeConfig(mode="soft")
    later = {"multiplex_k", "compile", "ignore_eos"}  # a rule param and two engine fields added later
    assert later <= set(default.to_dict()) and not later & set(default.identity_dict())
    assert {k: v for k, v in default.to_dict().items() if k not in later} == default.identity_dict()
    assert DecodeConfig(mode="multiplex", do_sample=True, multiplex_k=5).identity_dict()["multiplex_k"] == 5
    assert DecodeConfig(mode="soft", compile=True, ignore_eos=True).identity_dict() == {
        **default.identity_dict(),
        "compile": True,
        "ignore_eos": True,
    }
