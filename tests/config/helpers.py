"""Helpers for the config tests: write a config file, load it, read its issues."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from pymon.config.load import load_config
from pymon.config.schema import Config
from pymon.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "pymon.yaml") -> Path:
    """``text`` (dedented) as a file in ``tmp_path``."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: Mapping[str, str] | None = None) -> Config:
    """``text`` written to a file and loaded; ``env`` defaults to an empty environment."""
    return load_config(write(tmp_path, text), env={} if env is None else env)


def issues(tmp_path: Path, text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The issues loading ``text`` reports, each as printed, with the file name as ``FILE``."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={} if env is None else env)
    return [str(issue).replace(str(path), "FILE", 1) for issue in info.value.issues]
