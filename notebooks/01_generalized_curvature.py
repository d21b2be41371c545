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
# (`docs/research.md` §2), **Definition 1** and **Theorem 1** (1-D): for f strictly convex with
# generalized curvature h(w) ∈ [a, b], *"if c ≤ α_t ≤ 1/b for some c > 0 and
# Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t, then lim_{t→∞} |w_t − w\*| = 0"*, for the update
# w_{t+1} = w_t − Σ_{i=t−k+1}^{t} α_i ∇f(w_i).
#
# **From the poster's α_i to the package's β_j.** In the poster's update the weight α_i carries the index
# i of the iteration that *produced* the gradient ∇f(w_i); in update t that gradient is j = t − i updates
# old (its *lag*, or age): i = t is the fresh gradient (j = 0), i = t − k + 1 the oldest (j = k − 1).
# The package indexes by age: w_{t+1} = w_t − Σ_{j=0}^{k−1} β_j ∇f(w_{t−j}), so β_j stands for the
# poster's α_{t−j} *as used in update t*. Two readings follow:
#
# - **literal** — α_i is one number per iteration i, the same in every update that uses ∇f(w_i); then
#   the condition ties steps of different iterations to each other, α_t ≥ (2b/a)·Σ_{i=t−k+1}^{t−1} α_i, and
#   (first section below) no sequence meets it for more than a few steps when k ≥ 2: the theorem is vacuous;
# - **lag-indexed** (used from then on) — the weight depends on the age only: α_i in update t is β_{t−i};
#   the condition becomes c ≤ β_0 ≤ 1/b and Σ_{j=1}^{k−1} β_j ≤ (a/2b)·β_0 (the stale gradients together
#   weigh at most a/2b of the fresh one). The worst-case section lets the stale weights change from one
#   update to the next, β_j(t), each update meeting the condition.
#
# **Two different k's.** The *window* of Theorem 1 (called `window` in code: how many past gradients
# enter one update, w_{t−window+1} … w_t) is not the k of k-of-n backup workers (notebooks 06, 08:
# how many of n workers a round waits for). Below, "window" always means the former.
#
# **What is recorded** (claims ledger `stalenb.claims`; a *claim* tests a sentence of the poster, a
# *check* is a derived or sanity check):
#
# 1. *check* — the literal reading is infeasible for window ≥ 2 (`01.literal.infeasible`);
# 2. *check* — the one-step bound |e_{t+1}| ≤ (1 − β_0·a/2)·max_{j<k}|e_{t−j}| (derived) on the curvature
#    bump (`01.thm1.bound`);
# 3. *check* — where delayed GD on one benign function with the stale weight split evenly stops converging
#    (`01.thm1.boundary.*`: above 1 by the proof, only the horizon could make them fail);
# 4. **claim** — Theorem 1 in the worst case: the smallest stale factor at which *some* curvature sequence
#    in [a, b] and *some* split of the stale weight diverge, certified from both sides by the joint spectral
#    radius (`01.thm1.worst-case.*`); the theorem says it is at least 1, and it could come out below;
# 5. what the condition allows for notebook 06's k-of-n reuse.

# %% tags=["parameters"]
a = 0.5                      # lower curvature bound a of the example functions
b = 2.0                      # upper curvature bound b
w0 = 4.0                     # starting point of delayed GD (every example has its minimiser x* at 1)
k_values = [1, 2, 4, 8]      # windows (number of lag weights) checked against Theorem 1
stale_fraction = 1.0         # Σ_{j≥1} β_j as a fraction of the allowed (a/2b)·β_0 (≤ 1: condition holds)
steps = 300                  # delayed-GD updates per run
tol = 1e-8                   # |w_t − x*| below this counts as converged
boundary_windows = [2, 4, 8]         # windows of the boundary scans (a window of 1 has no stale weight)
boundary_b = [1.0, 2.0, 4.0]         # upper curvature b of the scans with a fixed
#                                      (ratios b/a of 2, 4, 8; the bump needs b < 9a)
boundary_max = 128.0                 # largest stale factor scanned (2^7 times the allowance)
boundary_resolution = 0.01           # relative spacing of the geometric factor grid (1 %)
boundary_steps = 2000                # horizon of the finite-horizon convergence test of the benign scan
worst_rel_tol = 0.002        # relative width of the bisection for s_hi (a divergent product): 0.2 %
worst_lo_rel_tol = 0.01      # relative width of the bisection for s_lo (each step one branch and bound): 1 %
worst_nodes = 200000         # products one branch and bound may evaluate (cost cap: ~2 s per proof attempt)
horizon_slack = 0.05         # the benign scan may sit this far below a true boundary (finite horizon, see text)
reuse_fractions = [0.5, 0.25, 0.125]  # k/n of k-of-n reuse with equal weight per gradient (06 runs k at n/4)
reuse_masses = [0.125, 0.5]  # notebook 06's reuse weights c (late gradients weigh c times the fresh ones)
c_values = [1e-12, 1e-6, 1e-3, 0.1, 0.4]  # literal reading: smallest allowed step c (≤ 1/b)
literal_k = [2, 3, 4, 8]     # literal reading: windows k ≥ 2

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import stalenb as sn
from stalenb import claims
from stalenb import theory as th
from stalenb import worst_case as wc

