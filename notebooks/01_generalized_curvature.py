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
# # 01 · Generalized curvature and delayed gradient descent
#
# **Source:** the CS744 poster "Benefits of staleness and asynchrony in machine learning algorithms"
# (`docs/research.md` §2), **Definition 1** and **Theorem 1** (1-D).
#
# Claims checked here, each recorded in the claims ledger (`stalenb.claims`) with a three-valued verdict:
#
# 1. *Definition 1.* A strictly convex f has f'(x) = h(x)·(x − x\*) with the generalized curvature
#    h(x) in [a, b]; we plot h for three functions and mark [a, b].
# 2. *Theorem 1, lag-indexed reading.* Delayed GD w_{t+1} = w_t − Σ_{j<k} β_j f'(w_{t−j}) with
#    β_0 ≤ 1/b and Σ_{j≥1} β_j ≤ (a/2b)·β_0 converges, and every step obeys
#    |e_{t+1}| ≤ (1 − β_0·a/2)·max_{j<k} |e_{t−j}| (e = w − x\*).
# 3. *Where the condition stops being enough:* the smallest stale-weight factor (a multiple of the
#    allowance (a/2b)·β_0) at which delayed GD stops converging, measured per window and per curvature
#    range. The theorem claims convergence up to factor 1, so it is a sufficient condition exactly when
#    the measured boundary lies above 1; how far above says how conservative it is.
#
# **Two different k's.** The *window* of Theorem 1 (called `window` in code: how many past gradients
# enter one update, w_{t−window+1} … w_t) is not the k of k-of-n backup workers (notebooks 06, 08:
# how many of n workers a round waits for). Below, "window" always means the former.
# 4. The poster's condition *read literally* (one step α_t per iteration) is infeasible for k ≥ 2.

# %% tags=["parameters"]
a = 0.5                      # lower curvature bound a of the example functions
b = 2.0                      # upper curvature bound b
w0 = 4.0                     # starting point of delayed GD (every example has its minimiser x* at 1)
k_values = [1, 2, 4, 8]      # windows (number of lag weights) checked against Theorem 1
stale_fraction = 1.0         # Σ_{j≥1} β_j as a fraction of the allowed (a/2b)·β_0 (≤ 1: condition holds)
steps = 300                  # delayed-GD updates per run
tol = 1e-8                   # |w_t − x*| below this counts as converged
boundary_windows = [2, 4, 8]         # windows of the boundary scan (a window of 1 has no stale weight)
boundary_b = [1.0, 2.0, 4.0]         # upper curvature b of the scan with a fixed
#                                      (ratios b/a of 2, 4, 8; the bump needs b < 9a)
boundary_max = 128.0                 # largest stale factor scanned (2^7 times the allowance)
boundary_resolution = 0.01           # relative spacing of the geometric factor grid (1 %)
boundary_steps = 2000                # horizon of the finite-horizon convergence test of the scan
c_values = [1e-12, 1e-6, 1e-3, 0.1, 0.4]  # literal reading: smallest allowed step c (≤ 1/b)
literal_k = [2, 3, 4, 8]     # literal reading: windows k ≥ 2

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import stalenb as sn
from stalenb import claims
from stalenb import theory as th

sn.plotting.set_style()
steps = sn.paths.pick(steps, 200)
examples = th.example_functions(a, b)          # name -> (f', x*, (inf h, sup h))
boundary_steps = sn.paths.pick(boundary_steps, 1000)
factors = np.geomspace(1.0, boundary_max, int(np.log(boundary_max) / np.log1p(boundary_resolution)) + 1)
source = ("CS744 poster, Definition 1 and Theorem 1 (docs/seeds/benefits-of-staleness-poster.md; "
          "lag-indexed reading, docs/research.md §2)")
ledger = claims.Ledger("01", source=source)
x_grid = np.linspace(-4.0, 6.0, sn.paths.pick(1001, 201))

