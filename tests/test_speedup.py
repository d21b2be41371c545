"""Speedup from the wall-clock model (notebook 07): exact round times, the bend, the policies."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import stalenb as sn
from stalenb import speedup

D = 431_080  # LeNet


def _quiet(bandwidth=1.25e8, per_sample=3e-4, latency=1e-4):
    return sn.Timing(per_sample=per_sample, slowdown=sn.timing.NoSlowdown(), latency=latency, bandwidth=bandwidth)


def test_push_bytes_dense_and_sparse():
    assert speedup.push_bytes(D) == 4 * D
    assert speedup.push_bytes(D, "topk", 0.01) == 8 * math.ceil(0.01 * D)
    assert speedup.push_bytes(1000, "randomk", 0.001) == 8


@pytest.mark.parametrize("n", [1, 3, 8, 32])
@pytest.mark.parametrize("kind,density", [("none", 1.0), ("topk", 0.01)])
def test_sync_round_time_equals_the_closed_form(n, kind, density):
    """Without slowdowns a sync round is per_sample·B/n + (n−1)·max(push, pull)/bw + (push+pull)/bw + 2·lat."""
    base = sn.Config(batch_size=96 * 32, steps=4, timing=_quiet())
    cfg = speedup.wait_config(base, n, n).replace(compressor=kind, density=density)
    sim = speedup.round_durations(cfg, D)
    push = speedup.push_bytes(D, kind, density)
    by_hand = 3e-4 * cfg.batch_size / n + (n - 1) * max(push, 4 * D) / 1.25e8 + (push + 4 * D) / 1.25e8 + 2e-4
    assert np.allclose(sim, by_hand, rtol=1e-12)
    assert np.allclose(sim, speedup.model_time(n, 3e-4, cfg.batch_size, 1.25e8, push, 4 * D, 1e-4))


def test_bend_by_hand_and_it_minimises_the_model():
    assert speedup.bend(1e-3, 1000, 1e6, 1000, 500) == pytest.approx(math.sqrt(1000))
    ns = np.arange(1, 200)
    t = speedup.model_time(ns, 1e-3, 1000, 1e6, 1000, 500)
    assert abs(ns[np.argmin(t)] - math.sqrt(1000)) < 1
    assert speedup.bend(1e-3, 1000, math.inf, 1000, 500) == math.inf
    with pytest.raises(ValueError, match="bandwidth"):
        speedup.bend(1e-3, 1000, 0.0, 1000, 500)


def test_wait_config_maps_k_to_protocols_and_rounds_the_batch():
    base = sn.Config(batch_size=8192, steps=2)
    assert speedup.wait_config(base, 4, 4).protocol == "sync"
    cfg = speedup.wait_config(base, 3, 1)
    assert (cfg.protocol, cfg.k, cfg.late, cfg.batch_size) == ("k-of-n", 1, "drop", 3 * 2731)


def test_curve_policies_and_compression_on_common_draws():
    timing = sn.Timing(per_sample=3e-4, slowdown=sn.timing.ShiftedExponential(0.5), latency=1e-4, bandwidth=1.25e7)
    base = sn.Config(batch_size=4096, steps=10, timing=timing)
    df = speedup.curve(base, D, [1, 2, 4, 8, 16], ("wait for all", "wait for half", "fastest only"),
                       (("none", 1.0), ("topk", 0.01)), seeds=(0, 1))
    assert len(df) == 2 * 2 * 3 * 5
    one = df[(df.workers == 1) & (df.compressor == "none")]
    assert np.allclose(one.speedup, 1.0)  # n = 1: every policy is the same single worker
    wide = df.pivot_table(index=["seed", "compressor", "workers"], columns="policy", values="speedup")
    assert (wide["fastest only"] >= wide["wait for all"] - 1e-12).all()
    assert (wide["fastest only"] > wide["wait for all"] + 1e-3).any()  # with random slowdowns k = 1 is faster
    assert (wide["wait for half"] >= wide["wait for all"] - 1e-12).all()
    by = df.pivot_table(index=["seed", "policy", "workers"], columns="compressor", values="speedup")
    assert (by["topk"] >= by["none"] - 1e-12).all()  # smaller pushes never arrive later
    assert df.link_share.between(0, 1).all()


# --- link shares per direction -----------------------------------------------------------------

def test_link_shares_are_per_direction_by_hand():
    # 100 rounds of 16 dense LeNet pushes up and 16 pulls down over 1 Gbit/s each way in 30 s:
    # each direction carries 100·16·1,724,320 B = 2.759e9 B → 22.07 s → 0.7357 of the time
    up, down = speedup.link_shares(100, 16, 4 * D, 16, 4 * D, 1.25e8, 30.0)
    assert up == pytest.approx(100 * 16 * 1_724_320 / 1.25e8 / 30.0) == pytest.approx(0.735710, abs=1e-6)
    assert down == pytest.approx(up)
    # k = 1 top-k 1 % push (8·4311 B) but 16 dense pulls: the uplink idles, the downlink is as busy as before
    up1, down1 = speedup.link_shares(100, 1, 8 * 4311, 16, 4 * D, 1.25e8, 30.0)
    assert up1 == pytest.approx(100 * 34_488 / 1.25e8 / 30.0) and down1 == pytest.approx(down)
    assert speedup.link_shares(1, 1, 10, 1, 1, 1.0, 2.0) == (1.0, 0.5)  # capped at 1
    with pytest.raises(ValueError, match="time"):
        speedup.link_shares(1, 1, 1, 1, 1, 1.0, 0.0)


def test_curve_link_share_is_the_busier_direction():
    base = sn.Config(batch_size=4096, steps=5, timing=_quiet(bandwidth=1.25e7))
    df = speedup.curve(base, D, [1, 4, 8], ("wait for all", "fastest only"), (("none", 1.0), ("topk", 0.01)))
    assert np.allclose(df.link_share, np.maximum(df.uplink_share, df.downlink_share))
    row = df[(df.policy == "fastest only") & (df.compressor == "topk") & (df.workers == 8)].iloc[0]
    assert row.uplink_share == pytest.approx(5 * 1 * 8 * math.ceil(0.01 * D) / 1.25e7 / row.time)
    assert row.downlink_share == pytest.approx(min(1.0, 5 * 8 * 4 * D / 1.25e7 / row.time))
    dense = df[(df.policy == "wait for all") & (df.compressor == "none")]
    assert np.allclose(dense.uplink_share, dense.downlink_share)  # dense: as many bytes up as down


# --- the analytic model of ps_pytorch's step ---------------------------------------------------

def _toy(**kw):
    # b·d/β = 8·1000/8000 = 1 s per model-sized message
    args = dict(compute=1.0, dim=1000, bytes_per_param=8, bandwidth=8000.0, latency=0.5, msg_cost=0.25, incast=0.1)
    return speedup.StepModel(**{**args, **kw})


def test_step_model_terms_by_hand():
    t = _toy().terms([1, 2, 3, 4]).set_index("workers")
    assert np.allclose(t.compute, [1.0, 0.5, 1 / 3, 0.25])
    assert np.allclose(t.broadcast, [1.5, 3.0, 3.0, 4.5])      # ⌈log2(n+1)⌉ = 1, 2, 2, 3 hops of 1 + 0.5 s
    assert np.allclose(t.gather, [1.25, 2.5, 3.75, 5.0])       # n · (0.25 + 1)
    assert np.allclose(t.incast, [0.0, 0.1, 0.3, 0.6])         # 0.1 · n(n−1)/2
    assert np.allclose(t.time, [3.75, 6.1, 7.383333, 10.35])
    assert np.allclose(_toy(overlap=True).time([1, 4]), [1.25 + 1.5, 5.6 + 4.5])  # max(compute, gather + incast)
    free_link = _toy(overlap=True, msg_cost=0.0, bandwidth=math.inf, incast=0.0)  # only latency hops remain
    assert np.allclose(free_link.time([1, 2, 4]), [1 + 0.5, 0.5 + 2 * 0.5, 0.25 + 3 * 0.5])
    assert _toy().speedup([1, 2]) == pytest.approx([1.0, 3.75 / 6.1])
    slow = _toy(slowdown=sn.timing.ShiftedExponential(0.6))
    assert np.allclose(slow.terms([2, 3]).compute, [(1 + 0.6 * 1.5) / 2, (1 + 0.6 * 11 / 6) / 3])
    assert _toy().peak(range(1, 10)) == (1, 1.0)               # communication-bound from n = 1
    n, s = _toy(compute=100.0, msg_cost=0.0, incast=0.0).peak(range(1, 40))
    by_hand = {k: (100 + 1.5 + 1) / (100 / k + k.bit_length() * 1.5 + k) for k in range(1, 40)}  # T(1) / T(k)
    assert (n, s) == (max(by_hand, key=by_hand.get), pytest.approx(max(by_hand.values())))


@pytest.mark.parametrize("bad", [dict(compute=0.0), dict(bandwidth=-1.0), dict(msg_cost=-0.1), dict(incast=math.nan),
                                 dict(dim=0), dict(bytes_per_param=0)])
def test_step_model_rejects_bad_parameters_by_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        _toy(**bad)
    with pytest.raises(ValueError, match="workers"):
        _toy().time([0, 1])


def test_expected_max_slowdown_closed_forms_and_quadrature():
    t = sn.timing
    assert np.allclose(speedup.expected_max_slowdown([1, 2, 4], t.ShiftedExponential(0.6)),
                       [1.6, 1.9, 1 + 0.6 * (1 + 1 / 2 + 1 / 3 + 1 / 4)])
    assert np.allclose(speedup.expected_max_slowdown([1, 2], t.Straggler(p=0.5, factor=3.0)), [2.0, 2.5])
    assert np.allclose(speedup.expected_max_slowdown([1, 7], t.NoSlowdown()), 1.0)
    ln = speedup.expected_max_slowdown([1, 8], t.LogNormal(0.5))
    assert ln[0] == pytest.approx(math.exp(0.5 ** 2 / 2), rel=1e-7)              # E[e^{σZ}] = e^{σ²/2}
    mc = np.exp(0.5 * np.random.default_rng(0).standard_normal((200_000, 8))).max(axis=1).mean()
    assert ln[1] == pytest.approx(mc, rel=3e-3)                                   # Monte Carlo, independent
    with pytest.raises(TypeError, match="slowdown"):
        speedup.expected_max_slowdown(2, object())


@pytest.mark.parametrize("overlap", [False, True])
def test_fit_recovers_known_parameters_from_synthetic_points(overlap):
    truth = speedup.StepModel(compute=3.4, dim=D, slowdown=sn.timing.ShiftedExponential(0.066),
                              bandwidth=2.0e8, msg_cost=0.004, incast=0.0005, overlap=overlap)
    ns = [1, 2, 4, 8, 16, 32]
    fit = speedup.fit_step_model(dataclasses.replace(truth, bandwidth=1.25e8, msg_cost=0.0, incast=0.0), ns,
                                 truth.speedup(ns))
    assert fit.points == 5 and fit.free == ("bandwidth", "msg_cost", "incast") and fit.rms < 1e-8
    assert fit.model.bandwidth == pytest.approx(2.0e8, rel=1e-4)
    assert fit.model.msg_cost == pytest.approx(0.004, rel=1e-4)
    assert fit.model.incast == pytest.approx(0.0005, rel=1e-4)


def test_fit_on_four_points_predicts_the_fifth_of_a_model_in_its_family():
    truth = speedup.StepModel(compute=3.4, dim=D, bandwidth=3.0e8, msg_cost=0.002)
    fit = speedup.fit_step_model(speedup.StepModel(compute=3.4, dim=D), [1, 2, 4, 8, 16],
                                 truth.speedup([1, 2, 4, 8, 16]), free=("bandwidth", "msg_cost"))
    assert fit.model.speedup(32)[0] == pytest.approx(truth.speedup(32)[0], rel=1e-5)
    assert fit.workers == (2, 4, 8, 16)


def test_fit_refuses_more_parameters_than_points_minus_one():
    with pytest.raises(ValueError, match="free parameters"):
        speedup.fit_step_model(_toy(), [1, 2, 4, 8], [1.0, 1.8, 3.0, 4.0])
    with pytest.raises(ValueError, match="free"):
        speedup.fit_step_model(_toy(), [1, 2, 4, 8, 16], [1.0, 1.8, 3.0, 4.0, 5.0], free=("compute",))
    with pytest.raises(ValueError, match="speedups"):
        speedup.fit_step_model(_toy(), [1, 2, 4], [1.0, -1.8, 3.0], free=("bandwidth",))


def test_published_spread_is_transcribed_from_the_source_notebook():
    spread = speedup.PUBLISHED_SPREAD.pivot(index="workers", columns="system", values="speedup")
    tf = spread["TensorFlow"]
    assert np.allclose(tf.loc[[2, 4, 8, 16, 32]], [526.16 / t for t in (263.08, 135.148, 81.005, 44.141, 72.277)],
                       atol=0.005)
    new = speedup.PUBLISHED.query("model == 'LeNet/MNIST' and policy == @speedup.WAIT_ALL").set_index("workers")
    assert np.allclose(spread["PyTorch + MPI (new)"], new.speedup)
    drop = spread.loc[32] / spread.loc[16]  # issue 23: S(32)/S(16) = 0.56, 0.61 (TensorFlow), 0.48 ("MPI old")
    assert np.allclose(drop[["PyTorch + MPI (new)", "TensorFlow", "PyTorch + MPI (old)"]], [0.56, 0.61, 0.48],
                       atol=0.005)
