"""The synthetic tasks: determinism, disjoint splits, verifiable solutions, token roles."""

import pytest

from softthink.errors import SoftthinkConfigError
from softthink.testbed.tasks import (
    DIFFICULTIES,
    ROLES,
    Difficulty,
    check_solution,
    evaluate,
    load_problems,
    make_dataset,
    split_of,
    token_roles,
)
from softthink.testbed.tokenizer import build_tokenizer


def test_same_seed_same_problems_and_prefix_stable():
    a = make_dataset("train", 50, seed=3)
    assert a == make_dataset("train", 50, seed=3)
    assert make_dataset("train", 20, seed=3) == a[:20]
    assert [p["solution"] for p in a] != [p["solution"] for p in make_dataset("train", 50, seed=4)]


def test_load_problems_contract():
    problems = load_problems("test", n=40)
    assert len(problems) == 40 and len({p["id"] for p in problems}) == 40
    for p in problems:
        assert {"id", "question", "answer", "solution"} <= set(p)
        assert p["answer"].isdigit()
        assert p["solution"].startswith("<think>") and p["solution"].endswith(f"</think>\\boxed{{{p['answer']}}}")
    assert len(load_problems("test")) == 500


def test_splits_are_disjoint_and_follow_the_question_hash():
    test = {p["question"] for p in load_problems("test")}
    val = {p["question"] for p in load_problems("val")}
    train = {p["question"] for p in make_dataset("train", 3000, seed=1)}
    assert not (test & train) and not (test & val) and not (val & train)
    assert all(split_of(q) == "test" for q in test) and all(split_of(q) == "train" for q in train)


@pytest.mark.parametrize("difficulty", sorted(DIFFICULTIES))
def test_every_solution_verifies(difficulty):
    problems = make_dataset("train", 300, seed=0, difficulty=difficulty)
    assert {p["task"] for p in problems} == {"search", "sum"}
    assert all(check_solution(p) for p in problems)


def test_check_solution_rejects_wrong_steps_and_answers():
    search = next(p for p in load_problems("test", 50) if p["task"] == "search")
    summ = next(p for p in load_problems("test", 50) if p["task"] == "sum")
    for p in (search, summ):
        wrong_answer = dict(p, solution=p["solution"].replace(f"{{{p['answer']}}}", f"{{{int(p['answer']) + 1}}}"))
        assert not check_solution(wrong_answer)
        head, _, tail = p["solution"].partition("=")  # corrupt the first computed result
        assert not check_solution(dict(p, solution=f"{head}={int(tail[0]) + 1 if tail[0] != '9' else 1}{tail[1:]}"))


def test_search_answer_solves_the_equation_and_sum_adds_up():
    for p in load_problems("test", 100):
        if p["task"] == "search":
            lhs, rhs = p["question"].removeprefix("solve ").split("=")
            assert evaluate(lhs, int(p["answer"])) == int(rhs)
        else:
            assert sum(map(int, p["question"].split()[1:])) == int(p["answer"])


def test_bad_difficulty_names_the_field():
    with pytest.raises(SoftthinkConfigError, match="search_max_x"):
        Difficulty(search_max_x=1)
    with pytest.raises(SoftthinkConfigError, match="did you mean|Did you mean"):
        make_dataset("test", 5, difficulty="meduim")


def test_token_roles_on_gold_solutions():
    tok = build_tokenizer()
    problems = load_problems("test", 60)
    for p in problems:
        tokens = tok.convert_ids_to_tokens(tok(p["solution"] + tok.eos_token, add_special_tokens=False)["input_ids"])
        roles = token_roles(p, tokens)
        assert len(roles) == len(tokens) and set(roles) <= set(ROLES) and "other" not in roles
        assert roles[0] == "structure" and roles[-1] == "structure"  # <think> ... </s>
        assert roles[-3] == "copied"  # last digit of the boxed answer (then "}" and "</s>")
    search = next(p for p in problems if p["task"] == "search" and int(p["answer"]) < 10)
    tokens = tok.convert_ids_to_tokens(tok(search["solution"], add_special_tokens=False)["input_ids"])
    assert token_roles(search, tokens)[1] == "decision"  # the first guess: any of 1..max_x was allowed


def test_token_roles_marks_forced_choices_and_broken_grammar():
    p = {"task": "sum", "meta": {"terms": [4, 4]}, "answer": "8"}
    assert token_roles(p, ["<think>", "4", "+", "4", "=", "8", "</think>"])[1:4] == ["copied", "structure", "copied"]
    p = {"task": "sum", "meta": {"terms": [3, 5, 7]}, "answer": "15"}
    roles = token_roles(p, ["<think>", "3", "+", "5", "=", "8", "\n", "8", "+", "7", "=", "1", "5", "</think>"])
    assert roles[1:4] == ["decision", "structure", "decision"] and roles[7] == "copied" and roles[9] == "copied"
    assert roles[11:13] == ["computed", "computed"]
    assert token_roles(p, ["<think>", "3", "?", "5"])[1:] == ["other"] * 3


def test_check_solution_rejects_a_search_line_without_steps_instead_of_crashing():
    # A line holding only a verdict (or a first step that is not a guess) used to raise IndexError/ValueError.
    search = next(p for p in load_problems("test", 50) if p["task"] == "search")
    answer = search["answer"]
    assert not check_solution(dict(search, solution=f"<think>yes</think>\\boxed{{{answer}}}"))
    assert not check_solution(dict(search, solution=f"<think>x=1 yes</think>\\boxed{{{answer}}}"))
