# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Ridge regression and the high-dimensional theorems
#
# **Source:** the CS744 poster (`docs/research.md` §2): **Definition 2 / Theorem 2** (generalized
# curvature in d dimensions: ∇f(x) = H(x)(x − x\*) with the eigenvalues of H in [a, b]) and
# **Theorem 3 / Example 1** (ridge regression f(w) = ‖Xw − y‖² + η‖w‖², H = 2(XᵀX + ηI); with rows
# ‖x_i‖ ≤ 1 every eigenvalue lies in [2η, 2n + 2η]).
#
# Recorded in the claims ledger (`stalenb.claims`): Theorem 2 on ridge is a **claim** of the poster
# (delayed GD converges); the eigenvalue bounds of Theorem 3 are elementary linear algebra
# (λ_max(XᵀX) ≤ tr(XᵀX) ≤ n), so their records are exact **checks** — they cannot fail unless the code is wrong:
#
# 1. over thousands of random designs X (several n, d, four row distributions, all rows ‖x_i‖ ≤ 1)
#    every eigenvalue of H lies in [2η, 2n + 2η];
# 2. the bounds are attained (to 1e-9) when all rows are the same unit vector (tightness); for typical
#    data the upper bound is loose (histogram of λ_max / (2n + 2η), reported, not a claim of the source);
# 3. delayed GD on ridge with lag weights chosen from a = 2η, b = 2n + 2η converges to the closed form
#    w\* = (XᵀX + ηI)⁻¹Xᵀy (to 1e-6), obeying the d-dimensional contraction bound; taking b from the
#    true λ_max converges faster.

# %% tags=["parameters"]
n_values = [2, 5, 20, 100]   # numbers of rows n of the random designs
d_values = [1, 3, 10, 50]    # dimensions d
kinds = ["ball", "sphere", "gaussian", "clustered"]  # row distributions (stalenb.theory.random_design)
eta = 0.1                    # ridge penalty η
trials = 100                 # random X per (n, d, kind)
n_gd = 20                    # rows of the ridge problem solved by delayed GD
d_gd = 10                    # its dimension
k_gd = 4                     # lag window k of delayed GD
steps = 4000                 # delayed-GD updates
tol = 1e-6                   # ‖w_t − w*‖ below this counts as converged
seed = 0                     # seeds the designs and the ridge problem
rel_tol = 1e-9               # float round-off allowed on exact eigenvalue checks (eigvalsh errors are ~1e-14 relative)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

import stalenb as sn
from stalenb import claims
from stalenb import theory as th

sn.plotting.set_style()
trials = sn.paths.pick(trials, 16)   # quick: 4·4·4·16 = 1024 designs
ledger = claims.Ledger("02", source="CS744 poster, Definition 2, Theorems 2 and 3, Example 1 "
                       "(docs/seeds/benefits-of-staleness-poster.md; docs/research.md §2)")

# %% [markdown]
# ## Theorem 3: the spectrum of the ridge Hessian
#
# `stalenb.theory.ridge_spectra` draws `trials` designs for every (n, d, row distribution) and records
# the extreme eigenvalues of H = 2(XᵀX + ηI). Row distributions: uniform in the unit ball, on the unit
# sphere, Gaussian rescaled to max norm 1, and "clustered" unit rows close to one direction (an
# adversarial, nearly tight case). The bound follows from λ_max(XᵀX) ≤ tr(XᵀX) = Σ‖x_i‖² ≤ n.

# %%
spectra = th.ridge_spectra(n_values, d_values, kinds, trials, eta, seed)
inside = (spectra.lam_min >= spectra.lo - 1e-12) & (spectra.lam_max <= spectra.hi + 1e-9)
print(f"{len(spectra)} random designs, all eigenvalues inside [2η, 2n + 2η]: {inside.all()}")
spectra.groupby("kind").ratio.describe()[["mean", "50%", "max"]].rename(columns={"50%": "median"})

