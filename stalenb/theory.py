"""The poster's theorems as functions: generalized curvature, delayed GD/SGD, ridge bounds, rates.

Source: "Benefits of staleness and asynchrony in machine learning algorithms" (CS744 poster,
Wang, Jin, Ma 2017; ``docs/research.md`` §2) and, for the rate helpers, paper 1 (Candela et al. 2019,
``docs/research.md`` §1). Notation:

- **Definition 1** (1-D generalized curvature): f'(x) = h(x)·(x − x*), h(x) ∈ [a, b].
- **Definition 2** (d-D): ∇f(x) = H(x)·(x − x*) with the eigenvalues of H(x) in [a, b].
- **Theorems 1, 2** (lag-indexed reading, ``docs/research.md`` §2 [derived]): the delayed update
  w_{t+1} = w_t − Σ_{j=0}^{k−1} β_j ∇f(w_{t−j}) (w_{t−j} = w_0 for t − j < 0) converges when
  β_0 ≤ 1/b and Σ_{j≥1} β_j ≤ (a/2b)·β_0, with |e_{t+1}| ≤ (1 − β_0·a/2)·max_{0≤j<k} |e_{t−j}|
  for e = w − w* (1-D).
- **Theorem 3 / Example 1**: ridge f(w) = ‖Xw − y‖² + η‖w‖² has H = 2(XᵀX + ηI) and, for rows
  ‖x_i‖ ≤ 1, eigenvalues in [2η, 2n + 2η].
- **Theorem 4**: with unbiased noisy gradients, E[w_t] → w* (here: the same recursion with
  Gaussian noise added to every gradient). On a non-quadratic f with constant weights the
  stationary mean is biased; :func:`bias_prediction` gives the second-order (small-noise) value
  E[w] − w* ≈ −½ H⁻¹ (T : Cov) (1-D: −f'''/(2f'')·Var(w)) with Cov from a discrete Lyapunov equation
  (:func:`delayed_stationary_cov`), and :func:`bias_path_prediction` its course under decaying steps.
- Paper 1: (1/T) Σ_t E‖∇f(x_t)‖² = O(1/√T) for the step α = lr_scale/√T; :func:`loglog_slope`
  fits the exponent.
- Tyurin & Richtárik (NeurIPS 2023): the optimal time T*(ε) of parallel SGD with fixed worker
  times τ_i (:func:`optimal_time`, up to a universal constant) and a run's time as a multiple of it
  (:func:`time_ratio`).

The literal reading of the poster's condition (one α_t per iteration, c ≤ α_t ≤ 1/b for some
c > 0: here ``alpha_min`` = c) is infeasible for k ≥ 2; :func:`literal_min_sequence` builds the
smallest sequence that satisfies it and shows it leaves [alpha_min, 1/b].

Bad arguments raise ``TypeError`` (wrong type) or ``ValueError`` (out of range) naming the
parameter (:mod:`stalenb.sim.checks`); numpy integers and floats are accepted everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sim import checks


# -- validation --------------------------------------------------------------------------------
def _check_ab(a, b) -> tuple[float, float]:
    a, b = float(checks.real("a", a, gt=0)), float(checks.real("b", b, gt=0))
    if a > b:
        raise ValueError(f"a must satisfy 0 < a <= b, got a={a}, b={b}")
    return a, b


def _weights(lag_weights) -> np.ndarray:
    beta = np.asarray(lag_weights, dtype=float).reshape(-1)
    if beta.size == 0 or not np.all(np.isfinite(beta)) or np.any(beta < 0):
        raise ValueError(f"lag_weights must be a non-empty sequence of finite numbers >= 0, got {lag_weights!r}")
    return beta


# -- Definition 1 ------------------------------------------------------------------------------
def generalized_curvature(grad, x, x_star, eps: float = 1e-6):
    """Generalized curvature h(x) = f'(x) / (x − x*) (poster, Definition 1), elementwise.

    At x = x* the quotient is 0/0; h is defined there by its limit f''(x*), estimated by the
    central difference (f'(x* + ε) − f'(x* − ε)) / 2ε. (For a strictly convex C² function the
    limit exists and equals f''(x*).)

    Args:
        grad: f', a function applied elementwise to a numpy array.
        x: points (scalar or array).
        x_star: the minimiser x*.
        eps: step of the central difference used at x = x*.

    Returns:
        h(x), same shape as ``x`` (a float for scalar ``x``).

    Example:
        >>> float(generalized_curvature(lambda x: 3 * (x - 1), 4.0, 1.0))
        3.0
    """
    xa = np.asarray(x, dtype=float)
    diff = xa - x_star
    at_star = diff == 0
    safe = np.where(at_star, 1.0, diff)
    h = np.asarray(grad(xa), dtype=float) / safe
    if np.any(at_star):
        limit = (np.asarray(grad(np.asarray(x_star + eps)), float) - np.asarray(grad(np.asarray(x_star - eps)), float)) / (2 * eps)
        h = np.where(at_star, limit, h)
    return float(h) if np.ndim(x) == 0 else h


def curvature_range(grad, x_star, lo, hi, num: int = 2001) -> tuple[float, float]:
    """(min h, max h) of Definition 1's h on a grid over [lo, hi]: a numerical [a, b]."""
    h = generalized_curvature(grad, np.linspace(lo, hi, num), x_star)
    return float(np.min(h)), float(np.max(h))


def example_functions(a: float = 0.5, b: float = 2.0) -> dict:
    """Strictly convex 1-D examples for Definition 1: name → (f', x*, (inf h, sup h)).

    - ``"quadratic"``: f = (a+b)/4·(x − 1)², h ≡ (a+b)/2;
    - ``"log-cosh + quadratic"``: f = log cosh(x − 1) + (a/2)(x − 1)², h = tanh(u)/u + a ∈ (a, a + 1];
    - ``"curvature bump"``: f'(x) = (a + (b − a)/(1 + u²))·u with u = x − 1, so h = a + (b − a)/(1 + u²)
      sweeps (a, b] (strictly convex for b < 9a: f'' ≥ a − (b − a)/8).
    """
    a, b = _check_ab(a, b)
    m = (a + b) / 2
    return {
        "quadratic": (lambda x: m * (x - 1.0), 1.0, (m, m)),
        "log-cosh + quadratic": (lambda x: np.tanh(x - 1.0) + a * (x - 1.0), 1.0, (a, a + 1.0)),
        "curvature bump": (lambda x: (a + (b - a) / (1 + (x - 1.0) ** 2)) * (x - 1.0), 1.0, (a, b)),
    }


