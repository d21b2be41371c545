"""stalenb.theory: the poster's definitions and theorems against hand-computed numbers."""

import math

import numpy as np
import pytest

from stalenb import theory as th


# -- Definition 1 ------------------------------------------------------------------------------
def test_generalized_curvature_of_quadratic_is_constant():
    x = np.linspace(-3, 5, 100)  # avoids x* = 1; the point itself is checked below
    h = th.generalized_curvature(lambda z: 2.5 * (z - 1.0), x, 1.0)
    assert h.shape == x.shape
    np.testing.assert_allclose(h, 2.5)
    assert th.generalized_curvature(lambda z: 2.5 * (z - 1.0), 1.0, 1.0) == pytest.approx(2.5)


def test_generalized_curvature_by_hand_and_limit_at_minimiser():
    # f(x) = x^4/4 + x^2/2, x* = 0: f'(x) = x^3 + x, h(x) = x^2 + 1; h(0) = f''(0) = 1.
    h = th.generalized_curvature(lambda z: z**3 + z, np.array([-2.0, 0.0, 3.0]), 0.0)
    np.testing.assert_allclose(h, [5.0, 1.0, 10.0], rtol=1e-6)
    assert th.curvature_range(lambda z: z**3 + z, 0.0, -1, 1) == pytest.approx((1.0, 2.0), rel=1e-6)


# -- Theorem 1: delayed GD ---------------------------------------------------------------------
def test_delayed_gd_matches_hand_trajectory_on_1d_quadratic():
    # f(w) = (w - 2)^2 (f' = 2(w - 2)), w0 = 0, beta = (0.25, 0.1):
    # g0 = -4;            w1 = 0 - 0.25*(-4) - 0.1*(-4)      = 1.4
    # g1 = -1.2;          w2 = 1.4 - 0.25*(-1.2) - 0.1*(-4)   = 2.1
    # g2 = 0.2;           w3 = 2.1 - 0.25*0.2 - 0.1*(-1.2)    = 2.17
    w = th.delayed_gd(lambda v: 2 * (v - 2), 0.0, [0.25, 0.1], 3)
    assert w.shape == (4,)
    np.testing.assert_allclose(w, [0.0, 1.4, 2.1, 2.17], atol=1e-12)


def test_delayed_gd_vector_shape_and_k1_is_plain_gd():
    A = np.diag([1.0, 3.0])
    w = th.delayed_gd(lambda v: A @ v, np.array([1.0, 1.0]), [0.1], 5)
    assert w.shape == (6, 2)
    np.testing.assert_allclose(w[-1], [0.9**5, 0.7**5])


def test_delayed_sgd_noise_free_equals_delayed_gd_and_noise_is_unbiased():
    grad = lambda W: 1.5 * W  # noqa: E731
    ref = th.delayed_gd(lambda v: 1.5 * v, np.array([2.0]), [0.3, 0.05], 20)
    det = th.delayed_sgd(grad, np.array([2.0]), [0.3, 0.05], 20, runs=3)
    np.testing.assert_allclose(det[1], ref)
    noisy = th.delayed_sgd(grad, np.array([2.0]), [0.3, 0.05], 20, noise=0.5, runs=4000, seed=1)
    se = noisy[:, -1, 0].std() / math.sqrt(4000)
    assert abs(noisy[:, -1, 0].mean() - ref[-1, 0]) < 4 * se
    assert noisy[:, -1, 0].std() > 0.1


def test_lag_condition_true_and_false_cases():
    a, b = 1.0, 4.0  # beta0 <= 0.25, stale sum <= beta0 / 8
    assert th.lag_condition([0.25, 0.02, 0.01], a, b)  # 0.03 <= 0.03125
    assert not th.lag_condition([0.25, 0.03, 0.01], a, b)  # 0.04 > 0.03125
    assert not th.lag_condition([0.3], a, b)  # beta0 > 1/b
    assert th.lag_condition([0.1], a, b)
    assert not th.lag_condition([0.0, 0.0], a, b)


