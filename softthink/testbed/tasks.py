"""Synthetic, verifiable math reasoning tasks for the testbed model.

Two task families, both with one integer answer (so the shared ``\\boxed{}`` grader is exact and a model cannot
score by boxing a number it copied from the question):

``search`` (guess and check)
    ``solve x*7-4=38``. The unknown lies in ``1..max_x``; the equation's left side grows with ``x``, so each try
    tells whether the guess was low or high. The written search picks every guess uniformly among the values still
    possible, so the first digit of each try is a real decision with alternatives::

        <think>9*7=63 63-4=59 high
        4*7=28 28-4=24 low
        6*7=42 42-4=38 yes</think>\\boxed{6}

``sum`` (which quantities to combine first)
    ``add 7 5 3 8``. The trace adds two numbers at a time in a random order, so which number comes next is a
    decision (some orders are easier: ``7+3=10``)::

        <think>7+3=10
        10+8=18
        18+5=23</think>\\boxed{23}

Everything is deterministic in ``seed``. A problem's split comes from a hash of its question text (10% test,
5% val, the rest train), so the splits are disjoint whatever the seed or size. ``token_roles`` labels each token
of a completion as a decision, a copied digit, a computed digit or structure (used by ``quality.py``).
"""

from __future__ import annotations

import ast
import hashlib
import operator
import random
import re
from dataclasses import dataclass

from softthink.errors import SoftthinkConfigError, SoftthinkDataError, unknown_name_message

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
SPLITS = ("train", "val", "test")
TASKS = ("search", "sum")
SEARCH_FORMS = ("ax+b", "ax-b", "(x+a)b", "xx+b", "x(x+a)")
DEFAULT_SIZES = {"test": 500, "val": 200, "train": 10_000}
ROLES = ("decision", "copied", "computed", "structure", "other")


# --------------------------------------------------------------------------------------------- difficulty
@dataclass(frozen=True)
class Difficulty:
    """The knobs of both task families. Named presets live in ``DIFFICULTIES``."""

    search_max_x: int = 12  # the unknown lies in 1..search_max_x
    search_max_coef: int = 9  # multipliers / added offsets a, b in 2..search_max_coef (1.. for offsets)
    search_max_const: int = 20  # additive constant in 1..search_max_const
    search_forms: tuple[str, ...] = SEARCH_FORMS  # subset of SEARCH_FORMS
    sum_min_terms: int = 3
    sum_max_terms: int = 4
    sum_max_value: int = 20  # each term in 1..sum_max_value
    task_weights: tuple[tuple[str, float], ...] = (("search", 0.6), ("sum", 0.4))

    def __post_init__(self):
        for name in ("search_max_x", "search_max_coef", "search_max_const", "sum_max_value"):
            if getattr(self, name) < 2:
                raise SoftthinkConfigError(
                    f"Difficulty.{name} must be >= 2, got {getattr(self, name)}.", param=name, value=getattr(self, name)
                )
        if not 2 <= self.sum_min_terms <= self.sum_max_terms:
            raise SoftthinkConfigError(
                f"Difficulty needs 2 <= sum_min_terms <= sum_max_terms, got {self.sum_min_terms}, "
                f"{self.sum_max_terms}.",
                param="sum_min_terms",
                value=self.sum_min_terms,
            )
        for form in self.search_forms:
            if form not in SEARCH_FORMS:
                raise SoftthinkConfigError(
                    unknown_name_message("search form", form, SEARCH_FORMS), param="search_forms", value=form
                )
        for task, weight in self.task_weights:
            if task not in TASKS:
                raise SoftthinkConfigError(unknown_name_message("task", task, TASKS), param="task_weights", value=task)
            if weight < 0:
                raise SoftthinkConfigError(
                    f"Difficulty.task_weights[{task!r}] must be >= 0, got {weight}.", param="task_weights", value=weight
                )
        if not any(w > 0 for _, w in self.task_weights):
            raise SoftthinkConfigError(
                "Difficulty.task_weights needs at least one positive weight.",
                param="task_weights",
                value=self.task_weights,
            )


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(),
    "medium": Difficulty(
        search_max_x=16, search_max_coef=12, search_max_const=30, sum_min_terms=3, sum_max_terms=5, sum_max_value=40
    ),
    "hard": Difficulty(
        search_max_x=24, search_max_coef=15, search_max_const=50, sum_min_terms=4, sum_max_terms=6, sum_max_value=60
    ),
}
DEFAULT_DIFFICULTY = "hard"
"""The difficulty the shipped testbed model was trained at, and that ``load_problems`` serves."""


