"""Grids, aggregation and verdicts (notebooks 05–06), checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import stalenb as sn
from stalenb import experiments as ex


def test_product_applies_every_axis():
    specs = ex.product(sn.Config(), method={"plain": {}, "sa": {"rule": "staleness-aware"}},
                       tau={0: {"staleness": sn.Uniform(0)}, 8: {"staleness": sn.Uniform(8)}}, seed=[0, 1, 2])
    assert len(specs) == 2 * 2 * 3
    labels, cfg = specs[-1]
    assert labels == {"method": "sa", "tau": 8, "seed": 2}
    assert (cfg.rule, cfg.staleness, cfg.seed) == ("staleness-aware", sn.Uniform(8), 2)
    with pytest.raises(ValueError, match="empty"):
        ex.product(sn.Config(), seed=[])
    with pytest.raises(ValueError, match="unknown Config field"):
        ex.product(sn.Config(), bogus=[1])


def test_sparsification_methods_cover_paper_one():
    m = ex.sparsification_methods()
    assert len(m) == 11 and m["vanilla"] == {}
    assert m["top-k 1% +EF"] == {"compressor": "topk", "density": 0.01, "error_feedback": True}
    assert m["random-k 1%"] == {"compressor": "randomk", "density": 0.01}
    assert m["DC-ASGD"]["rule"] == "dc-asgd" and m["staleness-aware"] == {"rule": "staleness-aware"}
    for changes in m.values():
        sn.Config(**changes)  # every method is a valid config


def test_stale_weight_bounds_the_late_mass():
    assert ex.stale_weight(0.5, 8, 2) == pytest.approx(0.5 * 2 / 6)
    assert ex.stale_weight(3.0, 8, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="workers > k"):
        ex.stale_weight(0.5, 4, 4)


def test_ci95_by_hand():
    mean, half, sd, n = ex.ci95([1.0, 2.0, 3.0, float("nan")])
    assert (mean, sd, n) == (2.0, 1.0, 3)
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3))
    assert math.isnan(ex.ci95([1.0])[1]) and ex.ci95([])[3] == 0


def _table(diffs, base=0.9):
    rows = []
    for i, d in enumerate(diffs):
        rows.append({"method": "b", "tau": i % 2, "seed": i, "test_acc": base})
        rows.append({"method": "a", "tau": i % 2, "seed": i, "test_acc": base + d})
    return pd.DataFrame(rows)


def test_paired_difference_and_verdicts():
    d = ex.paired_difference(_table([0.01, 0.02, 0.03, 0.02]), "a", "b")
    assert d["diff"] == pytest.approx(0.02) and d["n"] == 4
    half = stats.t.ppf(0.975, 3) * np.std([0.01, 0.02, 0.03, 0.02], ddof=1) / 2
    assert d["ci_low"] == pytest.approx(0.02 - half)
    assert ex.verdict(d, "improves") == "holds"
    flat = ex.paired_difference(_table([0.001, -0.002, 0.0, 0.002, -0.001, 0.0]), "a", "b")
    assert ex.verdict(flat, "improves") == "inconclusive"  # the interval straddles 0
    assert ex.verdict(flat, "does not harm", margin=0.01) == "holds"
    worse = ex.paired_difference(_table([-0.05, -0.04, -0.06]), "a", "b")
    assert ex.verdict(worse, "does not harm", margin=0.01) == "fails"  # wholly below -margin
    assert ex.verdict(worse, "improves") == "fails"
    assert ex.verdict(ex.paired_difference(_table([0.1]), "a", "b"), "improves") == "inconclusive"
    with pytest.raises(ValueError, match="claim"):
        ex.verdict(d, "is better")
    with pytest.raises(ValueError, match="'c' has no rows"):
        ex.paired_difference(_table([0.1]), "c", "b")


def _history():
    rows = []
    for run, accs in {"x": [0.1, 0.5, 0.96, 0.97], "y": [0.1, 0.4, 0.6, 0.7]}.items():
        for i, acc in enumerate(accs):
            rows.append({"run": run, "seed": 0, "step": 10 * i, "sim_time": 1.5 * i, "test_acc": acc,
                         "bytes_sent": 100 * i, "samples": 32 * i, "diverged": False})
    return pd.DataFrame(rows)


def test_final_and_time_to_accuracy():
    h = _history()
    f = ex.final(h, ["run", "seed"], tail=2).set_index("run")
    assert f.loc["x", "test_acc"] == pytest.approx(0.965) and f.loc["y", "bytes_sent"] == 300
    t = ex.time_to_accuracy(h, ["run"], 0.95).set_index("run")
    assert t.loc["x", "sim_time"] == 3.0 and math.isnan(t.loc["y", "sim_time"])
    assert ex.time_to_accuracy(h, ["run"], 0.95, x="step").set_index("run").loc["x", "step"] == 20


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_run_all_uses_the_cache_and_labels_the_frames(tmp_cache):
    base = sn.Config(model="mlp", batch_size=16, steps=4, eval_every=2, train_size=256, eval_size=64,
                     staleness=sn.Uniform(2))
    specs = ex.product(base, method={"v": {}, "sa": {"rule": "staleness-aware"}}, seed=[0, 1])
    first = ex.run_all(specs, progress=False)
    assert len(first) == 4 and first.from_cache == 0
    assert list(first.history.columns[:2]) == ["method", "seed"]
    assert set(first.updates.method) == {"v", "sa"} and len(first.updates) == 4 * 4
    again = ex.run_all(specs, progress=False)
    assert again.from_cache == 4
    pd.testing.assert_frame_equal(first.history, again.history)
    with pytest.raises(ValueError, match="clash"):
        ex.run_all(ex.product(base, step={1: {}}), progress=False)
    with pytest.raises(ValueError, match="jobs"):
        ex.run_all(specs, jobs=0)


def test_run_all_in_worker_processes_fills_the_cache(tmp_cache):
    base = sn.Config(model="mlp", batch_size=16, steps=3, eval_every=3, train_size=256, eval_size=64)
    specs = ex.product(base, seed=[0, 1])
    res = ex.run_all(specs, jobs=2, progress=False)
    assert res.from_cache == 2  # computed by the two processes, read back here
    assert len(list(tmp_cache.glob("run-*.npz"))) == 2


def test_best_checkpoint_picks_the_validation_maximum_not_the_test_one():
    h = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 3,
                      "val_acc": [0.2, 0.9, 0.9, 0.7, 0.5, 0.6, np.nan],
                      "test_acc": [0.1, 0.8, 0.95, 0.99, 0.4, 0.55, 0.1]})
    b = ex.best_checkpoint(h, ["run"]).set_index("run")
    assert b.loc["a", "test_acc"] == 0.8  # first of the tied validation maxima, not the test maximum 0.99
    assert b.loc["b", "test_acc"] == 0.55 and b.loc["b", "val_acc"] == 0.6  # NaN (diverged) row skipped


def test_binomial_margin_by_hand():
    assert ex.binomial_margin(0.97, 2000) == pytest.approx(2 * math.sqrt(0.97 * 0.03 / 2000))
    assert ex.binomial_margin(0.5, 100, 1.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        ex.binomial_margin(1.0, 100)


def test_intersection_union_verdicts_follow_the_rule():
    from stalenb.claims import verdict as v
    all_hold = ex.intersection_union([0.03, 0.02], [0.01, 0.005], [0.05, 0.04])
    one_fails = ex.intersection_union([0.03, -0.02], [0.01, -0.03], [0.05, -0.01])
    one_open = ex.intersection_union([0.03, 0.01], [0.01, -0.01], [0.05, 0.03])
    assert v(*all_hold[1:], threshold=0.0) == "holds"
    assert v(*one_fails[1:], threshold=0.0) == "fails"
    assert v(*one_open[1:], threshold=0.0) == "inconclusive"
    assert one_fails == (-0.02, -0.03, -0.01)
    assert math.isnan(ex.intersection_union([0.1], [math.nan], [0.2])[1])


def test_censored_median_counts_unreached_runs_as_late():
    assert ex.censored_median([300, 100, 200], 660) == 200.0
    assert ex.censored_median([100, 200, math.nan, math.nan], 660) == math.inf
    assert ex.censored_median([100, 200, 300, math.nan], 660) == 250.0
    assert ex.censored_median([100, 900, 50], 660) == 100.0  # beyond the limit = censored
