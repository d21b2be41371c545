"""Grids of runs, the runs themselves (cache, worker processes) and the generic tables of their histories
(notebooks 05–06), checked against hand-computed values. The statistics are tested in ``test_claims.py``,
notebook 06's protocol in ``test_backup.py``."""

from __future__ import annotations

import math

import pandas as pd
import pytest

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


def test_the_tables_read_a_real_runs_wall_time_and_name_missing_columns():
    real = _history().rename(columns={"sim_time": "wall_time"})  # a real run's history has wall_time only
    f = ex.final(real, ["run", "seed"]).set_index("run")
    assert f.loc["x", "wall_time"] == 4.5 and "sim_time" not in f
    t = ex.time_to_accuracy(real, ["run"], 0.95).set_index("run")
    assert t.loc["x", "wall_time"] == 3.0 and math.isnan(t.loc["y", "wall_time"])
    with pytest.raises(ValueError, match=r"no time column \(sim_time or wall_time\)"):
        ex.final(real.drop(columns="wall_time"), ["run"])
    with pytest.raises(ValueError, match=r"final needs the column\(s\) \['tau'\]"):
        ex.final(real, ["tau", "seed"])
    with pytest.raises(ValueError, match=r"time_to_accuracy needs the column\(s\) \['samples_seen'\]"):
        ex.time_to_accuracy(real, ["run"], 0.9, x="samples_seen")


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
    assert repr(res) == ("Results(2 runs over ['seed'], 2 from the cache, 0 diverged; .history: 4 rows, "
                         ".updates: 6 rows)")  # one line: 2 evaluations (steps 0 and 3) and 3 gradients per run
    assert len(list(tmp_cache.glob("run-*.npz"))) == 2
