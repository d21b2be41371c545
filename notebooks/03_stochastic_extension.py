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
# # 03 · The stochastic extension: delayed SGD converges in expectation
#
# **Source:** the CS744 poster (`docs/research.md` §2), **Theorem 4**: with unbiased stochastic
# gradients and the same step-size condition (lag-indexed reading: β_0 ≤ 1/b,
# Σ_{j≥1}β_j ≤ (a/2b)β_0), E[w_t] → w\*.
#
# We run delayed SGD on a ridge problem, w_{t+1} = w_t − Σ_{j<k} β_j (∇f(w_{t−j}) + ξ_{t−j}) with
# ξ ~ N(0, σ²I) drawn once per gradient (a stale gradient is re-used with its own noise), many times
# (`stalenb.theory.delayed_sgd`, vectorised over runs), and estimate E[w_t] by the Monte Carlo mean.
# Because the ridge gradient is linear, E[w_t] follows the *noiseless* recursion exactly, which gives
# a sharp check. Asserted at the end:
#
# 1. ‖E[w_t − w\*]‖ (estimated) decreases from ‖w_0 − w\*‖ to the Monte Carlo noise level;
# 2. the Monte Carlo mean stays inside a simultaneous confidence band around the noiseless trajectory;
# 3. the iterates themselves do **not** converge (constant weights keep a stationary spread, the
#    variance band): Theorem 4 is a statement about the mean only.

# %% tags=["parameters"]
n = 20                  # rows of the ridge problem
d = 5                   # dimension
eta = 0.1               # ridge penalty η
k = 4                   # lag window (number of weights β_0..β_{k−1})
stale_fraction = 1.0    # Σ_{j≥1} β_j as a fraction of the allowed (a/2b)·β_0
noise = 1.0             # σ: standard deviation of the gradient noise per coordinate
runs = 1000             # Monte Carlo runs
steps = 300             # delayed-SGD updates per run
band_z = 5.0            # half-width of the simultaneous band, in standard errors
seed = 0                # seeds the problem and the noise

# %%
import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import stalenb as sn
from stalenb import theory as th

sn.plotting.set_style()
runs, steps = sn.paths.pick(runs, 200), sn.paths.pick(steps, 200)
X, y = th.ridge_data(n, d, seed)
w_star, grad = th.ridge_solution(X, y, eta), th.ridge_grad(X, y, eta)
lam = np.linalg.eigvalsh(th.ridge_hessian(X, eta))
a, b = lam[0], lam[-1]          # the tightest [a, b] of Definition 2 for this problem


# %% [markdown]
# ## Monte Carlo
#
# `mc` holds all runs (runs × steps+1 × d); `ref` the noiseless trajectory (σ = 0). The standard
# error of the mean is std/√runs per coordinate; the *Monte Carlo noise level* √(Σ_i se_i²) is the
# size of ‖mean − E[w_t]‖ to expect from sampling alone.

# %%
def monte_carlo(noise=noise, k=k, stale_fraction=stale_fraction, runs=runs, steps=steps):
    beta = th.lag_weights_from(a, b, k, stale_fraction=stale_fraction)
    mc = th.delayed_sgd(grad, np.zeros(d), beta, steps, noise=noise, runs=runs, seed=seed)
    ref = th.delayed_sgd(grad, np.zeros(d), beta, steps)[0]
    mean, std, se = th.monte_carlo_mean(mc)
    z = (mean[1:] - ref[1:]) / se[1:]                        # t = 0 is deterministic
    return {"beta": beta, "mc": mc, "ref": ref, "mean": mean, "std": std, "se": se, "z": z,
            "bias": np.linalg.norm(mean - w_star, axis=1), "ref_err": np.linalg.norm(ref - w_star, axis=1),
            "level": np.sqrt((se**2).sum(axis=1)), "spread": np.linalg.norm(mc - w_star, axis=2).mean(axis=0)}