# -- Theorems 1, 2, 4: the delayed recursion ---------------------------------------------------
def _delayed_iterates(grad, w0, lag_weights, steps, noise, runs, seed, step_scale):
    """Yield w_1, …, w_steps (each of shape (runs, d)) of the delayed (S)GD recursion."""
    beta = _weights(lag_weights)
    steps = checks.integer("steps", steps, minimum=0)
    runs = checks.integer("runs", runs, minimum=1)
    noise = checks.real("noise", noise, ge=0)
    w = np.tile(np.atleast_1d(np.asarray(w0, dtype=float)), (runs, 1))
    rng = np.random.default_rng(seed)
    k = beta.size
    past = None  # past[j] = g_{t−j}
    for t in range(steps):
        g = np.asarray(grad(w), dtype=float).reshape(w.shape)
        if noise:
            g = g + noise * rng.standard_normal(g.shape)
        past = np.repeat(g[None], k, axis=0) if past is None else np.concatenate([g[None], past[:-1]])
        scale = 1.0 if step_scale is None else float(step_scale(t))
        with np.errstate(over="ignore", invalid="ignore"):
            w = w - scale * np.tensordot(beta, past, axes=1)
        yield w


def delayed_sgd(grad, w0, lag_weights, steps, noise: float = 0.0, runs: int = 1, seed: int = 0,
                step_scale=None):
    """Delayed (S)GD, vectorised over independent runs (poster, Theorems 1, 2 and 4).

    w_{t+1} = w_t − s_t·Σ_{j=0}^{k−1} β_j g_{t−j},  g_s = ∇f(w_s) + ξ_s,  ξ_s ~ N(0, noise²·I),

    with g_s = g_0 for s < 0 (w_s = w_0 before the start) and s_t = ``step_scale(t)`` (1 if None: the
    constant weights of Theorem 4; a decaying s_t scales every lag weight alike, so the lag condition
    still holds at every step). Each gradient is drawn once and re-used at the k steps that apply it
    (a worker's stale gradient is the same vector whenever it is applied).

    Args:
        grad: ∇f on a batch: maps an array of shape (runs, d) to (runs, d) (a linear gradient
            ``lambda W: W @ A.T - r`` broadcasts naturally).
        w0: start, shape (d,) or a scalar (d = 1).
        lag_weights: β_0, …, β_{k−1} (>= 0).
        steps: number of updates.
        noise: standard deviation of the Gaussian gradient noise (0: deterministic).
        runs: number of independent runs.
        seed: seeds the noise.
        step_scale: optional t → s_t.

    Returns:
        Iterates of shape (runs, steps + 1, d).
    """
    w = np.tile(np.atleast_1d(np.asarray(w0, dtype=float)), (checks.integer("runs", runs, minimum=1), 1))
    out = [w] + list(_delayed_iterates(grad, w0, lag_weights, steps, noise, runs, seed, step_scale))
    return np.stack(out, axis=1)


def delayed_sgd_tail(grad, w0, lag_weights, steps, burn, noise: float = 0.0, runs: int = 1, seed: int = 0,
                     step_scale=None) -> np.ndarray:
    """Per-run time average of w_t over burn < t ≤ steps for :func:`delayed_sgd` (shape (runs, d)).

    The same recursion without storing the path: for a stationary regime (constant weights) the
    mean over runs of these averages estimates the stationary E[w] with a standard error from the
    spread over runs (runs are independent).
    """
    burn, steps = checks.integer("burn", burn, minimum=0), checks.integer("steps", steps, minimum=1)
    if burn >= steps:
        raise ValueError(f"burn must be smaller than steps ({steps}), got burn={burn}")
    total = 0.0
    for t, w in enumerate(_delayed_iterates(grad, w0, lag_weights, steps, noise, runs, seed, step_scale), 1):
        if t > burn:
            total = total + w
    return total / (steps - burn)


def bias_interval(samples, level: float = 0.95) -> tuple[float, float, float]:
    """Largest |coordinate mean| of ``samples`` (runs, d) with an interval from per-coordinate CIs.

    Statistic max_i |m_i|; interval [max_i max(0, |m_i| − z·se_i), max_i (|m_i| + z·se_i)] with
    z the normal quantile of ``level`` (per coordinate, no multiplicity correction): "below a
    tolerance" holds when every coordinate's interval lies inside ±tolerance, fails when some
    coordinate's interval lies wholly beyond it.
    """
    from scipy import stats

    x = np.asarray(samples, dtype=float).reshape(len(samples), -1)
    m, se = x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])
    z = stats.norm.ppf(0.5 + level / 2)
    return float(np.abs(m).max()), float(np.maximum(np.abs(m) - z * se, 0).max()), float((np.abs(m) + z * se).max())


def asymmetric_function(a: float = 0.5, b: float = 2.0, d: int = 1, seed: int = 0):
    """A non-quadratic, asymmetric, strictly convex f with generalized curvature in (a, b) (Theorem 4's test).

    1-D: f'(x) = h(u)·u with u = x − 1 and h(u) = a + (b − a)·σ(u) (σ the logistic function): the
    curvature rises from a (far left) to b (far right), so f is steeper on the right of x* = 1 and
    not symmetric about it. f'' = a + (b − a)·σ(u)·(1 + (1 − σ(u))·u) ≥ a − 0.1·(b − a) > 0 for
    b < 11a. d-D: ∇f(x) = Q·(h(u) ⊙ u), u = Qᵀ(x − x*), x* = (1, …, 1), Q a random rotation
    (``seed``): H(x) = Q diag(h(u_i)) Qᵀ has its eigenvalues in (a, b) (Definition 2).

    Returns:
        (grad, x_star, (a, b)); ``grad`` maps arrays of shape (runs, d) (or (m,) for d = 1) to the same shape.
    """
    from scipy.special import expit

    a, b = _check_ab(a, b)
    d = checks.integer("d", d, minimum=1)
    if d == 1:
        return (lambda x: (a + (b - a) * expit(x - 1.0)) * (x - 1.0)), 1.0, (a, b)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    x_star = np.ones(d)

    def grad(x):
        u = (np.asarray(x, dtype=float) - x_star) @ q
        return ((a + (b - a) * expit(u)) * u) @ q.T

    return grad, x_star, (a, b)


