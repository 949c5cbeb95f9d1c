"""Every command in the README's shell code blocks runs as written (and the cheap ones of docs/*.md).

Commands are read from the ```bash / ```sh / ```shell / ```console blocks: comments dropped, ``\\`` continuations
joined, ``a && b`` split into ``a`` and ``b``. A ``softthink ...`` command runs in this process through the
``softthink`` console script's function (`softthink.cli.main.main`, checked against pyproject.toml); any other runs
as a subprocess. Each runs in a scratch folder that mirrors the repository (its top-level entries linked in), so a
command that writes (``softthink export ...``) writes there. Commands that install packages, run the whole test
suite or need what this machine may lack are skipped, each with its reason in `SKIPPED`.
"""

from __future__ import annotations

import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from softthink.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}

SKIPPED = {
    "pip install -e .": "installs packages",
    "pip install -e .[dev]": "installs packages",
    "softthink demo": "the full demo (2 models x 2 modes x 100 problems, about a minute on a free core); "
    "tests/cli/test_demo_and_generate.py runs it on 4 problems",
    "python -m pytest": "runs the whole test suite, this test included",
    "python -m pytest -m not slow": "runs the whole test suite, this test included",
    "mypy": "type-checks the package (about a minute); CI runs it as its own step",
}
"""README commands that are not run, and why."""

DOCS_COMMANDS = {
    "docs/evaluation.md": ["softthink eval validate eval/suites/*.yaml", "softthink eval ls"],
    "docs/rl.md": ["softthink rl list"],
    "docs/integrations.md": ["softthink export custom-generate ./softthink-generate"],
}
"""The cheap commands of docs/*.md that are run too (the others load real models, train or need a GPU)."""


def shell_commands(markdown: str) -> list[str]:
    """The commands of the shell code blocks of ``markdown``, one per ``&&``-separated part, as written."""
    commands, block, language = [], None, None
    for line in markdown.splitlines():
        fence = re.match(r"^\s*```(\S*)", line)
        if fence:
            if block is None:
                block, language = [], fence.group(1).lower()
            else:
                if language in SHELL_LANGUAGES:
                    commands += _split_block(block)
                block = None
            continue
        if block is not None:
            block.append(line)
    return commands


def _split_block(lines: list[str]) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        part: list[str] = []
        for token in [*tokens, "&&"]:
            if token == "&&":
                if part:
                    out.append(shlex.join(part))
                part = []
            else:
                part.append(token)
    return out


def _key(command: str) -> str:
    return " ".join(shlex.split(command))


README_COMMANDS = shell_commands((REPO / "README.md").read_text())
TO_RUN = [c for c in README_COMMANDS if _key(c) not in SKIPPED] + [c for cs in DOCS_COMMANDS.values() for c in cs]


def test_the_readme_commands_are_found_and_every_skip_is_listed_with_a_reason():
    keys = {_key(c) for c in README_COMMANDS}
    assert set(SKIPPED) <= keys, f"skips for commands no longer in the README: {set(SKIPPED) - keys}"
    assert any(c.startswith("softthink generate") for c in TO_RUN)
    assert all(reason.strip() for reason in SKIPPED.values())
    for page, commands in DOCS_COMMANDS.items():
        found = {_key(c) for c in shell_commands((REPO / page).read_text())}
        assert {_key(c) for c in commands} <= found, page
    # `softthink` is the console script of softthink.cli.main:main, which the commands below call in-process
    assert re.search(r'^softthink = "softthink\.cli\.main:main"', (REPO / "pyproject.toml").read_text(), re.M)


def test_shell_commands_parser():
    text = "```bash\npip install x && tool run \\\n    --flag 'a b'   # note\n```\n```python\nnot_a_command()\n```\n"
    assert shell_commands(text) == ["pip install x", "tool run --flag 'a b'"]


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A scratch working directory whose top-level entries link to the repository's."""
    root = tmp_path / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {".git"}:
            (root / entry.name).symlink_to(entry)
    monkeypatch.chdir(root)
    return root


@pytest.mark.slow  # loads the testbed model and lints the repository: ~30 s on a free core
@pytest.mark.parametrize("command", TO_RUN)
def test_command_runs_as_written(command, mirror, capsys):
    argv = shlex.split(command)
    if argv[0] == "softthink":
        args = [a for arg in argv[1:] for a in (sorted(glob.glob(arg)) if "*" in arg else [arg])]
        code = main(args)
        captured = capsys.readouterr()
        assert code == 0, f"{command}: exit {code}\n{captured.out[-2000:]}\n{captured.err[-2000:]}"
        return
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"


if __name__ == "__main__":  # print what would run
    print("\n".join(TO_RUN), file=sys.stdout)
