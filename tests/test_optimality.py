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
    x = torch.full((100,), 0.5, dtype=torch.float64)
    reported = p.evaluate(x)
    assert reported["train_loss"] == pytest.approx(float(((p.a * x) ** 2).sum()))  # ‖∇f(x)‖², exactly
    assert reported["test_loss"] == pytest.approx(float(0.5 * (p.a * x * x).sum()))  # f − f*


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


def test_best_prefers_the_shortest_time_then_what_ended_closest():
    t = pd.DataFrame({"policy": ["a"] * 4, "n": 4, "law": "sqrt", "lr": [0.5, 0.25, 0.125, 1.0],
                      "param": [None] * 4, "time": [3.0, 2.0, 2.0, math.inf], "diverged": False,
                      "final_loss": [0.1, 0.1, 0.1, 5.0]})
    chosen = op.best(t)
    assert chosen["lr"].tolist() == [0.25] and chosen["reached"].tolist() == [True]
    # nothing reached ε: not the diverged run, the one that ended closest to the target
    none = op.best(t.assign(time=math.inf, diverged=[True, False, False, False], final_loss=[0.0, 0.3, 0.2, 9.0]))
    assert none["lr"].tolist() == [0.125] and none["reached"].tolist() == [False]


def ratios(rows):
    return pd.DataFrame([dict(policy="p", law="sqrt", n=n, seed=s, ratio=r) for n, s, r in rows])


def test_growth_uses_independent_seeds_and_censored_ratios_bound_it():
    t = ratios([(64, 0, 1.0), (64, 1, 2.0), (1024, 0, 3.0), (1024, 1, 6.0)])
    point, low, high = op.growth_interval(t, "p", "sqrt", 64, 1024, cap=8.0)
    assert (point, low, high) == (3.0, 1.5, 6.0)  # medians 4.5 / 1.5; 3 / 2; 6 / 1
    t = ratios([(64, 0, 1.0), (64, 1, 2.0), (1024, 0, math.inf), (1024, 1, 6.0)])
    point, low, high = op.growth_interval(t, "p", "sqrt", 64, 1024, cap=8.0)
    assert math.isnan(point) and (low, high) == (3.0, math.inf)  # 6 / 2 (cap 8 / 2 = 4 is larger), open above
    t = ratios([(64, 0, math.inf), (64, 1, 2.0), (1024, 0, 3.0), (1024, 1, 6.0)])
    assert op.growth_interval(t, "p", "sqrt", 64, 1024, cap=8.0)[1:] == (0.0, 3.0)  # 6 / 2: the censored one ≥ 8


def test_log_speedups_open_the_side_a_censored_time_bounds():
    t = pd.DataFrame({"policy": ["fast", "slow"] * 3, "n": 4, "law": "sqrt", "seed": [0, 0, 1, 1, 2, 2],
                      "time": [2.0, 4.0, 2.0, math.inf, 1.0, 3.0], "limit": 10.0})
    v, open_above, open_below = op.log_speedups(t, "fast", "slow", 4, "sqrt")
    np.testing.assert_allclose(v, [math.log(2), math.log(5), math.log(3)])
    assert open_above and not open_below  # the slow arm's censored time: its gain is at least ln 5
    mean, low, high = op.bounded_interval(v, 0.95, open_above=open_above, open_below=open_below)
    assert high == math.inf and low < mean
    mean, low, high = op.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low == pytest.approx(2 - 4.302653 / math.sqrt(3)) and high > 3.0
    assert op.interval([1.0])[1:] == (-math.inf, math.inf)
    _, low90, high90 = op.interval([1.0, 2.0, 3.0], 0.9)
    assert high90 - low90 == pytest.approx(2 * 2.919986 / math.sqrt(3))  # t(0.95, 2) = 2.919986
    with pytest.raises(ValueError, match="finite"):
        op.interval([1.0, math.inf])
