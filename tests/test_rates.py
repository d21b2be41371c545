"""stalenb.rates: paper 1's rate experiment (ergodic ‖∇f‖² of async sparsified SGD vs the horizon)."""

import math

import numpy as np
import pytest

from stalenb import rates
from stalenb.sim.data import BatchStream
from stalenb.sim.objectives import NonconvexLogistic


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
    stream, x, ref = BatchStream(problem.n_train, 0), problem.x0.clone(), []
    for _ in range(T):
        ref.append(problem.grad_norm2(x))
        x = x - lr * problem.loss_grad(x, stream.next(bs))[1]
    ref.append(problem.grad_norm2(x))
    np.testing.assert_allclose(seq, ref, rtol=1e-12)
    assert erg == pytest.approx(np.mean(ref[:T]))


def test_rate_sweep_and_table_shapes(problem):
    cases = [rates.CASES[0], rates.CASES[5]]
    df = rates.rate_sweep(problem, 0.5, [20, 40, 80], [0, 4], cases, progress=False)
    assert len(df) == 2 * 2 * 3 and set(df.columns) >= {"case", "tau_max", "T", "ergodic", "lr"}
    assert np.allclose(df.lr, 0.5 / np.sqrt(df["T"]))
    tab = rates.rate_table(df, n_boot=200)
    assert len(tab) == 4 and tab.slope.notna().all() and (tab.low <= tab.slope).all() and (tab.slope <= tab.high).all()


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