# %%
fig, ax = plt.subplots()
sns.histplot(spectra, x="ratio", hue="kind", bins=40, element="step", stat="density", common_norm=False, ax=ax)
ax.axvline(1.0, color="k", ls="--", lw=1)
ax.set(xlabel=r"$\lambda_{\max}(H)\,/\,(2n + 2\eta)$ (dashed: the bound)",
       title="how tight is Theorem 3's upper bound?")
sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, title="rows $x_i$ drawn")
sn.plotting.save_figure(fig, "02_looseness");

# %% [markdown]
# **Tightness.** With all n rows equal to one unit vector v, XᵀX = n·vvᵀ has eigenvalue n (along v)
# and 0 (d − 1 times), so H has eigenvalues exactly 2n + 2η and 2η: both bounds are attained.

# %%
rng = np.random.default_rng(seed)
tight = pd.DataFrame([{"n": n, "d": d, **dict(zip(["λ_min", "λ_max"], np.linalg.eigvalsh(
                           th.ridge_hessian(th.random_design(n, d, rng, "identical"), eta))[[0, -1]])),
                       "2η": th.ridge_bounds(n, eta)[0], "2n + 2η": th.ridge_bounds(n, eta)[1]}
                      for n in n_values for d in d_values])
tight["gap to 2n + 2η"] = (tight["λ_max"] - tight["2n + 2η"]).abs()
tight.head(8)


# %% [markdown]
# ## Theorem 2 on ridge: delayed GD with weights chosen from [a, b]
#
# Ridge has a constant H, so Definition 2 holds with [a, b] = the bounds of Theorem 3. We run delayed
# GD with β_0 = 1/b and the stale weights at the limit Σ_{j≥1}β_j = (a/2b)β_0, once with the
# *theoretical* b = 2n + 2η and once with b = the *true* λ_max (a = 2η both times). In d dimensions the
# same proof gives ‖e_{t+1}‖ ≤ (1 − β_0 a/2)·max_{j<k}‖e_{t−j}‖ (H symmetric, so ‖I − β_0H‖ ≤ 1 − β_0a).

# %%
def ridge_runs(n, d, eta, k, steps, seed=seed):
    X, y = th.ridge_data(n, d, seed)
    w_star, grad = th.ridge_solution(X, y, eta), th.ridge_grad(X, y, eta)
    a, b_bound = th.ridge_bounds(n, eta)
    b_true = np.linalg.eigvalsh(th.ridge_hessian(X, eta))[-1]
    out = {}
    for label, b in {"b = 2n + 2η (Theorem 3)": b_bound, "b = true λ_max": b_true}.items():
        beta = th.lag_weights_from(a, b, k)
        err = np.linalg.norm(th.delayed_gd(grad, np.zeros(d), beta, steps) - w_star, axis=1)
        out[label] = {"a": a, "b": b, "beta": beta, "err": err,
                      "bound": th.contraction_bound(err, beta[0], a, k), "converged at": th.converged_step(err, tol)}
    return out


# %%
gd = ridge_runs(n_gd, d_gd, eta, k_gd, steps)
steps_bound, steps_true = (r["converged at"] for r in gd.values())
speedup = steps_bound / steps_true if steps_bound and steps_true else float("nan")
pd.DataFrame({lbl: {"b": r["b"], "β_0": r["beta"][0], "converged at step": r["converged at"],
                    "final ‖w − w*‖": r["err"][-1]} for lbl, r in gd.items()}).T


# %%
TEX = {"b = 2n + 2η (Theorem 3)": r"$b = 2n + 2\eta$ (Theorem 3)", "b = true λ_max": r"$b$ = true $\lambda_{\max}$"}


def last_above(curves, floor):
    """The last step at which any of ``curves`` (arrays over steps t = 0, 1, …) is above ``floor``."""
    return max((int(np.nonzero(c > floor)[0][-1]) for c in curves if np.any(c > floor)), default=0)


