"""stalenb.rates: paper 1's rate experiment (ergodic ‖∇f‖² of async sparsified SGD vs the horizon)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from stalenb import rates
from stalenb.sim.data import BatchStream
from stalenb.sim.objectives import NonconvexLogistic
from stalenb.theory import loglog_slope


@pytest.fixture(scope="module")
def problem():
    return NonconvexLogistic(n=200, d=10, lam=0.1, seed=3)


def test_horizons():
    T = rates.horizons(100, 10000, 6)
    assert T[0] == 100 and T[-1] == 10000 and len(T) == 6 and np.all(np.diff(T) > 0)
    with pytest.raises(ValueError):
        rates.horizons(10, 12, 6)


def test_ergodic_grad_norm_matches_a_plain_sgd_loop(problem):
    # no staleness, no compression, one worker: x_{t+1} = x_t - α g(x_t; batch_t) with the run's batches
    T, lr, bs = 25, 0.3, 4
    cfg = rates.base_config(1.0, bs, 1).replace(lr=lr, steps=T, eval_every=T)
    erg, seq = rates.ergodic_grad_norm(problem, cfg, cache=False)
    stream, x, ref, iterates = BatchStream(problem.n_train, 0), problem.x0.clone(), [], []
    for _ in range(T):
        iterates.append(x)
        ref.append(problem.grad_norm2(x))
        x = x - lr * problem.loss_grad(x, stream.next(bs))[1]
    iterates.append(x)
    ref.append(problem.grad_norm2(x))
    np.testing.assert_allclose(seq, ref, rtol=1e-12)
    assert erg == pytest.approx(np.mean(ref[:T]))
    # the Hessian checks of the last half: at x_t, t = 15, 17, …, 25 (late_checks(25, 6))
    out = rates.rate_run(problem, cfg, cache=False, path_points=6)
    assert out["path"].t.tolist() == [15, 17, 19, 21, 23, 25] and out["staleness_max"] == 0
    for t, lo, hi in out["path"].itertuples(index=False):
        ev = np.linalg.eigvalsh(problem.hessian(iterates[t]).numpy())
        assert lo == pytest.approx(ev[0], abs=1e-12) and hi == pytest.approx(ev[-1], abs=1e-12)


def test_grad_norms_batched_equal_the_problems_own():
    class Plain(NonconvexLogistic):   # a subclass takes the row-by-row path: the two must agree
        pass

    fast, plain = NonconvexLogistic(n=50, d=4, lam=0.5, seed=2), Plain(n=50, d=4, lam=0.5, seed=2)
    X = 3 * torch.randn(4100, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # > one chunk
    want = [fast.grad_norm2(x) for x in X]
    np.testing.assert_allclose(rates._grad_norm2_many(fast, X), want, rtol=1e-10)
    np.testing.assert_allclose(rates._grad_norm2_many(plain, X[:5]), want[:5], rtol=0)


def test_step_condition_and_min_horizon_by_hand():
    # α·L·(τ+1) = 1·0.5·4/√T = 2/√T
    np.testing.assert_allclose(rates.step_condition(1.0, 0.5, 3, [4, 16, 64]), [1.0, 0.5, 0.25])
    assert rates.min_horizon(1.0, 0.5, 3) == 4               # 2/√T ≤ 1 ⇔ T ≥ 4 (equality counts)
    assert rates.min_horizon(0.5, 1.0, 0) == 1               # 0.5/√1 ≤ 1 already
    # notebook 04's numbers: c = 1, L = 0.885, τ = 32 → (0.885·33)² = 852.9: T ≥ 853
    assert rates.min_horizon(1.0, 0.885, 32) == 853
    assert rates.step_condition(1.0, 0.885, 32, 852) > 1 >= rates.step_condition(1.0, 0.885, 32, 853)
    with pytest.raises(ValueError):
        rates.step_condition(1.0, -1.0, 3, 10)


def test_matched_horizon_and_late_checks_by_hand():
    assert rates.matched_horizon(1000, 0.1) == pytest.approx(1e5)   # 0.1·c·√1e5 = c·√1000
    assert rates.matched_horizon(50, 0.5) == pytest.approx(200)
    assert rates.late_checks(100, 5).tolist() == [60, 70, 80, 90, 100]
    assert rates.late_checks(10, 20).tolist() == [6, 7, 8, 9, 10]       # only the integers in (5, 10]
    with pytest.raises(ValueError):
        rates.late_checks(10, 0)


def test_slope_difference_is_paired_by_seed():
    T = np.array([1000, 3162, 10000, 31623])
    noise = np.exp(0.3 * np.random.default_rng(1).standard_normal((4, 5)))   # shared by the two arms, per seed
    a, b = 2 * T[:, None] ** -0.5 * noise, 3 * T[:, None] ** -0.2 * noise
    d, lo, hi = rates.slope_difference(T, a, b, n_boot=500)
    # log mean(a) − log mean(b) = log(2/3) − 0.3 log T for every resample of the seeds: exactly −0.3
    assert d == pytest.approx(-0.3, abs=1e-12) and lo == pytest.approx(-0.3, abs=1e-12)
    assert hi == pytest.approx(-0.3, abs=1e-12)
    # the point estimate is the difference of stalenb.theory.loglog_slope's slopes (an independent fit)
    other = 3 * T[:, None] ** -0.2 * np.exp(0.3 * np.random.default_rng(2).standard_normal((4, 5)))
    d2, lo2, hi2 = rates.slope_difference(T, a, other, n_boot=500)
    assert d2 == pytest.approx(loglog_slope(T, a)[0] - loglog_slope(T, other)[0], abs=1e-12) and lo2 < d2 < hi2
    assert all(math.isnan(v) for v in rates.slope_difference(T[:2], a[:2], b[:2]))
    with pytest.raises(ValueError):
        rates.slope_difference(T, a, b[:, :3])


def test_rate_table_fits_only_the_given_horizons():
    # ergodic = 5/T below T = 1000 (a transient), 0.2/√T from there: over {1000, 3162, 10000} the slope is −1/2
    T = np.array([100, 316, 1000, 3162, 10000])
    erg = np.where(T < 1000, 5.0 / T, 0.2 / np.sqrt(T))
    df = pd.DataFrame({"case": "x", "error_feedback": False, "tau_max": 4, "T": np.repeat(T, 2), "seed": [0, 1] * 5,
                       "ergodic": np.repeat(erg, 2)})
    fit = rates.rate_table(df, n_boot=200, T_fit=[1000, 3162, 10000]).iloc[0]
    assert fit.n_T == 3 and fit.slope == pytest.approx(-0.5) and fit.low == pytest.approx(-0.5)
    assert fit.final == pytest.approx(0.2 / 100)
    assert rates.rate_table(df, n_boot=200).slope.iloc[0] < -0.6                       # the transient steepens it
    assert math.isnan(rates.rate_table(df, n_boot=200, T_fit=[3162, 10000]).slope.iloc[0])  # < 3 horizons
    ctl = df.assign(case="ctl", ergodic=np.repeat(0.1 * T ** -0.3, 2))
    d = rates.case_slope_difference(pd.concat([df, ctl]), "x", "ctl", 4, T_fit=[1000, 3162, 10000], n_boot=200)
    assert d == pytest.approx((-0.2, -0.2, -0.2))


def test_rate_sweep_and_table_shapes(problem):
    cases = [rates.CASES[0], rates.CASES[5], ("dense, step 0.1c", "none", 1.0, False, 0.1)]
    df = rates.rate_sweep(problem, 0.5, [20, 40, 80], [0, 4], cases, progress=False)
    assert len(df) == 3 * 2 * 3 and set(df.columns) >= {"case", "tau_max", "T", "ergodic", "lr", "late_negative"}
    assert np.allclose(df.lr, df.step_factor * 0.5 / np.sqrt(df["T"]))
    assert set(df.step_factor) == {1.0, 0.1} and (df.staleness_max <= df.tau_max).all()
    assert (df.late_lambda_min_low <= df.late_lambda_min_high).all() and df.late_lambda_max.notna().all()
    df = df[df.step_factor == 1.0]
    tab = rates.rate_table(df, n_boot=200)
    assert len(tab) == 4 and (tab.n_T == 3).all() and tab.slope.notna().all() and (tab.low <= tab.slope).all() and (tab.slope <= tab.high).all()


def test_dense_rate_slope_is_about_minus_half():
    p = NonconvexLogistic(n=300, d=20, seed=1)
    df = rates.rate_sweep(p, 1.0, rates.horizons(100, 1000, 4), [0], [rates.CASES[0]], progress=False)
    slope = rates.rate_table(df, n_boot=200).slope.iloc[0]
    assert -0.8 < slope < -0.35 and math.isfinite(slope)


def test_ergodic_grad_norm_is_cached_by_config_and_problem(problem, tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    cfg = rates.base_config(1.0, 4, 1).replace(lr=0.2, steps=15, eval_every=15)
    first = rates.ergodic_grad_norm(problem, cfg)
    assert len(list(tmp_path.glob("run-*.npz"))) == 1
    again = rates.ergodic_grad_norm(problem, cfg)
    assert again[0] == first[0] and np.array_equal(again[1], first[1])
    # another problem (other constructor arguments) is another entry, not a false hit
    other = rates.ergodic_grad_norm(NonconvexLogistic(n=200, d=10, lam=0.2, seed=3), cfg)
    assert len(list(tmp_path.glob("run-*.npz"))) == 2 and other[0] != first[0]


def test_pre_asymptotic_rule_by_hand():
    assert rates.pre_asymptotic(2, -0.6, -0.4) == "horizons"                      # too few in-regime horizons
    assert rates.pre_asymptotic(2, -0.6, -0.4, control_high=-0.6) == "horizons"
    assert rates.pre_asymptotic(4, -0.28, -0.4, control_high=-0.29) == "control"   # both above: no power
    assert rates.pre_asymptotic(4, -0.38, -0.4, control_high=-0.39) == "control"   # both straddle or above
    assert rates.pre_asymptotic(4, -0.28, -0.4, control_high=-0.45) is None        # control shows it: evidence
    assert rates.pre_asymptotic(4, -0.45, -0.4, control_high=-0.29) is None        # wholly below: evidence
    assert rates.pre_asymptotic(4, -0.28, -0.4) is None                            # no control (EF case)
    assert rates.pre_asymptotic(3, -0.4, -0.4, control_high=-0.4) == "control"     # touching is not below
