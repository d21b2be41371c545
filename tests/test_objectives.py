"""stalenb.objectives: the smooth non-convex test problem of notebook 04."""

import pytest
import torch

from stalenb.sim.objectives import NonconvexLogistic


@pytest.fixture(scope="module")
def problem():
    return NonconvexLogistic(n=200, d=10, lam=0.1, seed=3)


def _f(p, x):
    return torch.nn.functional.softplus(-p.y * (p.A @ x)).mean() + p.lam * (x**2 / (1 + x**2)).sum()


def test_exact_gradient_matches_autograd(problem):
    x = problem.x0.clone().requires_grad_()
    _f(problem, x).backward()
    torch.testing.assert_close(problem.full_grad(problem.x0), x.grad)
    assert problem.grad_norm2(problem.x0) == pytest.approx(float(x.grad.square().sum()))
    loss, g = problem.loss_grad(problem.x0, torch.arange(problem.n_train))
    assert loss == pytest.approx(problem.value(problem.x0))
    torch.testing.assert_close(g, x.grad)


def test_minibatch_gradient_is_unbiased(problem):
    idx = torch.arange(problem.n_train).reshape(20, 10)
    mean = torch.stack([problem.loss_grad(problem.x0, i)[1] for i in idx]).mean(0)
    torch.testing.assert_close(mean, problem.full_grad(problem.x0))


def test_objective_is_nonconvex_and_smoothness_bound_holds():
    p = NonconvexLogistic(n=100, d=5, lam=1.0, seed=0)
    hess = lambda x: torch.linalg.eigvalsh(torch.autograd.functional.hessian(lambda z: _f(p, z), x))  # noqa: E731
    assert float(hess(torch.full((5,), 1.5, dtype=torch.float64))[0]) < 0  # negative curvature
    L = p.smoothness()
    for s in range(5):
        x = torch.randn(5, generator=torch.Generator().manual_seed(s), dtype=torch.float64) * 2
        assert float(hess(x).abs().max()) <= L + 1e-9


def test_bad_objective_input():
    with pytest.raises(ValueError, match="lam"):
        NonconvexLogistic(lam=-1.0)
    with pytest.raises(ValueError, match="d"):
        NonconvexLogistic(d=0)


def test_hessian_matches_autograd_and_feature_std_scales_the_data():
    import torch

    p = NonconvexLogistic(n=50, d=4, lam=0.3, seed=1, x0_scale=2.0)
    x = torch.tensor([0.1, -1.2, 2.0, 0.7], dtype=torch.float64)
    ref = torch.autograd.functional.hessian(lambda z: torch.tensor(0.0, dtype=torch.float64)
                                            + torch.nn.functional.softplus(-p.y * (p.A @ z)).mean()
                                            + p.lam * (z * z / (1 + z * z)).sum(), x)
    assert torch.allclose(p.hessian(x), ref, atol=1e-12)
    assert p.lambda_min(x) == pytest.approx(float(torch.linalg.eigvalsh(ref)[0]))
    q = NonconvexLogistic(n=50, d=4, lam=0.3, seed=1, x0_scale=2.0, feature_std=0.5)
    assert torch.allclose(q.A, 0.5 * p.A)  # same draws, scaled
    assert "feature_std" in q.spec and "feature_std" not in p.spec