sn.plotting.set_style()
steps = sn.paths.pick(steps, 200)
examples = th.example_functions(a, b)          # name -> (f', x*, (inf h, sup h))
boundary_steps = sn.paths.pick(boundary_steps, 1000)
worst_nodes = sn.paths.pick(worst_nodes, 20000)
worst_rel_tol, worst_lo_rel_tol = sn.paths.pick(worst_rel_tol, 0.01), sn.paths.pick(worst_lo_rel_tol, 0.05)
factors = np.geomspace(1.0, boundary_max, int(np.log(boundary_max) / np.log1p(boundary_resolution)) + 1)
source = ("CS744 poster, Definition 1 and Theorem 1 (docs/seeds/benefits-of-staleness-poster.md; "
          "lag-indexed reading, docs/research.md §2)")
THEOREM_1 = ("Let f(w) be strictly convex, and assume the generalized curvature h(w) ∈ [a, b], where 0 < a ≤ b. "
             "If c ≤ α_t ≤ 1/b for some c > 0 and Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t, then "
             "lim_{t→∞} |w_t − w*| = 0.")
ledger = claims.Ledger("01", source=source)
x_grid = np.linspace(-4.0, 6.0, sn.paths.pick(1001, 201))

# %% [markdown]
# ## The literal reading is infeasible for window ≥ 2
#
# Read literally, the poster asks for one step α_t per iteration with c ≤ α_t ≤ 1/b and
# Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t. Every feasible sequence satisfies
# α_t ≥ max(c, (2b/a)·Σ_{i=t−k+1}^{t−1} α_i), and the sequence built with equality
# (`stalenb.theory.literal_min_sequence`) is a pointwise lower bound for all of them. For k ≥ 2 it
# gives α_t ≥ (2b/a)·α_{t−1} ≥ 2·α_{t−1} (since a ≤ b), so α_t ≥ 2^t·c > 1/b as soon as
# t > log2(1/(b·c)): **no sequence satisfies the condition for more than ⌈log2(1/(b·c))⌉ + 1 steps**,
# so under this reading Theorem 1 says nothing (its hypothesis is never met).
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
    ax.semilogy(th.literal_min_sequence(c_values[1], a, b, k, 12), "o-", ms=3, label=f"$k = {k}$")
ax.axhline(1 / b, color="k", ls="--", label="$1/b$ (upper limit)")
ax.set(xlabel="iteration $t$", ylabel=r"smallest feasible $\alpha_t$", title=f"literal reading, $c$ = {c_values[1]:g}")
sn.plotting.legend_right(ax)
sn.plotting.save_figure(fig, "01_literal");

# %% [markdown]
# The record is a **check** (an exact statement about the hypothesis, not a test of the theorem's
# conclusion): the largest (exit step − ⌈log2(1/bc)⌉ − 1) over every c, window and a; integers, so the
# hypothesis is infeasible within the bound when it is ≤ 0 (threshold 0.5).

