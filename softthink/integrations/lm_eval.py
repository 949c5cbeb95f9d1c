"""The ``softthink`` model of lm-evaluation-harness (optional extra: ``pip install softthink[lmeval]``).

    python -m softthink.integrations.lm_eval run --model softthink \\
        --model_args pretrained=PATH,mode=soft,think_end='</think>' --tasks gsm8k --batch_size 8

``generate_until`` requests are decoded by `softthink.generate` (batched per identical generation settings, stop
sequences honoured); log-likelihood requests go to lm-eval's own HF model (``HFLM``) on the same loaded weights,
so multiple-choice scoring is exactly lm-eval's. lm-eval 0.4 has no plugin mechanism for models: importing this
module registers ``softthink`` in its model registry, and ``python -m softthink.integrations.lm_eval`` is the
lm-eval command line with that registration done (``lm_eval.simple_evaluate(model="softthink", ...)`` works
after ``import softthink.integrations.lm_eval``).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import normalize_gen_kwargs, postprocess_generated_text

import softthink
from softthink.decoding.api import build_config
from softthink.decoding.config import config_field_names
from softthink.errors import SoftthinkConfigError, unknown_name_message

# lm-eval generation kwargs with a DecodeConfig field of the same meaning (the rest are rejected).
_GEN_KWARGS = ("do_sample", "temperature", "top_k", "top_p", "min_p")


@register_model("softthink")
class SoftthinkLM(LM):
    """lm-eval model whose free-form generations come from softthink's decode loop.

    Args:
        pretrained: what `softthink.load_model` accepts (local directory, ``.gguf`` file, Hub id, ``"testbed"``).
        mode: softthink decode mode (``soft``, ``discrete``, ``gated``, ...).
        config: a decode preset name or YAML path to start from.
        batch_size: prompts decoded together (also lm-eval's HF batch size for log-likelihoods).
        max_gen_toks: default generation length when a task does not set one.
        answer_only: return only the text after the think-end marker (the answer), as lm-eval's
            ``think_end_token`` does; False returns thinking + answer.
        device, dtype: passed to `softthink.load_model` (lm-eval's ``--device``; CUDA falls back to the CPU).
        max_batch_size: accepted because lm-eval's CLI always passes it; unused (no automatic batch size).
        **decode: any other `DecodeConfig` field (``think_end``, ``max_topk``, ``cold_stop_entropy``, ...).
    """

    def __init__(
        self,
        pretrained: str,
        mode: str = "soft",
        config: str | None = None,
        batch_size: int | str = 1,
        max_gen_toks: int = 256,
        answer_only: bool = True,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int | None = None,
        **decode: Any,
    ):
        super().__init__()
        unknown = [k for k in decode if k not in config_field_names()]
        if unknown:
            raise SoftthinkConfigError(
                "softthink model_args: "
                + unknown_name_message(
                    "argument",
                    unknown[0],
                    [
                        "pretrained",
                        "mode",
                        "config",
                        "batch_size",
                        "max_gen_toks",
                        "answer_only",
                        "device",
                        "dtype",
                        *config_field_names(),
                    ],
                ),
                param=unknown[0],
            )
        if str(batch_size).startswith("auto"):
            raise SoftthinkConfigError(
                f"batch_size={batch_size!r}: softthink needs a fixed batch size; use e.g. 8.",
                param="batch_size",
                value=batch_size,
            )
        self.model, self.tokenizer = softthink.load_model(pretrained, device=_available(device), dtype=dtype)
        self.config = build_config(config, mode, {**decode, "chat_template": False})
        self.batch_size = int(batch_size)
        self.max_gen_toks = int(max_gen_toks)
        self.answer_only = bool(answer_only)
        self.hf = HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=self.batch_size)

    # --- free-form generation: softthink -----------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Decode every request's context with softthink; batches share identical generation kwargs."""
        results: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(index)
        for indices in groups.values():
            gen_kwargs = requests[indices[0]].args[1]
            cfg, until = self.decode_config(gen_kwargs)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                contexts = [requests[i].args[0] for i in chunk]
                generations = softthink.generate(self.model, contexts, tokenizer=self.tokenizer, config=cfg)
                for i, context, generation in zip(chunk, contexts, generations):
                    results[i] = self.response_text(generation, until)
                    self.cache_hook.add_partial("generate_until", (context, gen_kwargs), results[i])
        return results

    def decode_config(self, gen_kwargs: dict[str, Any]):
        """The `DecodeConfig` for one lm-eval ``gen_kwargs`` dict, and its stop sequences."""
        kwargs = dict(normalize_gen_kwargs(gen_kwargs, self.max_gen_toks))
        until = [s for s in kwargs.pop("until", None) or [] if s]
        overrides: dict[str, Any] = {"max_new_tokens": kwargs.pop("max_gen_toks"), "stop_strings": until}
        if not kwargs.get("do_sample"):  # greedy: lm-eval's temperature 0.0 means "no sampling", not a value
            kwargs.pop("temperature", None)
        for name in _GEN_KWARGS:
            if name in kwargs:
                overrides[name] = kwargs.pop(name)
        if kwargs:
            raise SoftthinkConfigError(
                f"gen_kwargs {sorted(kwargs)} are not supported by the softthink model (supported: until, "
                f"max_gen_toks, {', '.join(_GEN_KWARGS)}). Remove them from the task's generation_kwargs or "
                "--gen_kwargs.",
                param="gen_kwargs",
                value=sorted(kwargs),
            )
        return self.config.replace(**overrides), until

    def response_text(self, generation, until: list[str]) -> str:
        """What lm-eval grades: the answer (or the whole text), cut at the first stop sequence."""
        if self.answer_only and generation.think_tokens:
            text = generation.answer_text.lstrip()  # as lm-eval strips the text after its think_end_token
        else:
            text = generation.text
        return postprocess_generated_text(text, until, None)

    # --- scoring: lm-eval's own HF model -----------------------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self.hf.loglikelihood(requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        return self.hf.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    # --- chat templates: as lm-eval's HF model ------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.hf.apply_chat_template(chat_history, add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        return self.hf.tokenizer_name

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self.hf.chat_template(chat_template)


def _available(device: str | None) -> str | None:
    """lm-eval's CLI passes ``device="cuda"`` by default; like its HF model, fall back to the CPU without CUDA."""
    import torch

    if device and str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"device={device!r} but CUDA is not available; using the CPU.", RuntimeWarning, stacklevel=3)
        return "cpu"
    return device


def main(argv: list[str] | None = None) -> None:
    """lm-eval's command line with the ``softthink`` model registered."""
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
