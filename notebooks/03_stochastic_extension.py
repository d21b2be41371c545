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
# # 03 · The stochastic extension: does delayed SGD converge in expectation?
#
# **Source:** the CS744 poster (`docs/research.md` §2), **Theorem 4**: with unbiased stochastic
# gradients and the same step-size condition (c ≤ α_t ≤ 1/b; lag-indexed reading: β_0 ≤ 1/b,
# Σ_{j≥1}β_j ≤ (a/2b)β_0), E[w_t] → w\*.
#
# We run delayed SGD, w_{t+1} = w_t − Σ_{j<k} β_j (∇f(w_{t−j}) + ξ_{t−j}) with ξ ~ N(0, σ²I) drawn once
# per gradient (a stale gradient is re-used with its own noise), many times
# (`stalenb.theory.delayed_sgd`, vectorised over runs), and estimate E[w_t] by the Monte Carlo mean.
#
# **Where the theorem can fail.** On a quadratic (ridge) the gradient is linear, so E[w_t] follows the
# noiseless recursion exactly and the theorem holds. For a non-quadratic f the expectation does not
# commute with the gradient: with *constant* weights the iterates keep a stationary spread of order
# σ²·β, and on an asymmetric f that spread shifts the mean. Part 2 measures E[w] − w\* on asymmetric,
# strictly convex functions (1-D and 5-D, curvature in (a, b), the lag condition met) for constant and
# for decaying weights, and how the bias scales with the step and σ.
#
# **Protocol, fixed before the run:** "E[w_t] → w\*" is tested as "the stationary bias (time average
# of w_t − w\* over the second half of each run, mean over independent runs) is below `bias_tol`
# times the starting error ‖w_0 − w\*‖_∞ in every coordinate", with 95 % intervals over runs.

# %% tags=["parameters"]
n = 20                  # rows of the ridge problem
d = 5                   # dimension
eta = 0.1               # ridge penalty η
k = 4                   # lag window (number of weights β_0..β_{k−1})
stale_fraction = 1.0    # Σ_{j≥1} β_j as a fraction of the allowed (a/2b)·β_0
noise = 1.0             # σ: standard deviation of the gradient noise per coordinate
runs = 1000             # Monte Carlo runs
steps = 300             # delayed-SGD updates per run
band_z = 6.0            # half-width of the simultaneous band, in standard errors (Bonferroni: P(some |z| > 6) < 1e-5)
seed = 0                # seeds the problem and the noise
bias_a = 0.5            # lower curvature a of the asymmetric functions (as in notebook 01)
bias_b = 2.0            # upper curvature b of the asymmetric functions (as in notebook 01)
bias_d = 5              # dimension of the rotated asymmetric function
bias_w0 = 4.0           # start (every coordinate); the minimiser x* is 1, so the starting error is 3
bias_runs = 1000        # independent runs per bias estimate: half-width ≈ 2σ/√(runs·steps/2·mixing) stays ≤ tol/4
bias_steps = 2000       # updates per run; the second half is averaged
bias_tol = 0.01         # tolerance on the bias: 1 % of the starting error ‖w_0 − w*‖∞ (a convergence claim to 1 %)
decay_t0 = 100          # decaying weights: every β_j scaled by t0 / (t0 + t) (outside Theorem 4's c > 0)
step_factors = [1.0, 0.5, 0.25, 0.125]  # β_0 as factor / b for the bias-vs-step fit (one octave apart)
noise_levels = [0.5, 1.0, 2.0]          # σ values for the bias-vs-σ fit (one octave apart)
slope_alpha_min = 0.5   # bias ∝ α predicts slope 1; the claim "bias grows with α" needs slope > 1/2 (halfway from 0)
slope_sigma_min = 1.0   # bias ∝ σ² predicts slope 2; "bias grows with σ" needs slope > 1 (halfway from 0)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import stalenb as sn
from stalenb import claims
from stalenb import theory as th

sn.plotting.set_style()
runs, steps = sn.paths.pick(runs, 200), sn.paths.pick(steps, 200)
bias_runs, bias_steps = sn.paths.pick(bias_runs, 300), sn.paths.pick(bias_steps, 1000)
ledger = claims.Ledger("03", source="CS744 poster, Theorem 4 (docs/seeds/benefits-of-staleness-poster.md; "
                                    "lag-indexed reading, docs/research.md §2)")
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
           "‖E[w_0] − w*‖": res["bias"][0], "‖mean_T − w*‖": res["bias"][-1],
           "MC noise level at T": res["level"][-1], "max |z| (mean vs noiseless)": np.abs(res["z"]).max(),
           "fraction |z| > 1.96": (np.abs(res["z"]) > 1.96).mean(), "E‖w_T − w*‖ (single runs)": res["spread"][-1]})


