"""Tensor parallelism (`load_model(tp_plan="auto")`) under ``torchrun`` with 2 CPU processes (gloo): every process
decodes exactly the tokens that one unsharded process decodes, greedy and seeded-sampled, discrete and soft."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import softthink
from softthink.cli.main import main as cli_main
from softthink.errors import SoftthinkInputError
from softthink.testbed.tiny import save_tiny
from tests.conftest import REPO
from tests.scale.tp_worker import CASES, CLI_ARGS, PROMPTS, decode_cases

WORLD = 2


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    # the tiny Llama has 4 attention heads, 2 KV heads, an MLP of 128 and a vocabulary of 100: all split in 2
    return save_tiny("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def sharded(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tp-out")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD)]
    # its own session, so that a hung run is killed whole (torchrun and its workers), not just torchrun
    proc = subprocess.Popen(
        command + [str(REPO / "tests" / "scale" / "tp_worker.py"), str(tiny_dir), str(out)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail("the torchrun launch did not finish in 300 s:\n" + stdout[-2000:] + stderr[-2000:])
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


@pytest.fixture(scope="module")
def single(tiny_dir):
    model, tokenizer = softthink.load_model(tiny_dir, device="cpu")
    return decode_cases(model, tokenizer)


@pytest.mark.slow
def test_model_is_split_over_the_processes(sharded):
    for rank in sharded:
        assert rank["world_size"] == WORLD
        assert rank["q_proj_local_rows"] * WORLD == rank["q_proj_rows"] == 64


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_tensor_parallel_tokens_equal_one_process(sharded, single, case):
    for rank in sharded:
        got = rank["cases"][case]
        assert len(got) == len(PROMPTS)
        for tp_row, row in zip(got, single[case]):
            assert tp_row["token_ids"] == row["token_ids"]
            assert tp_row["kept_ids"] == row["kept_ids"]
            for tp_w, w in zip(tp_row["kept_weights"], row["kept_weights"]):
                assert tp_w == pytest.approx(w, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if CASES[c]["mode"] != "discrete"])
def test_soft_cases_feed_mixtures(single, case):
    """The soft cases really feed multi-token mixtures (else they would test nothing beyond discrete)."""
    widths = [len(ids) for row in single[case] for ids in row["kept_ids"]]
    assert max(widths) >= 2


@pytest.mark.slow
def test_generate_cli_with_tp_plan_prints_once_what_one_process_prints(sharded, tiny_dir, capsys):
    assert cli_main([*CLI_ARGS, "--model", str(tiny_dir), "--device", "cpu"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert [rank["cli_exit"] for rank in sharded] == [0] * WORLD
    assert json.loads(sharded[0]["cli_stdout"])[0]["token_ids"] == expected[0]["token_ids"]
    assert all(rank["cli_stdout"] == "" for rank in sharded[1:])


def test_tp_plan_needs_torchrun(tiny_dir, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SoftthinkInputError, match="torchrun"):
        softthink.load_model(tiny_dir, tp_plan="auto")


def test_tp_plan_rejects_unknown_plan_and_explicit_device(tiny_dir, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SoftthinkInputError, match="tp_plan must be one of"):
        softthink.load_model(tiny_dir, tp_plan="colwise")
    with pytest.raises(SoftthinkInputError, match="device must be left unset"):
        softthink.load_model(tiny_dir, tp_plan="auto", device="cpu")