# %%
excess = float((literal["exit step"] - literal["bound ⌈log2(1/bc)⌉+1"]).max())
ledger.record("01.literal.infeasible", role="check", source="CS744 poster, Theorem 1 read literally; stalenb (derived)",
              quote="read literally (one α_i per iteration), c ≤ α_t ≤ 1/b and Σ_{i=t−k+1}^{t−1} α_i ≤ (a/2b)·α_t "
                    "cannot hold for all t when k ≥ 2",
              test="checks that the literal hypothesis can never be met for window ≥ 2: largest (step where every "
                   "feasible sequence exceeds 1/b) − (⌈log2(1/bc)⌉ + 1) over c, window ≥ 2, a (≤ 0: infeasible)",
              statistic=excess, threshold=0.5, better="below", figures=["01_literal"], runs=len(literal), seeds=1);

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
    ax.plot(x_grid, th.generalized_curvature(grad, x_grid, x_star), label="$h(x)$")
    ax.axhspan(lo, hi, color="C1", alpha=0.2, label=r"$[\inf\,h, \sup\,h]$ of $f$")
    ax.axhline(lo, color="C1", lw=1); ax.axhline(hi, color="C1", lw=1)
    ax.set(title=name, xlabel="$x$")
    ranges[name] = (lo, hi) + th.curvature_range(grad, x_star, x_grid[0], x_grid[-1])
axes[0].set_ylabel(r"$h(x) = f'(x)\,/\,(x - x^*)$")
sn.plotting.legend_right(axes[-1])
sn.plotting.save_figure(fig, "01_curvature");

# %%
pd.DataFrame(ranges, index=["a (theory)", "b (theory)", "min h on grid", "max h on grid"]).T

# %% [markdown]
# ## Theorem 1 under the lag-indexed reading: the benign functions
#
# Write e_t = w_t − x\* and h_t = h(w_t). Then
# e_{t+1} = (1 − β_0 h_t)·e_t − Σ_{j≥1} β_j h_{t−j} e_{t−j}. With β_0 ≤ 1/b the first factor lies in
# [0, 1 − β_0 a]; the stale terms add at most b·Σ_{j≥1}β_j·M ≤ (a/2)·β_0·M with
# M = max_{j<k}|e_{t−j}|. Hence |e_{t+1}| ≤ (1 − β_0·a/2)·M: the window maximum contracts
# geometrically (`docs/research.md` §2, [derived]).
#
# We run delayed GD on the curvature bump (h spans all of [a, b]) with β_0 = 1/b and the stale budget
# split evenly over the k − 1 lags (`stalenb.theory.lag_weights_from`), and overlay the bound
# (`stalenb.theory.contraction_bound`). The record `01.thm1.bound` is a **check** of this derived
# bound (the largest |e_{t+1}| / bound over every step and window; it holds below 1).

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
    ax.semilogy(t, np.abs(e[:n]), label=r"$|e_t| = |w_t - x^*|$")
    ax.semilogy(t[1:], bound[: n - 1], "--", label=r"bound $(1 - \beta_0 a/2)\,\max_{j<k}\,|e_{t-j}|$")
    ax.set(title=title, xlabel="step $t$")


# %%
fig, axes = plt.subplots(1, len(k_values), figsize=(3 * len(k_values), 3.2), sharey=True, squeeze=False)
axes = axes[0]
for ax, (k, (beta, e, bound)) in zip(axes, runs.items()):
    plot_errors(ax, e, bound, f"$k = {k}$")
sn.plotting.legend_below(fig, axes[0], ncols=2)
sn.plotting.save_figure(fig, "01_theorem1");

# %%
worst = max(float(np.max(np.abs(e[1:]) / np.where(bound > 0, bound, np.inf))) for _, e, bound in runs.values())
ledger.record("01.thm1.bound", role="check", source="stalenb (derived from Theorem 1's hypothesis, lag-indexed)",
              quote="|e_{t+1}| ≤ (1 − β_0·a/2)·max_{j<k}|e_{t−j}| (lag-indexed reading, derived)",
              test="largest |e_{t+1}| / bound over all steps and windows, curvature bump, factor 1 (an exact "
                   "consequence of the hypothesis: below 1 unless the code is wrong)",
              statistic=worst, threshold=1.0, better="below", figures=["01_theorem1"], runs=len(runs), seeds=1);

