"""Answer extraction and math equivalence: table-driven, plus the grader on gold data."""

from __future__ import annotations

import json
import time

import pytest

from softthink.errors import SoftthinkConfigError
from softthink.eval.grading import GraderConfig, extract_answer, grade, is_equivalent, last_boxed

EXTRACTION_CASES = [
    # text, expected extracted, rule
    ("so the total is \\boxed{42}.", "42", "boxed"),
    ("first \\boxed{1} then \\boxed{\\frac{3}{4}}", "\\frac{3}{4}", "boxed"),
    ("nested \\boxed{\\frac{\\sqrt{2}}{2}} done", "\\frac{\\sqrt{2}}{2}", "boxed"),
    ("\\boxed{x^{2}+1}", "x^{2}+1", "boxed"),
    ("spaced \\boxed {7}", "7", "boxed"),
    ("old style \\boxed 5.", "5", "boxed"),
    ("\\fbox{12}", "12", "boxed"),
    ("good \\boxed{3} then cut \\boxed{x^{2", "3", "boxed"),  # unbalanced last box: the earlier one
    ("Thus, the answer is 18.", "18", "answer_is"),
    ("The answer is **18**.", "18", "answer_is"),
    ("The final answer is $\\frac{1}{2}$.", "\\frac{1}{2}", "answer_is"),
    ("Final Answer: 3.5 dollars", "3.5 dollars", "answer_is"),
    ("calc...\n#### 1,234", "1,234", "hash"),
    ("I think there are 5 apples and 7 pears", "7", "last_number"),
    ("it costs -3.25 now", "-3.25", "last_number"),
    ("no digits here", None, None),
    ("", None, None),
]


@pytest.mark.parametrize("text, extracted, rule", EXTRACTION_CASES)
def test_extraction_rules(text, extracted, rule):
    assert extract_answer(text) == (extracted, rule)


def test_last_statement_wins_among_enabled_rules():
    text = "The answer is 3. \\boxed{4} #### 5"
    assert extract_answer(text) == ("5", "hash")
    assert extract_answer(text, ("answer_is", "boxed")) == ("4", "boxed")
    assert extract_answer(text, ("answer_is",)) == ("3", "answer_is")
    assert extract_answer("So the answer is \\boxed{7}.", ("answer_is",)) == ("7", "answer_is")
    assert extract_answer("maybe 9", ("boxed", "answer_is")) == (None, None)


CORRECTION_CASES = [
    # text, extracted, rule: the last explicit statement is the answer
    ("\\boxed{5}\n\nWait, 2 * 3 = 6, not 5. The correct answer is 6.", "6", "answer_is"),
    ("\\boxed{5}. Actually, the final answer is \\boxed{6}.", "6", "boxed"),
    ("#### 3\nCorrection: the final answer is 4.", "4", "answer_is"),
    ("The answer is 13.\n\n#### 12", "12", "hash"),
    ("The answer is 10.\nI miscounted. So the answer is 12.", "12", "answer_is"),
    # prose after a box that states no value does not replace it
    ("\\boxed{5}. The answer is correct because 5 satisfies the equation.", "5", "boxed"),
    ("\\boxed{9}\nThe answer is in the box above.", "9", "boxed"),
    ("We get \\boxed{44}. We may check our answer: 17 * 44 = 748 = 9 * 83 + 1.", "44", "boxed"),
    ("So the answer is $\\boxed{\\frac{1}{2}}$ cups.", "\\frac{1}{2}", "boxed"),
    ("\\boxed{5}\nWait, the correct answer is **6**.", "6", "answer_is"),  # markdown bold
    ("\\boxed{5}. So the answer is \u22126.", "\u22126", "answer_is"),  # unicode minus
]


@pytest.mark.parametrize("text, extracted, rule", CORRECTION_CASES)
def test_a_later_explicit_correction_wins(text, extracted, rule):
    assert extract_answer(text) == (extracted, rule)


