"""Token entropy of texts under a model: statistics, forking vs execution words, coloured tokens and plots.

FILE_OR_TEXT is a .txt file (one text), a .jsonl file (one text per line, in --field; with --prompt-field only
the completion is scored), or the text itself. Forking tokens are the top --quantile of tokens by entropy
(default 0.2, i.e. above the 80th percentile) or those above --threshold nats.

examples:
  softthink analyze --model testbed "The quick brown fox jumps over the lazy dog."
  softthink analyze --model HuggingFaceTB/SmolLM2-135M-Instruct essay.txt --out runs/entropy
  softthink analyze --model base/ --compare rl-policy/ gens.jsonl --field completion --prompt-field prompt \\
      --out runs/base-vs-rl
Writes into --out: stats.json (with the resolved settings), entropies.jsonl, tokens.html, tokens.png,
histogram.png, sequence.png, and with --compare: comparison.json, comparison_scatter.png, comparison_box.png,
comparison_hist.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from softthink.errors import SoftthinkDataError, SoftthinkInputError
from softthink.figures import save_figure

HELP = "token entropy of texts: forking tokens, statistics, coloured-token HTML/PNG and plots"
_FILE_SUFFIXES = (".txt", ".jsonl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="FILE_OR_TEXT", help="a .txt or .jsonl file, or the text itself")
    parser.add_argument(
        "--model",
        required=True,
        help="what softthink.load_model accepts: HF directory, Hub id, .gguf file or 'testbed'",
    )
    parser.add_argument("--tokenizer", help="tokenizer to use instead of the model's (directory, Hub id or .gguf)")
    parser.add_argument(
        "--compare",
        metavar="MODEL",
        help="a second model (e.g. the RL policy) scored on the same texts; forking positions "
        "are defined under --model",
    )
    select = parser.add_mutually_exclusive_group()
    select.add_argument("--quantile", type=float, help="share of tokens called forking (default 0.2)")
    select.add_argument("--threshold", type=float, help="call tokens above this entropy (nats) forking")
    parser.add_argument("--out", type=Path, help="directory for stats.json, HTML, PNG and plots")
    parser.add_argument("--field", default="text", help="text field of .jsonl records (default: text)")
    parser.add_argument("--prompt-field", help="prompt field of .jsonl records: context that is not scored")
    parser.add_argument("--limit", type=int, help="analyse only the first N texts")
    parser.add_argument("--batch-size", type=int, default=8, help="texts per forward pass (default 8)")
    parser.add_argument(
        "--max-length",
        type=int,
        help="cut each text to this many tokens, with a warning (default: no cut; a text longer than the model's "
        "context is then an error: pass the context length here to cut it instead)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=512, help="positions whose logits are held at once (default 512)"
    )
    parser.add_argument(
        "--method",
        choices=("auto", "head", "forward"),
        default="auto",
        help="entropy path (see softthink.analysis.token_entropies; default auto)",
    )
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--dtype", help="float32, bfloat16, ... (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--words", type=int, default=15, help="forking/execution words to list (default 15)")
    parser.add_argument("--html-texts", type=int, default=20, help="texts shown in tokens.html (default 20)")


def read_texts(
    source: str, *, field: str = "text", prompt_field: str | None = None, limit: int | None = None
) -> tuple[list[str], list[str] | None, str]:
    """(texts, prompts or None, description) from a .txt/.jsonl path or a literal text."""
    if limit is not None and limit < 1:
        raise SoftthinkInputError(f"--limit must be >= 1, got {limit}.")
    path = Path(source) if _is_file(source) else None
    if path is None and source.endswith(_FILE_SUFFIXES) and "\n" not in source:
        raise SoftthinkInputError(
            f"file {source} does not exist. Pass an existing .txt/.jsonl file, or the text "
            "itself (a text that looks like a file name is not analysed as text)."
        )
    if path is None:
        if prompt_field:
            raise SoftthinkInputError("--prompt-field needs a .jsonl file; a literal text has no prompt.")
        return [source], None, "text given on the command line"
    if path.suffix != ".jsonl":
        if prompt_field:
            raise SoftthinkInputError(f"--prompt-field needs a .jsonl file, got {source}.")
        return [path.read_text(encoding="utf-8")], None, str(path)
    texts, prompts = [], []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if limit is not None and len(texts) >= limit:
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise SoftthinkDataError(f"{path}:{lineno} is not valid JSON ({err.msg}).") from err
            for name in filter(None, (field, prompt_field)):
                if not isinstance(record, dict) or not isinstance(record.get(name), str):
                    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                    raise SoftthinkDataError(
                        f"{path}:{lineno} has no string field {name!r} (fields: {keys}). "
                        f"Name the right field with --field / --prompt-field."
                    )
            texts.append(record[field])
            if prompt_field:
                prompts.append(record[prompt_field])
    if not texts:
        raise SoftthinkDataError(f"{path} holds no records.")
    return texts, (prompts if prompt_field else None), str(path)


def _is_file(source: str) -> bool:
    try:
        return "\n" not in source and Path(source).is_file()
    except (OSError, ValueError):  # a long text is "File name too long"; a NUL byte is a ValueError
        return False


def load(spec: str, tokenizer: str | None = None, *, device: str | None = None, dtype: str | None = None):
    """(model, tokenizer) for --model / --tokenizer, through `softthink.load_model`."""
    import softthink

    model, tok = softthink.load_model(spec, device=device, dtype=dtype)
    if tokenizer:
        from softthink.models import load_tokenizer

        tok = load_tokenizer(tokenizer)
    return model, tok


def run(args: argparse.Namespace) -> int:
    from softthink.analysis import compare_entropies, entropy_stats, forking_threshold, token_entropies
    from softthink.analysis.forking import resolve_selection

    quantile, threshold = resolve_selection(args.quantile, args.threshold)
    texts, prompts, described = read_texts(
        args.input, field=args.field, prompt_field=args.prompt_field, limit=args.limit
    )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}
    settings.update(quantile=quantile, threshold=threshold, input=described, n_texts=len(texts))
    print("softthink analyze", json.dumps(settings))
    scoring = dict(
        prompts=prompts,
        batch_size=args.batch_size,
        max_length=args.max_length,
        chunk_size=args.chunk_size,
        method=args.method,
    )

    model, tok = load(args.model, args.tokenizer, device=args.device, dtype=args.dtype)
    records = token_entropies(model, tok, texts, **scoring)
    stats = entropy_stats(records, quantile=quantile, threshold=threshold)
    print(f"\n== {args.model}\n{stats.format_table(words=args.words)}")
    comparison = other_stats = None
    if args.compare:
        del model
        other_model, _ = load(args.compare, args.tokenizer, device=args.device, dtype=args.dtype)
        other = token_entropies(other_model, tok, texts, **scoring)
        other_stats = entropy_stats(other, quantile=quantile, threshold=threshold)
        comparison = compare_entropies(
            records,
            other,
            quantile=quantile,
            threshold=threshold,
            names=(Path(args.model).name or args.model, Path(args.compare).name or args.compare),
        )
        print(f"\n== {args.compare}\n{other_stats.format_table(words=args.words)}\n\n{comparison.format_table()}")
    if args.out:
        cut = threshold if threshold is not None else forking_threshold(records, quantile)
        written = write_outputs(args.out, settings, records, stats, cut, args.html_texts, comparison, other_stats)
        print(f"\nwrote {len(written)} files to {args.out}: {', '.join(p.name for p in written)}")
    return 0


def write_outputs(
    out: Path, settings: dict, records, stats, cut: float, html_texts: int, comparison=None, other_stats=None
) -> list[Path]:
    """Write the JSON results and the pictures; return the paths written."""
    from softthink.analysis import (
        comparison_boxplot,
        comparison_histogram,
        comparison_scatter,
        entropy_along_sequence,
        entropy_histogram,
        entropy_html,
        token_text_figure,
    )

    out.mkdir(parents=True, exist_ok=True)
    summary = {"settings": settings, "stats": stats.to_dict()}
    if other_stats is not None:
        summary["stats_compare"] = other_stats.to_dict()
    files = {
        "stats.json": json.dumps(summary, indent=2),
        "entropies.jsonl": "".join(json.dumps(r.to_dict()) + "\n" for r in records),
        "tokens.html": entropy_html(
            records[:html_texts],
            title=f"Token entropy under {settings['model']}",
            quantile=stats.quantile,
            threshold=stats.threshold,
        ),
    }
    if comparison is not None:
        files["comparison.json"] = json.dumps(comparison.summary(), indent=2)
    for name, content in files.items():
        (out / name).write_text(content, encoding="utf-8")
    first = next((r for r in records if len(r)), records[0])
    figures = {
        "tokens.png": token_text_figure(first, title="Token entropy, first text"),
        "histogram.png": entropy_histogram(records, quantile=stats.quantile, threshold=stats.threshold),
        "sequence.png": entropy_along_sequence(first, threshold=cut),
    }
    if comparison is not None:
        figures.update(
            {
                "comparison_scatter.png": comparison_scatter(comparison),
                "comparison_box.png": comparison_boxplot(comparison),
                "comparison_hist.png": comparison_histogram(comparison),
            }
        )
    for name, fig in figures.items():
        save_figure(fig, out / name)
    return [out / name for name in [*files, *figures]]