# %% [markdown]
# ### Where one benign function stops converging (even split)
#
# Same function, β_0 = 1/b, and the stale weights summing to s times the allowed (a/2b)·β_0, spread
# evenly over the lags. For every window and curvature range `stalenb.theory.stale_scan` runs delayed GD
# for a geometric grid of s from 1 to `boundary_max` (1 % apart) and `stalenb.theory.stale_boundary`
# returns the bracket [last s that converges, first s that does not] (converged: |w_T − x\*| < tol after
# `boundary_steps` updates). These are **checks** (one function, one split: the proof already puts them
# above 1; the interval is a grid bracket). Near a boundary the contraction per step tends to 1, and a run
# that needs more than `boundary_steps` steps to reach tol counts as "not converged": at window 2 the
# per-step factor is √(s/s\*), and reaching 10⁻⁸ from |e_0| = 3 in 2,000 steps needs a factor ≤ 0.990,
# i.e. s ≤ 0.98·s\*: the bracket can sit a few % below the function's true boundary (`horizon_slack`).

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
for r in boundary.itertuples():
    ledger.record(f"01.thm1.boundary.window{r.window}.ba{r.b_over_a:g}", role="check",
                  quote="delayed GD on the curvature bump, stale weight split evenly, converges up to the measured "
                        "stale factor (Theorem 1's proof puts it at 1 or above)",
                  test=f"benign function, even split: smallest stale factor (× allowance) where delayed GD stops "
                       f"converging within {boundary_steps} steps, window {r.window}, b/a {r.b_over_a:g} "
                       "(interval = grid bracket)",
                  statistic=r.boundary, ci_low=r.lo, ci_high=r.hi, threshold=1.0, better="above",
                  figures=["01_boundary"], runs=len(factors), seeds=1, steps=boundary_steps)
violate = boundary.iloc[0]
beta_bad = th.lag_weights_from(a, violate["b_over_a"] * a, int(violate.window), stale_fraction=violate.hi)

# %% [markdown]
# ## The worst case: every curvature sequence and every split
#
# The benign scan is one sequence h_t = h(w_t) and one split. Theorem 1 claims convergence for *every* f
# with curvature in [a, b]. With g_t = f'(w_t) = h_t e_t the error obeys e_{t+1} = e_t − Σ_j β_j g_{t−j}:
# in the state (e_t, g_{t−1}, …, g_{t−W+1}) one step is a companion matrix M(h_t, β) that depends on the
# *current* curvature only (`stalenb.worst_case.companion`) — a switched linear system. M is affine in h
# and in the stale weights, so the worst case over all sequences h_t ∈ [a, b] and all stale weights
# β_j(t) ≥ 0 with Σ_{j≥1} β_j(t) ≤ S (changing every step) is the **joint spectral radius** ρ̂ of the 2W
# vertex matrices (h ∈ {a, b}; no stale weight, or all of S on one lag): ρ̂ < 1 ⇒ every such run
# converges, ρ̂ > 1 ⇒ a periodic curvature sequence and split diverge. β_0 = 1/b as above, S = s·(a/2b)·β_0.
#
# `stalenb.worst_case.worst_boundary` brackets the boundary s\* = sup{s: ρ̂ < 1} from both sides:
#
# - **s_hi** — the smallest s (bisection to `worst_rel_tol`) at which a search over products (all products
#   up to 4,096, then a beam search to length ≥ 4W) finds one with spectral radius > 1: an explicit divergent
#   sequence, so s\* ≤ s_hi;
# - **s_lo** — the largest s (bisection to `worst_lo_rel_tol`) at which Gripenberg's branch and bound, in an
#   optimised weighted max-norm or ellipsoidal norm, proves ρ̂ < 1 (every infinite product splits into pieces
#   of norm < 1): s\* ≥ s_lo. Both are exact up to floating-point rounding (margins 10⁻⁹).
#
# The same search gives s_hi for two fixed split shapes (total ≤ S): **even** (as the benign scan) and
# **oldest** (all on lag W − 1). With all stale weight on one lag and h ≡ b the recursion is
# e_{t+1} = −S·b·e_{t−j}, which diverges once S·b > 1, i.e. s > 2b/a, at every window.
# A curvature sequence need not come from one convex f (f' must also increase), so the boundary over
# functions can only lie higher than s\*; s\* is what the theorem's proof covers (the proof uses only
# h_t ∈ [a, b] at every step). In the other direction, the same proof with a weighted max-norm
# max(|e_t|, max_j |g_{t−j}|/(b·q^j)) (q slightly above 1) gives
# ‖M‖ ≤ max(1/q, 1 − a/b + (s·a/2b)·q^{W−1}) < 1 for every s < 2: s\* ≥ 2 at every window [derived] —
# the allowance a/2b could be a/b.