def plot_ridge(gd, ax, floor=1e-12):
    """‖w_t − w*‖ per run (solid) with its contraction bound (black dotted, drawn on top); the x axis
    ends where every curve has dropped below ``floor``, the bottom of the y axis."""
    for i, (label, r) in enumerate(gd.items()):
        ax.semilogy(r["err"], color=f"C{i}", lw=3, alpha=0.7,
                    label=f"{TEX.get(label, label)}: {r['converged at']} steps")
    for i, r in enumerate(gd.values()):
        ax.semilogy(np.arange(1, len(r["err"])), r["bound"], ":", color="k", lw=1.5, zorder=3,
                    label=r"bound $(1 - \beta_0 a/2)\,\max_{j<k}\,\|e_{t-j}\|$" if i == 0 else None)
    ax.axhline(tol, color="0.4", lw=0.8, label=f"tol = {tol:g} (converged below)")
    end = last_above([c for r in gd.values() for c in (r["err"], np.r_[r["err"][:1], r["bound"]])], floor)
    ax.set(xlabel="step $t$", ylabel=r"$\|w_t - w^*\|$", ylim=(floor, None), xlim=(0, 1.02 * end + 1),
           title="delayed GD on ridge (dotted: bound)")
    sn.plotting.legend_right(ax)


# %%
fig, ax = plt.subplots()
plot_ridge(gd, ax)
sn.plotting.save_figure(fig, "02_ridge_gd");
b_ratio = gd["b = 2n + 2η (Theorem 3)"]["b"] / gd["b = true λ_max"]["b"]
print(f"true λ_max converges {speedup:.1f}× faster (bound/true b = {b_ratio:.1f})")


# %% [markdown]
# ## How much stale weight do Theorems 2–3 allow?
#
# The lag condition allows a total stale weight Σ_{j≥1}β_j of (a/2b)·β_0. With Theorem 3's bounds,
# a = 2η and b = 2n + 2η, that is **a/2b = η / (2(n + η))**: 0.25 % of the fresh step at n = 20, η = 0.1,
# and it shrinks like 1/n. Even with the true λ_max (usually far below 2n + 2η, figure above) it is a few
# per cent at most. So on ridge the theorems license stale gradients only as a small perturbation of
# synchronous GD: the runs below converge *despite* that little stale weight, and their speed comes from
# β_0 = 1/b, not from the stale terms. The theorems give no "benefit of staleness" here — a benefit would
# need stale weight of the order of the fresh one, far outside the condition (notebook 01 measures how
# far outside convergence survives; notebook 06 uses weight 1 per late gradient).

# %%
allowance = pd.DataFrame({"n": n_values, "a/2b = η/(2(n+η))": [eta / (2 * (n + eta)) for n in n_values]})
allowance.style.format({"a/2b = η/(2(n+η))": "{:.2%}"})

# %% [markdown]
# ## Ledger
#
# Exact checks (degenerate intervals) against the theorem's own bounds, with `rel_tol` for float
# round-off: over the random *and* the adversarial (identical-row) designs, the largest excess
# λ_max / (2n + 2η) − 1 must stay below rel_tol and the smallest λ_min / 2η − 1 above −rel_tol; tightness:
# the identical-row designs reach 2n + 2η to within rel_tol; Theorem 2 on ridge: the largest
# ‖e_{t+1}‖ / bound ≤ 1 + rel_tol and the final error below `tol`, for both choices of b.

# %%
hi_excess = max(spectra.ratio.max(), (tight["λ_max"] / tight["2n + 2η"]).max()) - 1
lo_excess = min((spectra.lam_min / spectra.lo).min(), (tight["λ_min"] / tight["2η"]).min()) - 1
designs = len(spectra) + len(tight)
q = "if every row ‖x_i‖ ≤ 1, the eigenvalues of H = 2(XᵀX + ηI) lie in [2η, 2n + 2η]"
ledger.record("02.thm3.upper", role="check", quote=q,
              test="largest λ_max / (2n + 2η) − 1 over random and identical-row designs",
              statistic=hi_excess, threshold=rel_tol, better="below", figures=["02_looseness"], runs=designs, seeds=1,
              median_ratio_ball=float(spectra.query("kind == 'ball'").ratio.median()))