def delayed_gd(grad, w0, lag_weights, steps):
    """Delayed gradient descent under the lag-indexed reading (poster, Theorems 1 and 2).

    w_{t+1} = w_t − Σ_{j=0}^{k−1} lag_weights[j] · ∇f(w_{t−j}),  with w_{t−j} = w_0 for t − j < 0.

    Args:
        grad: ∇f, maps an array of shape (d,) to (d,).
        w0: start, an array of shape (d,) or a scalar (treated as d = 1; ``grad`` still receives
            a (1,) array, which numpy functions of a scalar handle unchanged).
        lag_weights: β_0, …, β_{k−1} (>= 0); k = len(lag_weights).
        steps: number of updates.

    Returns:
        Iterates w_0, …, w_steps: shape (steps + 1, d), or (steps + 1,) for scalar ``w0``.
        A diverging run keeps its inf/nan values (no exception).

    Example:
        f(w) = w²/2 (∇f = w), β = (0.5, 0.25), w_0 = 1: w_1 = 1 − 0.75 = 0.25,
        w_2 = 0.25 − 0.5·0.25 − 0.25·1 = −0.125.

        >>> delayed_gd(lambda w: w, 1.0, [0.5, 0.25], 2).tolist()
        [1.0, 0.25, -0.125]
    """
    scalar = np.ndim(w0) == 0
    path = delayed_sgd(lambda W: np.stack([np.asarray(grad(w), dtype=float).reshape(-1) for w in W]),
                       w0, lag_weights, steps)[0]
    return path[:, 0] if scalar else path


def lag_condition(lag_weights, a, b) -> bool:
    """The poster's step-size condition, lag-indexed reading (Theorems 1, 2, 4).

    True iff β_0 ≤ 1/b and Σ_{j≥1} β_j ≤ (a / 2b)·β_0 (β_0 > 0 is also required).

    Raises:
        ValueError: unless 0 < a ≤ b (naming ``a`` or ``b``), or for negative weights.
    """
    a, b = _check_ab(a, b)
    beta = _weights(lag_weights)
    tol = 1e-12
    return bool(0 < beta[0] <= 1.0 / b * (1 + tol) and beta[1:].sum() <= a / (2 * b) * beta[0] * (1 + tol))


def lag_weights_from(a, b, k, beta0=None, stale_fraction: float = 1.0) -> tuple:
    """Weights meeting :func:`lag_condition`: β_0 (default 1/b) and Σ_{j≥1} β_j = s·(a/2b)·β_0.

    The stale budget s·(a/2b)·β_0 is split equally over the k − 1 lags; s = ``stale_fraction``
    (s ≤ 1 satisfies the condition, s > 1 violates it).
    """
    a, b = _check_ab(a, b)
    k = checks.integer("k", k, minimum=1)
    beta0 = 1.0 / b if beta0 is None else float(checks.real("beta0", beta0, ge=0))
    stale_fraction = checks.real("stale_fraction", stale_fraction, ge=0)
    if k == 1:
        return (beta0,)
    stale = stale_fraction * a / (2 * b) * beta0
    return (beta0,) + (stale / (k - 1),) * (k - 1)


def stale_scan(grad, x_star, w0, a, b, window, factors, steps):
    """Final errors |w_T − x*| of delayed GD for many stale-weight factors at once (1-D, vectorised).

    Factor s gives β_0 = 1/b and Σ_{j≥1} β_j = s·(a/2b)·β_0 split equally over the window's k − 1
    lags (:func:`lag_weights_from`; Theorem 1 allows s ≤ 1). ``grad`` must act elementwise on an
    array. Returns an array like ``factors`` (inf/nan for diverged runs).
    """
    s = np.asarray(factors, dtype=float)
    window = checks.integer("window", window, minimum=2, note="a window of 1 has no stale weights")
    steps = checks.integer("steps", steps, minimum=0)
    beta0 = 1.0 / b
    stale = s * a / (2 * b) * beta0 / (window - 1)
    w = np.full(s.shape, float(w0))
    g0 = np.asarray(grad(w), dtype=float)
    past = [g0] * window  # past[j] = f'(w_{t−j})
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            past = [np.asarray(grad(w), dtype=float)] + past[:-1]
            w = w - beta0 * past[0] - stale * np.sum(past[1:], axis=0)
    return np.abs(w - x_star)


def stale_boundary(final_errors, factors, tol) -> tuple[float, float]:
    """The bracket (last factor that converges, first that does not) from a :func:`stale_scan`.

    "Converges" means a finite final error below ``tol``. Returns ``(lo, hi)`` with ``hi`` the
    smallest factor that fails and ``lo`` the largest factor below it that converges (``lo = 0`` if
    the smallest factor already fails; ``hi = inf`` if none fails).

    Example:
        >>> stale_boundary(np.array([0.0, 1e-12, 0.5, 1e-12]), [1.0, 2.0, 3.0, 4.0], tol=1e-8)
        (2.0, 3.0)
    """
    f = np.asarray(factors, dtype=float)
    ok = np.isfinite(final_errors) & (np.asarray(final_errors) < tol)
    bad = np.nonzero(~ok)[0]
    if bad.size == 0:
        return float(f[-1]), math.inf
    i = bad[0]
    return (float(f[i - 1]) if i > 0 else 0.0), float(f[i])


def contraction_factor(beta0, a) -> float:
    """q = 1 − β_0·a/2, the contraction of the window maximum (Theorem 1, lag-indexed reading)."""
    return 1.0 - float(beta0) * float(a) / 2.0


def contraction_bound(errors, beta0, a, k) -> np.ndarray:
    """The one-step bound of Theorem 1: B_{t+1} = (1 − β_0·a/2)·max_{0≤j<k} |e_{t−j}|.

    Args:
        errors: e_0, …, e_T (1-D: w_t − w*; for vectors pass the norms), shape (T + 1,).
        beta0, a: as in the theorem; k: the window (number of lag weights).

    Returns:
        B_1, …, B_T (shape (T,)): entry t bounds |e_{t+1}|; e_s = e_0 for s < 0.
    """
    e = np.abs(np.asarray(errors, dtype=float))
    k = checks.integer("k", k, minimum=1)
    q = contraction_factor(beta0, a)
    padded = np.concatenate([np.full(k - 1, e[0]), e[:-1]])
    window = np.lib.stride_tricks.sliding_window_view(padded, k).max(axis=1)
    return q * window


def literal_min_sequence(alpha_min, a, b, k, steps: int = 64) -> np.ndarray:
    """The smallest step sequence satisfying the poster's condition read literally.

    Literal reading: α_t ≥ alpha_min (the poster's c) and Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t for
    every t (indices < 0 absent). Each α_t must be at least max(alpha_min, (2b/a)·Σ_{i=t−k+1}^{t−1} α_i),
    and that bound grows with the earlier terms, so the sequence built with equality is a pointwise
    lower bound for every feasible sequence. For k ≥ 2 it satisfies α_t ≥ (2b/a)·α_{t−1} ≥ 2·α_{t−1},
    so α_t ≥ 2^t·alpha_min exceeds 1/b after at most ⌊log2(1/(b·alpha_min))⌋ + 1 steps: the
    condition α_t ≤ 1/b cannot hold for ever ([derived], ``docs/research.md`` §2).
    """
    a, b = _check_ab(a, b)
    alpha_min = checks.real("alpha_min", alpha_min, gt=0)
    k = checks.integer("k", k, minimum=1)
    alpha = np.empty(checks.integer("steps", steps, minimum=0) + 1)
    with np.errstate(over="ignore"):
        for t in range(alpha.size):
            prev = alpha[max(0, t - k + 1):t].sum()
            alpha[t] = max(alpha_min, 2 * b / a * prev)
    return alpha