@pytest.mark.parametrize("a, b, name", [(0, 1, "a"), (1, -1, "b"), (2, 1, "a"), (1, math.nan, "b")])
def test_lag_condition_rejects_bad_curvature_bounds(a, b, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        th.lag_condition([0.1], a, b)


def test_lag_weights_from_meets_condition_exactly_at_fraction_one():
    beta = th.lag_weights_from(0.5, 2.0, 4)
    assert beta[0] == 0.5 and sum(beta[1:]) == pytest.approx(0.5 / 4 * 0.5)
    assert th.lag_condition(beta, 0.5, 2.0)
    assert not th.lag_condition(th.lag_weights_from(0.5, 2.0, 4, stale_fraction=1.5), 0.5, 2.0)


def test_contraction_bound_holds_on_a_nonquadratic_function():
    # f'(x) = x + 0.5 tanh(x): h in [1, 1.5] (a = 1, b = 1.5)
    grad = lambda x: x + 0.5 * np.tanh(x)  # noqa: E731
    a, b = 1.0, 1.5
    for k in (1, 2, 5):
        beta = th.lag_weights_from(a, b, k)
        e = th.delayed_gd(grad, 3.0, beta, 60)
        bound = th.contraction_bound(e, beta[0], a, k)
        assert np.all(np.abs(e[1:]) <= bound + 1e-12)
        assert abs(e[-1]) < 1e-6


def test_contraction_bound_by_hand():
    # e = (4, 2, 1, 3), k = 2, q = 1 - 0.5*1/2 = 0.75: B1 = .75*max(4,4), B2 = .75*max(2,4), B3 = .75*max(1,2)
    np.testing.assert_allclose(th.contraction_bound([4, 2, 1, 3], 0.5, 1.0, 2), [3.0, 3.0, 1.5])


def test_violating_weights_diverge():
    grad = lambda x: x  # a = b = 1  # noqa: E731
    e = th.delayed_gd(grad, 1.0, [1.0, 1.0, 1.0], 60)  # stale sum 2 >> a/2b * beta0 = 0.5
    assert not th.lag_condition([1.0, 1.0, 1.0], 1.0, 1.0)
    assert not np.all(np.abs(e[-10:]) < 1e-3)
    assert np.max(np.abs(e[-10:])) > 1.0


# -- the literal reading -----------------------------------------------------------------------
def test_literal_sequence_by_hand_and_exit():
    # a = 1, b = 2, k = 2, alpha_min = 0.01: alpha_t = max(alpha_min, 4 alpha_{t-1}) = 0.01, 0.04, 0.16, 0.64 (> 1/b)
    alpha = th.literal_min_sequence(0.01, 1.0, 2.0, 2, 3)
    np.testing.assert_allclose(alpha, [0.01, 0.04, 0.16, 0.64])
    assert th.literal_exit_step(0.01, 1.0, 2.0, 2) == 3
    assert th.literal_exit_bound(0.01, 2.0) == 7


@pytest.mark.parametrize("k", [2, 3, 8])
@pytest.mark.parametrize("alpha_min", [1e-9, 1e-3, 0.2])
def test_literal_reading_infeasible_within_bound(k, alpha_min):
    a, b = 0.7, 1.0  # worst case for the bound is a = b (ratio 2)
    for aa in (a, b):
        step = th.literal_exit_step(alpha_min, aa, b, k)
        assert step is not None and step <= th.literal_exit_bound(alpha_min, b)


def test_literal_reading_feasible_for_k1():
    assert th.literal_exit_step(0.1, 1.0, 2.0, 1, steps=100) is None


# -- Theorem 3 / Example 1 ---------------------------------------------------------------------
def test_ridge_hessian_and_bounds_hold():
    rng = np.random.default_rng(0)
    for n, d in [(5, 3), (20, 8), (3, 10)]:
        for kind in ("ball", "sphere", "gaussian", "clustered"):
            X = th.random_design(n, d, rng, kind)
            assert np.linalg.norm(X, axis=1).max() <= 1 + 1e-12
            lam = np.linalg.eigvalsh(th.ridge_hessian(X, 0.3))
            lo, hi = th.ridge_bounds(n, 0.3)
            assert lo - 1e-12 <= lam.min() and lam.max() <= hi + 1e-9


def test_ridge_bound_tight_for_identical_unit_rows():
    X = th.random_design(7, 4, np.random.default_rng(3), "identical")
    lam = np.linalg.eigvalsh(th.ridge_hessian(X, 0.5))
    assert th.ridge_bounds(7, 0.5) == (1.0, 15.0)
    assert abs(lam.max() - 15.0) < 1e-9 and abs(lam.min() - 1.0) < 1e-9


def test_ridge_solution_is_stationary_and_delayed_gd_reaches_it():
    rng = np.random.default_rng(1)
    X, y, eta = th.random_design(10, 3, rng), rng.standard_normal(10), 0.5
    w_star = th.ridge_solution(X, y, eta)
    grad = th.ridge_grad(X, y, eta)
    np.testing.assert_allclose(grad(w_star), 0, atol=1e-12)
    a = np.linalg.eigvalsh(th.ridge_hessian(X, eta)).min()
    b = np.linalg.eigvalsh(th.ridge_hessian(X, eta)).max()
    w = th.delayed_gd(grad, np.zeros(3), th.lag_weights_from(a, b, 3), 2000)
    np.testing.assert_allclose(w[-1], w_star, atol=1e-8)


def test_ridge_rejects_bad_input():
    with pytest.raises(ValueError, match="eta"):
        th.ridge_hessian(np.ones((2, 2)), -1)
    with pytest.raises(ValueError, match="n"):
        th.ridge_bounds(0, 1.0)
    with pytest.raises(ValueError, match="kind"):
        th.random_design(2, 2, np.random.default_rng(0), "cube")


# -- rates -------------------------------------------------------------------------------------
def test_ergodic_mean_by_hand():
    np.testing.assert_allclose(th.ergodic_mean([4, 2, 0]), [4, 3, 2])


def test_loglog_slope_recovers_exponent():
    T = np.array([10, 30, 100, 300, 1000, 3000])
    s, lo, hi = th.loglog_slope(T, 2 * T**-0.5)
    assert s == pytest.approx(-0.5) and lo == pytest.approx(-0.5) and hi == pytest.approx(-0.5)
    rng = np.random.default_rng(0)
    v = 2 * T[:, None] ** -0.5 * np.exp(0.1 * rng.standard_normal((6, 16)))
    s, lo, hi = th.loglog_slope(T, v)
    assert lo < s < hi and abs(s + 0.5) < 0.05 and 0 < hi - lo < 0.2
    with pytest.raises(ValueError):
        th.loglog_slope(T, -v)


def test_stale_scan_matches_delayed_gd_and_brackets_the_boundary():
    """The vectorised scan equals delayed_gd run factor by factor; the bracket sits where convergence stops."""
    a, b, window = 0.5, 2.0, 3
    grad, x_star, _ = th.example_functions(a, b)["curvature bump"]
    factors = np.array([0.5, 1.0, 4.0, 40.0])
    scan = th.stale_scan(grad, x_star, 4.0, a, b, window, factors, 60)
    for f, e in zip(factors, scan):
        ref = th.delayed_gd(grad, 4.0, th.lag_weights_from(a, b, window, stale_fraction=f), 60)[-1] - x_star
        assert e == pytest.approx(abs(ref), rel=1e-9, abs=1e-15) or (not np.isfinite(e) and not np.isfinite(ref))
    # quadratic f = x²/2 (a = b = 1), window 2, β_0 = 1: e_{t+1} = −(s/2)·e_{t−1}, converges iff s < 2
    fs = np.array([1.0, 1.9, 2.1, 8.0])
    lo, hi = th.stale_boundary(th.stale_scan(lambda w: w, 0.0, 1.0, 1.0, 1.0, 2, fs, 800), fs, 1e-8)
    assert (lo, hi) == (1.9, 2.1)
    with pytest.raises(ValueError, match="window"):
        th.stale_scan(grad, x_star, 4.0, a, b, 1, factors, 10)


def test_asymmetric_function_is_strictly_convex_asymmetric_with_curvature_in_range():
    a, b = 0.5, 2.0
    grad, x_star, _ = th.asymmetric_function(a, b)
    u = np.linspace(-40, 40, 8001)
    g = grad(u + x_star)
    assert grad(np.array([x_star]))[0] == 0.0
    h = g[u != 0] / u[u != 0]
    assert h.min() >= a and h.max() <= b                  # Definition 1 with [a, b]
    assert np.all(np.diff(g) > 0)                         # strictly convex
    assert grad(x_star + 1.0) > -grad(x_star - 1.0)       # steeper on the right: not symmetric
    gd, xs, _ = th.asymmetric_function(a, b, d=3, seed=2)
    W = np.random.default_rng(0).standard_normal((5, 3))
    eps = 1e-6                                            # the Jacobian of ∇f is positive definite
    H = np.stack([(gd(W[:1] + eps * e) - gd(W[:1] - eps * e))[0] / (2 * eps) for e in np.eye(3)])
    lam = np.linalg.eigvalsh((H + H.T) / 2)
    assert lam.min() > a - 0.1 * (b - a) - 1e-6 > 0
    assert np.allclose(gd(xs[None]), 0.0)


def test_delayed_sgd_tail_and_bias_interval():
    grad = lambda W: W  # f = w²/2, linear: the stationary mean is exactly w* = 0
    tail = th.delayed_sgd_tail(grad, 0.0, [0.5, 0.1], 400, 200, noise=1.0, runs=400, seed=1)
    full = th.delayed_sgd(grad, 0.0, [0.5, 0.1], 400, noise=1.0, runs=400, seed=1)
    assert np.allclose(tail, full[:, 201:].mean(axis=1))
    stat, lo, hi = th.bias_interval(tail)
    assert lo <= stat <= hi and lo == 0.0 or lo < 0.05    # unbiased: the interval reaches (near) 0
    m, se = tail.mean(), tail.std(ddof=1) / np.sqrt(len(tail))
    assert hi == pytest.approx(abs(m) + 1.959964 * se, rel=1e-5)
    shifted = th.bias_interval(np.column_stack([tail[:, 0], tail[:, 0] + 3.0]))
    assert shifted[1] > 2.5                               # a biased coordinate dominates
    decayed = th.delayed_sgd(grad, 5.0, [0.5], 50, step_scale=lambda t: 0.0)
    assert np.all(decayed == 5.0)                         # a zero step scale freezes the iterate


def test_numpy_scalars_are_numbers_and_bad_arguments_are_named():
    assert th.ridge_bounds(np.int64(3), np.float64(0.5)) == th.ridge_bounds(3, 0.5)
    assert th.lag_weights_from(np.float64(0.5), np.float64(2.0), np.int64(3)) == th.lag_weights_from(0.5, 2.0, 3)
    np.testing.assert_array_equal(th.delayed_sgd(lambda W: W, 1.0, [0.5], np.int64(3), runs=np.int64(2)),
                                  th.delayed_sgd(lambda W: W, 1.0, [0.5], 3, runs=2))
    with pytest.raises(TypeError, match=r"k must be an integer >= 1, got 2.5"):
        th.lag_weights_from(0.5, 2.0, 2.5)
    with pytest.raises(TypeError, match=r"steps must be an integer >= 0, got True"):
        th.delayed_gd(lambda w: w, 1.0, [0.5], True)
    with pytest.raises(ValueError, match=r"alpha_min must be a finite number > 0"):
        th.literal_min_sequence(0.0, 1.0, 2.0, 2)
    with pytest.raises(ValueError, match=r"burn must be smaller than steps"):
        th.delayed_sgd_tail(lambda W: W, 1.0, [0.5], 5, 5)
