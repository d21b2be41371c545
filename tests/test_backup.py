"""Notebook 06's mechanism: the backup-worker arms, runs cut at a simulated-time horizon, the gradient
mass of a reuse update, values at fixed times and censored time-to-accuracy (hand-computed cases)."""

import math

import pandas as pd
import pytest

import stalenb as sn
from stalenb import experiments as ex

# Identical workers, free communication: every job of b samples takes b · 1 ms, all workers in step.
EVEN = sn.Timing(per_sample=1e-3, slowdown=sn.timing.NoSlowdown(), latency=0.0, bandwidth=math.inf)


def test_backup_arms_grid():
    arms = ex.backup_arms(sn.Config(batch_size=256), [(4, 1), (4, 2), (16, 4)], stale_mass=0.5)
    assert sorted(arms) == sorted(["sync n=4", "async n=4", "drop n=4 k=1", "reuse n=4 k=1", "drop n=4 k=2",
                                   "reuse n=4 k=2", "sync n=16", "async n=16", "drop n=16 k=4", "reuse n=16 k=4"])
    lab, cfg = arms["reuse n=16 k=4"]
    assert (lab["family"], lab["n"], lab["k"], lab["c"]) == ("reuse", 16, 4, 0.5)
    assert (cfg.protocol, cfg.late, cfg.k, cfg.workers) == ("k-of-n", "reuse", 4, 16)
    assert cfg.lag_weights == (pytest.approx(0.5 * 4 / 12),)  # late total at most c times the fresh ones
    lab, cfg = arms["async n=16"]
    assert (cfg.protocol, cfg.batch_size, lab["k"]) == ("async", 16, 1) and math.isnan(lab["c"])
    assert arms["sync n=4"][1].k_eff == 4 and arms["drop n=4 k=1"][1].late == "drop"
    with pytest.raises(ValueError, match="1 <= k < n"):
        ex.backup_arms(sn.Config(batch_size=256), [(4, 4)])


def test_schedule_until_times_and_reuse_mass_by_hand():
    sync = sn.Config(protocol="sync", workers=4, batch_size=256, timing=EVEN)
    s = ex.schedule_until(sync, dim=10, horizon=0.2)  # rounds of 64 samples: 0.064 s each
    assert s.step.tolist() == [0, 1, 2] and s.time.tolist() == pytest.approx([0.064, 0.128, 0.192])
    assert s.mass.tolist() == [1.0, 1.0, 1.0]
    # reuse, k = 2 of 4 in lockstep: workers 2 and 3 always finish just after the round closed, so from
    # update 1 on each update applies 2 fresh gradients and 2 late ones of lag 1 (weight 0.5 each):
    # mass (2 + 2 · 0.5) / 2 = 1.5; update 0 has no late gradient yet.
    reuse = sync.replace(protocol="k-of-n", k=2, late="reuse", lag_weights=(0.5,))
    s = ex.schedule_until(reuse, dim=10, horizon=0.2)
    assert s.time.tolist() == pytest.approx([0.064, 0.128, 0.192]) and s.mass.tolist() == [1.0, 1.5, 1.5]
    drop = reuse.replace(late="drop")
    assert ex.schedule_until(drop, dim=10, horizon=0.2).mass.tolist() == [1.0, 1.0, 1.0]


def test_at_horizon_cuts_at_the_last_update_before_the_horizon():
    cfg = ex.at_horizon(sn.Config(protocol="sync", workers=4, batch_size=256, timing=EVEN), 10, 0.2, evals=2)
    assert (cfg.steps, cfg.eval_every) == (3, 2)  # updates at 0.064, 0.128, 0.192 s; evaluate at 2 and at the end
    assert ex.at_horizon(cfg, 10, 0.01, evals=4).steps == 1  # at least one update


def _history(times, accs, diverged=None):
    return pd.DataFrame({"run": 0, "step": range(len(times)), "sim_time": times, "test_acc": accs,
                         "diverged": diverged or [False] * len(times)})


def test_value_at_last_evaluation_and_interpolated():
    h = _history([0.0, 1.0, 3.0], [0.1, 0.5, float("nan")], [False, False, True])  # diverged at 3 s
    last = ex.value_at(h, ["run"], [-1.0, 0.5, 2.9, 5.0])
    assert last.test_acc.tolist()[1:] == [0.1, 0.5, 0.0] and math.isnan(last.test_acc.iloc[0])
    lin = ex.value_at(h, ["run"], [0.5, 2.0], interpolate=True)
    assert lin.test_acc.tolist() == pytest.approx([0.3, 0.25])


def test_crossing_time_interpolates_and_censors():
    runs = pd.concat([_history([0.0, 2.0, 4.0], [0.1, 0.6, 0.95]).assign(n=4, run=0),
                      _history([0.0, 2.0, 4.0], [0.1, 0.6, 0.8]).assign(n=4, run=1),
                      _history([0.0, 2.0], [0.1, 0.97], [False, True]).assign(n=8, run=2)])
    out = ex.crossing_time(runs, ["n", "run"], 0.9, horizon={4: 4.5, 8: 6.0})
    assert out.sim_time.tolist() == pytest.approx([2.0 + 0.3 / 0.35 * 2.0, 4.5, 6.0])  # a diverged row never counts
    assert out.reached.tolist() == [True, False, False]
    assert math.isnan(ex.crossing_time(runs, ["n", "run"], 0.99).sim_time.iloc[0])
