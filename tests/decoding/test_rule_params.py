"""Rules declare their own config fields: a new mode is one class, registered from this test file alone."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

import softthink
from softthink import DecodeConfig, SoftthinkConfigError
from softthink.cli.options import parse_overrides
from softthink.decoding.rules import (
    DecodeRule,
    RuleParam,
    Step,
    StepInput,
    available_modes,
    register_rule,
    registered_params,
    unregister_rule,
)
from softthink.decoding.rules.base import positive_int
from tests.conftest import tiny


class RankThinking(DecodeRule):
    """A toy mode: every thinking step shows (and feeds) the token of rank ``toy_rank`` (0 = greedy)."""

    params = (
        RuleParam(
            "toy_rank",
            int,
            0,
            "toy: rank of the token to pick, 0 = the most likely",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "must be an int >= 0",
            "Use 0 for greedy.",
        ),
    )

    def step(self, inputs: StepInput) -> Step:
        return Step.discrete(inputs.logits.argsort(dim=-1, descending=True)[:, self.config.toy_rank])


@pytest.fixture
def toy_mode():
    register_rule("toy_rank")(RankThinking)
    yield "toy_rank"
    unregister_rule("toy_rank")


def test_a_registered_mode_brings_its_field(toy_mode):
    assert toy_mode in available_modes()
    field = {f.name: f for f in dataclasses.fields(DecodeConfig)}["toy_rank"]
    assert field.default == 0 and "rank of the token" in field.metadata["help"]
    config = DecodeConfig(mode=toy_mode, toy_rank=2)
    assert config.toy_rank == 2 and config.to_dict()["toy_rank"] == 2
    assert config.replace(toy_rank=1).toy_rank == 1
    assert DecodeConfig.from_dict({"mode": toy_mode, "toy_rank": 3}).toy_rank == 3
    assert parse_overrides(["toy_rank=4"]) == {"toy_rank": 4}  # typed like the declared field
    with pytest.raises(SoftthinkConfigError, match=r"decode\.toy_rank must be an int >= 0, got -1\. Use 0") as info:
        DecodeConfig(mode=toy_mode, toy_rank=-1)
    assert info.value.param == "toy_rank"
    with pytest.warns(UserWarning, match="toy_rank has no effect in mode 'soft'"):
        DecodeConfig(mode="soft", toy_rank=1)
    with pytest.warns(UserWarning, match="max_topk has no effect in mode 'toy_rank'"):
        DecodeConfig(mode=toy_mode, max_topk=3)


def test_a_registered_mode_decodes(toy_mode, tiny_tokenizer):
    model = tiny("llama")
    common = dict(tokenizer=tiny_tokenizer, max_new_tokens=12, think_end="</think>")
    greedy = softthink.generate(model, "What is 3*4?", mode="discrete", **common)
    rank0 = softthink.generate(model, "What is 3*4?", mode=toy_mode, toy_rank=0, **common)
    rank1 = softthink.generate(model, "What is 3*4?", mode=toy_mode, toy_rank=1, **common)
    assert rank0.token_ids == greedy.token_ids and rank0.think_tokens > 0
    assert rank1.token_ids[0] != greedy.token_ids[0]
    # the first step's token of rank 1, computed from the model directly
    ids = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3*4?"}], add_generation_prompt=True, return_tensors="pt"
    )
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
    assert rank1.token_ids[0] == logits.argsort(descending=True)[1].item()


def test_unregistering_removes_the_field(toy_mode):
    unregister_rule(toy_mode)
    try:
        assert "toy_rank" not in {f.name for f in dataclasses.fields(DecodeConfig)}
        with pytest.raises(SoftthinkConfigError, match="unknown decode option 'toy_rank'"):
            DecodeConfig.from_dict({"toy_rank": 1})
    finally:
        register_rule(toy_mode)(RankThinking)  # the fixture unregisters it again


def test_built_in_params_are_declared_by_their_rules():
    owners = {p.name for p in registered_params()}
    assert {
        "max_topk",
        "noise",
        "gumbel_tau",
        "dirichlet_alpha",
        "entropy_threshold",
        "moi_beta",
        "multiplex_k",
        "swir_window",
        "swir_max_switches",
        "fork_temperature",
        "fork_threshold",
    } == owners
    assert DecodeConfig(noise="GUMBEL").noise == "gumbel" and DecodeConfig(noise=None).noise == "none"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DecodeConfig(mode="gated", entropy_threshold=0.672).entropy_threshold == 0.672


def test_a_param_is_declared_once():
    class Copycat(DecodeRule):
        params = (RuleParam("max_topk", int, 3, "again", positive_int, "must be an int >= 1", "Use 3."),)

    with pytest.raises(ValueError, match="already declared by another mode"):
        register_rule("copycat")(Copycat)
    assert "copycat" not in available_modes()


def test_rule_fields_types_match_the_registered_builtin_params():
    # RuleFields gives type checkers the fields the registry adds to DecodeConfig: same names, same types.
    import typing

    from softthink.decoding.rules import rule_class
    from softthink.decoding.rules.fields import RuleFields

    declared = typing.get_type_hints(RuleFields)
    rules = [rule_class(mode) for mode in available_modes()]
    builtin = {
        p.name: p.type for r in rules if r.__module__.startswith("softthink.") for p in r.__dict__.get("params", ())
    }
    assert declared == builtin
    assert issubclass(DecodeConfig, RuleFields)
    assert not dataclasses.is_dataclass(RuleFields)
    config = DecodeConfig(max_topk=3)
    assert config.max_topk == 3
    assert set(declared) <= {f.name for f in dataclasses.fields(DecodeConfig)}