def resolve_difficulty(difficulty: str | Difficulty) -> Difficulty:
    """A preset name from ``DIFFICULTIES`` or a ``Difficulty`` instance."""
    if isinstance(difficulty, Difficulty):
        return difficulty
    if difficulty not in DIFFICULTIES:
        raise SoftthinkConfigError(
            unknown_name_message("difficulty", str(difficulty), list(DIFFICULTIES)),
            param="difficulty",
            value=difficulty,
        )
    return DIFFICULTIES[difficulty]


# --------------------------------------------------------------------------------------------- search family
def _search_steps(form: str, a: int, b: int, g: int) -> list[tuple[str, int]]:
    """The written steps ``(lhs, value)`` that evaluate the left side of ``form`` at ``x = g``."""
    if form == "ax+b":
        return [(f"{g}*{a}", g * a), (f"{g * a}+{b}", g * a + b)]
    if form == "ax-b":
        return [(f"{g}*{a}", g * a), (f"{g * a}-{b}", g * a - b)]
    if form == "(x+a)b":
        return [(f"{g}+{a}", g + a), (f"{g + a}*{b}", (g + a) * b)]
    if form == "xx+b":
        return [(f"{g}*{g}", g * g), (f"{g * g}+{b}", g * g + b)]
    if form == "x(x+a)":
        return [(f"{g}+{a}", g + a), (f"{g}*{g + a}", g * (g + a))]
    raise SoftthinkConfigError(unknown_name_message("search form", form, SEARCH_FORMS), param="form", value=form)


_SEARCH_LHS = {
    "ax+b": "x*{a}+{b}",
    "ax-b": "x*{a}-{b}",
    "(x+a)b": "(x+{a})*{b}",
    "xx+b": "x*x+{b}",
    "x(x+a)": "x*(x+{a})",
}


def _sample_search(rng: random.Random, d: Difficulty) -> dict:
    form = rng.choice(d.search_forms)
    x = rng.randint(1, d.search_max_x)
    a = rng.randint(2, d.search_max_coef)
    if form == "ax-b":
        b = rng.randint(1, a - 1)  # keeps every value positive for x >= 1
    elif form == "(x+a)b":
        a, b = rng.randint(1, d.search_max_coef), rng.randint(2, d.search_max_coef)
    elif form == "x(x+a)":
        a, b = rng.randint(1, d.search_max_coef), 0
    else:
        b = rng.randint(1, d.search_max_const)
    target = _search_steps(form, a, b, x)[-1][1]
    question = f"solve {_SEARCH_LHS[form].format(a=a, b=b)}={target}"
    return {
        "task": "search",
        "question": question,
        "answer": str(x),
        "meta": {"form": form, "a": a, "b": b, "target": target, "max_x": d.search_max_x},
    }


def _search_trace(problem: dict, rng: random.Random) -> str:
    m = problem["meta"]
    x, lo, hi, lines = int(problem["answer"]), 1, m["max_x"], []
    while True:
        g = rng.randint(lo, hi)
        steps = _search_steps(m["form"], m["a"], m["b"], g)
        value = steps[-1][1]
        verdict = "yes" if value == m["target"] else ("low" if value < m["target"] else "high")
        lines.append(" ".join(f"{lhs}={v}" for lhs, v in steps) + f" {verdict}")
        if g == x:
            return "\n".join(lines)
        lo, hi = (g + 1, hi) if g < x else (lo, g - 1)


