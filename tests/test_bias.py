"""stalenb.theory, notebook 03: the second-order stationary bias of delayed SGD (Theorem 4 on a non-quadratic f).

Against closed forms (window 1), hand-computed values and independent simulations with
:func:`stalenb.theory.delayed_sgd`, never by re-running the function under test.
"""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from stalenb import theory as th


# -- the Lyapunov variance of the linearised delayed recursion ---------------------------------------
@pytest.mark.parametrize("beta, h, sigma", [(0.5, 1.0, 1.0), (0.1, 2.0, 0.3), (0.9, 2.0, 2.0)])
def test_stationary_variance_window_one_closed_form(beta, h, sigma):
    # e_{t+1} = (1 − βh) e_t − β ξ_t: AR(1), Var = β²σ² / (1 − (1 − βh)²)
    var = th.delayed_stationary_cov(h, [beta], sigma)
    assert var.shape == (1, 1)
    assert var[0, 0] == pytest.approx(beta**2 * sigma**2 / (1 - (1 - beta * h) ** 2), rel=1e-10)


@pytest.mark.parametrize("beta", [(0.5, 0.0625 / 3, 0.0625 / 3, 0.0625 / 3), (0.5, 0.1, 0.1, 0.1), (0.4, 0.15, 0.1)])
def test_stationary_variance_with_lags_matches_a_long_simulation(beta):
    # 1-D linear gradient h·w: Var(w_t) over 20,000 independent runs at t = 300 (stationary by then); the
    # relative sampling error of a variance from 20,000 draws is ≈ √(2/20000) = 1 %.
    h = 1.25
    w = th.delayed_sgd(lambda W: h * W, 0.0, beta, 300, noise=1.0, runs=20_000, seed=3)[:, -1, 0]
    var = th.delayed_stationary_cov(h, beta, 1.0)[0, 0]
    assert w.var(ddof=1) == pytest.approx(var, rel=0.05)
    # the lags and the re-used noise matter: the window-1 variance with β_0 alone (or with Σβ as one fresh
    # weight) is off by more than the tolerance in the last two cases
    if beta[1] > 0.05:
        for one in ([beta[0]], [sum(beta)]):
            assert abs(th.delayed_stationary_cov(h, one, 1.0)[0, 0] / var - 1) > 0.15


def test_stationary_covariance_two_dimensional_non_diagonal():
    H = np.array([[1.5, 0.4], [0.4, 0.8]])
    beta = [0.4, 0.05, 0.03]
    w = th.delayed_sgd(lambda W: W @ H, np.zeros(2), beta, 300, noise=0.7, runs=20_000, seed=4)[:, -1]
    C = th.delayed_stationary_cov(H, beta, 0.7)
    np.testing.assert_allclose(np.cov(w.T), C, rtol=0.06, atol=0.06 * np.abs(C).max())
    assert np.allclose(C, C.T)


def test_unstable_weights_have_no_stationary_law_and_cov_path_settles():
    with pytest.raises(ValueError, match="unstable"):
        th.delayed_stationary_cov(1.0, [2.5], 1.0)               # |1 − βh| = 1.5 > 1
    path = th.delayed_cov_path(1.0, [0.5, 0.05], 1.0, 200)
    assert path.shape == (201, 1, 1) and path[0, 0, 0] == 0.0
    assert path[-1, 0, 0] == pytest.approx(th.delayed_stationary_cov(1.0, [0.5, 0.05], 1.0)[0, 0], rel=1e-10)
    # window 1 by hand: P_1 = β²σ², P_2 = (1 − βh)² β²σ² + β²σ²
    hand = th.delayed_cov_path(2.0, [0.3], 1.0, 2, step_scale=lambda t: 1.0)
    np.testing.assert_allclose(hand[1:, 0, 0], [0.09, 0.16 * 0.09 + 0.09])


