"""Real runs against simulated twins (stalenb.distributed.agreement, issue 23 item 4): the schedule-only
twin equals the simulator's record, the Monte-Carlo test keeps its level and has power, and a twin
carries the real run's per-worker speed factors."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import stalenb as sn
import stalenb.distributed as sd
from stalenb.distributed import agreement as ag
from stalenb.distributed.launcher import with_factors, worker_factors

TIMING = sn.Timing(per_sample=1e-3, latency=1e-4, bandwidth=float("inf"),
                   slowdown=sn.timing.Straggler(0.25, 4.0))
PROTOCOLS = {"async": dict(protocol="async"), "reuse": dict(protocol="k-of-n", k=2, late="reuse"),
             "drop": dict(protocol="k-of-n", k=2, late="drop")}


@pytest.mark.parametrize("name", PROTOCOLS)
def test_schedule_only_twin_equals_the_simulators_record(name):
    cfg = sn.Config(workers=3, steps=40, batch_size=24, train_size=512, eval_size=64, seed=3,
                    timing=dataclasses.replace(TIMING, factors=(1.0, 1.5, 2.0)), **PROTOCOLS[name])
    cols = ["step", "worker", "version", "staleness", "time", "applied"]
    order = ["step", "worker", "version", "applied"]
    simulated = sn.run(cfg, cache=False, progress=False).updates[cols].sort_values(order).reset_index(drop=True)
    alone = ag.schedule_updates(cfg)[cols].sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(simulated, alone, check_dtype=False)


def _hand_updates(staleness, times, applied=None):
    steps = list(range(len(staleness)))
    return pd.DataFrame({"step": steps, "worker": 0, "version": [s - t for s, t in zip(steps, staleness)],
                         "staleness": staleness, "time": times,
                         "applied": [True] * len(staleness) if applied is None else applied})


def test_statistics_by_hand():
    a = _hand_updates([0, 1, 1, 2, 9], [0.0, 1.0, 2.0, 4.0, 5.0], applied=[True, True, True, True, False])
    b = _hand_updates([1, 1, 1, 1], [0.0, 2.0, 4.0, 6.0])
    assert ag.staleness_tv([a], [b]) == pytest.approx(0.5)  # ½(0.25 + |0.5 − 1| + 0.25); the dropped 9 ignored
    np.testing.assert_allclose(ag.round_times(a), [1.0, 1.0, 2.0])
    assert ag.round_time_ks([a], [b]) == pytest.approx(2 / 3)  # F_a(1) = 2/3, F_b(1) = 0


def test_p_value_and_clopper_pearson_by_hand():
    assert ag.p_value(0.5, np.array([0.1, 0.5, 0.7, 0.2])) == pytest.approx(3 / 5)
    assert ag.p_value(9.0, np.zeros(99)) == pytest.approx(0.01)
    low, high = ag.clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))
    low, high = ag.clopper_pearson(10, 10)
    assert low == pytest.approx(0.025 ** (1 / 10)) and high == 1.0


def _twins(slowdown=TIMING.slowdown, per_sample=TIMING.per_sample, protocol="async", noise=(0.7, 1.0, 1.0, 1.6)):
    timing = sn.Timing(per_sample=per_sample, latency=TIMING.latency, bandwidth=float("inf"), slowdown=slowdown)
    return [ag.Twin(sn.Config(workers=3, steps=150, batch_size=24, timing=timing, **PROTOCOLS[protocol]), noise)] * 3


def test_a_twin_without_noise_or_with_unit_noise_is_the_simulators_schedule():
    """draw() rebuilds the law's draws for a seed as the simulator makes them (common random numbers)."""
    twin = _twins(noise=None)[0]
    expected = ag.schedule_updates(twin.config.replace(seed=11))
    pd.testing.assert_frame_equal(ag.draw(twin, 11), expected)
    pd.testing.assert_frame_equal(ag.draw(ag.Twin(twin.config, (1.0,)), 11), expected)
    assert not ag.draw(ag.Twin(twin.config, (0.5, 2.0)), 11)["time"].equals(expected["time"])


def test_the_test_keeps_its_level_when_the_twin_model_is_right():
    """Reality = the twin model itself: 40 p-values (fixed seeds) spread over (0, 1] as uniforms would
    (mean 0.5, SE 0.046: ±0.15 is 3 SE), and few fall below 0.05 (binomial(40, 0.05) ≤ 6 has P > 0.99)."""
    twins = _twins()
    for statistic in (ag.staleness_tv, ag.round_time_ks):
        null = ag.null_distribution(twins, statistic, draws=100, seed=0)
        ps = [ag.p_value(statistic(ag._scaled(ag._draws(twins, 10**8 + 10 * i), twins),
                                   ag._scaled(ag._draws(twins, 2 * 10**8 + 10 * i), twins)), null) for i in range(40)]
        assert abs(np.mean(ps) - 0.5) < 0.15, statistic.__name__
        assert sum(p < 0.05 for p in ps) <= 6, statistic.__name__


def test_power_detects_a_wrong_slowdown_law_and_not_a_right_model():
    truth, wrong = _twins(), _twins(slowdown=sn.timing.NoSlowdown())
    detect = ag.power(truth, wrong, ag.staleness_tv, sets=30, draws=100)
    assert detect["power"] >= 0.9, detect
    same = ag.power(truth, truth, ag.staleness_tv, sets=30, draws=100)
    assert same["power"] <= 0.2, same  # its level, 0.05, up to binomial noise on 30 sets


