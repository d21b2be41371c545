"""The results cache is keyed by the code: an edit to a numerical module invalidates cached runs."""

import shutil

import stalenb as sn
from stalenb import cache


def _copy_package(tmp_path):
    pkg = tmp_path / "stalenb"
    shutil.copytree(cache.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def test_editing_a_numerical_module_changes_the_code_hash(tmp_path):
    pkg = _copy_package(tmp_path)
    before = cache.code_hash(pkg)
    assert before == cache.code_hash(cache.PACKAGE)  # same sources, same hash
    engine = pkg / "engine.py"
    engine.write_text(engine.read_text() + "\n# an edit that could change the numbers\n")
    assert cache.code_hash(pkg) != before
    # a module deeper in the tree counts too
    ps = pkg / "distributed" / "ps.py"
    after_engine = cache.code_hash(pkg)
    ps.write_text(ps.read_text() + "\n#\n")
    assert cache.code_hash(pkg) != after_engine


def test_editing_a_presentation_module_keeps_the_cache(tmp_path):
    pkg = _copy_package(tmp_path)
    before = cache.code_hash(pkg)
    for name in ("widgets.py", "plotting.py", "claims.py"):
        f = pkg / name
        f.write_text(f.read_text() + "\n# cosmetic\n")
    assert cache.code_hash(pkg) == before


def test_the_run_key_contains_the_code_hash(monkeypatch):
    cfg = sn.Config(steps=3)
    k = cache.key(cfg)
    monkeypatch.setattr(cache, "code_hash", lambda package=None: "0" * 16)
    assert cache.key(cfg) != k