EMPTY_BOX_CASES = [
    ("So the answer is \\boxed{}.", (None, None)),
    ("2 + 2 = 4. So the answer is \\boxed{ }.", (None, None)),  # no last-number rescue after an empty answer
    ("\\boxed{3}\n\nThe answer is \\boxed{}", ("3", "boxed")),
    ("The total is \\boxed{7}. Put the final answer in \\boxed{}.", ("7", "boxed")),
    ("The answer is \\boxed{}\n\nThe answer is 5.", ("5", "answer_is")),
    ("Put your answer in \\boxed{}. I count 8 legs.", ("8", "last_number")),  # an echoed instruction, no statement
    ("The weapon is the\\boxed{{}}\nSo, the answer is 400 feet.", ("400 feet", "answer_is")),
]


@pytest.mark.parametrize("text, expected", EMPTY_BOX_CASES)
def test_an_empty_box_is_no_answer(text, expected):
    assert extract_answer(text) == expected
    assert last_boxed("\\boxed{}") is None


def test_last_number_skips_step_labels_and_reads_exponents():
    assert extract_answer("Step 1: 1 + 2 = 3\nStep 2: 3 * 4 = 12\nStep 3:") == ("12", "last_number")
    assert extract_answer("we get 2.2 cups\nStep 2.1:") == ("2.2", "last_number")
    assert extract_answer("so roughly 6.02e23 molecules") == ("6.02e23", "last_number")


def test_last_boxed_none_without_box():
    assert last_boxed("nothing boxed") is None


