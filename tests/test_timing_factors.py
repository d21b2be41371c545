"""Per-worker speed factors, the Pareto slowdown, replayed compute times and the link-bound warning."""

import json
import math
import warnings

import numpy as np
import pytest

import stalenb as sn
from stalenb import schedule, timing

FREE = dict(latency=0.0, bandwidth=math.inf)  # free communication


def _schedule(cfg, push_bytes=100, pull_bytes=100):
    return schedule.Schedule(cfg, push_bytes, pull_bytes, np.random.default_rng(cfg.seed))


def _updates(cfg, **kw):
    return [(u.step, u.time, [(p.worker, p.version) for p in u.pushes]) for u in _schedule(cfg, **kw)]


def _async(workers, steps, tm, batch=4):
    return sn.Config(workers=workers, steps=steps, batch_size=batch, timing=tm)


# --- factors in the event schedule -------------------------------------------------------------------

def test_free_communication_exact_event_times():
    """Jobs of 1 s and 3 s (per_sample 0.25 × batch 4 × f), no slowdown, free link: worked out by hand.

    Worker 0 is ready at 1, 2, 3, 4; worker 1 at 3; a tie goes to the lower worker id.
    """
    tm = timing.Timing(per_sample=0.25, slowdown=timing.NoSlowdown(), factors=(1, 3), **FREE)
    assert _updates(_async(2, 5, tm)) == [
        (0, 1.0, [(0, 0)]), (1, 2.0, [(0, 1)]), (2, 3.0, [(0, 2)]), (3, 3.0, [(1, 0)]), (4, 4.0, [(0, 3)])]


def test_exact_event_times_through_the_link():
    """The same two workers; 100-byte messages at 400 B/s (0.25 s on the link) and 0.5 s latency.

    Pulls at t=0: worker 0's arrives at 0.75 (ready 1.75), worker 1's waits for the link: 1.0 (ready 4.0).
    Update 0: push 1.75 → 2.0 on the link, arrives 2.5; pull 2.5 → 3.25, ready 4.25.
    Update 1: worker 1's push 4.0 → 4.25, arrives 4.75 (read version 0).
    Update 2: worker 0's push waits for the link until 4.25 → 4.5, arrives 5.0 (read version 1).
    """
    tm = timing.Timing(per_sample=0.25, slowdown=timing.NoSlowdown(), factors=(1, 3), latency=0.5, bandwidth=400.0)
    assert _updates(_async(2, 3, tm)) == [(0, 2.5, [(0, 0)]), (1, 4.75, [(1, 0)]), (2, 5.0, [(0, 1)])]


def test_the_fast_worker_pushes_three_times_as_often():
    """Factors (1, 3): in every 3 s worker 0 pushes 3 times and worker 1 once, so 400 updates = 300 + 100."""
    tm = timing.Timing(per_sample=0.25, slowdown=timing.NoSlowdown(), factors=(1.0, 3.0), **FREE)
    upd = sn.run(_async(2, 400, tm), sn.Quadratic(a=[1.0]), cache=False, progress=False).updates
    assert upd["worker"].value_counts().to_dict() == {0: 300, 1: 100}
    # worker 1's gradients are 3 updates old on average (3 of worker 0's pushes land during each of its jobs)
    assert upd.loc[upd["worker"] == 1, "staleness"].iloc[1:].tolist() == [3] * 99


def test_factors_scale_compute_in_rounds_and_synthetic_async():
    tm = timing.Timing(per_sample=0.25, slowdown=timing.NoSlowdown(), factors=(1.0, 2.0), **FREE)
    sync = sn.Config(protocol="sync", workers=2, steps=3, batch_size=8, timing=tm)  # 4 samples each: 1 s, 2 s
    assert [u.time for u in _schedule(sync)] == [2.0, 4.0, 6.0]
    # synthetic staleness: round-robin workers, each update costs its worker's job / n (+ free transfer)
    synth = _async(2, 4, tm).replace(staleness=sn.Constant(0))
    assert [u.time for u in _schedule(synth)] == [0.5, 1.5, 2.0, 3.0]


def test_unit_factors_change_no_number():
    """factors=(1, …, 1) gives the very same schedule (draws, order, times) as no factors."""
    base = sn.Config(protocol="k-of-n", workers=3, k=2, late="reuse", steps=20, batch_size=6,
                     timing=timing.Timing(slowdown=timing.LogNormal(0.7)))
    ones = base.replace(timing=timing.Timing(slowdown=timing.LogNormal(0.7), factors=(1, 1, 1)))
    a, b = _schedule(base), _schedule(ones)
    assert [(u.time, u.pushes, u.dropped) for u in a] == [(u.time, u.pushes, u.dropped) for u in b]


# --- helpers, validation, serialisation --------------------------------------------------------------