def literal_exit_step(alpha_min, a, b, k, steps: int | None = None):
    """First t with literal_min_sequence(alpha_min, a, b, k)[t] > 1/b, or ``None`` within ``steps``.

    ``steps`` defaults to :func:`literal_exit_bound` + 16 (enough for every k >= 2).
    """
    steps = literal_exit_bound(alpha_min, b) + 16 if steps is None else steps
    alpha = literal_min_sequence(alpha_min, a, b, k, steps)
    hit = np.nonzero(alpha > 1.0 / b)[0]
    return int(hit[0]) if hit.size else None


def literal_exit_bound(alpha_min, b) -> int:
    """⌈log2(1/(b·alpha_min))⌉ + 1: the step by which the literal sequence must have left (0, 1/b]."""
    alpha_min, b = checks.real("alpha_min", alpha_min, gt=0), checks.real("b", b, gt=0)
    return max(0, math.ceil(math.log2(1.0 / (b * alpha_min)))) + 1


def converged_step(errors, tol) -> int | None:
    """First t after which |e_s| ≤ tol for all s ≥ t (``None`` if never within the horizon)."""
    e = np.abs(np.asarray(errors, dtype=float))
    bad = np.nonzero(~(e <= tol))[0]
    if bad.size == 0:
        return 0
    return None if bad[-1] == e.size - 1 else int(bad[-1] + 1)


