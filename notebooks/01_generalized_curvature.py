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
# Claims checked here, each with an `assert` at the end:
#
# 1. *Definition 1.* A strictly convex f has f'(x) = h(x)·(x − x\*) with the generalized curvature
#    h(x) in [a, b]; we plot h for three functions and mark [a, b].
# 2. *Theorem 1, lag-indexed reading.* Delayed GD w_{t+1} = w_t − Σ_{j<k} β_j f'(w_{t−j}) with
#    β_0 ≤ 1/b and Σ_{j≥1} β_j ≤ (a/2b)·β_0 converges, and every step obeys
#    |e_{t+1}| ≤ (1 − β_0·a/2)·max_{j<k} |e_{t−j}| (e = w − x\*).
# 3. A violating choice (stale weights too large) does not converge.
# 4. The poster's condition *read literally* (one step α_t per iteration) is infeasible for k ≥ 2.

# %% tags=["parameters"]
a = 0.5                      # lower curvature bound a of the example functions
b = 2.0                      # upper curvature bound b
w0 = 4.0                     # starting point of delayed GD (every example has its minimiser x* at 1)
k_values = [1, 2, 4, 8]      # windows k (number of lag weights) checked against Theorem 1
stale_fraction = 1.0         # Σ_{j≥1} β_j as a fraction of the allowed (a/2b)·β_0 (≤ 1: condition holds)
violation_fraction = 20.0    # the same fraction for the violating run (> 1 breaks the condition)
violation_k = 4              # window of the violating run
steps = 300                  # delayed-GD updates per run
tol = 1e-8                   # |w_t − x*| below this counts as converged
c_values = [1e-12, 1e-6, 1e-3, 0.1, 0.4]  # literal reading: smallest allowed step c (≤ 1/b)
literal_k = [2, 3, 4, 8]     # literal reading: windows k ≥ 2

# %%
import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import stalenb as sn
from stalenb import theory as th

sn.plotting.set_style()
steps = sn.paths.pick(steps, 200)
examples = th.example_functions(a, b)          # name -> (f', x*, (inf h, sup h))
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
# ## A violation: stale weights too large
#
# Same function and β_0 = 1/b, but the stale weights sum to `violation_fraction` times the allowed
# (a/2b)·β_0. The iterates oscillate around x\* instead of converging. The condition is *sufficient*,
# not necessary: the scan below shows how far the stale budget can be exceeded before convergence
# is lost for this function.

# %%
beta_bad = th.lag_weights_from(a, b, violation_k, stale_fraction=violation_fraction)
e_bad = th.delayed_gd(grad, w0, beta_bad, steps) - x_star
e_good = runs[k_values[-1]][1]
fig, ax = plt.subplots()
ax.plot(e_bad, label=f"violating: Σ stale = {violation_fraction:g} × allowed (k = {violation_k})")
ax.plot(e_good, label=f"condition holds (k = {k_values[-1]})")
ax.set(xlabel="step t", ylabel="w_t − x*", title="Theorem 1's condition violated")
ax.legend()
sn.plotting.save_figure(fig, "01_violation");

# %%
scan = {f: th.converged_step(th.delayed_gd(grad, w0, th.lag_weights_from(a, b, violation_k, stale_fraction=f),
                                           steps) - x_star, tol)
        for f in [1, 2, 5, 10, 15, violation_fraction]}
pd.Series(scan, name="converged at step (None = never)").rename_axis("stale fraction")

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
    fig, ax = plt.subplots(figsize=(6, 3.2))
    plot_errors(ax, e, th.contraction_bound(e, beta[0], a, k),
                f"k = {k}: condition {'holds' if th.lag_condition(beta, a, b) else 'violated'}")
    ax.legend(loc="lower left"); plt.show()


# %%
show_delayed(4, 1.0, 1.0, a, b, w0)

# %%
sn.widgets.panel(show_delayed, k=(1, 10, 1), beta0_times_b=(0.1, 2.0, 0.05), stale=(0.0, 40.0, 0.5),
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
assert not th.lag_condition(beta_bad, a, b)            # the violation breaks the condition ...
assert th.converged_step(e_bad, tol) is None           # ... and does not converge
assert np.max(np.abs(e_bad[-50:])) > 0.1, "violating run settled"
assert literal["exit step"].notna().all()              # literal reading: infeasible for every c, k >= 2
assert (literal["exit step"] <= literal["bound ⌈log2(1/bc)⌉+1"]).all()
print("max |e_bad| over the last 50 steps:", np.max(np.abs(e_bad[-50:])))
