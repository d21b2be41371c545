"""Protocol schedules: who pushes which gradient when (no gradients needed)."""

import numpy as np
import pytest

import stalenb as sn
from stalenb.sim.schedule import DROPPED, FRESH, LATE, Push, Round, Schedule
from stalenb.sim.timing import Straggler, Timing

TIMING = Timing(per_sample=1e-3, slowdown=Straggler(p=0.3, factor=6.0), latency=1e-4, bandwidth=1e8)


def updates(config, push_bytes=4000, pull_bytes=4000):
    return list(Schedule(config, push_bytes, pull_bytes, np.random.default_rng(config.seed)))


def kofn(n, k, late, steps=60, seed=1):
    return sn.Config(protocol="k-of-n", workers=n, k=k, late=late, batch_size=8 * n, steps=steps,
                     timing=TIMING, seed=seed)


def test_sync_applies_all_n_fresh():
    for u in updates(sn.Config(protocol="sync", workers=4, batch_size=32, steps=20, timing=TIMING)):
        assert sorted(p.worker for p in u.pushes) == [0, 1, 2, 3]
        assert all(p.version == u.step for p in u.pushes) and not u.dropped


def test_drop_applies_exactly_k_and_drops_the_rest():
    for u in updates(kofn(8, 3, "drop")):
        assert len(u.pushes) == 3 and len(u.dropped) == 5
        assert all(p.version == u.step for p in u.pushes)
        # the dropped ones are the late ones: ready after every applied one
        assert max(p.time for p in u.pushes) <= min(p.time for p in u.dropped)


def test_reuse_loses_no_gradient_and_tags_lags():
    ups = updates(kofn(8, 3, "reuse", steps=200))
    applied = [p for u in ups for p in u.pushes]
    fresh = [p for u in ups for p in u.pushes if p.version == u.step]
    assert all(len([p for p in u.pushes if p.version == u.step]) == 3 for u in ups)
    assert not any(u.dropped for u in ups)
    late = len(applied) - len(fresh)
    assert late > 0  # stragglers did arrive late and were reused
    # every job a worker started before the last round's jobs was applied: count per worker
    per_worker = np.bincount([p.worker for p in applied], minlength=8)
    assert per_worker.min() > 0


def test_k_equals_n_matches_sync():
    s = updates(sn.Config(protocol="sync", workers=4, batch_size=32, steps=30, timing=TIMING))
    for late in ("drop", "reuse"):
        k = updates(sn.Config(protocol="k-of-n", workers=4, k=4, late=late, batch_size=32, steps=30, timing=TIMING))
        assert [(u.time, u.pushes) for u in k] == [(u.time, u.pushes) for u in s]


def test_round_time_of_k_of_n_not_longer_than_sync_for_same_draws():
    # with instant communication both start every round at the same times, so compare rounds
    tm = Timing(per_sample=1e-3, slowdown=Straggler(p=0.3, factor=6.0), latency=0.0, bandwidth=float("inf"))
    sync = updates(sn.Config(protocol="sync", workers=8, batch_size=64, steps=50, timing=tm))
    drop = updates(sn.Config(protocol="k-of-n", workers=8, k=4, late="drop", batch_size=64, steps=50, timing=tm))
    d_sync = np.diff([0.0] + [u.time for u in sync])
    d_drop = np.diff([0.0] + [u.time for u in drop])
    assert np.all(d_drop <= d_sync + 1e-12)
    assert d_drop.sum() < d_sync.sum()


@pytest.mark.parametrize("model", [sn.Constant(3), sn.Uniform(5), sn.Geometric(0.5, 4)])
def test_async_synthetic_staleness_clipped_and_bounded(model):
    ups = updates(sn.Config(protocol="async", workers=2, staleness=model, steps=50))
    lags = np.array([u.step - u.pushes[0].version for u in ups])
    assert lags.min() >= 0 and lags.max() <= model.tau_max
    assert all(u.pushes[0].version >= 0 for u in ups)
    if isinstance(model, sn.Constant):
        assert list(lags[:3]) == [0, 1, 2] and set(lags[3:]) == {3}


def test_async_timing_staleness_emerges_from_workers():
    tm = Timing(per_sample=1e-3, slowdown=sn.timing.NoSlowdown(), latency=0.0, bandwidth=float("inf"))
    ups = updates(sn.Config(protocol="async", workers=4, steps=40, timing=tm))
    lags = [u.step - u.pushes[0].version for u in ups]
    # identical workers: round robin, staleness n - 1 once the pipeline is full
    assert lags[:4] == [0, 1, 2, 3] and set(lags[4:]) == {3}
    times = [u.time for u in ups]
    assert times == sorted(times)


def test_schedule_is_deterministic():
    c = kofn(6, 2, "reuse", steps=40, seed=5)
    assert [(u.time, u.pushes) for u in updates(c)] == [(u.time, u.pushes) for u in updates(c)]


def test_round_orders_fresh_by_worker_then_late_by_version_and_worker():
    rnd = Round(k=2, reuse=True, version=5)
    arrivals = [Push(3, 5), Push(2, 3), Push(1, 4), Push(0, 3), Push(0, 5)]
    assert [rnd.arrive(p) for p in arrivals[:-1]] == [FRESH, LATE, LATE, LATE] and not rnd.full
    assert rnd.arrive(arrivals[-1]) == FRESH and rnd.full
    assert rnd.close() == [Push(0, 5), Push(3, 5), Push(0, 3), Push(2, 3), Push(1, 4)]
    assert (rnd.version, rnd.fresh, rnd.late) == (6, [], [])


def test_round_under_drop_discards_late_gradients():
    rnd = Round.of(kofn(4, 2, "drop"))
    assert (rnd.k, rnd.reuse, rnd.version) == (2, False, 0)
    rnd.version = 2
    assert [rnd.arrive(p) for p in [Push(1, 1), Push(2, 2), Push(0, 0), Push(3, 2)]] == [DROPPED, FRESH, DROPPED, FRESH]
    assert rnd.full and rnd.close() == [Push(2, 2), Push(3, 2)]
    assert Round.of(sn.Config(protocol="sync", workers=3, batch_size=24)).k == 3
