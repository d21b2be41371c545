"""Notebook 09's gauge: the quadratic, the grid, the tuned choice and the censored comparisons."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from stalenb import optimality as op


def test_the_landscape_has_the_stated_gap_smoothness_and_noise():
    ls = op.Landscape(d=100, mu=0.05, sigma2=2.0, eps=0.1)
    p = ls.problem(seed=3)
    assert p.value(p.x0) == pytest.approx(1.0)  # Δ = 1
    assert float(p.a.max()) == pytest.approx(1.0) and float(p.a.min()) == pytest.approx(0.05)
    draws = torch.stack([p.loss_grad(torch.zeros(100, dtype=torch.float64), torch.arange(1))[1] for _ in range(400)])
    total_variance = float(draws.var(dim=0).sum())  # at x* the gradient is pure noise: E‖g‖² = σ²
    assert total_variance == pytest.approx(2.0, rel=0.1)
    assert ls.target_loss == pytest.approx(0.05)  # ε / 2L


def test_laws_give_the_times_t_star_uses():
    timing, tau = op.laws("sqrt", 4)
    assert timing.factors == tuple(tau) == (1.0, math.sqrt(2), math.sqrt(3), 2.0)
    timing, tau = op.laws("pareto", 3)
    draws = timing.slowdown.sample(np.random.default_rng(0), 200_000)
    assert np.median(draws) == pytest.approx((1 / 3) * 2 ** (1 / 1.5), rel=0.02)  # Pareto median scale·2^(1/α)
    assert list(tau) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="law must be one of"):
        op.laws("gamma", 2)


def test_grid_keeps_k_within_the_workers_and_tunes_only_what_applies():
    ls = op.Landscape()
    rows = op.grid(["k-of-n drop", "rennala", "async"], [4], "sqrt", [0.5, 0.1], [2, 8], [0], ls, 8.0)
    by = pd.DataFrame(rows).groupby("policy")["param"].apply(lambda s: sorted(set(s.dropna())))
    assert by["k-of-n drop"] == [2] and by["rennala"] == [2, 8] and by["async"] == []
    assert {r["limit"] for r in rows} == {8.0 * ls.optimal([1, math.sqrt(2), math.sqrt(3), 2]).time}


def test_best_prefers_the_shortest_time_then_the_larger_step():
    t = pd.DataFrame({"policy": ["a"] * 4, "n": 4, "law": "sqrt", "lr": [0.5, 0.25, 0.125, 1.0],
                      "param": [None] * 4, "time": [3.0, 2.0, 2.0, math.inf]})
    chosen = op.best(t)
    assert chosen["lr"].tolist() == [0.25] and chosen["reached"].tolist() == [True]
    none = op.best(t.assign(time=math.inf))
    assert none["reached"].tolist() == [False]


def test_censored_runs_bound_the_growth_from_their_side():
    rows = []
    for seed, (small, large) in enumerate([(1.0, 1.5), (1.0, math.inf), (math.inf, 4.0), (math.inf, math.inf)]):
        rows += [dict(policy="p", law="sqrt", n=64, seed=seed, ratio=small),
                 dict(policy="p", law="sqrt", n=1024, seed=seed, ratio=large)]
    low, high = op.growth_bounds(pd.DataFrame(rows), "p", "sqrt", 64, 1024, cap=8.0)
    np.testing.assert_allclose(low, [1.5, 8.0, 0.0, 0.0])
    np.testing.assert_allclose(high, [1.5, math.inf, 0.5, math.inf])


def test_log_speedup_takes_a_censored_time_at_its_limit():
    t = pd.DataFrame({"policy": ["fast", "slow"] * 3, "n": 4, "law": "sqrt", "seed": [0, 0, 1, 1, 2, 2],
                      "time": [2.0, 4.0, 2.0, math.inf, math.inf, math.inf], "limit": 10.0})
    v = op.log_speedup(t, "fast", "slow", 4, "sqrt")
    np.testing.assert_allclose(v[:2], [math.log(2), math.log(5)])
    assert math.isnan(v[2])
    mean, low, high = op.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low == pytest.approx(2 - 4.302653 / math.sqrt(3)) and high > 3.0
    assert op.interval([1.0])[1:] == (-math.inf, math.inf)
