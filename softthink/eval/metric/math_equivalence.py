"""Math-equivalence accuracy as an `evaluate` metric, backed by softthink's rule-based grader.

    import evaluate, softthink.eval
    metric = evaluate.load(softthink.eval.metric_path())     # or the path of this file
    metric.compute(predictions=["... so the answer is \\boxed{\\frac{1}{2}}"], references=["0.5"])
    # {'accuracy': 1.0, 'extracted': ['\\frac{1}{2}'], 'rules': ['boxed'], 'correct': [True]}

Predictions are whole completions (the answer is extracted: the last of \\boxed{}, "the answer is" and "####"
statements, else the last number); references are gold answer strings. ``rules`` and ``timeout_seconds`` are the
grader options.
"""

import datasets
import evaluate

_DESCRIPTION = (
    "Accuracy of math answers under mathematical equivalence (math-verify): extraction of the final "
    "answer from a completion, then comparison with the gold answer as numbers, fractions, LaTeX "
    "expressions, sets or intervals, with a per-item timeout."
)
_KWARGS = """
Args:
    predictions (list of str): model completions.
    references (list of str): gold answers.
    rules (list of str, optional): extraction rules to use; default boxed, hash, answer_is, last_number.
    timeout_seconds (float, optional): per-item grading timeout; default 5.
Returns:
    accuracy (float), correct (list of bool), extracted (list of str or None), rules (list of str or None).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MathEquivalence(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, rules=None, timeout_seconds=5.0):
        from softthink.eval.grading import EXTRACTION_RULES, GraderConfig, grade

        config = GraderConfig(rules=tuple(rules or EXTRACTION_RULES), timeout_seconds=timeout_seconds)
        results = [grade(p, r, config) for p, r in zip(predictions, references)]
        correct = [r.correct for r in results]
        return {
            "accuracy": sum(correct) / len(correct) if correct else 0.0,
            "correct": correct,
            "extracted": [r.extracted for r in results],
            "rules": [r.rule for r in results],
        }