ledger.record("02.thm3.lower", role="check", quote=q,
              test="smallest λ_min / 2η − 1 over random and identical-row designs",
              statistic=lo_excess, threshold=-rel_tol, better="above", runs=designs, seeds=1)
gap = float((tight["gap to 2n + 2η"] / tight["2n + 2η"]).max())
ledger.record("02.thm3.tight", role="check",
              quote="the upper bound is attained when all rows are the same unit vector",
              test="largest |λ_max − (2n + 2η)| / (2n + 2η) over identical-row designs", statistic=gap,
              threshold=rel_tol, better="below", runs=len(tight), seeds=1)
for label, r in gd.items():
    tag = "bound-b" if "Theorem 3" in label else "true-b"
    ledger.record(f"02.thm2.ridge.{tag}", role="claim",
                  quote="w_t → w* under the lag condition (d-dimensional, lag-indexed reading)",
                  test=f"final ‖w_T − w*‖ of delayed GD on ridge, {label}", statistic=float(r["err"][-1]),
                  threshold=tol, better="below", figures=["02_ridge_gd"], runs=1, seeds=1,
                  bound_ratio=float(np.max(r["err"][1:] / np.where(r["bound"] > 0, r["bound"], np.inf))),
                  converged_at=r["converged at"], stale_allowance=r["a"] / (2 * r["b"]))
ledger.frame()


# %% [markdown]
# ## Explore
#
# Ridge problem size n, dimension d, penalty η and lag window k (steps fixed by the parameters cell).

# %%
def show_ridge(n=n_gd, d=d_gd, eta=eta, k=k_gd):
    fig, ax = plt.subplots(figsize=(6, 3.4))
    plot_ridge(ridge_runs(n, d, eta, k, steps), ax)
    plt.show()


# %%
show_ridge(n_gd, d_gd, eta, k_gd)

# %%
sn.widgets.panel(show_ridge, n=(2, 60, 1), d=(1, 30, 1), eta=(0.05, 2.0, 0.05), k=(1, 10, 1),
                 labels={"n": "rows n", "d": "dimension d", "eta": "ridge penalty η", "k": "lag window k"})

# %% [markdown]
# ## Checks

# %%
assert len(spectra) >= 1000 and inside.all()                      # Theorem 3 over >= 1000 random X
assert (tight["gap to 2n + 2η"] < 1e-9).all()                      # the upper bound is attained
assert (tight.loc[tight.d > 1, "λ_min"] - 2 * eta).abs().max() < 1e-9   # ... and so is the lower one
print("largest ratio:", spectra.ratio.max(), " median (ball):", spectra.query("kind == 'ball'").ratio.median())

# %%
for label, r in gd.items():
    assert th.lag_condition(r["beta"], r["a"], r["b"]), label
    assert np.all(r["err"][1:] <= r["bound"] + 1e-12), f"{label}: d-dim bound violated"
R = ledger.records
assert set(R) == {"02.thm3.upper", "02.thm3.lower", "02.thm3.tight", "02.thm2.ridge.bound-b", "02.thm2.ridge.true-b"}
for r in R.values():   # exact checks: finite, degenerate intervals
    assert np.isfinite([r["statistic"], r["ci_low"], r["ci_high"]]).all(), r["id"]
    assert r["ci_low"] == r["ci_high"] == r["statistic"] and r["seeds"] == 1, r["id"]
assert R["02.thm3.upper"]["runs"] == R["02.thm3.lower"]["runs"] == len(spectra) + len(tight)   # every design
assert R["02.thm3.upper"]["statistic"] <= rel_tol and R["02.thm3.lower"]["statistic"] >= -rel_tol  # as asserted above
assert {r["role"] for r in R.values()} == {"claim", "check"}
assert np.isclose(R["02.thm2.ridge.bound-b"]["stale_allowance"], eta / (2 * (n_gd + eta)), rtol=1e-5)  # a/2b, Thm 3
print(f"steps to 1e-6: bound b {steps_bound}, true b {steps_true}; speed-up {speedup:.1f}×")
