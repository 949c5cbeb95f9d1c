"""The decode loop passes the KV cache under the name the installed transformers wants: no deprecation warning
about ``past_key_values`` (transformers 5 renamed it ``cache``), and the name is chosen from ``forward``'s
signature, so older versions that only know ``past_key_values`` keep working (CI runs the equivalence tests on the
oldest supported transformers too, see ``.ci/run``)."""

import inspect
import warnings

import pytest

import softthink
from softthink.analysis.rank import hidden_state_rank
from softthink.hf_compat import cache_kwarg_name, forward_parameters
from tests.conftest import tiny


def _cache_warnings(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "past_key_values" in str(w.message)]


@pytest.mark.parametrize("mode", ["discrete", "soft"])
def test_generate_raises_no_past_key_values_warning(mode, tiny_tokenizer):
    model = tiny("llama")
    prompts = ["hi", "What is 3*4?"]
    run = lambda: softthink.generate(model, prompts, tokenizer=tiny_tokenizer, mode=mode, max_new_tokens=6)
    assert _cache_warnings(run) == []


def test_hidden_state_rank_raises_no_past_key_values_warning():
    model = tiny("llama")
    assert _cache_warnings(lambda: hidden_state_rank(model, list(range(5, 17)), chunk_size=4)) == []


def test_cache_name_follows_the_installed_forward_signature():
    model = tiny("llama")
    declared = set(inspect.signature(model.forward).parameters)
    expected = "cache" if "cache" in declared else "past_key_values"
    assert cache_kwarg_name(forward_parameters(model)) == expected
    assert cache_kwarg_name({"input_ids", "past_key_values"}) == "past_key_values"
    assert cache_kwarg_name({"input_ids", "cache", "past_key_values"}) == "cache"
