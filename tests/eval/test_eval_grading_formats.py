"""Hand-written hard cases for the non-math answer formats: multiple choice (A-J) and exact match."""

import pytest

from softthink.errors import SoftthinkConfigError
from softthink.eval.answer_formats import extract_choice, normalise_choice_gold
from softthink.eval.grading import GraderConfig, grade

MC = {"answer_format": "multiple_choice"}
EM = {"answer_format": "exact_match"}
OPTIONS = ["Paris", "London", "Berlin", "Madrid"]

# (completion, gold, choices, expected extracted letter or None, expected rule)
CHOICE_CASES = [
    ("The answer is \\boxed{B}.", "B", None, "B", "boxed"),
    ("So \\boxed{(C)}", "C", None, "C", "boxed"),
    ("Final: \\boxed{\\text{D}}", "D", None, "D", "boxed"),
    ("\\boxed{B) 42}", "B", None, "B", "boxed"),
    ("answer: (B)", "B", None, "B", "answer_is"),
    ("Answer: B", "B", None, "B", "answer_is"),
    ("The answer is B.", "B", None, "B", "answer_is"),
    ("the correct answer is option E", "E", None, "E", "answer_is"),
    ("Final answer: **J**", "J", None, "J", "answer_is"),
    ("The final answer is [G].", "G", None, "G", "answer_is"),
    ("The answer is B because the train is faster.", "B", None, "B", "answer_is"),
    # "A" as an article, "I" as a pronoun: not answers
    ("A train leaves at noon and another follows.", "A", None, None, None),
    ("The answer is A train that leaves at noon.", "A", None, None, None),
    ("The answer is I think probably unclear", "I", None, None, None),
    ("The answer is A train... no wait, the answer is (D).", "D", None, "D", "answer_is"),
    # but a delimited A is an answer
    ("The answer is (A) because trains are fast.", "A", None, "A", "answer_is"),
    ("Answer: A.", "A", None, "A", "answer_is"),
    ("\\boxed{A}", "A", None, "A", "boxed"),
    # the last explicit statement wins
    ("The answer is B. Hmm, re-checking: the answer is C.", "C", None, "C", "answer_is"),
    ("\\boxed{A} ... actually the answer is D", "D", None, "D", "answer_is"),
    ("answer: C. Then \\boxed{B}", "B", None, "B", "boxed"),
    ("The answer is C.\nWait, the answer is C? No. Final answer: A", "A", None, "A", "answer_is"),
    # lowercase prose after "answer is" is not a letter
    ("the answer is b", "B", None, None, None),
    ("the answer is because of gravity", "B", None, None, None),
    # letters beyond the options are ignored
    ("The answer is F.", "F", OPTIONS, None, None),
    ("The answer is D.", "D", OPTIONS, "D", "answer_is"),
    # final line made of only a letter
    ("Let me think.\nThe train is slow.\n(C)", "C", None, "C", "final_line"),
    ("reasoning...\n**B**", "B", None, "B", "final_line"),
    ("reasoning...\nD.", "D", None, "D", "final_line"),
    ("A fact about B and C.\nThey differ.", "B", None, None, None),
    # option text
    ("The answer is Berlin.", "C", OPTIONS, "C", "option_text"),
    ("\\boxed{Madrid}", "D", OPTIONS, "D", "option_text"),
    ("I am sure it is\nLondon", "B", OPTIONS, "B", "option_text"),
    ("The answer is Rome.", "A", OPTIONS, None, None),
    ("The answer is Paris, France.", "A", OPTIONS, None, None),
    # option text matching two options is not an answer
    ("The answer is 4.", "A", ["4", "four", "4", "5"], None, None),
    ("The answer is four.", "B", ["4", "four", "4", "5"], "B", "option_text"),
    # nothing
    ("", "A", None, None, None),
    ("I do not know.", "A", None, None, None),
]


@pytest.mark.parametrize("text, gold, choices, letter, rule", CHOICE_CASES)
def test_multiple_choice_extraction(text, gold, choices, letter, rule):
    result = grade(text, gold, MC, choices=choices)
    assert (result.extracted, result.rule) == (letter, rule)
    assert result.correct == (letter == normalise_choice_gold(gold))


def test_multiple_choice_wrong_letter_is_incorrect():
    result = grade("The answer is (B).", "C", MC)
    assert result.extracted == "B" and not result.correct and result.gold == "C"


@pytest.mark.parametrize("gold, letter", [("b", "B"), ("(C)", "C"), ("D.", "D"), (" J ", "J")])
def test_choice_gold_normalisation(gold, letter):
    assert normalise_choice_gold(gold) == letter


@pytest.mark.parametrize("gold", ["K", "AB", "", "Paris"])
def test_bad_choice_gold_raises(gold):
    with pytest.raises(ValueError, match="A-J"):
        normalise_choice_gold(gold)


def test_extract_choice_without_options_accepts_all_ten_letters():
    assert [extract_choice(f"The answer is {c}.")[0] for c in "ABCDEFGHIJ"] == list("ABCDEFGHIJ")


# (completion, gold, expected extracted, expected rule, correct)
EXACT_CASES = [
    ("The capital is Paris.\nParis", "Paris", "Paris", "last_line", True),
    ("The answer is The Beatles.", "Beatles", "The Beatles", "answer_is", True),
    ("\\boxed{\\text{blue whale}}", "Blue Whale", "blue whale", "boxed", True),
    ("Answer: New York City", "new york city", "New York City", "answer_is", True),
    ("The answer is paris. Actually, the answer is Lyon.", "Paris", "Lyon", "answer_is", False),
    ("answer: 1984", "1984.", "1984", "answer_is", True),
    ("The answer is Dr. Who", "Dr Who", "Dr", "answer_is", False),  # a period + space ends the statement
    ("Final answer: **Mount Everest**", "mount everest", "Mount Everest", "answer_is", True),
    ("The answer is NYC", "New York City|NYC", "NYC", "answer_is", True),
    ("The answer is Paris Texas", "Paris", "Paris Texas", "answer_is", False),
    ("", "Paris", None, None, False),
]


@pytest.mark.parametrize("text, gold, extracted, rule, correct", EXACT_CASES)
def test_exact_match(text, gold, extracted, rule, correct):
    result = grade(text, gold, EM)
    assert (result.extracted, result.rule, result.correct) == (extracted, rule, correct)


def test_answer_format_is_validated_and_keeps_math_fingerprints():
    with pytest.raises(SoftthinkConfigError, match="answer_format.*multiple_choice"):
        GraderConfig(answer_format="mcq")
    assert GraderConfig().to_dict() == {
        "rules": ["boxed", "hash", "answer_is", "last_number"],
        "timeout_seconds": 5.0,
        "float_rounding": 6,
    }
    assert GraderConfig(answer_format="exact_match").fingerprint() != GraderConfig().fingerprint()
    assert GraderConfig.from_dict(MC).answer_format == "multiple_choice"