# --------------------------------------------------------------------------------------------- sum family
def _sample_sum(rng: random.Random, d: Difficulty) -> dict:
    terms = [rng.randint(1, d.sum_max_value) for _ in range(rng.randint(d.sum_min_terms, d.sum_max_terms))]
    return {
        "task": "sum",
        "question": "add " + " ".join(map(str, terms)),
        "answer": str(sum(terms)),
        "meta": {"terms": terms},
    }


def _sum_trace(problem: dict, rng: random.Random) -> str:
    order = list(problem["meta"]["terms"])
    rng.shuffle(order)
    total, lines = order[0], []
    for t in order[1:]:
        lines.append(f"{total}+{t}={total + t}")
        total += t
    return "\n".join(lines)


_SAMPLERS = {"search": _sample_search, "sum": _sample_sum}
_TRACERS = {"search": _search_trace, "sum": _sum_trace}


# --------------------------------------------------------------------------------------------- datasets
def split_of(question: str) -> str:
    """The split a question belongs to, from a stable hash of its text: 10% test, 5% val, 85% train."""
    bucket = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big") % 20
    return "test" if bucket < 2 else ("val" if bucket == 2 else "train")


def format_solution(trace: str, answer: str) -> str:
    """The target text after the prompt: ``<think>TRACE</think>\\boxed{ANSWER}`` (the EOS is added by the trainer)."""
    return f"{THINK_OPEN}{trace}{THINK_CLOSE}\\boxed{{{answer}}}"


def make_dataset(
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    difficulty: str | Difficulty = "medium",
    tasks: tuple[str, ...] | None = None,
) -> list[dict]:
    """``n`` problems of ``split``, deterministic in ``(split, seed, difficulty)`` and prefix-stable in ``n``.

    Each problem is a dict with ``id``, ``task``, ``question``, ``answer`` (the integer as a string),
    ``solution`` (``<think>...</think>\\boxed{answer}``) and ``meta`` (the parameters ``token_roles`` needs).
    ``val`` and ``test`` hold distinct questions; ``train`` may repeat a question with a different search trace.
    ``tasks`` restricts the families (default: the difficulty's task weights).
    """
    if split not in SPLITS:
        raise SoftthinkConfigError(unknown_name_message("split", str(split), SPLITS), param="split", value=split)
    n = DEFAULT_SIZES[split] if n is None else n
    if n < 0:
        raise SoftthinkConfigError(f"n must be >= 0, got {n}.", param="n", value=n)
    d = resolve_difficulty(difficulty)
    weights = [(t, w) for t, w in d.task_weights if w > 0 and (tasks is None or t in tasks)]
    if not weights:
        raise SoftthinkConfigError(
            f"tasks={tasks!r} selects no task with a positive weight; choose from {TASKS}.", param="tasks", value=tasks
        )
    name = difficulty if isinstance(difficulty, str) else repr(difficulty)
    rng = random.Random(f"softthink-testbed:{split}:{seed}:{d!r}")  # by value: renaming a preset keeps its data
    problems: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 200 * n + 10_000:
            raise SoftthinkDataError(
                f"could only find {len(problems)} distinct {split} problems of difficulty "
                f"{name} (asked for {n}); ask for fewer or use a harder difficulty."
            )
        task = rng.choices([t for t, _ in weights], [w for _, w in weights])[0]
        problem = _SAMPLERS[task](rng, d)
        if split_of(problem["question"]) != split or (split != "train" and problem["question"] in seen):
            continue
        seen.add(problem["question"])
        trace = _TRACERS[task](problem, rng)
        problems.append(
            {
                "id": f"{split}-{seed}-{len(problems):05d}",
                **problem,
                "solution": format_solution(trace, problem["answer"]),
            }
        )
    return problems


