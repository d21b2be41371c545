"""A smooth non-convex finite-sum objective with cheap exact gradients (for paper 1's rate).

Paper 1 (Candela et al. 2019, ``docs/research.md`` §1) bounds the ergodic mean
(1/T) Σ_t E‖∇f(x_t)‖² = O(1/√T) for asynchronous sparsified SGD on a smooth non-convex finite sum
f(x) = (1/n) Σ_i f(x, i). Checking that rate needs ‖∇f(x_t)‖² *exactly* at every step, which is
too expensive for a network on MNIST, so stalenb uses a standard non-convex test problem:
**logistic regression with a non-convex regulariser** (e.g. Reddi et al. 2016, "Stochastic variance
reduction for nonconvex optimization"; Nguyen et al. 2017, SARAH):

    f(x) = (1/n) Σ_i log(1 + exp(−y_i a_iᵀx)) + λ Σ_j x_j² / (1 + x_j²),

with labels y_i ∈ {−1, +1}. Each term is smooth (L ≤ max‖a_i‖²/4 + 2λ); the regulariser makes f
non-convex. The data are synthetic: a_i ~ N(0, s²·I_d) with s = ``feature_std`` (default 1, so
‖a_i‖ ≈ √d; s = 1/√d gives ‖a_i‖ ≈ 1), y_i = sign(a_iᵀx° + noise) for a random planted x°. Exact gradients cost one n×d mat-vec.
"""

from __future__ import annotations

import math

import torch

from .gradients import Problem


class NonconvexLogistic(Problem):
    """f(x) = mean logistic loss + λ Σ x_j²/(1 + x_j²) on synthetic data; a stalenb problem.

    Data: features a_i ~ N(0, feature_std²·I_d); a planted x° of norm ``scale``; labels
    y_i = sign(a_iᵀx° + N(0, label_noise²)); start x_0 ~ N(0, x0_scale²·I_d). With the defaults
    (n = 1000, d = 100, λ = 0.1) f is L-smooth with L ≈ 0.6 (:meth:`smoothness`) and non-convex
    (the regulariser's curvature 2λ(1 − 3x²)/(1 + x²)³ is negative for |x_j| > 1/√3).

    Args:
        n: number of samples (the finite sum).
        d: dimension.
        lam: regulariser weight λ (> 0 makes f non-convex).
        label_noise: standard deviation of the noise added before taking the sign.
        scale: norm of the planted x°.
        seed: seeds the data and x_0.
        x0_scale: standard deviation of the entries of x_0.
        feature_std: standard deviation s of the feature entries (default 1: a_i ~ N(0, I_d)).

    ``loss_grad(x, idx)`` is the mini-batch loss and gradient over samples ``idx``;
    :meth:`full_grad` the exact ∇f(x); ``evaluate`` reports f(x) as ``train_loss`` / ``test_loss``
    and the training accuracy of sign(a_iᵀx) as ``test_acc``.
    """

    def __init__(self, n=1000, d=100, lam=0.1, label_noise=0.5, scale=1.0, seed=0, x0_scale=0.3,
                 feature_std=1.0):
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not (isinstance(d, int) and d >= 1):
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        #: constructor arguments: they determine the problem, so they key cached runs on it
        self.spec = {"kind": type(self).__name__, "n": n, "d": d, "lam": lam, "label_noise": label_noise,
                     "scale": scale, "seed": seed, "x0_scale": x0_scale}
        if feature_std != 1.0:  # keeps the spec (and cached runs) of the default problem unchanged
            self.spec["feature_std"] = float(feature_std)
        gen = torch.Generator().manual_seed(int(seed))
        self.A = float(feature_std) * torch.randn(n, d, generator=gen, dtype=torch.float64)
        self.At = self.A.T.contiguous()
        planted = torch.randn(d, generator=gen, dtype=torch.float64)
        planted = scale * planted / planted.norm()
        z = self.A @ planted + label_noise * torch.randn(n, generator=gen, dtype=torch.float64)
        self.y = torch.where(z >= 0, 1.0, -1.0).to(torch.float64)
        self.lam = float(lam)
        self.x0 = x0_scale * torch.randn(d, generator=gen, dtype=torch.float64)
        self.n_train = int(n)
        self.layer_sizes = (int(d),)

    def _reg_grad(self, x):
        return (2 * self.lam) * x / (1 + x * x) ** 2

    def loss_grad(self, x, idx):
        A, y = self.A[idx], self.y[idx]
        m = y * (A @ x)
        loss = torch.nn.functional.softplus(-m).mean() + self.lam * (x * x / (1 + x * x)).sum()
        g = A.T @ (-y * torch.sigmoid(-m)) / len(y) + self._reg_grad(x)
        return float(loss), g

    def full_grad(self, x) -> torch.Tensor:
        """The exact ∇f(x) over all n samples."""
        m = torch.mv(self.A, x).mul_(self.y)
        return torch.mv(self.At, torch.sigmoid(m.neg_()).mul_(self.y)).div_(-self.n_train).add_(self._reg_grad(x))

    def grad_norm2(self, x) -> float:
        """‖∇f(x)‖², the quantity paper 1's ergodic rate averages."""
        return float(self.full_grad(x).square().sum())

    def value(self, x) -> float:
        """f(x) over all n samples."""
        m = self.y * (self.A @ x)
        return float(torch.nn.functional.softplus(-m).mean() + self.lam * (x * x / (1 + x * x)).sum())

    def hessian(self, x) -> torch.Tensor:
        """The exact Hessian AᵀDA/n + diag(2λ(1 − 3x_j²)/(1 + x_j²)³), D = diag(σ(m_i)(1 − σ(m_i)))."""
        m = self.y * (self.A @ x)
        s = torch.sigmoid(m)
        reg = 2 * self.lam * (1 - 3 * x * x) / (1 + x * x) ** 3
        return (self.At * (s * (1 - s))) @ self.A / self.n_train + torch.diag(reg)

    def lambda_min(self, x) -> float:
        """The smallest eigenvalue of :meth:`hessian` at x (negative: f is non-convex there)."""
        return float(torch.linalg.eigvalsh(self.hessian(x))[0])

    def smoothness(self) -> float:
        """An upper bound on L: λ_max(AᵀA)/(4n) + 2λ (the regulariser's curvature is ≤ 2λ)."""
        return float(torch.linalg.eigvalsh(self.A.T @ self.A)[-1]) / (4 * self.n_train) + 2 * self.lam

    @torch.no_grad()
    def evaluate(self, x) -> dict:
        f = self.value(x)
        acc = float(((self.A @ x) * self.y > 0).double().mean())
        return {"train_loss": f, "test_loss": f, "test_acc": acc}