def test_factor_helpers():
    assert timing.sqrt_factors(4) == (1.0, math.sqrt(2), math.sqrt(3), 2.0)
    assert timing.linear_factors(3) == (1.0, 2.0, 3.0)
    r = timing.random_factors(50, seed=3, low=1.0, high=2.0)
    assert r == timing.random_factors(50, seed=3, low=1.0, high=2.0) != timing.random_factors(50, seed=4)
    assert len(r) == 50 and all(1.0 <= f <= 2.0 for f in r)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        timing.sqrt_factors(0)
    with pytest.raises(ValueError, match=r"high must be a finite number >= 3.0 \(at least low\)"):
        timing.random_factors(2, low=3.0, high=2.0)


@pytest.mark.parametrize(
    "factors, exc, message",
    [((1.0, 0.0), ValueError, r"timing.factors entries must be finite numbers > 0, got 0.0 at index 1"),
     ((1.0, -2.0), ValueError, r"timing.factors entries must be finite numbers > 0, got -2.0 at index 1"),
     ((math.inf,), ValueError, r"timing.factors entries must be finite numbers > 0, got inf at index 0"),
     ((math.nan,), ValueError, r"timing.factors entries must be finite numbers > 0, got nan"),
     ((), ValueError, r"timing.factors must be a non-empty sequence"),
     ("13", TypeError, r"timing.factors must be a sequence of finite numbers > 0"),
     (("a", "b"), TypeError, r"timing.factors must be a one-dimensional sequence")],
)
def test_bad_factors_name_the_parameter(factors, exc, message):
    with pytest.raises(exc, match=message):
        timing.Timing(factors=factors)


def test_factors_must_match_the_workers():
    with pytest.raises(ValueError, match=r"timing.factors must have one entry per worker \(workers=3\), got 2 factors"):
        sn.Config(workers=3, timing=timing.Timing(factors=(1.0, 2.0)))
    law = timing.TraceSlowdown(((1.0,), (2.0,)))
    with pytest.raises(ValueError, match=r"timing.slowdown \(a TraceSlowdown\) must hold one sequence per worker "
                                         r"\(workers=3\), got 2"):
        sn.Config(workers=3, timing=timing.Timing(slowdown=law))


def test_factors_are_stored_as_floats_and_left_out_of_the_key_when_unset():
    tm = timing.Timing(factors=[np.int64(1), 3])
    assert tm.factors == (1.0, 3.0) and type(tm.factors[0]) is float and hash(tm) == hash(timing.Timing(factors=(1, 3)))
    d = sn.Config(workers=2, timing=tm).to_dict()["timing"]
    assert d["factors"] == [1.0, 3.0]
    assert "factors" not in sn.Config().to_dict()["timing"]  # the cache key of every old run is unchanged
    assert json.dumps(sn.Config(timing=timing.Timing(factors=None)).to_dict()) == json.dumps(sn.Config().to_dict())
    with pytest.raises(ValueError, match="needs the worker"):
        tm.compute_time(4, 1.0)


def test_for_model_follows_the_documented_per_sample_cost():
    assert timing.Timing.for_model("mlp").per_sample == timing.PER_SAMPLE["mlp"]
    t = timing.Timing.for_model("lenet", bandwidth=math.inf, factors=(1, 2))
    assert (t.per_sample, t.bandwidth, t.factors) == (timing.PER_SAMPLE["lenet"], math.inf, (1.0, 2.0))
    assert timing.Timing.for_model("lenet5", per_sample=2e-4).per_sample == 2e-4
    with pytest.raises(ValueError, match="model must be one of"):
        timing.Timing.for_model("resnet")
    assert sn.Timing().per_sample == 1e-4  # the default itself is unchanged


# --- Pareto ------------------------------------------------------------------------------------------

def test_pareto_mean_and_tail_match_theory():
    """shape 3, scale 1.5: E[s] = 3·1.5/2 = 2.25, Var[s] = 1.5²·3/(2²·1) = 1.6875, P(s > 3) = (1.5/3)³ = 1/8.

    Tolerances are 5 standard errors of the estimates (finite variance: shape > 2).
    """
    n = 400_000
    s = timing.Pareto(3.0, 1.5).sample(np.random.default_rng(11), n)
    assert s.min() >= 1.5
    assert abs(s.mean() - 2.25) < 5 * math.sqrt(1.6875 / n)
    assert abs((s > 3.0).mean() - 0.125) < 5 * math.sqrt(0.125 * 0.875 / n)


