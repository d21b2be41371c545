"""stalenb.theory.optimal_time / time_ratio: Tyurin & Richtárik (NeurIPS 2023) T*(ε) against hand arithmetic.

t(m) = ((1/m) Σ_{i≤m} 1/τ_i)^(−1) · (LΔ/ε + σ²LΔ/(mε²)) for τ sorted ascending; T* = min_m t(m).
Below a = LΔ/ε and b = σ²LΔ/ε², so t(m) = (m·a + b) / S_m with S_m = Σ_{i≤m} 1/τ_i.
"""

import dataclasses
import math
import time

import numpy as np
import pytest

from stalenb import theory as th


# -- (a) hand computations ---------------------------------------------------------------------
def test_two_workers_fastest_alone_is_best():
    # τ = (1, 4), L = Δ = σ² = 1, ε = 0.5: a = 1/0.5 = 2, b = 1/0.25 = 4.
    # t(1) = (1/1)^(-1)·(2 + 4/1) = 6
    # t(2) = ((1 + 1/4)/2)^(-1)·(2 + 4/2) = (8/5)·4 = 6.4  > 6  -> m = 1, T* = 6
    r = th.optimal_time([1.0, 4.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.5)
    assert r.m == 1
    assert r.time == pytest.approx(6.0, rel=1e-12)
    np.testing.assert_allclose(r.times, [6.0, 6.4], rtol=1e-12)


def test_interior_minimum_two_fast_one_very_slow():
    # τ = (1, 1, 100), L = Δ = σ² = 1, ε = 0.1: a = 10, b = 100.
    # t(1) = 1·(10 + 100)                     = 110
    # t(2) = ((1 + 1)/2)^(-1)·(10 + 100/2)    = 60
    # t(3) = ((2.01)/3)^(-1)·(10 + 100/3)     = (3/2.01)·(130/3) = 130/2.01 ≈ 64.677  > 60
    # -> m = 2 (interior), T* = 60
    r = th.optimal_time([1.0, 100.0, 1.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.1)
    assert r.m == 2
    assert r.time == pytest.approx(60.0, rel=1e-12)
    np.testing.assert_allclose(r.times, [110.0, 60.0, 130.0 / 2.01], rtol=1e-12)


def test_interior_minimum_at_three_of_five_with_general_constants():
    # τ = (2, 2, 3, 60, 60), L = 2, Δ = 0.5 (LΔ = 1), σ² = 4, ε = 0.25: a = 1/0.25 = 4, b = 4/0.0625 = 64.
    # S_m = 1/2, 1, 4/3, 4/3 + 1/60 = 81/60, 82/60.
    # t(1) = (4 + 64)/(1/2)     = 136
    # t(2) = (8 + 64)/1         = 72
    # t(3) = (12 + 64)/(4/3)    = 57
    # t(4) = (16 + 64)·60/81    = 4800/81 ≈ 59.26
    # t(5) = (20 + 64)·60/82    = 5040/82 ≈ 61.46   -> m = 3, T* = 57
    r = th.optimal_time([60.0, 2.0, 60.0, 3.0, 2.0], L=2.0, delta=0.5, sigma2=4.0, eps=0.25)
    assert r.m == 3
    assert r.time == pytest.approx(57.0, rel=1e-12)
    np.testing.assert_allclose(r.times, [136.0, 72.0, 57.0, 4800 / 81, 5040 / 82], rtol=1e-12)


def test_result_is_frozen_and_consistent():
    r = th.optimal_time([3, 1, 2], L=1, delta=2, sigma2=3, eps=0.5)  # integer τ accepted
    assert isinstance(r.m, int) and isinstance(r.time, float)
    assert r.times.shape == (3,) and r.times[r.m - 1] == r.time
    assert r.time == r.times.min()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.m = 1
    with pytest.raises(ValueError):
        r.times[0] = 0.0  # read-only curve


# -- (b) σ² = 0: the fastest worker alone ------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_zero_variance_uses_fastest_worker_alone(seed):
    rng = np.random.default_rng(seed)
    tau = rng.uniform(0.1, 10.0, size=rng.integers(1, 50))
    L, delta, eps = 3.0, 0.7, 0.01
    r = th.optimal_time(tau, L=L, delta=delta, sigma2=0.0, eps=eps)
    assert r.m == 1
    assert r.time == pytest.approx(tau.min() * L * delta / eps, rel=1e-12)


def test_zero_variance_equal_times_tie_goes_to_m1():
    # t(m) = m·a / (m/τ) = τ·a for every m: an exact tie, broken by rounding of Σ 1/τ_i (1/0.1 is inexact).
    r = th.optimal_time(np.full(1000, 0.1), L=1.0, delta=1.0, sigma2=0.0, eps=0.5)
    assert r.m == 1
    np.testing.assert_allclose(r.times, 0.1 * 2.0, rtol=1e-9)


# -- (c) equal τ, σ² > 0: all workers ----------------------------------------------------------
def test_equal_times_hand_value():
    # τ = 2 (×4), L = 2, Δ = 3, σ² = 5, ε = 0.5: a = 6/0.5 = 12, b = 5·6/0.25 = 120.
    # t(m) = τ·(a + b/m) = 2·(12 + 120/m): 264, 144, 104, 84 -> m = 4, T* = 84.
    r = th.optimal_time([2.0] * 4, L=2.0, delta=3.0, sigma2=5.0, eps=0.5)
    assert r.m == 4
    assert r.time == pytest.approx(84.0, rel=1e-12)
    np.testing.assert_allclose(r.times, [264.0, 144.0, 104.0, 84.0], rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_equal_times_curve_decreases_to_all_workers(n):
    tau, L, delta, sigma2, eps = 0.3, 1.5, 2.0, 0.8, 0.05
    r = th.optimal_time(np.full(n, tau), L=L, delta=delta, sigma2=sigma2, eps=eps)
    assert np.all(np.diff(r.times) < 0)
    assert r.m == n
    assert r.time == pytest.approx(tau * (L * delta / eps + sigma2 * L * delta / (n * eps**2)), rel=1e-12)


# -- (d) order of the worker times -------------------------------------------------------------
def test_order_of_times_does_not_matter():
    rng = np.random.default_rng(1)
    tau = rng.lognormal(0.0, 1.5, size=40)
    base = th.optimal_time(np.sort(tau), L=1.0, delta=5.0, sigma2=20.0, eps=0.01)
    for _ in range(5):
        r = th.optimal_time(list(rng.permutation(tau)), L=1.0, delta=5.0, sigma2=20.0, eps=0.01)
        assert (r.m, r.time) == (base.m, base.time)
        np.testing.assert_array_equal(r.times, base.times)
    rev = th.optimal_time(tuple(np.sort(tau)[::-1]), L=1.0, delta=5.0, sigma2=20.0, eps=0.01)
    assert (rev.m, rev.time) == (base.m, base.time)


# -- (e) bad inputs ----------------------------------------------------------------------------
GOOD = dict(times=[1.0, 2.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.1)


@pytest.mark.parametrize("name, value, error", [
    ("times", [], ValueError),
    ("times", [[1.0, 2.0]], ValueError),
    ("times", [1.0, 0.0], ValueError),
    ("times", [1.0, -2.0], ValueError),
    ("times", [1.0, math.inf], ValueError),
    ("times", [1.0, math.nan], ValueError),
    ("times", 1.0, TypeError),
    ("times", "12", TypeError),
    ("times", ["a", "b"], TypeError),
    ("times", [1.0, None], TypeError),
    ("times", [True, False], TypeError),
    ("L", 0.0, ValueError),
    ("L", -1.0, ValueError),
    ("L", math.inf, ValueError),
    ("L", "1", TypeError),
    ("delta", 0.0, ValueError),
    ("delta", math.nan, ValueError),
    ("delta", None, TypeError),
    ("sigma2", -0.5, ValueError),
    ("sigma2", math.inf, ValueError),
    ("sigma2", True, TypeError),
    ("eps", 0.0, ValueError),
    ("eps", -1e-3, ValueError),
    ("eps", [0.1], TypeError),
])
def test_bad_inputs_name_the_parameter(name, value, error):
    with pytest.raises(error, match=rf"^{name} must be") as info:
        th.optimal_time(**{**GOOD, name: value})
    assert "\n" not in str(info.value)
    with pytest.raises(error, match=rf"^{name} must be"):
        th.time_ratio(1.0, **{**GOOD, name: value})


def test_bad_time_to_eps():
    for value, error in [(-1.0, ValueError), (math.nan, ValueError), ("1", TypeError)]:
        with pytest.raises(error, match=r"^time_to_eps must be"):
            th.time_ratio(value, **GOOD)


def test_large_array_message_is_one_line():
    tau = np.ones(10_000)
    tau[1234] = -1.0
    with pytest.raises(ValueError, match=r"^times must be .*-1\.0 at index 1234$") as info:
        th.optimal_time(tau, L=1.0, delta=1.0, sigma2=1.0, eps=0.1)
    assert "\n" not in str(info.value)


def test_numpy_scalars_accepted():
    r = th.optimal_time(np.array([1, 4], dtype=np.int32), L=np.float32(1.0), delta=np.int64(1),
                        sigma2=np.float64(1.0), eps=np.float64(0.5))
    assert (r.m, r.time) == (1, pytest.approx(6.0))


# -- (f) time_ratio ----------------------------------------------------------------------------
def test_time_ratio_of_optimum_is_one_and_never_reached_is_inf():
    args = dict(times=[60.0, 2.0, 60.0, 3.0, 2.0], L=2.0, delta=0.5, sigma2=4.0, eps=0.25)
    best = th.optimal_time(**args).time
    assert th.time_ratio(best, **args) == 1.0
    assert th.time_ratio(2 * best, **args) == pytest.approx(2.0)
    assert th.time_ratio(114.0, **args) == pytest.approx(2.0)  # hand value above: T* = 57
    assert th.time_ratio(math.inf, **args) == math.inf
    assert th.time_ratio(None, **args) == math.inf
    assert th.time_ratio(0.0, **args) == 0.0
    assert isinstance(th.time_ratio(np.float64(best), **args), float)


# -- (g) brute force ---------------------------------------------------------------------------
def _brute_force(times, L, delta, sigma2, eps):
    """The formula read literally: a plain-Python loop over m, sum recomputed each time."""
    tau = sorted(float(t) for t in times)
    curve = []
    for m in range(1, len(tau) + 1):
        harmonic = sum(1.0 / t for t in tau[:m]) / m
        curve.append((1.0 / harmonic) * (L * delta / eps + sigma2 * L * delta / (m * eps**2)))
    best_m = 1
    for m in range(2, len(tau) + 1):
        if curve[m - 1] < curve[best_m - 1]:
            best_m = m
    return curve[best_m - 1], best_m, curve


@pytest.mark.parametrize("seed", range(30))
def test_vectorised_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    tau = np.exp(rng.uniform(-3, 5, size=n))  # 0.05 .. 150 s, unsorted
    L, delta, eps = np.exp(rng.uniform(-2, 2, size=3))
    sigma2 = 0.0 if seed % 5 == 0 else float(np.exp(rng.uniform(-3, 6)))
    t_bf, m_bf, curve_bf = _brute_force(tau, L, delta, sigma2, eps)
    r = th.optimal_time(tau, L=L, delta=delta, sigma2=sigma2, eps=eps)
    assert r.m == m_bf
    assert r.time == pytest.approx(t_bf, rel=1e-10)
    np.testing.assert_allclose(r.times, curve_bf, rtol=1e-10)


def test_million_workers_is_fast():
    rng = np.random.default_rng(0)
    tau = rng.lognormal(0.0, 1.0, size=1_000_000)
    start = time.perf_counter()
    r = th.optimal_time(tau, L=1.0, delta=1.0, sigma2=100.0, eps=1e-3)
    elapsed = time.perf_counter() - start
    assert r.times.shape == (1_000_000,) and 1 <= r.m <= 1_000_000
    assert elapsed < 5.0  # measured ~0.1 s; generous for a loaded machine
