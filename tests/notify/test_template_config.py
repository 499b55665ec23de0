"""The templates directory from the config: found beside the config file, checked early."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymon.config.load import load_config
from pymon.daemon import Daemon
from pymon.errors import PymonError
from pymon.notify.templates import template_dir
from tests.support.cli import pymon

CONFIG = """
storage: {url: "sqlite:///%s/p.db"}
notifications:
  templates: mail-templates
  channels:
    mail: {type: email, from: pymon@example.org, to: [ops@example.org]}
"""


def write(tmp_path: Path, template: str) -> Path:
    (tmp_path / "mail-templates" / "email").mkdir(parents=True)
    (tmp_path / "mail-templates" / "email" / "default.txt.j2").write_text(template)
    cfg = tmp_path / "pymon.yaml"
    cfg.write_text(CONFIG % tmp_path)
    return cfg


def test_a_relative_templates_directory_is_read_beside_the_config(tmp_path: Path) -> None:
    cfg = write(tmp_path, "{{ notice.service }}\n")
    assert template_dir(load_config(cfg)) == tmp_path / "mail-templates"


def test_validate_reports_a_broken_template_with_its_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, "fine\n{% if %}\n")
    done = pymon("config", "validate", str(cfg))
    assert done.returncode == 1
    assert "default.txt.j2:2:" in done.stderr


def test_the_daemon_refuses_to_start_with_a_broken_template(tmp_path: Path) -> None:
    cfg = write(tmp_path, "{% for %}")
    with pytest.raises(PymonError, match="templates are broken"):
        Daemon(load_config(cfg))
