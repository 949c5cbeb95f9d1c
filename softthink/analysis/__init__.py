"""Token-entropy analysis: entropies of texts under a model (teacher-forced) or of generations (from their
traces), forking tokens and corpus statistics, base-vs-policy comparisons, and pictures (plots, HTML).

Typical use::

    from softthink.analysis import token_entropies, entropy_stats, entropy_html, entropy_histogram
    records = token_entropies(model, tokenizer, texts)          # one TokenEntropies per text
    print(entropy_stats(records).format_table())                # p80 threshold, top-20% mass, forking words
    open("tokens.html", "w").write(entropy_html(records))
    entropy_histogram(records).savefig("hist.png")
"""
from softthink.analysis.compare import EntropyComparison, compare_entropies, compare_models
from softthink.analysis.entropy import chunked_entropy, entropy_from_log_probs, entropy_from_logits
from softthink.analysis.forking import (
    DEFAULT_QUANTILE,
    LOW_ENTROPY,
    EntropyStats,
    entropy_stats,
    forking_mask,
    forking_masks,
    forking_threshold,
)
from softthink.analysis.from_generation import from_generation, from_generations
from softthink.analysis.html import entropy_html
from softthink.analysis.plots import (
    comparison_boxplot,
    comparison_histogram,
    comparison_scatter,
    entropy_along_sequence,
    entropy_histogram,
    token_text_figure,
)
from softthink.analysis.records import TokenEntropies
from softthink.analysis.teacher_forced import token_entropies, token_entropies_from_ids

__all__ = [
    "DEFAULT_QUANTILE", "LOW_ENTROPY", "EntropyComparison", "EntropyStats", "TokenEntropies",
    "chunked_entropy", "compare_entropies", "compare_models", "comparison_boxplot", "comparison_histogram",
    "comparison_scatter", "entropy_along_sequence", "entropy_from_log_probs", "entropy_from_logits",
    "entropy_histogram", "entropy_html", "entropy_stats", "forking_mask", "forking_masks", "forking_threshold",
    "from_generation", "from_generations", "token_entropies", "token_entropies_from_ids", "token_text_figure",
]