def test_state_space_window_one_is_d_by_d():
    A, B = th.delayed_state_space(np.diag([1.0, 2.0]), [0.25])
    np.testing.assert_allclose(A, np.diag([0.75, 0.5]))
    np.testing.assert_allclose(B, -0.25 * np.eye(2))
    A, B = th.delayed_state_space(2.0, [0.25, 0.1, 0.05])
    assert A.shape == (5, 5) and B.shape == (5, 1)


def test_time_average_se_matches_the_spread_of_run_averages():
    # long-run variance of the delayed linear recursion is σ²/h², whatever the lag weights
    h, sigma, n_avg = 1.25, 1.0, 2000
    tail = th.delayed_sgd_tail(lambda W: h * W, 0.0, [0.5, 0.05, 0.02], 2200, 200, noise=sigma, runs=2000,
                               seed=5)[:, 0]
    se_one_run = th.time_average_se(h, sigma, n_avg)[0]
    assert se_one_run == pytest.approx(sigma / (h * math.sqrt(n_avg)))
    assert tail.std(ddof=1) == pytest.approx(se_one_run, rel=0.1)


# -- finite differences ------------------------------------------------------------------------------
def test_derivative_tensors_of_a_known_polynomial():
    # g(x) = (x0² + 3 x0 x1, x1³) at (1, 2): J = [[2x0 + 3x1, 3x0], [0, 3x1²]] = [[8, 3], [0, 12]];
    # T_0 = [[2, 3], [3, 0]], T_1 = [[0, 0], [0, 6 x1]] = [[0, 0], [0, 12]]
    g = lambda X: np.stack([X[:, 0] ** 2 + 3 * X[:, 0] * X[:, 1], X[:, 1] ** 3], axis=1)  # noqa: E731
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(th.jacobian_fd(g, x), [[8, 3], [0, 12]], rtol=1e-8)
    T = th.third_derivative_fd(g, x)
    np.testing.assert_allclose(T[0], [[2, 3], [3, 0]], atol=1e-6)
    np.testing.assert_allclose(T[1], [[0, 0], [0, 12]], atol=1e-5)


# -- the second-order bias ----------------------------------------------------------------------------
def test_bias_prediction_by_hand_for_a_cubic_f():
    # f'(x) = h u + c u² (u = x − 1): f'' = h, f''' = 2c; window 1, β = 0.5, h = 1, σ = 1:
    # Var = β²/(1 − (1 − β)²) = 0.25/0.75 = 1/3; E[e] ≈ −f'''/(2f'')·Var = −(0.4/2)/3 = −1/15
    g = lambda x: (x - 1.0) + 0.2 * (x - 1.0) ** 2  # noqa: E731
    p = th.bias_prediction(g, 1.0, [0.5], 1.0)
    assert p["cov"][0, 0] == pytest.approx(1 / 3, rel=1e-8)
    assert p["second_order"][0] == pytest.approx(-1 / 15, rel=1e-6)
    # the Gaussian closure, independently: m solves h m + c (m² + V(h + 2cm)) = 0, V(h') = βσ²/(h'(2 − βh'))
    # (statistical linearisation of h u + c u² at m is h + 2cm, exactly)
    V = lambda hh: 0.5 / (hh * (2 - 0.5 * hh))  # noqa: E731
    m = brentq(lambda m: m + 0.2 * (m * m + V(1 + 0.4 * m)), -0.5, 0.0)
    assert p["gaussian"][0] == pytest.approx(m, rel=1e-7)
    assert p["error"][0] == pytest.approx(abs(m + 1 / 15), rel=1e-5)


