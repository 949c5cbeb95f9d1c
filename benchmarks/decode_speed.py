"""Decode speed: model.generate (greedy) vs softthink discrete / soft / gated, on the same model and prompts.

`discrete` is greedy; `discrete_sampled` samples with Soft Thinking's filter chain (T, top-k, top-p, min-p), the
per-step filtering every soft step also pays, so `soft / discrete_sampled` isolates the cost of feeding a mixture.

Prints generated tokens per second (median of --repeats runs, methods interleaved so that machine noise hits all
of them alike) and ratios: softthink discrete / model.generate, and every other mode / discrete. Every row decodes
--max-new-tokens steps, past its EOS (``ignore_eos``; ``min_new_tokens`` for model.generate), so that every method
does the same work: otherwise modes that decode different tokens end rows at different steps and the ratio mixes
per-step cost with batch shrinkage. ``--stop-at-eos`` times the natural lengths instead.

  python benchmarks/decode_speed.py --smollm2 PATH.gguf    # tiny random Llama + SmolLM2-135M, batch 1 and 8
  python benchmarks/decode_speed.py --models tiny --repeats 3
  python benchmarks/decode_speed.py --device cuda --arch qwen2.5-1.5b llama3-8b --batch-sizes 1 16 64 --out r/h200
  python benchmarks/decode_speed.py --device cpu --arch qwen2.5-0.5b --batch-sizes 1 2 --max-new-tokens 8

SmolLM2-135M-Instruct is the GGUF file given by --smollm2, else by $SOFTTHINK_SMOLLM2. ``--arch`` builds random-init
models of real sizes from the shapes in benchmarks/archs.py (no download), bf16 on CUDA by default, and times
model.generate and softthink discrete / soft / gated (``--methods``), plus vLLM discrete greedy when vLLM is
installed and the device is CUDA. ``--compile`` adds the compiled variants: model.generate with a static cache
(which transformers compiles on CUDA), and softthink's with ``compile=True`` when softthink has that option (else
they are reported as skipped).

Every run also reports its share of the bandwidth bound (benchmarks/bandwidth.py): weight + KV bytes a step reads,
over the matrix-vector bandwidth the script measures on the device. ``--out STEM`` writes STEM.json (every
number, with the run's settings and versions) and STEM.md (the table).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import transformers

import softthink
from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however the script is started
from archs import ARCHS, build_random_model, save_config_folder  # noqa: E402
from bandwidth import bound_tokens_per_second, matvec_bandwidth, synchronize  # noqa: E402

SMOLLM2_ENV = "SOFTTHINK_SMOLLM2"
PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did she sell altogether?",
    "What is 15 + 27?",
    "A train travels 60 miles per hour for 3 hours. How far does it go?",
    "Write a short sentence about the sea.",
    "If x + 3 = 10, what is x?",
    "List three prime numbers.",
    "Tom has 5 apples and eats 2. How many are left?",
    "Explain why the sky is blue in one sentence.",
]
# One marker string for every softthink mode, so all pay for the same thinking-phase bookkeeping. SmolLM2 has no
# single-token </think>, so this is a multi-token marker matched on text (the costlier path).
SAMPLING = dict(top_p=0.95, top_k=30, min_p=0.001, temperature=0.6)  # Soft Thinking's released filter chain
SOFT = dict(SAMPLING, mode="soft", max_topk=10)


METHODS = {  # decode settings of each timed method (None: transformers' model.generate, greedy)
    "model.generate": None,
    "discrete": dict(mode="discrete"),
    # sampled discrete decoding with Soft Thinking's filter chain: the same per-step filtering a soft step pays
    "discrete_sampled": dict(SAMPLING, mode="discrete", do_sample=True),
    "soft": SOFT,
    "gated": dict(SOFT, mode="gated", entropy_threshold=0.672, do_sample=True),
    "mixture_of_inputs": dict(SOFT, mode="mixture_of_inputs", do_sample=True),
    "swir": dict(SOFT, mode="swir", swir_window=16),
    "multiplex": dict(SAMPLING, mode="multiplex", do_sample=True, multiplex_k=3),
    "forking_temperature": dict(
        mode="forking_temperature", do_sample=True, temperature=0.6, top_p=0.95, top_k=30, fork_temperature=1.0
    ),
}


def timed_methods(model, tokenizer, max_new_tokens: int, marker: str) -> dict[str, Callable]:
    """``{method: prompts -> (generated tokens, seconds)}`` for every entry of `METHODS`."""

    def method(settings: dict | None) -> Callable:
        if settings is None:
            return lambda prompts: time_hf(model, tokenizer, prompts, max_new_tokens)
        return lambda prompts: time_softthink(
            model, tokenizer, prompts, max_new_tokens, dict(settings, think_end=marker)
        )

    return {name: method(settings) for name, settings in METHODS.items()}


ARCH_METHODS = ["model.generate", "discrete", "soft", "gated"]
"""The methods timed by default for ``--arch`` models."""
COMPILED_SUFFIX = "+compile"


def load(name: str, smollm2_path: str | None, device: torch.device, dtype: torch.dtype):
    """``(model, tokenizer)`` of a ``--models`` name or an ``--arch`` name, on ``device``."""
    if name in ARCHS:
        return build_random_model(name, device=device, dtype=dtype), build_tiny_tokenizer()
    if name == "tiny":
        return build_tiny_model("llama", dtype=dtype).to(device), build_tiny_tokenizer()  # type: ignore[arg-type]
    return softthink.load_model(smollm2_path, device=device, dtype=dtype)


def encode_prompts(model, tokenizer, prompts):
    """The prompts as softthink renders them (chat template), tokenized and left-padded for model.generate."""
    rendered = [
        g.prompt for g in softthink.generate(model, prompts, tokenizer=tokenizer, mode="discrete", max_new_tokens=1)
    ]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)


FIXED_LENGTH = True
"""Every row decodes ``max_new_tokens`` steps (softthink ``ignore_eos=True``, model.generate ``min_new_tokens``), so
that every method times the same number of steps at the same batch size; `--stop-at-eos` turns it off."""


def time_hf(model, tokenizer, prompts, max_new_tokens, **generate_kwargs) -> tuple[int, float]:
    enc = encode_prompts(model, tokenizer, prompts)
    if FIXED_LENGTH:
        generate_kwargs = dict(generate_kwargs, min_new_tokens=max_new_tokens)
    synchronize(model.device)
    start = time.perf_counter()
    out = model.generate(
        **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id, **generate_kwargs
    )
    synchronize(model.device)
    elapsed = time.perf_counter() - start
    new = out[:, enc.input_ids.shape[1] :]
    eos = softthink.decoding.api.eos_token_ids(model, tokenizer)
    # Count real tokens: up to and including the first EOS of each row (model.generate pads the rest).
    count = 0
    for row in new.tolist():
        stop = next((i for i, t in enumerate(row) if t in eos), len(row) - 1)
        count += stop + 1
    return count, elapsed


def time_softthink(model, tokenizer, prompts, max_new_tokens, settings) -> tuple[int, float]:
    synchronize(model.device)
    start = time.perf_counter()
    gens = softthink.generate(
        model,
        prompts,
        tokenizer=tokenizer,
        max_new_tokens=max_new_tokens,
        trace=False,
        ignore_eos=FIXED_LENGTH,
        **settings,
    )
    return sum(g.num_tokens for g in gens), time.perf_counter() - start


def softthink_compile_option() -> str | None:
    """The name of softthink's compile switch (a `DecodeConfig` field), or None while it has none."""
    names = {f.name for f in dataclasses.fields(softthink.DecodeConfig)}
    return "compile" if "compile" in names else None


