"""Speedup from the wall-clock model (notebook 07): exact round times, the bend, the policies."""

from __future__ import annotations

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
