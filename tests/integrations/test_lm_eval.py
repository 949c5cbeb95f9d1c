"""The ``softthink`` lm-eval model, offline: a local JSONL task YAML (tests/fixtures/lm_eval) on a tiny model."""

import subprocess
import sys
from pathlib import Path

import pytest

lm_eval = pytest.importorskip("lm_eval")

import softthink  # noqa: E402
from softthink.errors import SoftthinkConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "tests" / "fixtures" / "lm_eval"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from softthink.testbed.tiny import save_tiny

    return save_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture()
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # the task YAMLs name their JSONL relative to the repository root


def evaluate(model, model_args, tasks, batch_size=2):
    from lm_eval.tasks import TaskManager

    import softthink.integrations.lm_eval  # noqa: F401  (registers the model)

    return lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=tasks,
        batch_size=batch_size,
        task_manager=TaskManager(include_path=str(TASKS)),
        log_samples=True,
        device="cpu",
    )


def test_generate_until_is_decoded_by_softthink(tiny_dir, in_repo):
    out = evaluate(
        "softthink",
        f"pretrained={tiny_dir},mode=soft,think_end=</think>,max_topk=5,answer_only=False",
        ["softthink_capitals_gen"],
    )
    samples = out["samples"]["softthink_capitals_gen"]
    assert len(samples) == 4 and "exact_match,letter" in out["results"]["softthink_capitals_gen"]
    model, tok = softthink.load_model(str(tiny_dir))
    contexts = [s["arguments"][0][0] for s in samples]
    ref = softthink.generate(
        model,
        contexts,
        tokenizer=tok,
        mode="soft",
        think_end="</think>",
        max_topk=5,
        max_new_tokens=24,
        stop_strings=["\n\n"],
        chat_template=False,
    )
    assert [s["resps"][0][0] for s in samples] == [g.text.split("\n\n")[0] for g in ref]
    assert any(g.soft_steps > 0 for g in ref)  # really soft thinking, not a discrete fallback


def test_batch_size_does_not_change_greedy_generations(tiny_dir, in_repo):
    args = f"pretrained={tiny_dir},mode=discrete,think_end=None"
    one = evaluate("softthink", args, ["softthink_capitals_gen"], batch_size=1)
    four = evaluate("softthink", args, ["softthink_capitals_gen"], batch_size=4)
    resps = lambda out: [s["resps"] for s in out["samples"]["softthink_capitals_gen"]]
    assert resps(one) == resps(four) and all(r[0][0] for r in resps(one))


def test_loglikelihood_requests_are_lm_evals_own(tiny_dir, in_repo):
    ours = evaluate("softthink", f"pretrained={tiny_dir},mode=soft", ["softthink_capitals_mc"])
    ref = evaluate("hf", f"pretrained={tiny_dir}", ["softthink_capitals_mc"])
    lls = lambda out: [r[0][0] for s in out["samples"]["softthink_capitals_mc"] for r in s["resps"]]
    assert lls(ours) == pytest.approx(lls(ref), abs=1e-5)
    assert ours["results"]["softthink_capitals_mc"]["acc,none"] == ref["results"]["softthink_capitals_mc"]["acc,none"]


def test_stop_sequences_and_gen_kwargs(tiny_dir):
    from lm_eval.api.instance import Instance

    from softthink.integrations.lm_eval import SoftthinkLM

    lm = SoftthinkLM(pretrained=str(tiny_dir), mode="discrete", think_end=None, batch_size=2)
    free = softthink.generate(
        lm.model,
        "What is 2+2?",
        tokenizer=lm.tokenizer,
        mode="discrete",
        think_end=None,
        max_new_tokens=16,
        chat_template=False,
    )
    stop = free.text[5:7]
    request = lambda kw: Instance("generate_until", {}, ("What is 2+2?", kw), 0)
    got = lm.generate_until(
        [request({"until": [stop], "max_gen_toks": 16, "do_sample": False}), request({"max_gen_toks": 3})]
    )
    assert got[0] == free.text.split(stop)[0] and stop not in got[0]
    assert got[1] == lm.tokenizer.decode(free.token_ids[:3])
    cfg, until = lm.decode_config(
        {"until": ["\n"], "max_gen_toks": 7, "do_sample": True, "temperature": 0.6, "top_p": 0.9}
    )
    assert (cfg.max_new_tokens, cfg.stop_strings, cfg.do_sample, cfg.temperature, cfg.top_p) == (
        7,
        ["\n"],
        True,
        0.6,
        0.9,
    )
    with pytest.raises(SoftthinkConfigError, match="repetition_penalty"):
        lm.decode_config({"until": [], "repetition_penalty": 1.2})
    with pytest.raises(SoftthinkConfigError, match="max_topk"):
        SoftthinkLM(pretrained=str(tiny_dir), max_topkk=3)


def test_command_line_runs_the_local_task(tiny_dir):
    cmd = [
        sys.executable,
        "-m",
        "softthink.integrations.lm_eval",
        "run",
        "--model",
        "softthink",
        "--model_args",
        f"pretrained={tiny_dir},mode=discrete,think_end=None",
        "--tasks",
        "softthink_capitals_gen",
        "--include_path",
        str(TASKS),
        "--batch_size",
        "2",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)}
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "softthink_capitals_gen" in out.stdout and "exact_match" in out.stdout