def compiled_methods(model, tokenizer, max_new_tokens: int, marker: str, names: list[str]) -> dict[str, Callable]:
    """``{name+compile: fn}``: model.generate with a static cache (transformers compiles its forward on CUDA), and
    the softthink methods with softthink's compile option, when it exists."""
    option = softthink_compile_option()
    out: dict[str, Callable] = {}
    for name in names:
        settings = METHODS[name]
        if settings is None:  # named +static_cache where transformers does not compile (off CUDA)
            suffix = COMPILED_SUFFIX if model.device.type == "cuda" else "+static_cache"
            out[name + suffix] = lambda prompts: time_hf(
                model, tokenizer, prompts, max_new_tokens, cache_implementation="static"
            )
        elif option is not None:
            compiled = dict(settings, think_end=marker, **{option: True})
            out[name + COMPILED_SUFFIX] = lambda prompts, s=compiled: time_softthink(
                model, tokenizer, prompts, max_new_tokens, s
            )
    return out


def vllm_method(arch: str, dtype: torch.dtype, max_new_tokens: int, args) -> Callable | str:
    """A timed vLLM discrete greedy decode (prompt token ids -> (tokens, seconds)) of a random-init ``arch``
    (``load_format="dummy"``: no weights on disk), or why there is none."""
    try:
        import vllm
    except ImportError:
        return "skipped: vLLM is not installed"
    folder = save_config_folder(arch, tempfile.mkdtemp(prefix=f"decode-speed-{arch}-"), dtype)
    llm = vllm.LLM(
        model=str(folder),
        load_format="dummy",
        skip_tokenizer_init=True,
        dtype=str(dtype).removeprefix("torch."),
        gpu_memory_utilization=args.vllm_memory,
        enforce_eager=args.vllm_eager,
        max_model_len=max_new_tokens + 512,
        seed=0,
    )
    params = vllm.SamplingParams(max_tokens=max_new_tokens, temperature=0.0, ignore_eos=True, detokenize=False)

    def run(prompt_ids: list[list[int]]) -> tuple[int, float]:
        inputs = [{"prompt_token_ids": ids} for ids in prompt_ids]
        start = time.perf_counter()
        outs = llm.generate(inputs, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - start

    run.llm = llm  # type: ignore[attr-defined]  (kept alive with the function; freed with it)
    return run


def time_batch(methods: dict[str, Callable], prompts: list, repeats: int) -> dict[str, list[float]]:
    """Tokens/s of each method over ``repeats`` runs after one warm-up, methods interleaved so that machine noise
    hits all of them alike."""
    for fn in methods.values():
        fn(prompts)  # warm-up (and compilation)
    rates: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(repeats):
        for method, fn in methods.items():
            tokens, seconds = fn(prompts)
            rates[method].append(tokens / seconds)
    return rates


def batch_prompts(batch: int) -> list[str]:
    return (PROMPTS * (batch // len(PROMPTS) + 1))[:batch]


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_model(name: str, args, device: torch.device, dtype: torch.dtype, bandwidth: float) -> Iterator[list[dict]]:
    """The (batch, method) rows of one model, in two parts: transformers and softthink, then vLLM (each part
    yielded as soon as it is measured)."""
    model, tokenizer = load(name, args.smollm2, device, dtype)
    marker = "</think>" if name == "smollm2" else "auto"
    names = args.methods or (ARCH_METHODS if name in ARCHS else list(METHODS))
    methods = {m: fn for m, fn in timed_methods(model, tokenizer, args.max_new_tokens, marker).items() if m in names}
    skipped = {}
    if args.compile:
        methods.update(compiled_methods(model, tokenizer, args.max_new_tokens, marker, names))
        if softthink_compile_option() is None:
            skipped["softthink" + COMPILED_SUFFIX] = "skipped: softthink has no compile option yet"
    element = torch.empty((), dtype=dtype).element_size()
    encoded = {b: encode_prompts(model, tokenizer, batch_prompts(b)) for b in args.batch_sizes}
    # the same rendered prompts, unpadded, for vLLM (which runs after this model is freed)
    prompt_ids = {
        b: [ids[mask.bool()].tolist() for ids, mask in zip(e.input_ids, e.attention_mask)] for b, e in encoded.items()
    }
    bounds = {
        b: bound_tokens_per_second(model, bandwidth, [len(ids) for ids in prompt_ids[b]], args.max_new_tokens, element)
        for b in args.batch_sizes
    }
    rows = []

    def add(batch: int, method: str, rates: list[float]) -> None:
        rate = statistics.median(rates)
        rows.append(
            dict(
                model=name,
                batch=batch,
                method=method,
                tokens_per_s=rate,
                runs=rates,
                bound_tokens_per_s=bounds[batch],
                bound_share=rate / bounds[batch],
            )
        )

    for batch in args.batch_sizes:
        for method, rates in time_batch(methods, batch_prompts(batch), args.repeats).items():
            add(batch, method, rates)
        print_rows([r for r in rows if r["batch"] == batch])
    yield rows + [dict(model=name, method=m, skipped=why) for m, why in skipped.items()]
    del model, methods
    free(device)
    if name not in ARCHS or args.no_vllm:
        return
    rows = []
    if device.type != "cuda":
        yield [dict(model=name, method="vllm", skipped="skipped: vLLM runs only with --device cuda")]
        return
    try:
        vllm_fn = vllm_method(name, dtype, args.max_new_tokens, args)
        if isinstance(vllm_fn, str):
            yield [dict(model=name, method="vllm", skipped=vllm_fn)]
            return
        for batch in args.batch_sizes:
            add(batch, "vllm", time_batch({"vllm": vllm_fn}, prompt_ids[batch], args.repeats)["vllm"])
        print_rows(rows)
    except Exception as err:  # vLLM's failure is reported in the results, and the other rows are kept
        rows.append(dict(model=name, method="vllm", skipped=f"failed: {type(err).__name__}: {err}"))
    vllm_fn = None  # the engine (and its GPU memory) goes before the next model loads
    free(device)
    yield rows


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        print(
            f"{r['model']:14s} batch {r['batch']:3d} {r['method']:22s} {r['tokens_per_s']:9.1f} tok/s "
            f"({100 * r['bound_share']:.0f}% of the bandwidth bound)",
            flush=True,
        )


def markdown(rows: list[dict], meta: dict) -> str:
    """The table of every timed row: tokens/s, ratios to model.generate, to discrete and discrete_sampled on the
    same path (a compiled method against the compiled discrete one), compiled against eager, share of the bound."""
    timed = [r for r in rows if "skipped" not in r]
    by_key = {(r["model"], r["batch"], r["method"]): r["tokens_per_s"] for r in timed}
    lines = [
        "| model | batch | method | tok/s | / model.generate | / discrete | / discrete_sampled | / eager | "
        "bound tok/s | share of bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(r: dict, base: str) -> str:
        value = by_key.get((r["model"], r["batch"], base))
        return f"{r['tokens_per_s'] / value:.2f}x" if value and base != r["method"] else ""

    for r in timed:
        compiled = r["method"].endswith(COMPILED_SUFFIX)
        path = COMPILED_SUFFIX if compiled else ""
        eager = ratio(r, r["method"].removesuffix(COMPILED_SUFFIX)) if compiled else ""
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['method']} | {r['tokens_per_s']:.1f} | "
            f"{ratio(r, 'model.generate')} | {ratio(r, 'discrete' + path)} | {ratio(r, 'discrete_sampled' + path)} | "
            f"{eager} | {r['bound_tokens_per_s']:.1f} | {100 * r['bound_share']:.0f}% |"
        )
    lines += [f"\n{r['model']} {r['method']}: {r['skipped']}" for r in rows if "skipped" in r]
    lines.append(
        f"\nmedian of {meta['repeats']} interleaved runs, "
        f"{meta['max_new_tokens']} new tokens {'per row' if meta.get('fixed_length') else 'max'}, "
        f"{meta['device']} {meta['dtype']}, matvec bandwidth {meta['bandwidth_gb_s']:.1f} GB/s, "
        f"torch {meta['torch']}, transformers {meta['transformers']}"
    )
    return "\n".join(lines)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=["tiny", "smollm2"],
        help="tiny random Llama / SmolLM2-135M (default: both, unless --arch is given)",
    )
    parser.add_argument(
        "--arch",
        nargs="+",
        default=[],
        choices=sorted(ARCHS),
        help="random-init models of these real shapes (benchmarks/archs.py)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        help=f"methods to time (default: {' '.join(ARCH_METHODS)} for --arch, all for --models)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], help="default bfloat16 on CUDA, float32 on CPU"
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time the compiled variants")
    parser.add_argument(
        "--stop-at-eos",
        action="store_true",
        help="rows stop at their EOS (default: every row decodes --max-new-tokens steps, the same work per method)",
    )
    parser.add_argument("--no-vllm", action="store_true", help="skip vLLM even when it is installed")
    parser.add_argument("--vllm-memory", type=float, default=0.4, help="vLLM gpu_memory_utilization")
    parser.add_argument("--vllm-eager", action="store_true", help="vLLM without CUDA graphs / compilation")
    parser.add_argument(
        "--bandwidth-mib", type=int, help="matrix size of the bandwidth probe (default 1024 on CUDA, 256 on CPU)"
    )
    parser.add_argument("--out", help="write OUT.json and OUT.md")
    parser.add_argument(
        "--smollm2",
        default=os.environ.get(SMOLLM2_ENV),
        help=f"SmolLM2-135M-Instruct GGUF file (default: ${SMOLLM2_ENV})",
    )
    args = parser.parse_args()
    if args.models is None:
        args.models = [] if args.arch else ["tiny", "smollm2"]
    if "smollm2" in args.models and not args.smollm2:
        parser.error(
            f"--models smollm2 needs the model file: pass --smollm2 PATH.gguf or set {SMOLLM2_ENV}=PATH.gguf "
            "(or drop smollm2 from --models)."
        )
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device here.")
    return args


def main() -> None:
    args = parse_args()
    global FIXED_LENGTH
    FIXED_LENGTH = not args.stop_at_eos
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    mib = args.bandwidth_mib or (1024 if device.type == "cuda" else 256)
    bandwidth = matvec_bandwidth(device, dtype, mib)
    meta = dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        dtype=str(dtype).removeprefix("torch."),
        bandwidth_gb_s=bandwidth / 1e9,
        bandwidth_probe_mib=mib,
        batch_sizes=args.batch_sizes,
        max_new_tokens=args.max_new_tokens,
        repeats=args.repeats,
        threads=args.threads,
        compile=args.compile,
        fixed_length=FIXED_LENGTH,
        torch=torch.__version__,
        transformers=transformers.__version__,
    )
    print(f"matvec bandwidth: {bandwidth / 1e9:.1f} GB/s ({mib} MiB {meta['dtype']} matrix on {device})", flush=True)
    rows = []
    for name in [*args.models, *args.arch]:
        for part in run_model(name, args, device, dtype, bandwidth):
            rows += part
            if args.out:  # after every part, so that a run cut short keeps what it measured
                write(args.out, meta, rows)
    print("\n" + markdown(rows, meta))
    if args.out:
        print("wrote " + " and ".join(map(str, out_paths(args.out))))


def out_paths(out: str) -> tuple[Path, Path]:
    """``(OUT.json, OUT.md)``; OUT may name either file (``results/qwen2.5-1.5b`` keeps its dots)."""
    stem = out.removesuffix(".json").removesuffix(".md")
    return Path(stem + ".json"), Path(stem + ".md")


def write(out: str, meta: dict, rows: list[dict]) -> None:
    """OUT.json (settings, versions and every row) and OUT.md (the table)."""
    json_path, md_path = out_paths(out)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    md_path.write_text(markdown(rows, meta) + "\n")


if __name__ == "__main__":
    main()