# %%
def plot_mc(res, axes):
    t, i = np.arange(len(res["mean"])), 0                     # coordinate i of w
    ax = axes[0]
    ax.fill_between(t, res["mean"][:, i] - res["std"][:, i], res["mean"][:, i] + res["std"][:, i], alpha=0.2,
                    label="mean ± std (runs)")
    ax.fill_between(t, res["mean"][:, i] - band_z * res["se"][:, i], res["mean"][:, i] + band_z * res["se"][:, i],
                    alpha=0.5, label=f"mean ± {band_z:g} se")
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
    _fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    plot_mc(monte_carlo(noise, k, stale_fraction, runs=200), axes)
    plt.show()


# %%
show_mc(noise, k, stale_fraction)

# %%
sn.widgets.panel(show_mc, noise=(0.0, 5.0, 0.25), k=(1, 10, 1), stale_fraction=(0.0, 20.0, 0.5))

# %% [markdown]
# ## Part 2: the stationary bias, quadratic vs asymmetric f
#
# `stalenb.theory.asymmetric_function`: f'(x) = (a + (b − a)·σ(x − 1))·(x − 1) (logistic σ), strictly
# convex with curvature rising from a (left of x\* = 1) to b (right); in 5-D the same profile along
# the axes of a random rotation. Weights: window k, β_0 = 1/b, stale weights at the allowance (the
# lag condition holds). `bias_case` returns each run's time average of w_t − w\* over its second half
# (`stalenb.theory.delayed_sgd_tail`); `stalenb.theory.bias_interval` gives the largest |coordinate
# mean| with a 95 % interval.

# %%
def bias_case(grad, x_star, w0, lo, hi, factor=1.0, sigma=noise, decay=False, runs=bias_runs):
    beta = [factor * x for x in th.lag_weights_from(lo, hi, k, stale_fraction=stale_fraction)]
    scale = (lambda t: decay_t0 / (decay_t0 + t)) if decay else None
    burn = bias_steps // 2 if not decay else int(0.9 * bias_steps)
    tail = th.delayed_sgd_tail(grad, w0, beta, bias_steps, burn, noise=sigma, runs=runs, seed=seed, step_scale=scale)
    return tail - x_star, float(np.max(np.abs(np.asarray(w0) - x_star))), beta


g1, xs1, _ = th.asymmetric_function(bias_a, bias_b, 1)
g_d, xs_d, _ = th.asymmetric_function(bias_a, bias_b, bias_d, seed)
cases = {"ridge.constant": (grad, w_star, np.zeros(d), a, b, False),
         "asym1d.constant": (g1, xs1, bias_w0, bias_a, bias_b, False),
         f"asym{bias_d}d.constant": (g_d, xs_d, np.full(bias_d, bias_w0), bias_a, bias_b, False),
         "asym1d.decaying": (g1, xs1, bias_w0, bias_a, bias_b, True),
         f"asym{bias_d}d.decaying": (g_d, xs_d, np.full(bias_d, bias_w0), bias_a, bias_b, True)}
bias = {}
for name, (g_case, xs_case, w0_case, lo, hi, dec) in cases.items():
    dev, start, beta = bias_case(g_case, xs_case, w0_case, lo, hi, decay=dec)
    bias[name] = dict(zip(["bias", "low", "high"], th.bias_interval(dev)), start=start, tol=bias_tol * start,
                      condition=th.lag_condition(beta, lo, hi))
pd.DataFrame(bias).T

# %%
for name, r in bias.items():
    steps_kind = "decaying weights t0/(t0 + t)" if name.endswith("decaying") else "constant weights"
    ledger.record(f"03.thm4.{name}", quote="if c ≤ α_t ≤ 1/b and the lag condition holds, E[w_t] → w* (Theorem 4)",
                  test=f"largest |E[w − w*]| coordinate, {name.split('.')[0]}, {steps_kind}, σ {noise:g}",
                  statistic=r["bias"], ci_low=r["low"], ci_high=r["high"], threshold=r["tol"], better="below",
                  figures=["03_bias"], runs=bias_runs, seeds=1, start_error=r["start"], steps=bias_steps)
ledger.frame()

# %% [markdown]
# ### How the bias scales with the step and with σ
#
# 1-D asymmetric function, constant weights: β scaled by `step_factors` at σ = `noise`, and σ over
# `noise_levels` at factor 1. Slopes of log|bias| against log β_0 and log σ, with 95 % intervals from a
# parametric bootstrap of the Monte Carlo means (each bias ~ N(mean, se)).

# %%
def scaling(values, key):
    rows = []
    for v in values:
        dev = bias_case(g1, xs1, bias_w0, bias_a, bias_b, **{key: v})[0][:, 0]
        rows.append({key: v, "bias": dev.mean(), "se": dev.std(ddof=1) / np.sqrt(dev.size)})
    df = pd.DataFrame(rows)
    x = np.log(df[key].to_numpy())
    draws = np.random.default_rng(seed).normal(df.bias, df.se, (2000, len(df)))
    fit = lambda y: np.polyfit(x, np.log(np.abs(y)), 1)[0]
    boot = np.array([fit(y) for y in draws])
    return df, fit(df.bias.to_numpy()), *np.quantile(boot, [0.025, 0.975])