def test_bias_sign_follows_the_third_derivative_and_a_simulation():
    a, b = 0.5, 2.0
    g, xs, _ = th.asymmetric_function(a, b)                      # steeper right of x*: f''' > 0
    mirror = lambda x: -g(2 * xs - x)  # noqa: E731              # steeper left: f''' < 0
    beta = th.lag_weights_from(a, b, 4)
    right, left = th.bias_prediction(g, xs, beta, 1.0), th.bias_prediction(mirror, xs, beta, 1.0)
    assert right["second_order"][0] < 0 < left["second_order"][0]
    assert left["second_order"][0] == pytest.approx(-right["second_order"][0], rel=1e-6)
    # by hand: f'' = (a + b)/2, f''' = (b − a)/2 at x* for this f
    assert right["second_order"][0] == pytest.approx(-(b - a) / (2 * (a + b)) * right["cov"][0, 0], rel=1e-6)
    # an independent simulation: the stationary mean sits below x*, near the prediction (standard error
    # ≈ 1/(1.25·√(2000·1000)) ≈ 6e-4; the O(σ⁴) remainder is of the size of the error estimate, 1.5e-3)
    tail = th.delayed_sgd_tail(g, xs, beta, 1500, 500, noise=1.0, runs=2000, seed=6)[:, 0] - xs
    se = tail.std(ddof=1) / math.sqrt(tail.size)
    assert tail.mean() < -20 * se
    assert abs(tail.mean() - right["second_order"][0]) < 4 * se + 2 * right["error"][0]