# %%
worst_args = {"rel_tol": worst_rel_tol, "lo_rel_tol": worst_lo_rel_tol, "max_nodes": worst_nodes}
worst_rows, witnesses = [], {}
for bb in boundary_b:
    for window in boundary_windows:
        r = wc.worst_boundary(a, bb, window, "lags", **worst_args)
        witnesses[window, bb / a] = r
        row = {"b_over_a": bb / a, "window": window, "s_lo": r["s_lo"], "s_hi": r["s_hi"],
               "worst": np.sqrt(r["s_lo"] * r["s_hi"]), "jsr_gap_at_s_lo": 1 - r["jsr_hi"], "norm": r["norm"],
               "witness": wc.describe(r["labels"], r["word"]), "rho_witness": r["rho"]}
        for split in ("even", "oldest"):
            row[f"{split}_hi"] = wc.worst_boundary(a, bb, window, split, certify_lower=False, **worst_args)["s_hi"]
        worst_rows.append(row)
worst_case = pd.DataFrame(worst_rows).merge(boundary[["b_over_a", "window", "lo", "hi"]], on=["b_over_a", "window"])
worst_case[["b_over_a", "window", "s_lo", "s_hi", "even_hi", "oldest_hi", "lo", "hi", "witness"]].round(3)

# %% [markdown]
# Columns: the worst-case bracket [s_lo, s_hi]; the smallest divergent s found for the even and the
# oldest-lag split (upper bounds on their boundaries); the benign even-split bracket [lo, hi]; the
# divergent cycle at s_hi, one step each: curvature a or b and the lag that carries all the stale weight
# (0: none). From window 4 on the witnesses put the whole stale weight on lag 1, then 2, …: the *same* late
# gradient is applied again at every step while it ages — a time-varying split that the per-update
# condition allows (a fixed split, even or oldest, cannot do this and diverges only much later).