def test_round_times_see_compute_scale_and_noise():
    """Doubling every compute time doubles the round times in units of the (wrong) twin's job time;
    a twin without compute noise moves in lockstep. The round-time statistic detects both."""
    truth = _twins()
    slow = [t.with_timing(per_sample=2 * TIMING.per_sample) for t in truth]
    assert ag.power(truth, slow, ag.round_time_ks, sets=20, draws=60)["power"] >= 0.9
    lockstep = [t.without_noise() for t in truth]
    assert ag.power(truth, lockstep, ag.round_time_ks, sets=20, draws=60)["power"] >= 0.9


def test_agreement_of_twins_with_themselves_is_not_rejected():
    twins = _twins(protocol="reuse")
    real = ag._draws(twins, 777)
    out = ag.agreement(real, twins, ag.staleness_tv, draws=100)
    assert out["p"] > 0.05 and out["p_ci"][0] <= out["p"] <= out["p_ci"][1]
    assert out["null_q95"] >= out["null_mean"] > 0  # TV between samples is biased above 0
    assert len(out["twins"]) == len(twins)


def test_tracking_is_exact_for_the_same_draws_and_near_1_for_unrelated_ones():
    twin = _twins(noise=None)[0]
    u = ag.draw(twin, 5)
    copy = ag.tracking(sn.Run(twin.config.replace(seed=5), pd.DataFrame(), u), twin, others=20)
    assert copy["ratio"] == 0.0 and copy["exact"] == 1.0 and copy["pairs"] > 100
    unrelated = ag.tracking(sn.Run(twin.config.replace(seed=6), pd.DataFrame(), u), twin, others=20)
    assert 0.7 < unrelated["ratio"] < 1.3, unrelated


def test_tracking_checks_the_pairing_against_the_real_slowdown_column():
    twin = ag.Twin(_twins(noise=None)[0].config.replace(
        timing=sn.Timing(per_sample=1e-3, bandwidth=float("inf"), slowdown=TIMING.slowdown, factors=(1.0, 2.0, 1.0))))
    u = ag.by_job(ag.draw(twin, 3))
    shared = ag.law_draws(twin.config.replace(seed=3))
    u["slowdown"] = [shared[j, w] * (2.0 if w == 1 else 1.0) for w, j in u.index]
    real = sn.Run(twin.config.replace(seed=3), pd.DataFrame(), u.reset_index().drop(columns="job"))
    assert ag.tracking(real, twin, others=5)["pairing_error"] == 0.0
    u["slowdown"] = 1.0
    real = sn.Run(twin.config.replace(seed=3), pd.DataFrame(), u.reset_index().drop(columns="job"))
    assert ag.tracking(real, twin, others=5)["pairing_error"] > 0.0


def test_seed_ranges_of_the_roles_never_meet():
    spans = sorted((ag.seed_base(role, s), ag.seed_base(role, s) + ag.SEED_STRIDE)
                   for role in ag.ROLES for s in range(4))
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="draws"):
        ag.null_distribution(_twins(), ag.staleness_tv, draws=0)
    with pytest.raises(ValueError, match="one twin per real run"):
        ag.agreement([], _twins(), ag.staleness_tv)
    with pytest.raises(TypeError, match="config"):
        ag.schedule_updates({"protocol": "async"})
    with pytest.raises(ValueError, match="noise"):
        ag.Twin(_twins()[0].config, noise=(1.0, -2.0))
    with pytest.raises(ValueError, match="others"):
        ag.tracking(sn.Run(_twins()[0].config, pd.DataFrame(), pd.DataFrame()), _twins()[0], others=0)


def test_real_workers_take_timing_factors_times_slowdown():
    cfg = sn.Config(workers=3, timing=sn.Timing(factors=(1, 2, 3)))
    assert worker_factors(cfg, (1, 1, 2)) == [1.0, 2.0, 6.0]
    assert worker_factors(sn.Config(workers=2)) == [1.0, 1.0]
    with pytest.raises(ValueError, match="timing.factors"):
        worker_factors(sn.Config(workers=2, timing=sn.Timing(factors=(0.5, 1))))
    with pytest.raises(ValueError, match="slowdown"):
        worker_factors(cfg, (1, 1))
    assert with_factors(sn.Config(workers=2), [1.0, 1.0]).timing.factors is None
    assert with_factors(sn.Config(workers=2), [1.0, 3.0]).timing.factors == (1.0, 3.0)


def test_fitted_twin_keeps_the_runs_factors_and_slowdown_law():
    timing = sn.Timing(factors=(1.0, 4.0), slowdown=sn.timing.Straggler(0.2, 3.0))
    upd = pd.DataFrame({"compute_s": [0.01, 0.02, 0.03], "sent": [0.0, 0.0, 0.0], "arrived": [0.05, 0.06, 0.07],
                        "job_s": [0.04, 0.04, 0.04], "staleness": [0, 1, 1], "applied": True})
    fitted = sd.fit_timing(sn.Run(sn.Config(workers=2, batch_size=10, protocol="async", timing=timing),
                                  pd.DataFrame(), upd))
    assert fitted.factors == (1.0, 4.0) and fitted.slowdown == timing.slowdown
    assert fitted.per_sample == pytest.approx(0.02 / 10) and fitted.latency == pytest.approx(0.02 / 2)
    assert fitted.bandwidth == float("inf")
