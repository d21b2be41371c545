"""Whose folders (issue 25, item 4): cache/, build/ and figures/ go with the imported package's checkout;
when Python runs inside another stalenb checkout (one .venv serving two checkouts), ``repo_root`` says
so once, naming both folders and the cure; ``STALENB_ROOT`` set, or running inside the package's own
checkout or outside any checkout, is silent."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from stalenb import paths

PACKAGE_ROOT = Path(paths.__file__).resolve().parent.parent


def _checkout(folder: Path) -> Path:
    """A stand-in for another clone: pyproject.toml, stalenb/paths.py and a notebooks/ folder."""
    (folder / "stalenb").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    (folder / "pyproject.toml").write_text('[project]\nname = "stalenb"\n')
    (folder / "stalenb" / "paths.py").write_text("")
    return folder.resolve()


@pytest.fixture
def fresh(monkeypatch):
    for name in ("STALENB_ROOT", "STALENB_CACHE", "STALENB_FIGURES", "STALENB_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(paths, "_NOTED", set())


def test_running_in_another_checkout_keeps_the_packages_folders_and_says_so_once(tmp_path, monkeypatch, fresh):
    other = _checkout(tmp_path / "clone")
    monkeypatch.chdir(other / "notebooks")  # where a notebook kernel starts
    with pytest.warns(UserWarning) as caught:
        root = paths.repo_root()
    assert root == PACKAGE_ROOT  # the results go with the code that makes them
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(PACKAGE_ROOT) in message and str(other) in message and f"pip install -e {other}" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert paths.cache_dir() == PACKAGE_ROOT / "cache"  # the same root, no second warning


@pytest.mark.parametrize("where", ["own checkout", "no checkout", "STALENB_ROOT"])
def test_no_warning_where_the_folders_are_not_in_question(where, tmp_path, monkeypatch, fresh):
    other = _checkout(tmp_path / "clone")
    if where == "own checkout":
        monkeypatch.chdir(PACKAGE_ROOT / "stalenb")
        expected = PACKAGE_ROOT
    elif where == "no checkout":
        (tmp_path / "plain").mkdir()
        monkeypatch.chdir(tmp_path / "plain")
        expected = PACKAGE_ROOT
    else:
        monkeypatch.chdir(other)
        monkeypatch.setenv("STALENB_ROOT", str(other))
        expected = other
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert paths.repo_root() == expected


def test_checkout_of_finds_the_nearest_checkout(tmp_path):
    other = _checkout(tmp_path / "clone")
    (other / "notebooks" / "deep").mkdir()
    assert paths.checkout_of(str(other / "notebooks" / "deep")) == other
    assert paths.checkout_of(str(tmp_path)) is None


def test_a_python_started_in_another_checkout_prints_the_note(tmp_path):
    """The real situation: this environment's python started in another clone's notebooks/ folder."""
    other = _checkout(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STALENB_")}
    done = subprocess.run([sys.executable, "-c", "from stalenb import paths; print(paths.build_dir())"],
                          cwd=other / "notebooks", env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(PACKAGE_ROOT / "build")
    assert done.stderr.count("UserWarning") == 1 and str(other) in done.stderr
