"""Correctness reward for GRPO, graded by the evaluation harness's grader (`softthink.eval.grade`).

The reward is 1.0 when the completion's final answer matches the gold answer and 0.0 otherwise, including when
no answer can be extracted from it (a model that writes no answer earns nothing; that is the learning signal).
What is *not* a zero reward but an error: a completion that is neither text nor a chat message, and a missing
gold answer. Each batch also logs ``accuracy`` and ``unparsed_fraction`` through trl's ``log_metric``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from softthink.errors import SoftthinkDataError, SoftthinkInputError

GradeFn = Callable[[str, str], Any]
"""``grade(completion_text, gold_answer)`` -> object with ``.correct: bool``, ``.extracted: str | None``, ``.rule``."""


def completion_text(completion: Any) -> str:
    """The text of one trl completion: a string, or a conversational list of messages (their contents joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, dict) and "content" in m for m in completion):
        parts = []
        for message in completion:
            content = message["content"]
            if isinstance(content, list):  # content blocks: keep the text ones
                content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
            if not isinstance(content, str):
                raise SoftthinkInputError(
                    f"cannot read the reward's completion: message content is {type(content).__name__}, expected "
                    "text. The correctness reward grades text completions only."
                )
            parts.append(content)
        return "".join(parts)
    raise SoftthinkInputError(
        f"cannot read the reward's completion of type {type(completion).__name__}: expected a string or a list of "
        "chat messages ({'role': ..., 'content': ...}). Check the dataset's 'prompt' column format."
    )


class CorrectnessReward:
    """trl reward function: 1.0 if ``grade(completion, answer).correct`` else 0.0.

    ``grade`` defaults to `softthink.eval.grade`, imported when first called. The dataset must have an ``answer``
    column (trl passes dataset columns to reward functions as keyword arguments).
    """

    __name__ = "correctness"

    def __init__(self, grade: GradeFn | None = None):
        self._grade = grade

    @property
    def grade(self) -> GradeFn:
        if self._grade is None:
            from softthink.eval import grade  # lazy: the eval package is heavy and optional for the maths tests

            self._grade = grade
        return self._grade

    def __call__(
        self, prompts: list, completions: list, answer: list | None = None, log_metric=None, **_: Any
    ) -> list[float]:
        if answer is None:
            raise SoftthinkDataError(
                "the correctness reward needs an 'answer' column in the training dataset; "
                "build it with softthink.rl.data.build_dataset()."
            )
        if len(answer) != len(completions):
            raise SoftthinkDataError(f"{len(completions)} completions but {len(answer)} answers.")
        rewards, unparsed = [], 0
        for completion, gold in zip(completions, answer):
            if gold is None or str(gold).strip() == "":
                raise SoftthinkDataError("a training example has an empty gold answer; every problem needs one.")
            result = self.grade(completion_text(completion), str(gold))
            rewards.append(1.0 if result.correct else 0.0)
            unparsed += result.extracted is None
        if log_metric is not None and rewards:
            log_metric("accuracy", sum(rewards) / len(rewards))
            log_metric("unparsed_fraction", unparsed / len(rewards))
        return rewards