def test_quadratic_has_no_bias_and_rotation_carries_the_one_dimensional_bias():
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    quad = th.bias_prediction(lambda X: (X - 1.0) @ H, np.ones(2), [0.3, 0.02], 1.0, points=5)
    np.testing.assert_allclose(quad["second_order"], 0, atol=1e-8)
    np.testing.assert_allclose(quad["gaussian"], 0, atol=1e-8)
    # the rotated d-D function is d copies of the 1-D one along the axes of Q (isotropic H(x*) and noise)
    a, b, d, seed = 0.5, 2.0, 3, 1
    beta = th.lag_weights_from(a, b, 3)
    g1, x1, _ = th.asymmetric_function(a, b)
    gd, xd, _ = th.asymmetric_function(a, b, d, seed)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    p1, pd_ = th.bias_prediction(g1, x1, beta, 0.8), th.bias_prediction(gd, xd, beta, 0.8, points=7)
    np.testing.assert_allclose(pd_["second_order"], q @ np.full(d, p1["second_order"][0]), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(pd_["gaussian"], q @ np.full(d, p1["gaussian"][0]), rtol=1e-4, atol=1e-8)


def test_bias_path_settles_on_the_stationary_value_and_follows_the_step():
    g, xs, _ = th.asymmetric_function(0.5, 2.0)
    beta = th.lag_weights_from(0.5, 2.0, 3)
    stationary = th.bias_prediction(g, xs, beta, 1.0)["second_order"]
    const = th.bias_path_prediction(g, xs, beta, 1.0, 150)
    assert const.shape == (151, 1) and const[0, 0] == 0.0
    assert const[-1, 0] == pytest.approx(stationary[0], rel=1e-8)
    frozen = th.bias_path_prediction(g, xs, beta, 1.0, 50, step_scale=lambda t: 0.0)
    assert np.all(frozen == 0.0)
    # a slowly decaying step: quasi-stationary, the bias at t is close to the stationary value at step s_t
    s = lambda t: 100 / (100 + t)  # noqa: E731
    path = th.bias_path_prediction(g, xs, beta, 1.0, 1000, step_scale=s)
    here = th.bias_prediction(g, xs, beta, 1.0, step=s(1000))["second_order"][0]
    assert path[-1, 0] == pytest.approx(here, rel=0.1)
    assert abs(path[-1, 0]) < 0.2 * abs(stationary[0])


# -- binned simulation averages -------------------------------------------------------------------
def test_delayed_sgd_bins_matches_the_full_path_and_tail():
    grad = lambda W: W ** 3 + W  # noqa: E731
    kw = dict(noise=0.5, runs=7, seed=2, step_scale=lambda t: 1 / (1 + 0.01 * t))
    full = th.delayed_sgd(grad, np.array([1.0, -1.0]), [0.3, 0.05], 40, **kw)
    bins = th.delayed_sgd_bins(grad, np.array([1.0, -1.0]), [0.3, 0.05], 40, [0, 5, 20, 40], **kw)
    assert bins.shape == (7, 3, 2)
    np.testing.assert_allclose(bins[:, 0], full[:, 1:6].mean(axis=1))
    np.testing.assert_allclose(bins[:, 2], full[:, 21:41].mean(axis=1))
    tail = th.delayed_sgd_tail(grad, np.array([1.0, -1.0]), [0.3, 0.05], 40, 20, **kw)
    np.testing.assert_allclose(bins[:, 2], tail)
    with pytest.raises(ValueError, match="edges"):
        th.delayed_sgd_bins(grad, 0.0, [0.3], 40, [0, 50])
    with pytest.raises(ValueError, match="edges"):
        th.delayed_sgd_bins(grad, 0.0, [0.3], 40, [5, 5, 10])


# -- the notebook's statistics ----------------------------------------------------------------------------
def test_bias_resolution_by_hand():
    # 1-D, H = 1.25, σ = 1, count = 10⁶: se = 1/(1.25·1000) = 8e-4; d = 1: z_{0.975} + z_{0.975} = 3.919928
    tol, se = th.bias_resolution(1.25, 1.0, 1_000_000)
    assert se == pytest.approx(8e-4)
    assert tol == pytest.approx(2 * 1.959964 * 8e-4, rel=1e-6)
    # d = 2, H = diag(1, 2): se = (1e-3, 5e-4); z_{1 − 0.05/4} = 2.241403
    tol2, se2 = th.bias_resolution(np.diag([1.0, 2.0]), 1.0, 1_000_000)
    assert se2 == pytest.approx(1e-3) and tol2 == pytest.approx((2.241403 + 1.959964) * 1e-3, rel=1e-6)


def test_bias_agreement_by_hand():
    # two coordinates, four runs: means (1, −2); deviations (−1, 1, 0, 0) and (0, 0, 1, −1): sample sd √(2/3)
    x = np.array([[0.0, -2.0], [2.0, -2.0], [1.0, -1.0], [1.0, -3.0]])
    sd = math.sqrt(2 / 3)
    half = 1.959964 * sd / 2
    stat, lo, hi = th.bias_agreement(x, [1.5, -2.0], [0.1, 0.0])
    assert stat == pytest.approx(0.5 / 2.0)                      # gaps (0.5, 0) over max |p| = 2
    assert lo == pytest.approx(max(0.5 - half - 0.1, 0) / 2, abs=1e-7)
    assert hi == pytest.approx((0.5 + half + 0.1) / 2, rel=1e-6)
    assert th.bias_agreement(np.zeros((3, 1)), [0.2], [0.0]) == pytest.approx((1.0, 1.0, 1.0))  # zero bias: 1


def test_paired_ratio_and_distance_interval_by_hand():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])    # x = y/2 exactly: R = 0.5, zero spread
    assert th.paired_ratio(x, y) == pytest.approx((0.5, 0.5, 0.5))
    x2 = np.array([1.0, 2.0, 3.0, 2.0])
    y2 = np.array([4.0, 4.0, 4.0, 4.0])                           # R = 2/4; x − R·y = (−1, 0, 1, 0): sd = √(2/3)
    r, lo, hi = th.paired_ratio(x2, y2)
    half = 1.959964 * math.sqrt(2 / 3) / 2 / 4
    assert (r, lo, hi) == pytest.approx((0.5, 0.5 - half, 0.5 + half), rel=1e-6)
    assert th.distance_interval(1.1, 1.0, 1.2, 1.125, 0.01) == pytest.approx((0.025, 0.0, 0.135))
    assert th.distance_interval(1.9, 1.8, 2.0, 1.0, 0.1) == pytest.approx((0.9, 0.7, 1.1))
