"""Token-entropy analysis: entropies of texts under a model (teacher-forced) or of generations (from their
traces), forking tokens and corpus statistics, base-vs-policy comparisons, and pictures (plots, HTML).

Typical use::

    from softthink.analysis import token_entropies, entropy_stats, entropy_html, entropy_histogram
    records = token_entropies(model, tokenizer, texts)          # one TokenEntropies per text
    print(entropy_stats(records).format_table())                # p80 threshold, top-20% mass, forking words
    open("tokens.html", "w").write(entropy_html(records))
    entropy_histogram(records).savefig("hist.png")

Only the entropy maths is imported eagerly (the decoder uses it on every step); the rest, which pulls in
matplotlib, is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from softthink.analysis.entropy import chunked_entropy as chunked_entropy  # re-exported (eager: the decoder uses them)
from softthink.analysis.entropy import entropy_from_log_probs as entropy_from_log_probs
from softthink.analysis.entropy import entropy_from_logits as entropy_from_logits

_LAZY = {
    "softthink.analysis.compare": ("EntropyComparison", "compare_entropies", "compare_models"),
    "softthink.analysis.forking": (
        "DEFAULT_QUANTILE",
        "LOW_ENTROPY",
        "EntropyStats",
        "entropy_stats",
        "forking_mask",
        "forking_masks",
        "forking_threshold",
    ),
    "softthink.analysis.from_generation": ("from_generation", "from_generations"),
    "softthink.analysis.html": ("entropy_html",),
    "softthink.analysis.intervention": ("random_token_ids", "suppress_tokens", "top_forking_token_ids"),
    "softthink.analysis.plots": (
        "comparison_boxplot",
        "comparison_histogram",
        "comparison_scatter",
        "entropy_along_sequence",
        "entropy_histogram",
        "token_text_figure",
    ),
    "softthink.analysis.rank": (
        "RankTrace",
        "compare_rank",
        "effective_rank",
        "effective_rank_curve",
        "generation_rank",
        "hidden_state_rank",
        "rank_entropy_figure",
    ),
    "softthink.analysis.records": ("TokenEntropies",),
    "softthink.analysis.reflection": (
        "DEFAULT_REFLECTION_WORDS",
        "ReflectionTokens",
        "answer_information_gain",
        "compare_reflection",
        "information_peaks",
        "reflection_masks",
        "reflection_token_ids",
    ),
    "softthink.analysis.teacher_forced": ("token_entropies", "token_entropies_from_ids"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = sorted(["chunked_entropy", "entropy_from_log_probs", "entropy_from_logits", *_WHERE])


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'softthink.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