# %% [markdown]
# ## Definition 1: generalized curvature
#
# h(x) = f'(x)/(x − x\*) (`stalenb.theory.generalized_curvature`; at x = x\* it is the limit
# f''(x\*)). The three functions: a quadratic (h constant), log cosh(x − 1) + (a/2)(x − 1)²
# (h = tanh(u)/u + a ∈ (a, a + 1]), and a "curvature bump" with f'(x) = (a + (b − a)/(1 + u²))·u,
# u = x − 1, whose h sweeps (a, b]. The shaded band is the function's [inf h, sup h].

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
ranges = {}
for ax, (name, (grad, x_star, (lo, hi))) in zip(axes, examples.items()):
    ax.plot(x_grid, th.generalized_curvature(grad, x_grid, x_star))
    ax.axhspan(lo, hi, color="C1", alpha=0.2, label="[a, b]")
    ax.axhline(lo, color="C1", lw=1); ax.axhline(hi, color="C1", lw=1)
    ax.set(title=name, xlabel="x")
    ranges[name] = (lo, hi) + th.curvature_range(grad, x_star, x_grid[0], x_grid[-1])
axes[0].set_ylabel("h(x) = f'(x) / (x − x*)")
axes[0].legend(loc="lower left")
sn.plotting.save_figure(fig, "01_curvature");

# %%
pd.DataFrame(ranges, index=["a (theory)", "b (theory)", "min h on grid", "max h on grid"]).T

# %% [markdown]
# ## Theorem 1 under the lag-indexed reading
#
# Write e_t = w_t − x\* and h_t = h(w_t). Then
# e_{t+1} = (1 − β_0 h_t)·e_t − Σ_{j≥1} β_j h_{t−j} e_{t−j}. With β_0 ≤ 1/b the first factor lies in
# [0, 1 − β_0 a]; the stale terms add at most b·Σ_{j≥1}β_j·M ≤ (a/2)·β_0·M with
# M = max_{j<k}|e_{t−j}|. Hence |e_{t+1}| ≤ (1 − β_0·a/2)·M: the window maximum contracts
# geometrically (`docs/research.md` §2, [derived]).
#
# We run delayed GD on the curvature bump (the hardest example: h spans all of [a, b]) with
# β_0 = 1/b and the stale budget split evenly over the k − 1 lags
# (`stalenb.theory.lag_weights_from`), and overlay the bound (`stalenb.theory.contraction_bound`).

# %%
grad, x_star, _ = examples["curvature bump"]
runs = {}
for k in k_values:
    beta = th.lag_weights_from(a, b, k, stale_fraction=stale_fraction)
    e = th.delayed_gd(grad, w0, beta, steps) - x_star
    runs[k] = (beta, e, th.contraction_bound(e, beta[0], a, k))
summary = pd.DataFrame({k: {"β_0": beta[0], "Σ_{j≥1} β_j": sum(beta[1:]),
                            "condition holds": th.lag_condition(beta, a, b),
                            "converged at step": th.converged_step(e, tol),
                            "max |e_{t+1}| / bound": np.max(np.abs(e[1:]) / np.where(bound > 0, bound, np.inf))}
                        for k, (beta, e, bound) in runs.items()}).T
summary


# %%
def plot_errors(ax, e, bound, title):
    # |e_t| and Theorem 1's one-step bound, cut a few steps after |e_t| reaches 0
    live = np.nonzero(np.abs(e) > 1e-300)[0]
    n = min(len(e), (live[-1] if live.size else 0) + 6)
    t = np.arange(n)
    ax.semilogy(t, np.abs(e[:n]), label="|w_t − x*|")
    ax.semilogy(t[1:], bound[: n - 1], "--", label="(1 − β₀a/2)·max_{j<k} |e_{t−j}|")
    ax.set(title=title, xlabel="step t")


# %%
fig, axes = plt.subplots(1, len(k_values), figsize=(3 * len(k_values), 3.2), sharey=True, squeeze=False)
axes = axes[0]
for ax, (k, (beta, e, bound)) in zip(axes, runs.items()):
    plot_errors(ax, e, bound, f"k = {k}")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.2))
sn.plotting.save_figure(fig, "01_theorem1");

# %% [markdown]
# ## The boundary of the lag condition
#
# Same function (the curvature bump, h sweeping (a, b]), β_0 = 1/b, and the stale weights summing to
# s times the allowed (a/2b)·β_0. For every window and curvature range, `stalenb.theory.stale_scan`
# runs delayed GD for a geometric grid of s from 1 to `boundary_max` (1 % apart) and
# `stalenb.theory.stale_boundary` returns the bracket [last s that converges, first s that does not]
# (converged: |w_T − x\*| < tol after `boundary_steps` updates). Theorem 1 claims convergence up to
# s = 1; each bracket is recorded against that threshold.

