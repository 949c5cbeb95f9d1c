"""The decode cases of the tensor-parallel test, and the ``torchrun`` worker that runs them on a sharded model.

``torchrun --nproc_per_node 2 tests/scale/tp_worker.py MODEL_DIR OUT_DIR`` loads MODEL_DIR with
``load_model(tp_plan="auto")`` on every process and writes what each process decoded to ``OUT_DIR/rank<r>.json``;
`decode_cases` is also what the test runs in one process, on the unsharded model, to compare.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import softthink
from softthink.cli.main import main as cli_main

PROMPTS = ["What is 3*4?", "hi", "a longer prompt than the others, to force padding"]
COMMON: dict[str, Any] = dict(max_new_tokens=16, answer_do_sample=False)
CLI_ARGS = ["generate", "--mode", "soft", "--set", "max_new_tokens=16", "--json", PROMPTS[0]]
"""`softthink generate` arguments the worker also runs with ``--tp-plan auto`` (model path added)."""
CASES: dict[str, dict[str, Any]] = {
    "discrete_greedy": dict(mode="discrete"),
    "soft_greedy": dict(mode="soft", max_topk=5),
    "gated_greedy": dict(mode="gated", entropy_threshold=1.0, max_topk=4),
    "discrete_sampled": dict(mode="discrete", do_sample=True, temperature=1.0, top_k=20, seed=3),
    "soft_sampled": dict(mode="soft", do_sample=True, noise="dirichlet", dirichlet_alpha=2.0, max_topk=5, seed=3),
}


def decode_cases(model, tokenizer) -> dict[str, list[dict[str, Any]]]:
    """``{case: [per prompt: {"token_ids", "kept_ids", "kept_weights"}]}`` for every case of `CASES`."""
    out = {}
    for name, settings in CASES.items():
        gens = softthink.generate(model, PROMPTS, tokenizer=tokenizer, **COMMON, **settings)
        out[name] = [
            {"token_ids": g.token_ids, "kept_ids": g.trace.kept_ids, "kept_weights": g.trace.kept_weights} for g in gens
        ]
    return out


def main(model_dir: str, out_dir: str) -> None:
    model, tokenizer = softthink.load_model(model_dir, tp_plan="auto")
    weight = model.model.layers[0].self_attn.q_proj.weight
    result = {
        "world_size": int(os.environ["WORLD_SIZE"]),
        # the local shard of one colwise weight: proves the model really is split over the processes
        "q_proj_local_rows": int(weight.to_local().shape[0]) if hasattr(weight, "to_local") else None,
        "q_proj_rows": int(weight.shape[0]),
        "cases": decode_cases(model, tokenizer),
    }
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result["cli_exit"] = cli_main([*CLI_ARGS, "--model", model_dir, "--tp-plan", "auto"])
    result["cli_stdout"] = printed.getvalue()
    Path(out_dir, f"rank{os.environ['RANK']}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])