# %%
fig, axes = plt.subplots(1, len(boundary_b), figsize=(3.6 * len(boundary_b), 3.4), sharey=True)
for ax, (ratio, g) in zip(axes, worst_case.groupby("b_over_a")):
    x, mid = np.asarray(g.window, dtype=float), np.sqrt(g.lo * g.hi)
    ax.errorbar(x, mid, yerr=[mid - g.lo, g.hi - mid], fmt="o-", capsize=3, label="benign function, even split")
    ax.plot(x, g.even_hi, "v--", label=r"even split, worst sequence (≤)")
    ax.plot(x, g.oldest_hi, "^:", label=r"oldest lag, worst sequence (≤)")
    ax.fill_between(x, g.s_lo, g.s_hi, color="tab:red", alpha=0.35)
    ax.plot(x, g.s_hi, "s-", color="tab:red", ms=4, label=r"worst case: bracket $[s_{\mathrm{lo}}, s_{\mathrm{hi}}]$")
    ax.plot(x, g.s_lo, "s-", color="tab:red", ms=4)
    ax.axhline(2.0, color="0.5", ls=":", lw=1, label="2: every window converges below (derived)")
    ax.axhline(1.0, color="k", ls="--", label="Theorem 1's allowance (factor 1)")
    ax.set(xscale="log", yscale="log", xlabel="window", title=f"$b/a = {ratio:g}$")
    ax.set_xticks(boundary_windows, [str(w) for w in boundary_windows], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_yticks([1, 2, 4, 8, 16, 32], ["1", "2", "4", "8", "16", "32"])
axes[0].set_ylabel("stale factor where convergence stops\n"
                   r"(multiples of $(a/2b)\,\beta_0$, $\beta_0 = 1/b$)")
sn.plotting.legend_below(fig, axes[0], ncols=3, fontsize="small")
sn.plotting.save_figure(fig, "01_boundary");

# %%
by = worst_case.sort_values("window").groupby("b_over_a")
falls = bool(by.s_hi.apply(lambda v: v.is_monotonic_decreasing).all())
rises = bool(by.hi.apply(lambda v: v.is_monotonic_increasing).all())
print(f"as the window grows, at every b/a: the worst case falls: {falls}; the benign even split rises: {rises}")
print(f"worst case / allowance: {worst_case.s_lo.min():.2f}–{worst_case.s_hi.max():.2f}; "
      f"benign even split: {boundary.lo.min():.2f}–{boundary.hi.max():.2f}")

# %% [markdown]
# **Records.** One **claim** per window and b/a: Theorem 1's sentence, tested where it is strongest —
# the worst case over every curvature sequence and split. Statistic = the worst-case boundary in multiples
# of the allowance (geometric mean of the bracket); its interval is the certified bracket [s_lo, s_hi]
# (not a statistical interval); threshold 1 (the theorem asserts convergence at every factor ≤ 1), so the
# claim holds when s_lo > 1 and would fail if a divergent sequence existed within the allowance.

# %%
for r in worst_case.itertuples():
    ledger.record(f"01.thm1.worst-case.window{r.window}.ba{r.b_over_a:g}", role="claim", quote=THEOREM_1,
                  test=f"worst-case boundary over every curvature sequence h_t ∈ [a, b] and every split of the stale "
                       f"weight (may change each step), β_0 = 1/b, in multiples of the allowance (a/2b)·β_0, "
                       f"window {r.window}, b/a {r.b_over_a:g}; the interval is the certified bracket (s_lo: joint "
                       "spectral radius < 1 proven; s_hi: a divergent product found), not a statistical interval",
                  statistic=r.worst, ci_low=r.s_lo, ci_high=r.s_hi, threshold=1.0, better="above",
                  figures=["01_boundary"], runs=1, witness=r.witness,
                  decide="a tighter bracket: more branch-and-bound products (worst_nodes) or a finer bisection",
                  rho_witness=r.rho_witness, jsr_gap_at_s_lo=r.jsr_gap_at_s_lo, norm=r.norm,
                  even_split_hi=r.even_hi, oldest_lag_hi=r.oldest_hi)

# %% [markdown]
# ## What the condition allows for notebook 06's k-of-n reuse
#
# In 06 a round waits for k of n workers; the n − k late gradients are cached and applied in the next
# update, one round old (lag 1, so window 2). With **equal weight per gradient** the update is
# (1/k)·(Σ fresh + Σ late): stale / fresh weight = (n − k)/k, and Theorem 1 needs
# (n − k)/k ≤ a/2b ≤ 1/2, i.e. k ≥ 2n/3 at best (a = b). 06's k = n/4 gives (n − k)/k = 3: a stale factor
# 3·(2b/a) = 6·b/a times the allowance. 06's main reuse arm scales the late gradients so that they weigh
# c = 1/2 of the fresh ones (factor c·2b/a = b/a). The table compares these factors with the window-2
# worst-case bracket (β_0 = 1/b): "yes" below s_lo (converges for every curvature sequence), "no" above
# s_hi (a curvature sequence — here h ≡ b, a quadratic — diverges), "?" in between.

# %%
w2 = worst_case[worst_case.window == 2].set_index("b_over_a")
cases = [(f"equal weight, k = n/{1 / f:g}", (1 - f) / f) for f in reuse_fractions]
cases += [(f"06 reuse weight c = {c:g}", c) for c in reuse_masses]
rows = []
for name, ratio in cases:
    row = {"case": name, "stale / fresh": ratio,
           "within a/2b when": f"b/a ≤ {1 / (2 * ratio):g}" if ratio <= 0.5 else "never (a/2b ≤ 1/2)"}
    for ratio_ba, r in w2.iterrows():
        s = ratio * 2 * ratio_ba
        row[f"factor, b/a {ratio_ba:g}"] = s
        row[f"covered, b/a {ratio_ba:g}"] = "yes" if s < r.s_lo else "no" if s > r.s_hi else "?"
    rows.append(row)
reuse = pd.DataFrame(rows).set_index("case")
print(reuse.round(3).to_string())

# %% [markdown]
# Read: the allowance a/2b is at most 1/2, so equal-weight reuse with k < 2n/3 is outside Theorem 1 for
# every curvature range; at 06's k = n/4 it is 6·b/a times the allowance and three times past the
# worst-case window-2 boundary (2b/a): with β_0 = 1/b a quadratic of curvature b diverges. k = n/2
# (stale / fresh 1) lands on 2b/a itself, where h ≡ b neither converges nor diverges ("?"). 06's scaled
# reuse (c = 1/2) is outside the allowance unless a = b, but inside the worst-case boundary. 06 tunes its
# learning rate (β_0 need not be 1/b), so this bounds what the theorem can promise there, not what 06 sees.

# %% [markdown]
# ## Ledger

# %%
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
                f"$k = {k}$: condition {'holds' if th.lag_condition(beta, a, b) else 'violated'}")
    sn.plotting.legend_right(ax); plt.show()