# %%
rows = []
for bb in boundary_b:
    g_b, xs_b, _ = th.example_functions(a, bb)["curvature bump"]
    for window in boundary_windows:
        lo, hi = th.stale_boundary(th.stale_scan(g_b, xs_b, w0, a, bb, window, factors, boundary_steps), factors, tol)
        rows.append({"b_over_a": bb / a, "window": window, "lo": lo, "hi": hi, "boundary": np.sqrt(lo * hi)})
boundary = pd.DataFrame(rows)
boundary.pivot(index="window", columns="b_over_a", values="boundary").round(2)

# %%
fig, ax = plt.subplots()
for ratio, g in boundary.groupby("b_over_a"):
    ax.errorbar(g.window, g.boundary, yerr=[g.boundary - g.lo, g.hi - g.boundary], fmt="o-", capsize=3,
                label=f"b/a = {ratio:g}")
ax.axhline(1.0, color="k", ls="--", label="Theorem 1's allowance (factor 1)")
ax.set(xscale="log", yscale="log", xlabel="window (number of lag weights)",
       ylabel="stale factor where convergence stops", title="measured boundary vs the allowance (a/2b)·β₀")
ax.set_xticks(boundary_windows, [str(w) for w in boundary_windows]); ax.legend(fontsize="small")
sn.plotting.save_figure(fig, "01_boundary");

# %%
for r in boundary.itertuples():
    ledger.record(f"01.thm1.boundary.window{r.window}.ba{r.b_over_a:g}",
                  quote="if c ≤ α_t ≤ 1/b and Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t then w_t → w* (lag-indexed)",
                  test=f"smallest stale factor (× allowance) where delayed GD stops converging, window {r.window}, "
                       f"b/a {r.b_over_a:g}",
                  statistic=r.boundary, ci_low=r.lo, ci_high=r.hi, threshold=1.0, better="above",
                  figures=["01_boundary"], runs=len(factors), seeds=1, steps=boundary_steps)
violate = boundary.iloc[0]
beta_bad = th.lag_weights_from(a, violate["b_over_a"] * a, int(violate.window), stale_fraction=violate.hi)
print(f"the condition is conservative by a factor {boundary.lo.min():.2f}–{boundary.hi.max():.2f}")

# %% [markdown]
# ## The literal reading is infeasible for k ≥ 2
#
# Read literally, the poster asks for one step α_t per iteration with c ≤ α_t ≤ 1/b and
# Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t. Every feasible sequence satisfies
# α_t ≥ max(c, (2b/a)·Σ_{i=t−k+1}^{t−1} α_i), and the sequence built with equality
# (`stalenb.theory.literal_min_sequence`) is a pointwise lower bound for all of them. For k ≥ 2 it
# gives α_t ≥ (2b/a)·α_{t−1} ≥ 2·α_{t−1} (since a ≤ b), so α_t ≥ 2^t·c > 1/b as soon as
# t > log2(1/(b·c)): **no sequence satisfies the condition for more than ⌈log2(1/(b·c))⌉ + 1 steps**.
# The table checks this for several c, k and for a < b and a = b (the slowest growth, ratio 2).

# %%
rows = [{"k": k, "a": aa, "c": c, "exit step": th.literal_exit_step(c, aa, b, k),
         "bound ⌈log2(1/bc)⌉+1": th.literal_exit_bound(c, b)}
        for k in literal_k for c in c_values for aa in (a, b)]
literal = pd.DataFrame(rows)
literal.pivot_table(index=["k", "a"], columns="c", values="exit step")

# %%
fig, ax = plt.subplots()
for k in literal_k:
    ax.semilogy(th.literal_min_sequence(c_values[1], a, b, k, 12), "o-", ms=3, label=f"k = {k}")
ax.axhline(1 / b, color="k", ls="--", label="1/b (upper limit)")
ax.set(xlabel="iteration t", ylabel="smallest feasible α_t", title=f"literal reading, c = {c_values[1]:g}")
ax.legend()
sn.plotting.save_figure(fig, "01_literal");


# %% [markdown]
# ## Ledger: the one-step bound and the literal reading
#
# Both are exact checks (degenerate intervals): the largest ratio |e_{t+1}| / bound over every step
# and window (the bound holds when it is below 1), and
# the largest (exit step − ⌈log2(1/bc)⌉ − 1) of the literal reading over every c, window and a
# (integers: the claim "infeasible within the bound" holds when it is ≤ 0, threshold 0.5).

