"""Bundled configs are found in a checkout and ship inside the wheel (softthink/_configs -> configs/)."""

from __future__ import annotations

from softthink.decoding.config import available_presets
from softthink.resources import PACKAGED_CONFIGS, SOURCE_CONFIGS, bundled_config_dir
from softthink.rl.recipes import available_recipes


def test_packaged_configs_are_the_source_configs():
    # the package's _configs is a symlink to the top-level configs/, so a wheel carries exactly these files
    assert PACKAGED_CONFIGS.is_symlink()
    assert PACKAGED_CONFIGS.resolve() == SOURCE_CONFIGS.resolve()


def test_bundled_dirs_hold_the_presets_and_recipes():
    assert bundled_config_dir("decode") == SOURCE_CONFIGS / "decode"
    assert {"discrete", "soft", "gated"} <= set(available_presets())
    assert {"full", "forking", "clip_cov", "kl_cov"} <= set(available_recipes())


def test_installed_copy_is_used_without_a_source_tree(tmp_path, monkeypatch):
    import softthink.resources as resources

    monkeypatch.setattr(resources, "SOURCE_CONFIGS", tmp_path / "no-checkout")
    assert resources.bundled_config_dir("rl") == PACKAGED_CONFIGS / "rl"
    assert (resources.bundled_config_dir("rl") / "forking.yaml").is_file()