def test_pareto_with_infinite_variance_has_its_median():
    """shape 1.5 (finite mean 3, infinite variance): the median scale·2^(1/shape) = 2^(2/3) is still
    estimated at the usual rate, se = 1 / (2 f(m) √n) with density f(m) = shape · m^−(shape+1)."""
    n, shape = 400_000, 1.5
    s = timing.Pareto(shape).sample(np.random.default_rng(5), n)
    m = 2 ** (1 / shape)
    se = 1 / (2 * shape * m ** -(shape + 1) * math.sqrt(n))
    assert abs(np.median(s) - m) < 5 * se


@pytest.mark.parametrize("kw, message", [(dict(shape=0.0), r"shape must be a finite number > 0 \(tail index\)"),
                                         (dict(scale=-1.0), r"scale must be a finite number > 0")])
def test_bad_pareto_names_the_parameter(kw, message):
    with pytest.raises(ValueError, match=message):
        timing.Pareto(**kw)


def test_pareto_drives_a_run():
    cfg = _async(3, 30, timing.Timing(slowdown=timing.Pareto(1.5), **FREE))
    times = [u.time for u in _schedule(cfg)]
    assert len(times) == 30 and times == sorted(times)


# --- replayed compute times ---------------------------------------------------------------------------

def test_trace_slowdown_replays_each_worker_in_order_without_random_draws():
    """Worker 0's jobs take 1, 2, 1, 2, … s, worker 1's 3 s: ready at 1, 3, 4, 6 and 3, 6 (free link)."""
    law = timing.TraceSlowdown(((1.0, 2.0), (3,)))
    tm = timing.Timing(per_sample=0.25, slowdown=law, **FREE)
    cfg = _async(2, 6, tm)
    sched = _schedule(cfg)
    state = sched.rng.bit_generator.state
    got = [(u.time, u.pushes[0].worker) for u in sched]
    assert got == [(1.0, 0), (3.0, 0), (3.0, 1), (4.0, 0), (6.0, 0), (6.0, 1)]
    assert sched.rng.bit_generator.state == state


def test_replay_gives_back_measured_seconds():
    tm = timing.replay([[0.2, 0.4], [0.6, 0.1, 0.3]], batch=10, bandwidth=math.inf)
    slow = timing.Slowdowns(tm.slowdown, 2, np.random.default_rng(0))
    assert [tm.compute_time(10, slow(1, j), 1) for j in range(4)] == pytest.approx([0.6, 0.1, 0.3, 0.6], rel=1e-12)
    assert tm.bandwidth == math.inf


@pytest.mark.parametrize(
    "times, exc, message",
    [(((1.0, 0.0),), ValueError, r"times\[0\] entries must be finite numbers > 0, got 0.0 at index 1"),
     (((1.0,), ()), ValueError, r"times\[1\] must be a non-empty sequence"),
     ((), ValueError, r"times must be a non-empty sequence of per-worker sequences"),
     (((1.0,), "ab"), TypeError, r"times\[1\] must be a sequence")],
)
def test_bad_slowdown_traces_name_the_parameter(times, exc, message):
    with pytest.raises(exc, match=message):
        timing.TraceSlowdown(times)


# --- the link-bound warning ------------------------------------------------------------------------------

def _issue_case(bandwidth, factors):
    """The issue's case: 8 workers, 3.2 ms jobs × f_i, a 4.2 MB model on the link (3.4 ms at 10 Gbit/s)."""
    tm = timing.Timing(per_sample=1e-4, slowdown=timing.NoSlowdown(), bandwidth=bandwidth, factors=factors)
    return sn.Config(workers=8, steps=5, batch_size=32, timing=tm)


def test_warns_once_when_the_link_hides_different_speeds():
    with pytest.warns(timing.LinkBoundWarning, match="the link sets the pace") as record:
        list(_schedule(_issue_case(1.25e9, timing.sqrt_factors(8)), 4_200_000, 4_200_000))
    assert len([w for w in record if issubclass(w.category, timing.LinkBoundWarning)]) == 1


@pytest.mark.parametrize("bandwidth, factors", [(math.inf, timing.sqrt_factors(8)), (1.25e9, None),
                                                (1.25e9, (2.0,) * 8), (1.25e12, timing.sqrt_factors(8))])
def test_no_warning_when_compute_sets_the_pace_or_speeds_are_equal(bandwidth, factors):
    with warnings.catch_warnings():
        warnings.simplefilter("error", timing.LinkBoundWarning)
        list(_schedule(_issue_case(bandwidth, factors), 4_200_000, 4_200_000))


def test_link_pace_by_hand():
    """Jobs of 1 s and 3 s: together one gradient per 1 / (1 + 1/3) = 0.75 s; the link 0.25 s per update."""
    tm = timing.Timing(per_sample=0.25, factors=(1.0, 3.0), bandwidth=400.0)
    pace = timing.link_pace(tm, 2, 4, 100, 50)
    assert pace == {"compute": 0.75, "link": 0.25, "fastest": 1.0, "slowest": 3.0}
