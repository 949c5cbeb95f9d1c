"""Features behind an extra name the extra to install when its package is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from softthink.errors import SoftthinkError
from softthink.extras import SoftthinkMissingExtraError, require


def test_require_returns_the_module_when_installed():
    assert require("json", extra="none", feature="json").dumps([1]) == "[1]"


def test_require_names_the_feature_and_the_extra():
    with pytest.raises(SoftthinkMissingExtraError, match=r"pip install 'softthink\[rl\]'") as info:
        require("surely_not_an_installed_package_xyz", extra="rl", feature="softthink.rl (GRPO training)")
    assert isinstance(info.value, SoftthinkError) and isinstance(info.value, ImportError)
    assert info.value.extra == "rl" and "softthink.rl (GRPO training)" in str(info.value)


def test_softthink_rl_without_trl_says_which_extra_to_install():
    # A fresh interpreter where importing trl fails as it does when trl is not installed.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'trl' or name.startswith('trl.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'trl'\", name='trl')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import softthink, softthink.eval\n"  # decoding and the harness work without trl
        "try:\n"
        "    import softthink.rl\n"
        "except ImportError as err:\n"
        "    print(type(err).__name__, err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("SoftthinkMissingExtraError") and "softthink[rl]" in out.stdout
