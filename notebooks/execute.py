"""Execute notebooks in place (full mode, not CI's fast mode), so the committed copies carry fresh outputs.

    python notebooks/execute.py                                   # all of notebooks/*.ipynb
    SOFTTHINK_RL_RUN_DIR=runs/testbed_rl python notebooks/execute.py 03_rl_entropy_dynamics

Runs each notebook with the working directory notebooks/ and this interpreter's ipykernel; the environment
(SOFTTHINK_SMOLLM2, SOFTTHINK_DATA_DIR, SOFTTHINK_RL_RUN_DIR, ...) passes through to the kernel.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    import nbclient
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (stem or file name); default: all")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if args.names:
        wanted = {n.removesuffix(".ipynb") for n in args.names}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise SystemExit(
                f"no such notebook(s): {', '.join(sorted(unknown))}; have: {', '.join(p.stem for p in paths)}"
            )
        paths = [p for p in paths if p.stem in wanted]
    os.environ.pop("SOFTTHINK_NOTEBOOK_FAST", None)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=args.timeout, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
        )
        start = time.perf_counter()
        client.execute()
        nbformat.write(nb, path)
        print(f"{path.name}: executed in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