# %%
res = monte_carlo()
pd.Series({"β": np.round(res["beta"], 4), "condition holds": th.lag_condition(res["beta"], a, b),
           "‖E[w_0] − w*‖": res["bias"][0], "‖mean_T − w*‖": res["bias"][-1], "MC noise level at T": res["level"][-1],
           "max |z| (mean vs noiseless)": np.abs(res["z"]).max(), "fraction |z| > 1.96": (np.abs(res["z"]) > 1.96).mean(),
           "E‖w_T − w*‖ (single runs)": res["spread"][-1]})


# %%
def plot_mc(res, axes):
    t, i = np.arange(len(res["mean"])), 0                     # coordinate i of w
    ax = axes[0]
    ax.fill_between(t, res["mean"][:, i] - res["std"][:, i], res["mean"][:, i] + res["std"][:, i], alpha=0.2, label="mean ± std (runs)")
    ax.fill_between(t, res["mean"][:, i] - band_z * res["se"][:, i], res["mean"][:, i] + band_z * res["se"][:, i], alpha=0.5, label=f"mean ± {band_z:g} se")
    ax.plot(t, res["ref"][:, i], "k--", lw=1, label="noiseless")
    ax.axhline(w_star[i], color="C3", lw=0.8, label="w*")
    ax.set(xlabel="step t", ylabel=f"w_t[{i}]", title="Monte Carlo mean vs noiseless"); ax.legend(fontsize="x-small")
    ax = axes[1]
    ax.semilogy(t, res["bias"], label="‖mean_t − w*‖ (estimate of ‖E[w_t − w*]‖)")
    ax.semilogy(t, np.maximum(res["ref_err"], 1e-17), "k--", lw=1, label="noiseless ‖w_t − w*‖")
    ax.semilogy(t, np.maximum(res["level"], 1e-17), ":", label="Monte Carlo noise level")
    ax.semilogy(t, res["spread"], label="E‖w_t − w*‖ (single runs)")
    ax.set(xlabel="step t", ylim=(1e-4, None), title="Theorem 4: the mean converges"); ax.legend(fontsize="x-small")


# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
plot_mc(res, axes)
sn.plotting.save_figure(fig, "03_monte_carlo");


# %% [markdown]
# The mean error falls geometrically, like the noiseless run, until it meets the Monte Carlo noise
# level (which shrinks as 1/√runs); single runs keep an error of order σ·√β_0 for ever — the variance
# band does not shrink with constant weights.
#
# ## Explore
#
# Noise level σ, lag window k and the stale weights (as a fraction of the allowed budget; > 1 violates
# the condition). 200 runs per setting.

# %%
def show_mc(noise=noise, k=k, stale_fraction=stale_fraction):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    plot_mc(monte_carlo(noise, k, stale_fraction, runs=200), axes)
    plt.show()


# %%
show_mc(noise, k, stale_fraction)

# %%
sn.widgets.panel(show_mc, noise=(0.0, 5.0, 0.25), k=(1, 10, 1), stale_fraction=(0.0, 20.0, 0.5))

# %% [markdown]
# ## Checks

# %%
tail = slice(-max(1, steps // 4), None)
assert runs >= 200 and th.lag_condition(res["beta"], a, b)
assert res["bias"][-1] < 0.05 * res["bias"][0]                     # ‖E[w_t − w*]‖ decreases ...
assert res["bias"][tail].mean() < 2 * res["level"][tail].mean()    # ... down to the Monte Carlo noise level
assert np.abs(res["z"]).max() < band_z                             # mean inside the band around the noiseless run
assert (np.abs(res["z"]) > 1.96).mean() < 0.10                     # and ~5 % outside the pointwise 95 % band
assert res["spread"][-1] > 5 * res["bias"][-1]                     # single runs keep their spread (variance band)
print(f"bias {res['bias'][0]:.3g} -> {res['bias'][-1]:.3g} (noise level {res['level'][-1]:.3g}); "
      f"max |z| = {np.abs(res['z']).max():.2f}; E‖w_T − w*‖ = {res['spread'][-1]:.3g}")