def load_problems(split: str = "test", n: int | None = None, seed: int = 0) -> list[dict]:
    """The testbed problems at the shipped model's difficulty (``DEFAULT_DIFFICULTY``); see ``make_dataset``."""
    return make_dataset(split, n, seed, difficulty=DEFAULT_DIFFICULTY)


# --------------------------------------------------------------------------------------------- verification
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def evaluate(expr: str, x: int | None = None) -> int:
    """Evaluate an integer expression of digits, ``x``, ``+ - *`` and parentheses (no ``eval``)."""

    def ev(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id == "x" and x is not None:
            return x
        raise SoftthinkDataError(f"cannot evaluate {expr!r}: only integers, x, + - * and () are allowed.")

    return ev(ast.parse(expr, mode="eval").body)


def check_solution(problem: dict) -> bool:
    """True when the answer solves the question and every written step of the solution is correct."""
    m = re.fullmatch(
        re.escape(THINK_OPEN) + r"(.*)" + re.escape(THINK_CLOSE) + r"\\boxed\{(-?\d+)\}",
        problem["solution"],
        flags=re.S,
    )
    if m is None or m.group(2) != problem["answer"]:
        return False
    answer, lines = int(problem["answer"]), m.group(1).split("\n")
    if problem["task"] == "search":
        lhs, rhs = problem["question"].removeprefix("solve ").split("=")
        target = int(rhs)
        if evaluate(lhs, answer) != target:
            return False
        for line in lines:
            *steps, verdict = line.split(" ")
            first = re.match(r"\d+", steps[0]) if steps else None
            if first is None:  # a line without steps, or one that does not start with the guess
                return False
            value = ""
            for step in steps:
                expr, value = step.split("=")
                if evaluate(expr) != int(value):
                    return False
            guess = int(first.group())
            if evaluate(lhs, guess) != int(value):
                return False
            if verdict != ("yes" if int(value) == target else "low" if int(value) < target else "high"):
                return False
        return verdict == "yes"
    terms = sorted(int(t) for t in problem["question"].removeprefix("add ").split())
    used, total = [], None
    for line in lines:
        expr, value = line.split("=")
        left, right = (int(v) for v in expr.split("+"))
        if total is None:
            used += [left, right]
        elif left != total:
            return False
        else:
            used.append(right)
        total = int(value)
        if left + right != total:
            return False
    return sorted(used) == terms and total == answer == sum(terms)


# --------------------------------------------------------------------------------------------- token roles
def _choice_roles(prefix_options: set[str], chosen: str) -> list[str]:
    """Per-character roles of ``chosen``, a number picked from ``prefix_options`` (valid numbers as strings):
    a character is a decision when more than one valid continuation (another digit or the end) was open."""
    roles = []
    for i in range(len(chosen)):
        pre = chosen[:i]
        nexts = {o[i] if len(o) > i else "$" for o in prefix_options if o.startswith(pre)}
        if pre in prefix_options:
            nexts.add("$")
        roles.append("decision" if len(nexts) > 1 else "forced")
    return roles


def _tag_line_search(line: str, state: dict, problem: dict) -> list[str] | None:
    m = re.fullmatch(r"(\d+)([^ =]*)=(\d+)((?: [^ =]+=\d+)*) (low|high|yes)", line)
    if m is None:
        return None
    guess, first_rest, first_value, more_steps, verdict = m.groups()
    options = {str(v) for v in range(state["lo"], state["hi"] + 1) if v not in state["tried"]}
    roles = [r if r == "decision" else "computed" for r in _choice_roles(options, guess)]
    roles += _expr_roles(first_rest) + ["structure"] + ["computed"] * len(first_value)
    for step in more_steps.split(" ")[1:]:
        expr, _, value = step.rpartition("=")
        roles += ["structure"] + _expr_roles(expr) + ["structure"] + ["computed"] * len(value)
    roles += ["structure"] + ["computed"] * len(verdict)
    state["tried"].add(int(guess))
    if int(guess) < int(problem["answer"]):
        state["lo"] = max(state["lo"], int(guess) + 1)
    elif int(guess) > int(problem["answer"]):
        state["hi"] = min(state["hi"], int(guess) - 1)
    return roles


def _expr_roles(expr: str) -> list[str]:
    return ["copied" if c.isdigit() else "structure" for c in expr]


def _tag_line_sum(line: str, state: dict, problem: dict) -> list[str] | None:
    m = re.fullmatch(r"(\d+)\+(\d+)=(\d+)", line)
    if m is None:
        return None
    left, right, result = m.groups()

    def pick(number: str) -> list[str] | None:  # an operand chosen among the numbers not yet added
        if int(number) not in state["left"]:
            return None
        roles = _choice_roles({str(v) for v in state["left"]}, number)
        state["left"].remove(int(number))
        return [r if r == "decision" else "copied" for r in roles]

    left_roles = pick(left) if state["total"] is None else ["copied"] * len(left)
    if left_roles is None:
        return None
    right_roles = pick(right)
    if right_roles is None:
        return None
    state["total"] = int(result)
    return left_roles + ["structure"] + right_roles + ["structure"] + ["computed"] * len(result)


def token_roles(problem: dict, tokens: list[str]) -> list[str]:
    """Label each completion token (strings as in the vocabulary, e.g. ``" 35"``) with one of ``ROLES``.

    ``decision``: a digit where the task allowed more than one valid next token (which number to guess or add
    next); ``copied``: a digit repeating a number already in the context (operands, previous results, the boxed
    answer); ``computed``: a digit of an arithmetic result or a low/high/yes verdict; ``structure``: operators,
    separators and markers; ``other``: tokens after the completion stops following the task's grammar.
    """
    text = "".join(tokens)
    char_roles = ["other"] * len(text)
    pos = 0
    if text.startswith(THINK_OPEN):
        char_roles[: len(THINK_OPEN)] = ["structure"] * len(THINK_OPEN)
        pos = len(THINK_OPEN)
        end = text.find(THINK_CLOSE, pos)
        body_end = end if end >= 0 else len(text)
        state = (
            {"lo": 1, "hi": problem["meta"]["max_x"], "tried": set()}
            if problem["task"] == "search"
            else {"total": None, "left": list(problem["meta"]["terms"])}
        )
        tagger = _tag_line_search if problem["task"] == "search" else _tag_line_sum
        ok = True
        for line in text[pos:body_end].split("\n"):
            roles = tagger(line, state, problem) if ok else None
            ok = roles is not None and len(roles) == len(line)
            if ok and roles is not None:
                char_roles[pos : pos + len(line)] = roles
            if pos + len(line) < body_end:
                char_roles[pos + len(line)] = "structure" if ok else "other"  # the newline
            pos += len(line) + 1
        if ok and end >= 0:
            tail = text[end:]
            m = re.match(re.escape(THINK_CLOSE) + r"(\\boxed\{)(\d*)(\}?)", tail)
            span = m.end() if m else len(THINK_CLOSE)
            char_roles[end : end + span] = ["structure"] * span
            if m:
                start = end + len(THINK_CLOSE) + len(m.group(1))
                char_roles[start : start + len(m.group(2))] = ["copied"] * len(m.group(2))
            rest = end + span
            if text[rest:] in ("</s>", ""):
                char_roles[rest:] = ["structure"] * (len(text) - rest)
    out, pos = [], 0
    for tok in tokens:
        tok_roles = char_roles[pos : pos + len(tok)]
        pos += len(tok)
        non_space = [r for c, r in zip(tok, tok_roles) if not c.isspace()] or tok_roles or ["structure"]
        out.append(non_space[0])
    return out
