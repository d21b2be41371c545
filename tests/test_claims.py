"""The claims ledger: three-valued verdicts, stable files, the README table generated from it."""

import json

import pytest

from stalenb import claims


@pytest.mark.parametrize("low, high, t, better, want", [
    (0.01, 0.03, 0.0, "above", "holds"),
    (-0.03, -0.01, 0.0, "above", "fails"),
    (-0.175, 0.092, 0.0, "above", "inconclusive"),
    (0.0, 0.2, 0.0, "above", "inconclusive"),        # touching the threshold is not clearing it
    (-0.61, -0.35, -0.25, "below", "holds"),
    (-0.2, -0.1, -0.25, "below", "fails"),
    (-0.3, -0.2, -0.25, "below", "inconclusive"),
    (float("nan"), 0.1, 0.0, "above", "inconclusive"),
])
def test_verdict_is_three_valued(low, high, t, better, want):
    assert claims.verdict(low, high, t, better) == want


def test_verdict_rejects_bad_direction_and_reversed_interval():
    with pytest.raises(ValueError, match="better must be one of"):
        claims.verdict(0, 1, 0, "up")
    with pytest.raises(ValueError, match="ci_low must be <= ci_high"):
        claims.verdict(1, 0, 0)


def _ledger(tmp_path, monkeypatch, nb="05"):
    monkeypatch.setattr(claims, "ledger_dir", lambda profile_name=None: tmp_path / "claims" / (profile_name or "paper"))
    return claims.Ledger(nb, source="poster")


def test_records_are_written_sorted_and_rounded(tmp_path, monkeypatch):
    led = _ledger(tmp_path, monkeypatch)
    led.record("05.b", quote="q", test="t", statistic=0.1234567891, ci_low=0.1, ci_high=0.2, threshold=0.0)
    rec = led.record("05.a", quote="q", test="t", statistic=-1.0, threshold=0.0, better="below", lr=0.05)
    assert rec["verdict"] == "holds" and rec["ci_low"] == rec["ci_high"] == -1.0 and rec["lr"] == 0.05
    on_disk = json.loads(led.path.read_text())
    assert [r["id"] for r in on_disk] == ["05.a", "05.b"]
    assert on_disk[1]["statistic"] == 0.123457
    assert set(claims.FIELDS) <= set(on_disk[0])


def test_bad_ids_and_shadowing_extras_are_errors(tmp_path, monkeypatch):
    led = _ledger(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="id must look like '05."):
        led.record("06.x", quote="q", test="t", statistic=1.0, threshold=0.0)
    with pytest.raises(ValueError, match="shadow the standard fields"):
        led.record("05.x", quote="q", test="t", statistic=1.0, threshold=0.0, seeds=3, verdict="holds")


def test_collect_replaces_only_the_notebooks_run(tmp_path, monkeypatch):
    for nb, stat in (("01", 1.0), ("02", 2.0)):
        _ledger(tmp_path, monkeypatch, nb).record(f"{nb}.c", quote="q", test="t", statistic=stat, threshold=0.0)
    target = tmp_path / "claims.json"
    claims.collect(["01", "02"], "paper", target)
    _ledger(tmp_path, monkeypatch, "02").record("02.d", quote="q", test="t", statistic=-2.0, threshold=0.0)
    claims.collect(["02"], "paper", target)
    got = {r["id"]: r["verdict"] for r in claims.load(target)}
    assert got == {"01.c": "holds", "02.d": "fails"}  # 02's old record is gone, 01's kept


def test_readme_block_is_generated_and_checked(tmp_path, monkeypatch):
    rec = _ledger(tmp_path, monkeypatch).record("05.v1.tau8", quote="q", test="a | b", statistic=0.02,
                                                 ci_low=-0.01, ci_high=0.05, threshold=0.0, figures=["05_x"])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{claims.README_START}\nold\n{claims.README_END}\nrest\n")
    assert claims.update_readme(readme, [rec])
    block = claims.readme_block(readme)
    assert "**inconclusive**" in block and "figures/05_x.png" in block and "a \\| b" in block
    assert readme.read_text().startswith("intro\n") and readme.read_text().endswith("rest\n")
    assert not claims.update_readme(readme, [rec])  # idempotent
