"""A fake `softthink.generate` for runner tests: no model, deterministic, inspectable."""

from __future__ import annotations

import re

from softthink.decoding.output import Generation, StepTrace
from softthink.eval import Suite, run


def run_with_fake(data: dict, generate_fn, load_model_fn):
    """`softthink.eval.run` of suite dict ``data`` in one process, no progress bar, with a fake generate/load."""
    return run(
        Suite.from_dict(data),
        generate_fn=generate_fn,
        load_model_fn=load_model_fn,
        num_processes=1,
        process_index=0,
        progress=False,
    )


class FakeGenerate:
    """Stands in for `softthink.generate`: answers "compute A+B" questions, correctly in mode ``right_modes``.

    Records every call (prompts and seed) and can raise after ``fail_after`` calls to simulate an interruption.
    """

    def __init__(self, tokenizer, right_modes=("discrete",), fail_after: int | None = None):
        self.tokenizer = tokenizer
        self.right_modes = right_modes
        self.fail_after = fail_after
        self.calls: list[dict] = []

    def __call__(self, model, prompts, tokenizer=None, config=None, seeds=None, max_batch_size=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append(
            {
                "prompts": list(prompts),
                "seed": config.seed,
                "seeds": seeds,
                "config": config,
                "max_batch_size": max_batch_size,
            }
        )
        out = []
        for i, prompt in enumerate(prompts):
            text = (
                prompt
                if isinstance(prompt, str)
                else tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            )
            a, b = map(int, re.findall(r"compute (\d+)\+(\d+)", text)[-1])
            value = a + b if config.mode in self.right_modes else a + b + 1
            thinking = f"{a} plus {b} is {value} (seed {config.seed}, row {i})"
            answer = f"\\boxed{{{value}}}"
            think_n, answer_n = len(thinking), len(answer)
            soft = [config.mode != "discrete" and j % 2 == 0 for j in range(think_n)] + [False] * answer_n
            out.append(
                Generation(
                    text=thinking + answer,
                    thinking_text=thinking,
                    answer_text=answer,
                    token_ids=list(range(think_n + answer_n)),
                    prompt=text,
                    prompt_token_ids=[1, 2, 3],
                    think_tokens=think_n,
                    answer_tokens=answer_n,
                    soft_steps=sum(soft),
                    stop_reason="eos",
                    think_end_reason="cold_stop" if config.mode == "soft" and a % 2 else "think_marker",
                    mode=config.mode,
                    trace=StepTrace(
                        token_ids=list(range(think_n + answer_n)),
                        entropy=[0.5] * (think_n + answer_n),
                        soft=soft,
                        thinking=[True] * think_n + [False] * answer_n,
                    ),
                )
            )
        return out