# -- Theorem 4 on a non-quadratic f: the second-order stationary bias (notebook 03) ------------
#
# With constant weights the delayed SGD iterates reach a stationary law with a spread of order σ²·β.
# Stationarity gives E[w_{t+1}] = E[w_t], so Σ_j β_j E[∇f(w_{t−j})] = 0 and E[∇f(w)] = 0 EXACTLY (for
# any weights with Σβ_j > 0). Expanding ∇f(x* + e) = H e + ½ T[e, e] + O(‖e‖³) (H the Hessian, T the
# third-derivative tensor at x*) gives the small-noise (second-order) prediction
#     H·E[e] + ½ T : Cov(e) = O(σ⁴)   ⇒   E[e] ≈ −½ H⁻¹ (T : Cov),   1-D: E[e] ≈ −f'''/(2 f'')·Var(w),
# with Cov(e) the stationary covariance of the LINEARISED delayed recursion (a discrete Lyapunov
# equation on its state form). This is the delayed-gradient version of the constant-step SGD bias
# expansion of Dieuleveut, Durmus & Bach (2020, "Bridging the gap between constant step size SGD and
# Markov chains", Ann. Statist.): the bias is of order step·σ², not zero, unless T = 0 (a quadratic).
def jacobian_fd(grad, x, h: float = 1e-5) -> np.ndarray:
    """J_ij = ∂g_i/∂x_j at ``x`` (shape (d,)) by central differences (error O(h²·|g'''|)).

    ``grad`` maps an array of shape (m, d) to (m, d), as for :func:`delayed_sgd`.
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    steps = h * np.eye(x.size)
    g = np.asarray(grad(np.concatenate([x + steps, x - steps])), dtype=float).reshape(2 * x.size, x.size)
    return ((g[:x.size] - g[x.size:]) / (2 * h)).T


def third_derivative_fd(grad, x, h: float = 1e-3) -> np.ndarray:
    """T_ikl = ∂²g_i/∂x_k∂x_l at ``x`` (shape (d, d, d)) by central second differences.

    T_ikl = [g(x + h e_k + h e_l) − g(x + h e_k − h e_l) − g(x − h e_k + h e_l) + g(x − h e_k − h e_l)]_i / 4h²,
    exact for a quadratic g (error O(h²·|g''''|) otherwise). For a gradient g = ∇f, T is f's
    third-derivative tensor.
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    d = x.size
    e = h * np.eye(d)
    kk, ll = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
    kk, ll = kk.ravel(), ll.ravel()
    pts = np.concatenate([x + e[kk] + e[ll], x + e[kk] - e[ll], x - e[kk] + e[ll], x - e[kk] - e[ll]])
    g = np.asarray(grad(pts), dtype=float).reshape(4, d * d, d)
    t = (g[0] - g[1] - g[2] + g[3]) / (4 * h * h)          # (d*d, d): row (k, l), column i
    return t.reshape(d, d, d).transpose(2, 0, 1)


def _hessian_matrix(H) -> np.ndarray:
    H = np.atleast_2d(np.asarray(H, dtype=float))
    if H.ndim != 2 or H.shape[0] != H.shape[1] or not np.all(np.isfinite(H)):
        raise ValueError(f"H must be a finite square matrix (or a scalar), got shape {H.shape}")
    return H


def delayed_state_space(H, lag_weights, step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of the linearised delayed SGD recursion in state form X_{t+1} = A X_t + B ξ_t.

    Linearised recursion (e = w − w*, gradient H e, noise ξ drawn once per gradient and re-used):
        e_{t+1} = e_t − s·Σ_{j=0}^{k−1} β_j (H e_{t−j} + ξ_{t−j}),   s = ``step``.
    State X_t = (e_t, e_{t−1}, …, e_{t−k+1}, ξ_{t−1}, …, ξ_{t−k+1}) (blocks of size d, d·(2k − 1) in
    all; just e_t for k = 1); B maps the fresh ξ_t into the state.
    """
    H = _hessian_matrix(H)
    beta = _weights(lag_weights) * float(checks.real("step", step, ge=0))
    d, k = H.shape[0], beta.size
    n = d * (2 * k - 1)
    A, B, eye = np.zeros((n, n)), np.zeros((n, d)), np.eye(d)
    blk = lambda i: slice(i * d, (i + 1) * d)  # noqa: E731  block i: e_{t−i} (i < k), ξ_{t−(i−k+1)} (i ≥ k)
    A[blk(0), blk(0)] = eye - beta[0] * H
    B[blk(0)] = -beta[0] * eye
    for j in range(1, k):
        A[blk(0), blk(j)] = -beta[j] * H                   # stale gradient part H e_{t−j}
        A[blk(0), blk(k - 1 + j)] = -beta[j] * eye        # its noise ξ_{t−j}, drawn when it was computed
        A[blk(j), blk(j - 1)] = eye                       # shift e
        if j >= 2:
            A[blk(k - 1 + j), blk(k - 2 + j)] = eye       # shift ξ
    if k > 1:
        B[blk(k)] = eye                                   # ξ_t becomes ξ_{(t+1)−1}
    return A, B


def delayed_stationary_cov(H, lag_weights, noise, step: float = 1.0) -> np.ndarray:
    """Stationary Cov(e) (d × d) of the linearised delayed SGD recursion with noise ξ ~ N(0, noise²·I).

    Solves the discrete Lyapunov equation P = A P Aᵀ + noise²·B Bᵀ on the state form
    (:func:`delayed_state_space`; ``scipy.linalg.solve_discrete_lyapunov``) and returns the e_t block.
    Window 1, 1-D: Var = β²σ²/(1 − (1 − βh)²).

    Raises:
        ValueError: if the recursion is not stable (spectral radius of A ≥ 1: no stationary law).
    """
    from scipy.linalg import solve_discrete_lyapunov

    A, B = delayed_state_space(H, lag_weights, step)
    radius = float(np.max(np.abs(np.linalg.eigvals(A))))
    if radius >= 1:
        raise ValueError(f"the linearised recursion is unstable (spectral radius {radius:.4g} >= 1): no stationary law")
    noise = float(checks.real("noise", noise, ge=0))
    P = solve_discrete_lyapunov(A, noise**2 * B @ B.T)
    d = B.shape[1]
    return (P[:d, :d] + P[:d, :d].T) / 2


def delayed_cov_path(H, lag_weights, noise, steps, step_scale=None) -> np.ndarray:
    """Cov(e_t), t = 0…steps (shape (steps + 1, d, d)), of the linearised recursion started at rest.

    P_{t+1} = A_t P_t A_tᵀ + noise²·B_t B_tᵀ, P_0 = 0, with (A_t, B_t) = :func:`delayed_state_space` at
    step s_t = ``step_scale(t)`` (1 if None). With constant steps P_t tends to :func:`delayed_stationary_cov`.
    """
    steps = checks.integer("steps", steps, minimum=0)
    noise = float(checks.real("noise", noise, ge=0))
    H = _hessian_matrix(H)
    d = H.shape[0]
    A, B = delayed_state_space(H, lag_weights, 1.0)
    P = np.zeros_like(A)
    out = np.zeros((steps + 1, d, d))
    for t in range(steps):
        s = 1.0 if step_scale is None else float(step_scale(t))
        At, Bt = delayed_state_space(H, lag_weights, s) if step_scale is not None else (A, B)
        P = At @ P @ At.T + noise**2 * Bt @ Bt.T
        out[t + 1] = P[:d, :d]
    return out


def time_average_se(H, noise, count) -> np.ndarray:
    """Standard error of the mean of ``count`` (runs × steps) time-averaged stationary e_t, per coordinate.

    Summing the linearised recursion over N steps telescopes: e_{T} − e_{T−N} = −Σ_j β_j (H Σ_t e_{t−j} + Σ_t ξ_{t−j}),
    so the time average is ē = −H⁻¹ ξ̄ + O(1/N): its long-run covariance is noise²·H⁻¹H⁻ᵀ/N whatever
    the lag weights. With ``count`` = runs·N independent-equivalent draws the standard error is
    noise·√diag(H⁻¹H⁻ᵀ)/√count (a design quantity: no data needed).
    """
    Hinv = np.linalg.inv(_hessian_matrix(H))
    count = float(checks.real("count", count, gt=0))
    return float(checks.real("noise", noise, ge=0)) * np.sqrt(np.diag(Hinv @ Hinv.T) / count)


def _gauss_hermite(d: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss–Hermite nodes (points^d, d) and weights for E over N(0, I_d)."""
    z, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / w.sum()
    grids = np.meshgrid(*([z] * d), indexing="ij")
    wts = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0)
    return np.stack([g.ravel() for g in grids], axis=1), wts.ravel()


def _sqrtm_psd(C) -> np.ndarray:
    lam, vec = np.linalg.eigh((C + C.T) / 2)
    return vec * np.sqrt(np.maximum(lam, 0.0))


def bias_prediction(grad, x_star, lag_weights, noise, step: float = 1.0, points: int = 9,
                    max_iter: int = 100, tol: float = 1e-9) -> dict:
    """Second-order prediction of the constant-step stationary bias E[w] − w* of delayed SGD, with its error.

    **Second order** (small-noise expansion of the exact stationary condition E[∇f(w)] = 0):
        E[e] ≈ −½ H⁻¹ (T : C),   (T : C)_i = Σ_kl T_ikl C_kl,   1-D: E[e] ≈ −f'''(x*)/(2 f''(x*))·Var(w),
    H = ∇²f(x*) (:func:`jacobian_fd`), T the third-derivative tensor (:func:`third_derivative_fd`), C the
    stationary covariance of the linearised recursion (:func:`delayed_stationary_cov`). The neglected
    terms are O(σ⁴) (σ = ``noise``; for weights scaled by s: O(s²)).

    **Its error** (an estimate of the next-order term's size, not a bound): the Gaussian-closure
    solution — m solving E[∇f(x* + m + v)] = 0 with v ~ N(0, C(m)), C(m) the Lyapunov covariance of the
    recursion linearised with the statistical-linearisation Hessian H̄ = E[∇f(x* + m + v) vᵀ] C⁻¹
    (Stein), expectations by tensor Gauss–Hermite quadrature with ``points`` nodes per axis — keeps every
    order of the Gaussian part (the m mᵀ term, the shift of the curvature at the mean, the quartic
    and higher terms of ∇f) and omits only the non-Gaussian (skewness) corrections, which are of the
    same order. ``error`` = |Gaussian closure − second order| per coordinate. The closure iterates
    from the second-order value until m and C change by less than ``tol`` (at most ``max_iter`` times).

    Returns:
        dict with ``second_order`` (d,), ``gaussian`` (d,), ``error`` (d,), ``H``, ``T``, ``cov`` (the
        linearised stationary covariance at x*), ``cov_gaussian`` and ``iterations``.
    """
    x_star = np.atleast_1d(np.asarray(x_star, dtype=float))
    d = x_star.size
    points = checks.integer("points", points, minimum=2)
    if points**d > 2_000_000:
        raise ValueError(f"points**d = {points}**{d} quadrature nodes is too many; use fewer points")
    H = jacobian_fd(grad, x_star)
    H = (H + H.T) / 2
    T = third_derivative_fd(grad, x_star)
    C0 = delayed_stationary_cov(H, lag_weights, noise, step)
    second = -0.5 * np.linalg.solve(H, np.einsum("ikl,kl->i", T, C0))
    nodes, wts = _gauss_hermite(d, points)
    m, C, it = second.copy(), C0, 0
    for it in range(1, max_iter + 1):
        L = _sqrtm_psd(C)
        v = nodes @ L.T
        G = np.asarray(grad(x_star + m + v), dtype=float).reshape(len(v), d)
        if np.allclose(C, 0):
            Hbar = jacobian_fd(grad, x_star + m)
        else:
            Hbar = (G * wts[:, None]).T @ v @ np.linalg.pinv(C)
        Hbar = (Hbar + Hbar.T) / 2
        C_new = delayed_stationary_cov(Hbar, lag_weights, noise, step)
        m_new = m - np.linalg.solve(Hbar, wts @ G)
        done = np.max(np.abs(m_new - m)) < tol and np.max(np.abs(C_new - C)) < tol
        m, C = m_new, C_new
        if done:
            break
    return {"second_order": second, "gaussian": m, "error": np.abs(m - second), "H": H, "T": T, "cov": C0,
            "cov_gaussian": C, "iterations": it}


def bias_path_prediction(grad, x_star, lag_weights, noise, steps, step_scale=None) -> np.ndarray:
    """Second-order prediction of E[w_t] − w*, t = 0…steps (shape (steps + 1, d)), for time-varying steps.

    The second-order moment recursion of the delayed iteration started at rest (the deterministic
    transient from w_0 is not modelled: compare after it has died out):
        m_{t+1} = m_t − s_t Σ_j β_j (H m_{t−j} + ½ T : C_{t−j}),   m_{s≤0} = 0,
    with C_t from :func:`delayed_cov_path` and s_t = ``step_scale(t)``. With constant steps m_t tends to
    the ``second_order`` value of :func:`bias_prediction`; with decaying steps it follows the step down.
    """
    x_star = np.atleast_1d(np.asarray(x_star, dtype=float))
    beta = _weights(lag_weights)
    H = jacobian_fd(grad, x_star)
    H = (H + H.T) / 2
    T = third_derivative_fd(grad, x_star)
    covs = delayed_cov_path(H, beta, noise, steps, step_scale)
    force = 0.5 * np.einsum("ikl,tkl->ti", T, covs)        # ½ T : C_t
    d, k = x_star.size, beta.size
    m = np.zeros((steps + 1, d))
    for t in range(steps):
        s = 1.0 if step_scale is None else float(step_scale(t))
        lags = [t - j for j in range(k) if t - j >= 0]
        drift = sum(beta[t - i] * (H @ m[i] + force[i]) for i in lags)
        m[t + 1] = m[t] - s * drift
    return m


def delayed_sgd_bins(grad, w0, lag_weights, steps, edges, noise: float = 0.0, runs: int = 1, seed: int = 0,
                     step_scale=None) -> np.ndarray:
    """Per-run averages of w_t over the bins edges[i] < t ≤ edges[i+1] for :func:`delayed_sgd`.

    Same recursion and random stream as :func:`delayed_sgd` / :func:`delayed_sgd_tail` (equal
    arguments give equal iterates); ``edges`` are increasing integers in [0, steps]. Returns shape
    (runs, len(edges) − 1, d).
    """
    steps = checks.integer("steps", steps, minimum=1)
    e = np.asarray(edges)
    if e.ndim != 1 or e.size < 2 or not np.issubdtype(e.dtype, np.integer) or np.any(np.diff(e) <= 0) \
            or e[0] < 0 or e[-1] > steps:
        raise ValueError(f"edges must be >= 2 increasing integers in [0, {steps}], got {edges!r}")
    sums = None
    for t, w in enumerate(_delayed_iterates(grad, w0, lag_weights, int(e[-1]), noise, runs, seed, step_scale), 1):
        if sums is None:
            sums = np.zeros((w.shape[0], e.size - 1, w.shape[1]))
        i = np.searchsorted(e, t, side="left") - 1          # edges[i] < t <= edges[i+1]
        if 0 <= i < e.size - 1:
            sums[:, i] += w
    return sums / np.diff(e)[None, :, None]


def bias_resolution(H, noise, count, null_pass: float = 0.95, level: float = 0.95) -> tuple[float, float]:
    """The smallest tolerance on max_i |E[e_i]| that a bias-free design passes with probability ``null_pass``.

    With per-coordinate standard errors se_i = :func:`time_average_se` (H, noise, count) and the interval
    of :func:`bias_interval` (upper end max_i |m_i| + z·se_i, z the ``level`` quantile), a zero bias keeps
    every |m_i| < z'·se_i with probability ≥ ``null_pass`` for z' = z_{1 − (1 − null_pass)/2d} (Bonferroni
    over the d coordinates), so the upper end stays below (z' + z)·max_i se_i. Returns (that tolerance,
    max_i se_i): a design quantity, fixed before any data.
    """
    from scipy import stats

    se = time_average_se(H, noise, count)
    z_all = stats.norm.ppf(1 - (1 - float(null_pass)) / (2 * se.size))
    return float((z_all + stats.norm.ppf(0.5 + level / 2)) * se.max()), float(se.max())


def bias_agreement(samples, predicted, error, level: float = 0.95) -> tuple[float, float, float]:
    """max_i |m_i − p_i| / max_i |p_i| with an interval (m the mean of ``samples`` (runs, d), p ``predicted``).

    Per coordinate the gap |m_i − p_i| is widened and narrowed by the Monte Carlo half-width z·se_i plus
    the prediction's error ``error``_i (interval arithmetic); the statistic and both ends are the
    largest over coordinates, divided by max_i |p_i|. A zero bias gives exactly 1; a perfect prediction 0.
    """
    from scipy import stats

    x = np.asarray(samples, dtype=float).reshape(len(samples), -1)
    p, err = np.atleast_1d(np.asarray(predicted, float)), np.atleast_1d(np.asarray(error, float))
    m = x.mean(axis=0)
    half = stats.norm.ppf(0.5 + level / 2) * x.std(axis=0, ddof=1) / math.sqrt(x.shape[0]) + err
    gap, scale = np.abs(m - p), np.abs(p).max()
    return float(gap.max() / scale), float(np.maximum(gap - half, 0).max() / scale), float((gap + half).max() / scale)


def paired_ratio(numerator, denominator, level: float = 0.95) -> tuple[float, float, float]:
    """Ratio of means R = mean(x)/mean(y) of paired per-run values, with a delta-method interval.

    se(R) = sd(x_r − R·y_r) / (√n·|mean(y)|) (first-order expansion of the ratio; the pairing keeps any
    correlation between x_r and y_r).
    """
    from scipy import stats

    x, y = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    r = x.mean() / y.mean()
    se = np.std(x - r * y, ddof=1) / math.sqrt(x.size) / abs(y.mean())
    z = stats.norm.ppf(0.5 + level / 2)
    return float(r), float(r - z * se), float(r + z * se)


def distance_interval(value, low, high, target, error: float = 0.0) -> tuple[float, float, float]:
    """|value − target| with the interval that [low, high] (widened by ``error`` on each side) gives it.

    Lower end: the distance from ``target`` to [low, high] (0 inside) minus ``error``, at least 0;
    upper end: the farther end's distance plus ``error``.
    """
    near = max(low - target, target - high, 0.0)
    far = max(abs(low - target), abs(high - target))
    return float(abs(value - target)), float(max(near - error, 0.0)), float(far + error)


# -- Theorem 3 / Example 1: ridge regression ---------------------------------------------------
def ridge_hessian(X, eta) -> np.ndarray:
    """H = 2(XᵀX + ηI), the Hessian of f(w) = ‖Xw − y‖² + η‖w‖² (poster, Theorem 3 / Example 1)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n rows × d features), got shape {X.shape}")
    eta = checks.real("eta", eta, ge=0)
    return 2.0 * (X.T @ X + eta * np.eye(X.shape[1]))


def ridge_bounds(n, eta) -> tuple[float, float]:
    """(a, b) = (2η, 2n + 2η): Theorem 3's eigenvalue bounds for n rows with ‖x_i‖ ≤ 1.

    λ_max(XᵀX) ≤ tr(XᵀX) = Σ‖x_i‖² ≤ n; attained when all rows are the same unit vector.
    """
    n, eta = checks.integer("n", n, minimum=1), checks.real("eta", eta, ge=0)
    return 2.0 * eta, 2.0 * n + 2.0 * eta


def ridge_solution(X, y, eta) -> np.ndarray:
    """w* = (XᵀX + ηI)⁻¹ Xᵀy (poster, Example 1)."""
    X = np.asarray(X, dtype=float)
    return np.linalg.solve(X.T @ X + eta * np.eye(X.shape[1]), X.T @ np.asarray(y, dtype=float))


def ridge_grad(X, y, eta):
    """∇f(w) = 2(XᵀX + ηI)w − 2Xᵀy, as a function of w of shape (d,) or (runs, d)."""
    H = ridge_hessian(X, eta)
    xty2 = 2.0 * np.asarray(X, dtype=float).T @ np.asarray(y, dtype=float)
    return lambda w: np.asarray(w) @ H - xty2


DESIGNS = ("ball", "sphere", "gaussian", "identical", "clustered")


def random_design(n, d, rng, kind: str = "ball") -> np.ndarray:
    """n rows in R^d with ‖x_i‖ ≤ 1 (Theorem 3's assumption).

    Kinds: ``"ball"`` (uniform directions, radii uniform in [0, 1]), ``"sphere"`` (unit rows),
    ``"gaussian"`` (N(0, I) rows rescaled to the largest norm 1), ``"identical"`` (one unit vector
    repeated: the case that attains the bound), ``"clustered"`` (unit rows close to one direction:
    an adversarial, nearly tight case).
    """
    kind = checks.choice("kind", kind, DESIGNS)
    g = rng.standard_normal((n, d))
    unit = g / np.linalg.norm(g, axis=1, keepdims=True)
    if kind == "ball":
        return unit * rng.uniform(0, 1, (n, 1))
    if kind == "sphere":
        return unit
    if kind == "gaussian":
        return g / np.linalg.norm(g, axis=1).max()
    if kind == "identical":
        return np.tile(unit[:1], (n, 1))
    v = unit[:1] + 0.1 * rng.standard_normal((n, d)) / math.sqrt(d)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ridge_data(n, d, seed=0, kind: str = "ball", noise: float = 0.1):
    """A ridge problem (X, y): rows from :func:`random_design`, y = X·w° + N(0, noise²), w° ~ N(0, I)."""
    rng = np.random.default_rng(seed)
    X = random_design(n, d, rng, kind)
    return X, X @ rng.standard_normal(d) + noise * rng.standard_normal(n)


def ridge_spectra(n_values, d_values, kinds, trials, eta, seed=0):
    """Extreme eigenvalues of H = 2(XᵀX + ηI) over random X (Theorem 3's bound check).

    One row per random X: ``n``, ``d``, ``kind``, ``lam_min``, ``lam_max``, the bounds ``lo`` = 2η
    and ``hi`` = 2n + 2η, and ``ratio`` = lam_max / hi (1 = the bound is tight).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for n in n_values:
        lo, hi = ridge_bounds(int(n), eta)
        for d in d_values:
            for kind in kinds:
                for _ in range(int(trials)):
                    lam = np.linalg.eigvalsh(ridge_hessian(random_design(int(n), int(d), rng, kind), eta))
                    rows.append({"n": int(n), "d": int(d), "kind": kind, "lam_min": lam[0], "lam_max": lam[-1],
                                 "lo": lo, "hi": hi, "ratio": lam[-1] / hi})
    return pd.DataFrame(rows)


# -- paper 1: ergodic rate --------------------------------------------------------------------
def monte_carlo_mean(paths):
    """Mean, standard deviation and standard error over runs (axis 0) of ``paths``.

    For Theorem 4: with a linear gradient (quadratic / ridge) E[w_t] follows the noiseless
    recursion exactly, so (mean − noiseless)/se should look like N(0, 1) entries.
    """
    p = np.asarray(paths, dtype=float)
    mean, std = p.mean(axis=0), p.std(axis=0, ddof=1)
    return mean, std, std / math.sqrt(p.shape[0])


def ergodic_mean(values) -> np.ndarray:
    """Running ergodic mean (1/T) Σ_{t<T} v_t for T = 1, 2, … (paper 1's convergence measure)."""
    v = np.asarray(values, dtype=float)
    return np.cumsum(v, axis=-1) / np.arange(1, v.shape[-1] + 1)


def loglog_slope(T, values, n_boot: int = 2000, level: float = 0.95, seed: int = 0):
    """Least-squares slope of log(values) against log(T), with a bootstrap interval.

    Args:
        T: horizons, shape (m,).
        values: shape (m,) (one run per horizon: residual bootstrap) or (m, s) (s seeds per
            horizon: the seeds are resampled within each horizon and the fit uses the log of the
            mean over seeds).
        n_boot: bootstrap replicates; level: interval coverage; seed: the bootstrap's rng.

    Returns:
        (slope, low, high).
    """
    x = np.log(np.asarray(T, dtype=float))
    v = np.asarray(values, dtype=float)
    if v.shape[0] != x.size or x.size < 3:
        raise ValueError(f"values must have one row per horizon (>= 3 horizons), got shapes {x.shape} and {v.shape}")
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("values must be finite and > 0 for a log-log fit")
    rng = np.random.default_rng(seed)
    xc = x - x.mean()

    def fit(y):
        return (xc * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / (xc**2).sum()

    if v.ndim == 1:
        y = np.log(v)
        slope = fit(y)
        resid = y - (y.mean() + slope * xc)
        boot = fit(y.mean() + slope * xc + rng.choice(resid, (n_boot, x.size)))
    else:
        slope = fit(np.log(v.mean(axis=1)))
        pick = rng.integers(0, v.shape[1], (n_boot, x.size, v.shape[1]))
        means = np.take_along_axis(np.broadcast_to(v, (n_boot,) + v.shape), pick, axis=2).mean(axis=2)
        boot = fit(np.log(means))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(slope), float(lo), float(hi)


# -- Tyurin & Richtárik 2023: optimal time under the fixed computation model --------------------
#: Relative tolerance under which two values of t(m) count as a tie (resolved to the smaller m):
#: the running sum Σ 1/τ_i is rounded, so exact ties (equal τ_i with σ² = 0) differ in the last bits.
_TIE_RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class OptimalTime:
    """Result of :func:`optimal_time`.

    Attributes:
        time: T*(ε) = min_m t(m), in the unit of the worker times τ_i (seconds).
        m: the minimising m (number of fastest workers used), the smallest one in ties.
        times: the curve t(m) for m = 1..n (read-only array, shape (n,)); ``times[m - 1] == time``.
    """

    time: float
    m: int
    times: np.ndarray


def _worker_times(times) -> np.ndarray:
    """``times`` as a sorted float array if it is a non-empty 1-D sequence of finite numbers > 0."""
    allowed = "a non-empty 1-D sequence of finite numbers > 0 (seconds per stochastic gradient)"
    if isinstance(times, (str, bytes)):
        raise TypeError(f"times must be {allowed}, got {times!r}")
    arr = np.asarray(times)
    if arr.ndim == 0 or arr.dtype.kind not in "iuf":
        shown = repr(times) if arr.ndim == 0 else f"an array of dtype {arr.dtype}"
        raise TypeError(f"times must be {allowed}, got {shown}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"times must be {allowed}, got shape {arr.shape}")
    arr = arr.astype(float)
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        raise ValueError(f"times must be {allowed}, got {float(arr[bad[0]])!r} at index {int(bad[0])}")
    return np.sort(arr)


def optimal_time(times, L, delta, sigma2, eps) -> OptimalTime:
    """Optimal time T*(ε) to reach E‖∇f(x)‖² ≤ ε with n workers of fixed speeds (Rennala SGD's time).

    Tyurin & Richtárik, "Optimal time complexities of parallel stochastic optimization methods under
    a fixed computation model" (NeurIPS 2023): worker i needs τ_i seconds per stochastic gradient;
    with τ sorted ascending (τ_1 ≤ … ≤ τ_n), their lower bound for L-smooth f with Δ = f(x0) − f*
    and gradient variance σ², attained by Rennala SGD, is

        T*(ε) = min_{m = 1..n} t(m),
        t(m) = ((1/m) Σ_{i≤m} 1/τ_i)^(−1) · (L·Δ/ε + σ²·L·Δ/(m·ε²))

    (computed as (m·LΔ/ε + σ²LΔ/ε²) / Σ_{i≤m} 1/τ_i). The theorem holds *up to a universal
    constant*; stalenb uses the constant 1, so ratios to T* are comparable across policies and n,
    not absolute. With σ² = 0 the fastest worker alone is optimal (m = 1, T* = τ_1·LΔ/ε); with
    equal τ_i and σ² > 0, t(m) decreases and m = n.

    Args:
        times: τ_1..τ_n, seconds per stochastic gradient of each worker (any order; sorted here).
        L: smoothness constant (> 0). delta: Δ = f(x0) − f* (> 0).
        sigma2: σ², variance of one stochastic gradient (>= 0). eps: the target ε for E‖∇f‖² (> 0).

    Returns:
        :class:`OptimalTime` ``(time, m, times)``: T*, the minimising m (the smallest within a relative
        1e-9 of the minimum, i.e. in ties) and the curve t(m), m = 1..n.

    Example (τ = (4, 1, 1), L = Δ = σ² = 1, ε = 0.5: LΔ/ε = 2, σ²LΔ/ε² = 4; sorted τ = (1, 1, 4);
    t(1) = 1·(2 + 4) = 6, t(2) = 1·(2 + 2) = 4, t(3) = (3/2.25)·(2 + 4/3) = 40/9 ≈ 4.444, so m = 2):
        >>> r = optimal_time([4.0, 1.0, 1.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.5)
        >>> r.time, r.m
        (4.0, 2)
        >>> [round(float(t), 4) for t in r.times]
        [6.0, 4.0, 4.4444]
    """
    tau = _worker_times(times)
    L = float(checks.real("L", L, gt=0))
    delta = float(checks.real("delta", delta, gt=0))
    sigma2 = float(checks.real("sigma2", sigma2, ge=0))
    eps = float(checks.real("eps", eps, gt=0))
    m = np.arange(1, tau.size + 1, dtype=float)
    curve = (m * (L * delta / eps) + sigma2 * L * delta / eps**2) / np.cumsum(1.0 / tau)
    best = int(np.flatnonzero(curve <= curve.min() * (1 + _TIE_RTOL))[0])
    curve.setflags(write=False)
    return OptimalTime(time=float(curve[best]), m=best + 1, times=curve)


def time_ratio(time_to_eps, times, L, delta, sigma2, eps) -> float:
    """A run's time to reach E‖∇f‖² ≤ ε as a multiple of the optimal time T*(ε): time_to_eps / T*(ε).

    For any run on a problem with known L, Δ = f(x0) − f* and σ² (variance of one stochastic
    gradient), with worker i taking τ_i seconds per stochastic gradient: T*(ε) is
    :func:`optimal_time` (Tyurin & Richtárik, NeurIPS 2023; min_m ((1/m) Σ_{i≤m} 1/τ_i)^(−1) ·
    (LΔ/ε + σ²LΔ/(mε²)), up to a universal constant taken as 1 — so ratios compare runs, policies and
    n with each other, they are not absolute). A run that never reached ε (``time_to_eps`` ``None``
    or ``inf``) has ratio ``inf``.

    Args:
        time_to_eps: the run's time (same unit as ``times``) to reach E‖∇f‖² ≤ ε, >= 0; ``None`` or
            ``inf`` if never reached.
        times, L, delta, sigma2, eps: as in :func:`optimal_time`.

    Example (τ = (1, 1, 4), L = Δ = σ² = 1, ε = 0.5: T* = t(2) = 4, see :func:`optimal_time`;
    a run that took 10 s is 10/4 = 2.5 times the optimum):
        >>> time_ratio(10.0, [1.0, 1.0, 4.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.5)
        2.5
        >>> time_ratio(None, [1.0, 1.0, 4.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.5)
        inf
    """
    if time_to_eps is not None:
        time_to_eps = float(checks.real("time_to_eps", time_to_eps, ge=0, finite=False,
                                        note="inf or None: never reached"))
    best = optimal_time(times, L, delta, sigma2, eps).time
    return math.inf if time_to_eps is None or math.isinf(time_to_eps) else time_to_eps / best
