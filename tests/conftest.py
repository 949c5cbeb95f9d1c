"""Shared fixtures: tiny random-init models (fast) and the real SmolLM2-135M-Instruct (slow tests)."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# The library has no default data folder (data comes from --data-dir / data_dir=, $SOFTTHINK_DATA_DIR or the Hub);
# the tests know where this project's benchmark files are. A value already set (e.g. by CI) wins.
if (SHARED / "data").is_dir():
    os.environ.setdefault("SOFTTHINK_DATA_DIR", str(SHARED / "data"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@cache
def tiny(arch: str = "llama", tie_embeddings: bool = False, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A cached tiny model. Float64 lets equivalence tests use tolerances near 1e-9, so that they test the
    decoding logic rather than float32 rounding (the tiny models' scaled-up weights amplify rounding)."""
    from softthink.testbed.tiny import build_tiny_model

    return build_tiny_model(arch, seed=seed, tie_embeddings=tie_embeddings, dtype=dtype)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from softthink.testbed.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer()


def _shared_or_skip(what: str) -> None:
    """Outside CI a missing ../shared skips; in CI it fails, so a real-model test can never pass by skipping."""
    message = f"{what} not available (expected under {SHARED})"
    if os.environ.get("CI"):
        pytest.fail(message + " — CI must run the real-model tests")
    pytest.skip(message)


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    script = SHARED / "models" / "fetch_smollm2.sh"
    if not script.is_file():
        _shared_or_skip("fetch_smollm2.sh")
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if out.returncode != 0:
        _shared_or_skip(f"SmolLM2 ({out.stderr.strip()[-300:]})")
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    import softthink

    return softthink.load_model(smollm2_path, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        _shared_or_skip("benchmark data")
    return path
