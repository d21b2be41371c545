"""The results cache is keyed by what a run depends on: the simulator's code and the digits' content."""

import shutil

import pytest

import stalenb as sn
from stalenb import cache, paths


def _copy_package(tmp_path):
    pkg = tmp_path / "stalenb"
    shutil.copytree(cache.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _append(path, text="\n# an edit\n"):
    path.write_text(path.read_text() + text)


def test_editing_the_simulator_changes_the_code_hash(tmp_path):
    pkg = _copy_package(tmp_path)
    before = cache.code_hash(package=pkg)
    assert before == cache.code_hash()  # same sources, same hash
    _append(pkg / "sim" / "engine.py")
    assert cache.code_hash(package=pkg) != before


def test_editing_a_module_outside_the_simulator_keeps_the_code_hash(tmp_path):
    pkg = _copy_package(tmp_path)
    before = cache.code_hash(package=pkg)
    for name in ("theory.py", "widgets.py", "plotting.py", "claims.py", "experiments.py", "repro/reproduce.py",
                 "distributed/launcher.py"):
        _append(pkg / name)
    assert cache.code_hash(package=pkg) == before


def test_named_extras_count_for_the_runs_that_name_them(tmp_path):
    pkg = _copy_package(tmp_path)
    real, rates = cache.code_hash("distributed", package=pkg), cache.code_hash("rates.py", package=pkg)
    assert len({real, rates, cache.code_hash(package=pkg)}) == 3
    _append(pkg / "distributed" / "ps.py")
    assert cache.code_hash("distributed", package=pkg) != real
    assert cache.code_hash("rates.py", package=pkg) == rates
    with pytest.raises(FileNotFoundError, match="no module or folder 'nope.py'"):
        cache.code_hash("nope.py", package=pkg)


def _digits(tmp_path, name):
    """A copy of the project's MNIST files under ``tmp_path/name``."""
    raw = tmp_path / name / "MNIST" / "raw"
    shutil.copytree(paths.data_dir() / "MNIST" / "raw", raw)
    return tmp_path / name


def test_replacing_the_digits_under_the_same_folder_changes_the_key(tmp_path):
    root = _digits(tmp_path, "data")
    cfg = sn.Config(steps=3, data_root=str(root))
    before = cache.key(cfg)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    if not labels.is_file():  # only the compressed copy is there
        labels = labels.with_name(labels.name + ".gz")
    blob = bytearray(labels.read_bytes())
    blob[-1] = (blob[-1] + 1) % 256  # one digit's label changed
    labels.write_bytes(bytes(blob))
    assert cache.key(cfg) != before


def test_the_same_digits_in_another_folder_give_the_same_key(tmp_path):
    a, b = _digits(tmp_path, "a"), _digits(tmp_path, "b")
    assert cache.key(sn.Config(steps=3, data_root=str(a))) == cache.key(sn.Config(steps=3, data_root=str(b)))
    assert cache.key(sn.Config(steps=3, data_root=str(a))) != cache.key(sn.Config(steps=4, data_root=str(a)))


def test_the_run_key_contains_the_code_hash(monkeypatch):
    cfg = sn.Config(steps=3)
    k = cache.key(cfg)
    monkeypatch.setattr(cache, "code_hash", lambda *extra, package=None: "0" * 16)
    assert cache.key(cfg) != k