# %%
show_delayed(4, 1.0, 1.0, a, b, w0)

# %%
sn.widgets.panel(show_delayed, k=(1, 10, 1), beta0_times_b=(0.1, 2.0, 0.05), stale=(0.0, 60.0, 0.5),
                 a=(0.1, 2.0, 0.05), b=(0.5, 4.0, 0.1), w0=(-6.0, 8.0, 0.5), steps=(50, 600, 50),
                 labels={"k": "window k (lag weights)", "beta0_times_b": "fresh weight β₀ (× 1/b)",
                         "stale": "stale weight Σⱼβⱼ (× allowance a/2b·β₀)", "a": "curvature lower bound a",
                         "b": "curvature upper bound b", "w0": "start w₀", "steps": "updates"})

# %% [markdown]
# ## Checks
#
# Things a bug could break: Definition 1's ranges, the proven one-step bound, the literal reading's exit,
# the worst-case brackets (ordered; the divergent product's spectral radius recomputed from an explicit
# product of freshly built companion matrices; the searched lower bound at s_lo below the certified upper
# bound; the worst case over all splits not above a single split's divergent point nor above the benign
# run, whose sequence is one of all; the oldest lag diverging by 2b/a, which is proven above).

# %%
for name, (lo, hi, h_min, h_max) in ranges.items():   # Definition 1: h inside [a, b]
    assert lo - 1e-9 <= h_min <= h_max <= hi + 1e-9, name
for k, (beta, e, bound) in runs.items():               # Theorem 1: condition, bound, convergence
    assert th.lag_condition(beta, a, b), k
    assert np.all(np.abs(e[1:]) <= bound + 1e-12), f"bound violated for k={k}"
    assert abs(e[-1]) < tol, f"k={k} did not converge: {e[-1]}"
assert not th.lag_condition(beta_bad, a, violate["b_over_a"] * a)   # past the measured boundary the condition is broken
assert literal["exit step"].notna().all()              # literal reading: infeasible for every c, k >= 2
assert (literal["exit step"] <= literal["bound ⌈log2(1/bc)⌉+1"]).all()
assert len(boundary) == len(boundary_windows) * len(boundary_b)   # every (window, range) scanned
assert (boundary.hi / boundary.lo <= 1 + 1.5 * boundary_resolution).all() or np.isinf(boundary.hi).any()

# %%
for (window, ratio), r in witnesses.items():
    assert 0 < r["s_lo"] <= r["s_hi"] < np.inf, (window, ratio)
    explicit = [wc.companion(*r["labels"][i]) for i in r["word"]]
    P = functools.reduce(lambda acc, M: M @ acc, explicit, np.eye(window))   # time order: first step rightmost
    assert np.max(np.abs(np.linalg.eigvals(P))) > 1, (window, ratio)     # the witness diverges
    lower, _ = wc.jsr_lower(wc.vertex_set(a, a * ratio, window, r["s_lo"])[0])
    assert lower <= r["jsr_hi"] < 1, (window, ratio, lower, r["jsr_hi"])  # searched ρ ≤ certified bound at s_lo
for r in worst_case.itertuples():
    assert r.s_lo <= min(r.even_hi, r.oldest_hi), r      # every split ⊇ one split: worst case can't be above
    assert r.s_lo <= r.hi * (1 + horizon_slack), r       # the benign run is one sequence among all
    assert r.oldest_hi <= 2 * r.b_over_a * (1 + worst_rel_tol) + 1e-12, r   # h ≡ b diverges past 2b/a

# %%
expected = {f"01.thm1.{kind}.window{w}.ba{bb / a:g}" for kind in ("boundary", "worst-case")
            for w in boundary_windows for bb in boundary_b}
assert set(ledger.records) == expected | {"01.thm1.bound", "01.literal.infeasible"}, sorted(ledger.records)
for r in ledger.records.values():
    assert r["role"] == ("claim" if ".worst-case." in r["id"] else "check"), r["id"]
    assert np.isfinite([r["statistic"], r["ci_low"], r["ci_high"]]).all(), r["id"]
    assert r["ci_low"] <= r["statistic"] <= r["ci_high"], r["id"]
    assert ".window" in r["id"] or r["ci_low"] == r["ci_high"] == r["statistic"], r["id"]  # exact: degenerate
