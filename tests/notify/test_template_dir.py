"""The operator's templates directory is read to a bounded depth and count, never ``/``."""

from __future__ import annotations

from pathlib import Path

from pymon.notify.templates import MAX_DEPTH, MAX_ENTRIES, Templates
from tests.support.cli import pymon

BROKEN = "{% if %}\n"


def test_the_root_directory_is_refused_without_walking_it() -> None:
    assert Templates("/").check() == [
        "/: the root directory cannot be the templates directory "
        "(name the directory that holds email/)"
    ]


def test_a_path_that_resolves_to_the_root_is_refused(tmp_path: Path) -> None:
    up = Path(tmp_path, *[".."] * len(tmp_path.parts))
    assert "the root directory cannot be" in Templates(up).check()[0]


def test_a_directory_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "default.txt.j2").write_text(BROKEN)
    for n in range(MAX_ENTRIES):
        (tmp_path / f"f{n}").touch()
    assert Templates(tmp_path).check() == [
        f"{tmp_path}: more than {MAX_ENTRIES:,} files and directories; "
        "is this the templates directory?"
    ]


def test_templates_are_read_to_max_depth_and_hidden_directories_are_skipped(
    tmp_path: Path,
) -> None:
    deepest = tmp_path.joinpath(*[f"d{n}" for n in range(MAX_DEPTH)])
    too_deep = deepest / "deeper"
    too_deep.mkdir(parents=True)
    (deepest / "last.txt.j2").write_text(BROKEN)
    (too_deep / "unread.txt.j2").write_text(BROKEN)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "hidden.txt.j2").write_text(BROKEN)
    problems = Templates(tmp_path).check()
    assert [problem.split(":")[0] for problem in problems] == [str(deepest / "last.txt.j2")]


def test_validate_refuses_templates_at_the_root(tmp_path: Path) -> None:
    cfg = tmp_path / "pymon.yaml"
    cfg.write_text("notifications:\n  templates: /\n")
    done = pymon("config", "validate", str(cfg))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"{cfg}: notifications.templates: /: the root directory cannot be the templates "
        "directory (name the directory that holds email/)\n"
    )
