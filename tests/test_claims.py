"""The claims ledger (three-valued verdicts, stable files, paired differences recorded, the README table
generated from it) and the statistics behind its intervals (``stalenb.stats``), against hand-computed values."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from stalenb import claims, stats


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
    led.record("05.b", role="claim", quote="q", test="t", statistic=0.1234567891, ci_low=0.1, ci_high=0.2, threshold=0.0)
    rec = led.record("05.a", role="claim", quote="q", test="t", statistic=-1.0, threshold=0.0, better="below", lr=0.05)
    assert rec["verdict"] == "holds" and rec["ci_low"] == rec["ci_high"] == -1.0 and rec["lr"] == 0.05
    on_disk = json.loads(led.path.read_text())
    assert [r["id"] for r in on_disk] == ["05.a", "05.b"]
    assert on_disk[1]["statistic"] == 0.123457
    assert set(claims.FIELDS) <= set(on_disk[0])


def test_bad_ids_and_shadowing_extras_are_errors(tmp_path, monkeypatch):
    led = _ledger(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="id must look like '05."):
        led.record("06.x", role="claim", quote="q", test="t", statistic=1.0, threshold=0.0)
    with pytest.raises(ValueError, match="shadow the standard fields"):
        led.record("05.x", role="claim", quote="q", test="t", statistic=1.0, threshold=0.0, seeds=3, verdict="holds")


def test_collect_replaces_only_the_notebooks_run(tmp_path, monkeypatch):
    for nb, stat in (("01", 1.0), ("02", 2.0)):
        _ledger(tmp_path, monkeypatch, nb).record(f"{nb}.c", role="claim", quote="q", test="t", statistic=stat, threshold=0.0)
    target = tmp_path / "claims.json"
    claims.collect(["01", "02"], "paper", target)
    _ledger(tmp_path, monkeypatch, "02").record("02.d", role="claim", quote="q", test="t", statistic=-2.0, threshold=0.0)
    claims.collect(["02"], "paper", target)
    got = {r["id"]: r["verdict"] for r in claims.load(target)}
    assert got == {"01.c": "holds", "02.d": "fails"}  # 02's old record is gone, 01's kept


def test_readme_block_is_generated_and_checked(tmp_path, monkeypatch):
    rec = _ledger(tmp_path, monkeypatch).record("05.v1.tau8", role="claim", quote="q", test="a | b", statistic=0.02,
                                                 ci_low=-0.01, ci_high=0.05, threshold=0.0, figures=["05_x"])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{claims.README_START}\nold\n{claims.README_END}\nrest\n")
    assert claims.update_readme(readme, [rec])
    block = claims.readme_block(readme)
    assert "**undecided** — needs" in block and "figures/05_x.png" in block and "a \\| b" in block
    assert "> “q” — poster" in block and "1 source claims tested: 0 supports, 0 refutes, 1 undecided" in block
    assert readme.read_text().startswith("intro\n") and readme.read_text().endswith("rest\n")
    assert not claims.update_readme(readme, [rec])  # idempotent


def test_role_answer_and_decide(tmp_path, monkeypatch):
    led = _ledger(tmp_path, monkeypatch)
    sup = led.record("05.s", role="claim", quote="q", test="t", statistic=0.2, ci_low=0.1, ci_high=0.3, threshold=0.0)
    ref = led.record("05.r", role="claim", quote="q", test="t", statistic=0.2, ci_low=0.1, ci_high=0.3,
                     threshold=0.5)
    chk = led.record("05.c", role="check", quote="q", test="t", statistic=0.2, ci_low=0.1, ci_high=0.3,
                     threshold=0.5)
    assert (sup["answer"], ref["answer"], chk["answer"], chk["verdict"]) == ("supports", "refutes", None, "fails")
    assert sup["decide"] is None and chk["decide"] is None
    # undecided, 4 seeds, interval [-0.1, 0.3]: centre 0.1, half-width 0.2 -> 4·(0.2/0.1)² = 16 seeds
    und = led.record("05.u", role="claim", quote="q", test="t", statistic=0.1, ci_low=-0.1, ci_high=0.3,
                     threshold=0.0, seeds=4)
    assert und["answer"] == "undecided" and und["decide"].startswith("≈16 seeds")
    own = led.record("05.o", role="claim", quote="q", test="t", statistic=0.1, ci_low=-0.1, ci_high=0.3,
                     threshold=0.0, decide="horizon T ≥ 1e5")
    assert own["decide"] == "horizon T ≥ 1e5"
    assert "centred on the threshold" in claims.to_decide(-0.1, 0.1, 0.0, seeds=5)
    with pytest.raises(ValueError, match=r"role must be one of \('claim', 'check'\)"):
        led.record("05.x", role="fact", quote="q", test="t", statistic=1.0, threshold=0.0)
    assert claims.validate(list(led.records.values()))


def test_validate_names_each_inconsistent_record():
    good = {"id": "01.a", "role": "claim", "ci_low": 0.1, "ci_high": 0.3, "threshold": 0.0, "better": "above",
            "verdict": "holds", "answer": "supports", "decide": None}
    bad = [{**good, "id": "01.no-role", "role": None},
           {**good, "id": "01.wrong-answer", "answer": "refutes"},
           {**good, "id": "01.wrong-verdict", "verdict": "fails", "answer": "refutes"},
           {**good, "id": "01.undecided", "ci_low": -0.1, "verdict": "inconclusive", "answer": "undecided"},
           {**good, "id": "01.check-answers", "role": "check"}]
    assert claims.validate([good]) == [good]
    with pytest.raises(ValueError) as err:
        claims.validate([good] + bad)
    for r in bad:
        assert r["id"] in str(err.value)
    assert "01.a:" not in str(err.value)


def test_record_difference_fills_the_interval_and_the_counts(tmp_path, monkeypatch):
    led = _ledger(tmp_path, monkeypatch)
    d = stats.paired_difference(_table([0.01, 0.02, 0.03, 0.02]), "a", "b")
    rec = led.record_difference("05.a-vs-b", d, role="claim", quote="q", test="t", threshold=0.0, margin=0.01, lr=0.1)
    want = tuple(float(f"{d[k]:.6g}") for k in ("diff", "ci_low", "ci_high"))  # the ledger keeps 6 digits
    assert (rec["statistic"], rec["ci_low"], rec["ci_high"]) == want
    assert (rec["seeds"], rec["runs"], rec["margin"], rec["lr"], rec["verdict"]) == (4, 8, 0.01, 0.1, "holds")
    ratio = led.record_difference("05.ratio", stats.as_ratio(d), role="claim", quote="q", test="t", threshold=1.0, better="below")
    assert ratio["statistic"] == pytest.approx(math.exp(d["diff"]), rel=1e-5) and ratio["verdict"] == "fails"
    with pytest.raises(ValueError, match="lacks"):
        led.record_difference("05.x", {"diff": 0.1}, role="claim", quote="q", test="t", threshold=0.0)
    with pytest.raises(ValueError, match="come from the paired difference"):
        led.record_difference("05.x", d, role="claim", quote="q", test="t", threshold=0.0, seeds=3)


# -- the statistics ----------------------------------------------------------------------------------
def test_ci95_by_hand():
    mean, half, sd, n = stats.ci95([1.0, 2.0, 3.0, float("nan")])
    assert (mean, sd, n) == (2.0, 1.0, 3)
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3))
    assert math.isnan(stats.ci95([1.0])[1]) and stats.ci95([])[3] == 0


def _table(diffs, base=0.9):
    rows = []
    for i, d in enumerate(diffs):
        rows.append({"method": "b", "seed": i, "test_acc": base})
        rows.append({"method": "a", "seed": i, "test_acc": base + d})
    return pd.DataFrame(rows)


def test_paired_difference_by_hand_and_its_intervals_verdicts():
    d = stats.paired_difference(_table([0.01, 0.02, 0.03, 0.02]), "a", "b")  # no tau column: paired on seed
    assert d["diff"] == pytest.approx(0.02) and d["n"] == 4
    half = scipy_stats.t.ppf(0.975, 3) * np.std([0.01, 0.02, 0.03, 0.02], ddof=1) / 2
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert d["p"] == pytest.approx(scipy_stats.ttest_1samp([0.01, 0.02, 0.03, 0.02], 0.0).pvalue)
    assert claims.verdict(d["ci_low"], d["ci_high"], 0.0) == "holds"
    flat = stats.paired_difference(_table([0.001, -0.002, 0.0, 0.002, -0.001, 0.0]), "a", "b")
    assert claims.verdict(flat["ci_low"], flat["ci_high"], 0.0) == "inconclusive"  # straddles 0
    assert claims.verdict(flat["ci_low"], flat["ci_high"], -0.01) == "holds"  # non-inferior by a margin 0.01
    worse = stats.paired_difference(_table([-0.05, -0.04, -0.06]), "a", "b")
    assert claims.verdict(worse["ci_low"], worse["ci_high"], -0.01) == "fails"  # wholly below -margin
    one = stats.paired_difference(_table([0.1]), "a", "b")
    assert one["n"] == 1 and math.isnan(one["ci_low"]) and math.isnan(one["p"])


def test_paired_difference_pairs_on_the_named_columns_only():
    table = pd.concat([_table([0.01, 0.03]).assign(tau=0), _table([0.05, 0.07]).assign(tau=8)])
    d = stats.paired_difference(table, "a", "b", pair_on=("tau", "seed"))
    assert d["n"] == 4 and d["diff"] == pytest.approx(0.04)
    missing = table[~((table.method == "a") & (table.seed == 1) & (table.tau == 8))]  # one pair incomplete
    assert stats.paired_difference(missing, "a", "b", pair_on=("tau", "seed"))["n"] == 3


def test_paired_difference_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"needs the column\(s\) \['tau'\]"):
        stats.paired_difference(_table([0.1, 0.2]), "a", "b", pair_on=("tau", "seed"))
    with pytest.raises(ValueError, match=r"\['accuracy'\]"):
        stats.paired_difference(_table([0.1, 0.2]), "a", "b", metric="accuracy")
    with pytest.raises(ValueError, match="'c' has no rows"):
        stats.paired_difference(_table([0.1]), "c", "b")
    twice = pd.concat([_table([0.1, 0.2]).assign(tau=0), _table([0.1, 0.2]).assign(tau=8)])
    with pytest.raises(ValueError, match="several rows"):  # two conditions per seed: pairing ambiguous
        stats.paired_difference(twice, "a", "b")


def test_best_checkpoint_picks_the_validation_maximum_not_the_test_one():
    h = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 3,
                      "val_acc": [0.2, 0.9, 0.9, 0.7, 0.5, 0.6, np.nan],
                      "test_acc": [0.1, 0.8, 0.95, 0.99, 0.4, 0.55, 0.1]})
    b = stats.best_checkpoint(h, ["run"]).set_index("run")
    assert b.loc["a", "test_acc"] == 0.8  # first of the tied validation maxima, not the test maximum 0.99
    assert b.loc["b", "test_acc"] == 0.55 and b.loc["b", "val_acc"] == 0.6  # NaN (diverged) row skipped


def test_binomial_margin_by_hand():
    assert stats.binomial_margin(0.97, 2000) == pytest.approx(2 * math.sqrt(0.97 * 0.03 / 2000))
    assert stats.binomial_margin(0.5, 100, 1.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        stats.binomial_margin(1.0, 100)


def test_intersection_union_verdicts_follow_the_rule():
    all_hold = stats.intersection_union([0.03, 0.02], [0.01, 0.005], [0.05, 0.04])
    one_fails = stats.intersection_union([0.03, -0.02], [0.01, -0.03], [0.05, -0.01])
    one_open = stats.intersection_union([0.03, 0.01], [0.01, -0.01], [0.05, 0.03])
    assert claims.verdict(*all_hold[1:], threshold=0.0) == "holds"
    assert claims.verdict(*one_fails[1:], threshold=0.0) == "fails"
    assert claims.verdict(*one_open[1:], threshold=0.0) == "inconclusive"
    assert one_fails == (-0.02, -0.03, -0.01)
    assert math.isnan(stats.intersection_union([0.1], [math.nan], [0.2])[1])
    with pytest.raises(ValueError):
        stats.intersection_union([0.1, 0.2], [0.0], [0.3])


def test_censored_median_counts_unreached_runs_as_late():
    assert stats.censored_median([300, 100, 200], 660) == 200.0
    assert stats.censored_median([100, 200, math.nan, math.nan], 660) == math.inf
    assert stats.censored_median([100, 200, 300, math.nan], 660) == 250.0
    assert stats.censored_median([100, 900, 50], 660) == 100.0  # beyond the limit = censored
    assert math.isnan(stats.censored_median([], 660))


def test_a_one_sided_bound_decides_and_nan_does_not():
    # a censored time gives an interval open on one side: its finite end still decides
    assert claims.verdict(3.0, math.inf, 2.0, "below") == "fails"
    assert claims.verdict(None, 1.5, 2.0, "below") == "holds"
    assert claims.verdict(0.0, math.inf, 2.0, "below") == "inconclusive"
    assert claims.verdict(math.nan, 1.0, 2.0) == "inconclusive"


@pytest.mark.parametrize("low,high,rule,expected", [
    (0.02, 0.05, "improves", "holds"),        # the gain clears 0
    (0.001, 0.008, "improves", "fails"),      # real but below δ = 0.01: negligible
    (-0.02, 0.03, "improves", "inconclusive"),
    (-0.005, 0.007, "equivalent", "holds"),   # inside ±δ
    (0.012, 0.03, "equivalent", "fails"),     # wholly outside
    (-0.005, 0.02, "equivalent", "inconclusive"),
])
def test_rules_with_a_smallest_effect_of_interest(low, high, rule, expected, tmp_path, monkeypatch):
    assert claims.ruling(low, high, 0.0, rule=rule, margin=0.01) == expected
    # a decrease read as a gain (better="below") mirrors the interval
    assert claims.ruling(-high, -low, 0.0, "below", rule=rule, margin=0.01) == expected
    monkeypatch.setattr(claims, "ledger_dir", lambda profile_name=None: tmp_path)
    rec = claims.Ledger("98", source="s").record("98.x", role="claim", quote="q", test="t", statistic=(low + high) / 2,
                                                 ci_low=low, ci_high=high, threshold=0.0, rule=rule, margin=0.01)
    assert rec["verdict"] == expected and rec["rule"] == rule
    assert claims.validate([rec]) == [rec]
    with pytest.raises(ValueError, match="verdict"):
        claims.validate([{**rec, "verdict": "holds" if expected != "holds" else "fails"}])


def test_a_rule_with_a_margin_needs_one():
    with pytest.raises(ValueError, match="margin"):
        claims.ruling(0.1, 0.2, 0.0, rule="improves")
    with pytest.raises(ValueError, match="rule must be one of"):
        claims.ruling(0.1, 0.2, 0.0, rule="bigger")