by_step, s_alpha, s_alpha_lo, s_alpha_hi = scaling(step_factors, "factor")
by_noise, s_sigma, s_sigma_lo, s_sigma_hi = scaling(noise_levels, "sigma")
print(f"slope vs β_0: {s_alpha:.2f} [{s_alpha_lo:.2f}, {s_alpha_hi:.2f}]; "
      f"vs σ: {s_sigma:.2f} [{s_sigma_lo:.2f}, {s_sigma_hi:.2f}]")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for ax, df, key, slope, lbl in [(axes[0], by_step, "factor", s_alpha, "β₀ · b"),
                                (axes[1], by_noise, "sigma", s_sigma, "σ")]:
    ax.errorbar(df[key], np.abs(df.bias), yerr=1.96 * df.se, fmt="o", capsize=3, label="|E[w] − w*| (1-D, constant)")
    ax.plot(df[key], np.abs(df.bias.iloc[0]) * (df[key] / df[key].iloc[0]) ** slope, "k--", lw=1,
            label=f"fitted slope {slope:.2f}")
    ax.axhline(bias_tol * (bias_w0 - 1), color="C3", ls=":", label="tolerance")
    ax.set(xscale="log", yscale="log", xlabel=lbl, ylabel="stationary bias"); ax.legend(fontsize="x-small")
fig.suptitle("Theorem 4 on an asymmetric f: the bias of constant weights grows with the step and with σ")
sn.plotting.save_figure(fig, "03_bias");

# %%
ledger.record("03.bias-scaling.step", quote="E[w_t] → w* for any constant weights meeting the condition (Theorem 4)",
              test="slope of log|E[w] − w*| against log β_0, 1-D asymmetric f, constant weights",
              statistic=float(s_alpha), ci_low=float(s_alpha_lo), ci_high=float(s_alpha_hi), threshold=slope_alpha_min,
              better="above", figures=["03_bias"], runs=bias_runs * len(step_factors), seeds=1)
ledger.record("03.bias-scaling.sigma", quote="E[w_t] → w* whatever the (unbiased) gradient noise (Theorem 4)",
              test="slope of log|E[w] − w*| against log σ, 1-D asymmetric f, constant weights",
              statistic=float(s_sigma), ci_low=float(s_sigma_lo), ci_high=float(s_sigma_hi), threshold=slope_sigma_min,
              better="above", figures=["03_bias"], runs=bias_runs * len(noise_levels), seeds=1)
ledger.frame()

# %% [markdown]
# ## Checks

# %%
tail = slice(-max(1, steps // 4), None)
assert runs >= 200 and th.lag_condition(res["beta"], a, b)
assert res["ref_err"][-1] < 0.05 * res["ref_err"][0]               # the noiseless run converges (deterministic) ...
assert res["bias"][-1] < res["ref_err"][-1] + 6 * res["level"][-1]  # ... and the mean follows it (P(fail) < 1e-6)
assert res["bias"][tail].mean() < 2 * res["level"][tail].mean()    # ... down to the Monte Carlo noise level
assert np.abs(res["z"]).max() < band_z                             # mean inside the band around the noiseless run
print(f"|z| > 1.96 at {(np.abs(res['z']) > 1.96).mean():.1%} of entries (about 5 % expected; correlated in t)")
assert res["spread"][-1] > 3 * res["bias"][-1]                     # single runs keep their spread (P(fail) < 1e-5)
assert all(r["condition"] for r in bias.values())                   # every bias case meets the lag condition
grid = np.linspace(-30, 30, 6001)                                   # the asymmetric f is strictly convex: f'' > 0
assert np.all(np.diff(g1(grid + 1.0)) > 0)
assert set(ledger.records) == {f"03.thm4.{c}" for c in cases} | {"03.bias-scaling.step", "03.bias-scaling.sigma"}
for r in ledger.records.values():
    assert np.isfinite([r["statistic"], r["ci_low"], r["ci_high"]]).all() and r["ci_low"] <= r["ci_high"], r["id"]
    thm4 = r["id"].startswith("03.thm4")  # max |coordinate mean| lies inside its interval by construction
    assert not thm4 or (r["ci_low"] <= r["statistic"] <= r["ci_high"] and r["runs"] == bias_runs), r["id"]
    if thm4 and not sn.paths.quick():                               # pre-registered precision: half-width ≤ tol / 4
        assert r["ci_high"] - r["ci_low"] <= 2 * r["threshold"] / 4, r["id"]
print(f"bias {res['bias'][0]:.3g} -> {res['bias'][-1]:.3g} (noise level {res['level'][-1]:.3g}); "
      f"max |z| = {np.abs(res['z']).max():.2f}; E‖w_T − w*‖ = {res['spread'][-1]:.3g}")
