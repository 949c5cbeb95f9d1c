"""Every notebook in notebooks/ runs top to bottom (fast mode) and draws at least one figure.

Each notebook runs in a fresh kernel of the current interpreter (a kernelspec written to a temporary Jupyter path,
so a machine where only ``pip install -e ".[dev]"`` ran needs nothing else), with the working directory
``notebooks/`` and ``SOFTTHINK_NOTEBOOK_FAST=1``. The executed copy is kept in pytest's tmp dir, never written
back over the committed notebook.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "softthink-notebook-test"
CELL_TIMEOUT_S = 600  # per cell; the whole notebook is bounded by the test's own timeout below
NOTEBOOK_TIMEOUT_S = 900


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names[:3] == [
        "01_entropy_and_forking_tokens.ipynb",
        "02_comparing_decode_modes.ipynb",
        "03_rl_entropy_dynamics.ipynb",
    ], names


MAX_NOTEBOOK_BYTES = 1_500_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_and_small(path):
    """The committed copy carries its figures (readable on GitHub without running it) and stays small."""
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name}: {path.stat().st_size} bytes"
    nb = nbformat.read(path, as_version=4)
    assert _errors(nb) == []
    assert _images(nb) >= 1, f"{path.name} is committed without its figures: execute it before committing"


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory) -> Path:
    """A Jupyter data dir holding one kernelspec that runs ipykernel with this very interpreter."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / KERNEL_NAME)
    spec = (root / "kernels" / KERNEL_NAME / "kernel.json").read_text()
    assert sys.executable in spec.replace("\\\\", "\\")
    return root


def _images(nb) -> int:
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


def _errors(nb) -> list[str]:
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_fast_mode(path, kernel_path, smollm2_path, data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("SOFTTHINK_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("SOFTTHINK_SMOLLM2", smollm2_path)
    monkeypatch.setenv("SOFTTHINK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the cell and traceback) if any cell fails
    seconds = time.perf_counter() - start
    nbformat.write(nb, tmp_path / path.name)
    assert _errors(nb) == []
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip())
    assert _images(nb) >= 1, f"{path.name} produced no figure"
    print(f"{path.name}: {seconds:.0f} s, {_images(nb)} figures")
