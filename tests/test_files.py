"""Atomic result files: complete or absent, never half-written."""

import pytest

from stalenb.files import atomic_write


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "result.json"
    with atomic_write(target) as fh:
        fh.write("first")
    assert target.read_text() == "first"
    assert target.stat().st_mode & 0o044  # readable like any file, not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half of the second")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]  # no temporary left