EQUIVALENCE_CASES = [
    ("0.5", "\\frac{1}{2}", True),
    ("\\frac12", "\\frac{1}{2}", True),
    ("\\dfrac{1}{2}", "\\frac{1}{2}", True),
    ("1,234", "1234", True),
    ("\\$18.00", "18", True),
    ("18 dollars", "18", True),
    ("27", "27.0", True),
    ("025", "25", True),
    ("50\\%", "50", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("\\sqrt{8}", "2\\sqrt{2}", True),
    ("\\pi/2", "\\frac{\\pi}{2}", True),
    ("\\{1,2\\}", "\\{2,1\\}", True),  # sets
    ("[1,3)", "[1,3)", True),  # intervals
    ("(1,3]", "[1,3)", False),
    ("\\text{(C)}", "C", True),
    ("x=5", "5", True),
    ("7", "8", False),
    ("2/3", "0.6667", False),  # float_rounding=6
    ("1,2", "12", False),  # a pair is not a thousands separator
    ("\\infty", "\\infty", True),
    # scientific notation is a number, not Euler's e
    ("1.2e3", "1200", True),
    ("1e-3", "0.001", True),
    ("1.5E-4", "0.00015", True),
    ("5e4 dollars", "50000", True),
    ("1.2e4", "1200", False),
    ("e", "2.718281828", True),  # a bare e is still Euler's number: only digits-e-digits is rewritten
    # thousands separators and units
    ("70\\,000", "70000", True),
    ("70{,}000", "70000", True),
    ("1 000", "1000", True),
    ("12 500 dollars", "12500", True),
    ("5 km/h", "5", True),
    ("20 m^2", "20", True),
    ("1 million", "1", False),  # a scale word is not a unit
    ("6 (six)", "6", True),
    ("\u22125", "-5", True),
    # percentages read as the number and as a fraction
    ("25\\%", "0.25", True),
    ("25%", "25", True),
    ("0.25", "25", False),
]


@pytest.mark.parametrize("pred, gold, expected", EQUIVALENCE_CASES)
def test_equivalence(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


COMPOUND_CASES = [
    # answer text, gold, correct: a two-unit quantity reads in the larger and in the smaller unit
    ("4 hours and 30 minutes", "4.5", True),
    ("4 hours and 30 minutes", "270", True),
    ("4\\text{ hours }30\\text{ minutes}", "4.5", True),
    ("1 hour 30 minutes", "90", True),
    ("7 dollars and 50 cents", "7.5", True),
    ("5 feet 2 inches", "62", True),
    ("4 hours and 20 minutes", "4.5", False),
    ("4 hours and 30 minutes", "34", False),  # the digits side by side are not a reading
    ("2 and a half hours", "2.5", True),
    ("eighteen", "18", True),
    ("twenty-five dollars", "25", True),
    ("1 million", "1000000", True),
    ("five or six", "5", False),
    ("one of the options listed", "1", False),
    ("two or more", "2", False),
]


@pytest.mark.parametrize("answer, gold, expected", COMPOUND_CASES)
def test_compound_and_word_answers(answer, gold, expected):
    result = grade(f"The answer is {answer}.", gold)
    assert result.extracted == answer and result.correct is expected


def test_grade_records_extraction_and_rule():
    result = grade("Step 1 ... so \\boxed{\\frac{6}{12}}", "0.5")
    assert (result.correct, result.extracted, result.rule) == (True, "\\frac{6}{12}", "boxed")
    assert result.method == "math_verify"
    fallback = grade("I guess 17", "17")
    assert (fallback.correct, fallback.rule) == (True, "last_number")
    strict = grade("I guess 17", "17", {"rules": ["boxed", "answer_is"]})
    assert (strict.correct, strict.extracted, strict.rule) == (False, None, None)


def test_grade_accepts_numeric_gold():
    assert grade("\\boxed{27}", 27.0).correct
    assert grade("\\boxed{25}", "025").correct


def test_per_item_timeout_bounds_a_pathological_answer(monkeypatch):
    import softthink.eval.grading as grading

    def slow(*args):
        time.sleep(5)
        return True, "math_verify"

    monkeypatch.setattr(grading, "_equivalent", slow)
    start = time.perf_counter()
    result = grade("\\boxed{x}", "y", GraderConfig(timeout_seconds=0.2))
    assert time.perf_counter() - start < 2
    assert result.timed_out and not result.correct and result.extracted == "x"


def test_grader_errors_are_recorded_not_raised(monkeypatch):
    import softthink.eval.grading as grading

    def boom(*args):
        raise RecursionError("sympy blew up")

    monkeypatch.setattr(grading, "_equivalent", boom)
    result = grade("\\boxed{x}", "y")
    assert not result.correct and "RecursionError" in result.error


@pytest.mark.parametrize(
    "options, param",
    [
        ({"rules": ["boxed", "regex"]}, "grader.rules"),
        ({"rules": []}, "grader.rules"),
        ({"timeout_seconds": -1}, "grader.timeout_seconds"),
        ({"timeuot": 3}, "grader"),
    ],
)
def test_grader_config_errors_name_the_field(options, param):
    with pytest.raises(SoftthinkConfigError) as info:
        GraderConfig.from_dict(options)
    assert info.value.param == param


# -- gold data: the grader must accept the reference solutions -----------------------------------------------------


def test_gsm8k_reference_solutions_score_100(data_dir):
    from softthink.eval import load_benchmark

    problems = load_benchmark("gsm8k", data_dir=data_dir)
    wrong = [p.id for p in problems if not grade(p.meta["answer"], p.answer).correct]
    assert len(problems) == 1319 and wrong == []


def test_math500_reference_solutions_score_at_least_99(data_dir):
    from softthink.eval import load_benchmark

    problems = load_benchmark("math500", data_dir=data_dir)
    correct = sum(grade(p.meta["solution"], p.answer).correct for p in problems)
    assert len(problems) == 500 and correct / 500 >= 0.99


def test_gold_answers_do_not_match_other_problems(data_dir):
    """The grader is not trivially lenient: a solution graded against another problem's answer fails."""
    rows = [json.loads(line) for line in (data_dir / "math500.jsonl").read_text().splitlines()[:40]]
    shifted = sum(
        grade(a["solution"], b["answer"]).correct
        for a, b in zip(rows, rows[1:] + rows[:1])
        if a["answer"] != b["answer"]
    )
    assert shifted <= 1