# %%
worst = max(float(np.max(np.abs(e[1:]) / np.where(bound > 0, bound, np.inf))) for _, e, bound in runs.values())
ledger.record("01.thm1.bound", quote="|e_{t+1}| ≤ (1 − β_0·a/2)·max_{j<k}|e_{t−j}| (lag-indexed reading, derived)",
              test="largest |e_{t+1}| / bound over all steps and windows, curvature bump, factor 1",
              statistic=worst, threshold=1.0, better="below", figures=["01_theorem1"], runs=len(runs), seeds=1)
excess = float((literal["exit step"] - literal["bound ⌈log2(1/bc)⌉+1"]).max())
ledger.record("01.literal.infeasible", quote="Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t with c ≤ α_t ≤ 1/b (read literally)",
              test="largest (step where every feasible sequence exceeds 1/b) − (⌈log2(1/bc)⌉ + 1) over c, "
                   "window ≥ 2, a",
              statistic=excess, threshold=0.5, better="below", figures=["01_literal"], runs=len(literal), seeds=1)
ledger.frame()


# %% [markdown]
# ## Explore
#
# `show_delayed` runs delayed GD on the curvature bump with curvature range [a, b]: k lag weights,
# β_0 given as a multiple of 1/b, the stale weights as a multiple of the allowed (a/2b)·β_0, and the
# starting point. The title says whether the lag condition holds.

# %%
def show_delayed(k=4, beta0_times_b=1.0, stale=1.0, a=a, b=b, w0=w0, steps=steps):
    if a > b:
        print("need a <= b"); return
    grad, x_star, _ = th.example_functions(a, b)["curvature bump"]
    beta = th.lag_weights_from(a, b, k, beta0=beta0_times_b / b, stale_fraction=stale)
    e = th.delayed_gd(grad, w0, beta, steps) - x_star
    _fig, ax = plt.subplots(figsize=(6, 3.2))
    plot_errors(ax, e, th.contraction_bound(e, beta[0], a, k),
                f"k = {k}: condition {'holds' if th.lag_condition(beta, a, b) else 'violated'}")
    ax.legend(loc="lower left"); plt.show()


# %%
show_delayed(4, 1.0, 1.0, a, b, w0)

# %%
sn.widgets.panel(show_delayed, k=(1, 10, 1), beta0_times_b=(0.1, 2.0, 0.05), stale=(0.0, 60.0, 0.5),
                 a=(0.1, 2.0, 0.05), b=(0.5, 4.0, 0.1), w0=(-6.0, 8.0, 0.5), steps=(50, 600, 50))

# %% [markdown]
# ## Checks

# %%
for name, (lo, hi, h_min, h_max) in ranges.items():   # Definition 1: h inside [a, b]
    assert lo - 1e-9 <= h_min <= h_max <= hi + 1e-9, name
for k, (beta, e, bound) in runs.items():               # Theorem 1: condition, bound, convergence
    assert th.lag_condition(beta, a, b), k
    assert np.all(np.abs(e[1:]) <= bound + 1e-12), f"bound violated for k={k}"
    assert abs(e[-1]) < tol, f"k={k} did not converge: {e[-1]}"

# %%
assert not th.lag_condition(beta_bad, a, violate["b_over_a"] * a)   # past the measured boundary the condition is broken
assert literal["exit step"].notna().all()              # literal reading: infeasible for every c, k >= 2
assert (literal["exit step"] <= literal["bound ⌈log2(1/bc)⌉+1"]).all()
assert len(boundary) == len(boundary_windows) * len(boundary_b)   # every (window, range) scanned
assert (boundary.hi / boundary.lo <= 1 + 1.5 * boundary_resolution).all() or np.isinf(boundary.hi).any()
expected = {f"01.thm1.boundary.window{w}.ba{bb / a:g}" for w in boundary_windows for bb in boundary_b}
assert set(ledger.records) == expected | {"01.thm1.bound", "01.literal.infeasible"}, sorted(ledger.records)
for r in ledger.records.values():
    assert np.isfinite([r["statistic"], r["ci_low"], r["ci_high"]]).all(), r["id"]
    assert r["ci_low"] <= r["statistic"] <= r["ci_high"] and r["seeds"] == 1, r["id"]
    assert "boundary" in r["id"] or r["ci_low"] == r["ci_high"] == r["statistic"], r["id"]  # exact: degenerate
assert ledger.records["01.thm1.bound"]["statistic"] <= 1 + 1e-9        # Theorem 1's bound (proven above) holds
assert ledger.records["01.literal.infeasible"]["statistic"] <= 0        # exit never later than ⌈log2(1/bc)⌉ + 1
