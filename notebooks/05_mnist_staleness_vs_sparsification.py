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
# # 05 — Staleness vs sparsification on MNIST: a decisive test of paper 1's claims
#
# **Claims tested** (Candela, Franzese, Filippone & Michiardi, arXiv 1910.09466; `docs/research.md` §1,
# `docs/seeds/sparsification-vs-staleness-abstract.txt`):
#
# - **v1 (2019 abstract):** "sparsification *consistently improves* over vanilla SGD and current
#   alternatives to mitigate the effects of staleness";
# - **later versions (v3 / HAL):** sparsification *does not harm* SGD under staleness; its effect is
#   negligible compared with vanilla SGD.
#
# The body of paper 1 is not available: its models, staleness model, densities and step sizes are
# unknown, so each is a parameter below. The decision rules, the smallest effect that matters and the
# seed plan were written before any run (`docs/preregistration.md`, issue 22) and are restated here.

# %% tags=["parameters"]
model = "mlp"                     # the poster's 784-800-500-10 network
levels = ["tau32", "n16"]         # stale levels: tauN synthetic τ ~ U{0..N} on one worker (one EF memory);
#                                   nN N workers, staleness from their timing (one EF memory per worker)
primary = "top-k 1% +EF"          # the sparsifier named in advance (the setting of Stich et al. 2018)
density = 0.01                    # kept fraction ρ of the primary sparsifier
dc_lambdas = [0.04, 0.2, 1.0]     # DC-ASGD's λ searched with its lr (0.04 is MXNet's default)
momenta = [0.3, 0.6, 0.9]         # momentum values searched with their lr (asynchrony begets momentum)
lr_centres = {"tau0": {"vanilla": 0.28, "primary": 0.28},
              "tau32": {"vanilla": 0.035, "primary": 0.018, "staleness-aware": 0.28, "DC-ASGD": 0.035,
                        "momentum": 0.035},
              "n16": {"vanilla": 0.05, "primary": 0.025, "staleness-aware": 0.28, "DC-ASGD": 0.05,
                      "momentum": 0.05}}  # grid centres (effective α/(1 − μ) for momentum): the last design's picks
lr_points = 1                     # grid values per side of a centre: 3 values a factor √2 apart
max_extend = 3                    # √2 steps the search may add past an edge that holds the best value
tune_seeds = [1000, 1001, 1002]   # three tuning seeds, disjoint from the evaluation seeds 0, 1, …
validation = 1000                 # training digits held out for tuning: 7k train / 1k validation of the 8k
batch_size = 32                   # samples per gradient
epochs = 4                        # passes over the 7k training digits per run (tuning and evaluation alike):
#                                   one more than the last design, whose τ_max 32 curves still rose at its end
evals_per_epoch = 4               # evaluations per epoch; the endpoint is the mean of the last `tail`
tail = 3                          # evaluations averaged into the endpoint
delta = 0.01                      # smallest effect of interest: 1 point of test accuracy (preregistration §1)
alpha = 0.05                      # family error of each comparison over its looks
looks = [10, 20]                  # cumulative evaluation seeds per arm at the two looks (group-sequential)
seed_offset = 0                   # first evaluation seed (a follow-up on fresh seeds sets it past the last run)
lr_practitioner = 0.01            # the practitioner view's lr, fixed in advance: the default step of
#                                   tf.keras.optimizers.SGD, what an untuned run uses
sanity_acc = 0.2                  # validity gate: an arm with a run below twice chance (or diverged) gets no verdict
flat_rise = 0.005                 # horizon check: the τ 0 vanilla curve rises by less than δ/2 over its last eighth
run_seconds = 7.0                 # cost of one evaluation run on the reference machine (AMD EPYC, 1 thread), for
#                                   the core-hours an undecided record would need
timing_check_workers = 16         # n of the timing-emergent staleness check
jobs = 2                          # processes for runs missing from the cache (the machine's 2 cores)

# %%
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import seaborn as sns

import stalenb as sn
from stalenb import claims, decisions, stats, tuning
from stalenb import experiments as ex

# %%
sn.plotting.set_style()
quick = sn.paths.quick()  # quick mode shrinks the parameters in place
n_train, n_test = len(sn.data.mnist(train=True)) - validation, len(sn.data.mnist(train=False))
epoch = n_train // batch_size  # server updates per pass over the training split
steps, every = sn.paths.pick((epochs * epoch, epoch // evals_per_epoch), (40, 10))
levels = sn.paths.pick(levels, ["tau8", "n4"])
lr_centres = sn.paths.pick(lr_centres, {"tau0": lr_centres["tau0"], "tau8": lr_centres["tau32"],
                                        "n4": lr_centres["n16"]})
dc_lambdas, momenta, max_extend = sn.paths.pick((dc_lambdas, momenta, max_extend), ([0.04], [0.9], 0))
tune_seeds, looks, jobs = sn.paths.pick((tune_seeds, looks, jobs), ([1000], [2, 3], 1))
design = decisions.Looks(looks, alpha)
bad = [lv for lv in levels if not re.fullmatch(r"(tau\d+|n\d+)", lv) or lv not in lr_centres]
assert not bad, f"levels must look like 'tau32' or 'n16' and have lr_centres; got {bad}"
eval_size = sn.paths.pick(None, 500)  # None: all 2,000 test digits
ledger = claims.Ledger("05", source="Candela et al. 2019, arXiv 1910.09466: v1 abstract (v1) and v3/HAL (later)")
print(f"{'QUICK' if quick else 'paper'} profile: {n_train} train / {validation} validation / {n_test} test; "
      f"{steps} updates per run ({steps / epoch:.1f} epochs), evaluations every {every}; looks at {looks} seeds")
print(f"interval coverage per look: improves {design.coverage('improves'):.4f}, "
      f"equivalence {design.coverage('equivalent'):.4f} (Pocock, family error {alpha} over the looks)")

# %% [markdown]
# ## Protocol (fixed before any run; the values are in the parameters cell)
#
# **Levels.** The sources' asynchrony has *n* workers whose staleness comes from their speeds and one
# error-feedback memory each; the synthetic level (one worker, τ ~ U{0…τ_max}, one memory) isolates
# the delay. `levels` holds one of each: τ_max 32 (mean delay 16) and 16 timing-emergent workers (mean
# delay 15) on a free link, so that compute alone sets the delays and every arm of a seed sees the same
# ones (a sparse push would otherwise travel faster than a dense one and change the schedule).
# τ_max 0 is the no-staleness reference.
#
# **Arms** per stale level: vanilla async SGD (Dean et al. 2012), the primary sparsifier (`primary`,
# named in advance), and the alternatives v1 claims to beat — the staleness-aware lr α / max(1, τ)
# (Zhang et al. 2016), DC-ASGD (Zheng et al. 2017) with λ searched over `dc_lambdas`, and momentum
# re-tuned for staleness (Mitliagkas et al. 2016) with μ searched over `momenta`. DC-ASGD and momentum
# thus get three times the tuning of the others: conservative against v1's claim.
#
# **Step sizes.** A √2-spaced grid around each arm's centre (`lr_centres`: the previous design's
# picks, which only place the grid), extended by up to `max_extend` √2 steps past an edge that holds
# the best; three tuning seeds `tune_seeds`, each run to the evaluation horizon; the choice is the best
# mean validation accuracy (mean of the last `tail` evaluations on the held-out digits) among the values
# where no tuning seed failed (diverged, or ended below `sanity_acc`) *and* none failed at the next larger
# value (one step clear of the cliff). The test digits choose nothing.
#
# **Views.** *Tuned*: every arm at its own step size (the fair question). *Practitioner*: vanilla and the
# primary at one lr fixed in advance, `lr_practitioner` = 0.01, the default of Keras' SGD — what a run
# without tuning uses; it was not chosen to make any arm diverge (the last design's practitioner lr,
# vanilla's tuned lr without staleness, diverged at τ_max ≥ 8 by construction).
#
# **Endpoint.** Test accuracy on all 2,000 test digits, mean of the last `tail` evaluations
# (`evals_per_epoch` per epoch), paired on seeds: same seed ⇒ same initial model, batches and delays.
#
# **Decision rules** (`stalenb.decisions`), δ = `delta` = 1 point: a 1-point gap is about two binomial
# standard errors of one evaluation on 2,000 digits near 95 % accuracy, and less would not change a
# practitioner's choice.
# - "improves" (v1): *supports* when the interval of primary − other lies above 0; *refutes* when it lies
#   below δ (any gain is smaller than what matters; takes precedence); else *undecided*.
# - "does not harm" (later): non-inferiority: *supports* when the interval lies above −δ, *refutes*
#   when it lies below −δ.
# - "negligible effect" (later): equivalence (TOST): *supports* when the interval lies inside (−δ, δ),
#   *refutes* when wholly outside — a large gain refutes "negligible" as much as a loss.
# - "consistently … at every level": intersection–union for *supports*, Holm across the levels (and
#   comparisons) for *refutes* (`decisions.every_level`). **Primary endpoint:** `05.v1.all-levels`
#   (v1's sentence as written); the per-level records are secondary, without a correction across them.
# - **Validity gate:** a comparison whose arm diverged or ended below `sanity_acc` in any seed it ran
#   gets no accuracy verdict: its record is undecided and names the divergence, and a `05.trains`
#   check per (view, level) records it as a finding.
#
# **Seeds from power, group-sequential** (`decisions.Looks`). Look 1 after `looks[0]` seeds per arm,
# look 2 after `looks[1]`; Pocock's repeated confidence intervals keep each comparison's error at
# `alpha` over both looks (coverage printed above). A comparison decided at look 1 stops; the arms of the
# rest get the second stage. One still undecided states the fresh seeds a fixed-size follow-up would need
# for 80 % power at δ at its observed paired SD, and their core-hours; `-p 05:looks=[N]
# -p 05:seed_offset=20` runs it. The power this buys is computed below, before any run.
#
# **Checks, apart from the claims.** The τ_max 0 vanilla curve has flattened by the horizon (its mean
# over the last eighth of the run exceeds that over the eighth before by less than `flat_rise`); async
# with τ = 0 is sequential SGD; every arm beats chance at τ_max 0; the delays are the configured ones and
# the same for every arm of a seed.
#
# **Compute plan** (AMD EPYC, 2 cores, one thread per run: ≈ 5–9 s per 872-update run). Tuning: 20 arms ×
# 3 values × 3 seeds = 180 runs plus edge extensions; evaluation: 16 arms × 10 seeds, then 10 more seeds
# for the undecided comparisons' arms: ≈ 500 runs, ≈ 30 min with `jobs` 2. Left out for the budget (and
# available as parameters): τ_max 8, the LeNet subset, other densities, random-k. *Measured after the
# run* (same machine, notebook alone): 543 runs (243 tuning, 3 edge rounds; 300 evaluation), 42 min 53 s
# cold, 31 s warm — more than planned. Each run now evaluates only the split it is read on (`eval_splits`)
# and top-k and DC-ASGD cost less (every number unchanged): in one cold `make reproduce` of everything
# (same machine, this notebook in one process beside the others) 05 took 62 min and the whole 84 min.

# %% [markdown]
# ### Power before the runs
#
# What the design can decide, at paired SDs of the size the last design measured (1.8 and 4.1 points at
# τ_max 8 and 32, issue 22) and at 0.5 point: the half-width of each look's interval, and the seeds a
# fixed design would need for 80 % power at δ. An effect within a half-width of 0 and of δ stays undecided.

# %%
for sd in (0.005, 0.018, 0.041):
    half = design.half_widths(sd)
    print(f"paired SD {sd:.3f}: half-width " + ", ".join(f"{h:.4f} at {k} seeds" for h, k in zip(half, looks))
          + f"; fixed design for 80 % power at δ: {decisions.seeds_for_power(sd=sd, delta=delta)} seeds")

# %% [markdown]
# ## Step-size search on the validation split

# %%
METHODS = {"vanilla": {}, "primary": {"compressor": "topk", "density": density, "error_feedback": True},
           "staleness-aware": {"rule": "staleness-aware"},
           **{f"DC-ASGD λ={lam:g}": {"rule": "dc-asgd", "dc_lambda": lam} for lam in dc_lambdas},
           **{f"momentum μ={mu:g}": {"momentum": mu} for mu in momenta}}
FAMILY = {m: m.split(" ")[0] for m in METHODS}  # "DC-ASGD λ=0.2" -> "DC-ASGD", "momentum μ=0.3" -> "momentum"
FREE_LINK = sn.Timing(bandwidth=float("inf"), latency=0.0)  # compute alone sets the delays: the same for every arm


def config(level, method, lr, seed=0, size=eval_size, split="test"):
    """One run; its evaluations compute the split it is read on (test, or val for tuning): nothing else changes."""
    kind, n = re.fullmatch(r"(tau|n)(\d+)", level).groups()
    timing = ({"staleness": None, "workers": int(n), "timing": FREE_LINK} if kind == "n"
              else {"staleness": sn.Uniform(int(n))})
    return sn.Config(protocol="async", model=model, batch_size=batch_size, steps=steps, eval_every=every,
                     eval_size=size, eval_splits=(split,), validation=validation, lr=lr, seed=seed,
                     **timing, **METHODS[method])


def grid(level, method):
    mu = METHODS[method].get("momentum", 0.0)
    centre = lr_centres[level][FAMILY[method]] * (1 - mu)  # same effective steps α / (1 − μ)
    return tuning.log_grid(centre, 2 ** (lr_points / 2), lr_points)  # a factor √2 apart


# %%
stale = list(levels)
arm_of = {f"{lv} {m}": (lv, m) for lv in ["tau0"] + stale
          for m in (["vanilla", "primary"] if lv == "tau0" else METHODS)}
arms = {a: config(lv, m, 0.1, seed=tune_seeds[0], split="val") for a, (lv, m) in arm_of.items()}
best, search = tuning.tune(arms, {a: grid(*arm_of[a]) for a in arms}, seeds=tune_seeds, tail=tail,
                           max_extend=max_extend, jobs=jobs, guard=True, sanity=sanity_acc, desc="05 lr search")
search["level"], search["method"] = zip(*search.arm.map(arm_of))
search["family"] = search.method.map(FAMILY)
print(f"{len(search)} (arm, lr) points × {len(tune_seeds)} seeds; best still at an edge: {int(search.at_edge.sum())}; "
      f"guard fell back (every value failed): {sorted(search[search.guard_fallback].arm.unique())}")

# %%
top = search[search.best].set_index("arm")
tuned = {}  # (level, family) -> (method variant, lr, validation accuracy)
for a, (lv, m) in arm_of.items():
    key = (lv, FAMILY[m])
    if key not in tuned or top.loc[a, "val_acc"] > tuned[key][2]:
        tuned[key] = (m, best[a], float(top.loc[a, "val_acc"]))
lr_prac = lr_practitioner
unguarded = search.loc[search.groupby("arm").val_acc.idxmax()].set_index("arm").lr  # the best without the guard
lr_table = pd.DataFrame([{"level": lv, "arm": fam, "variant": m, "lr": lr, "val_acc": v,
                          "at_edge": bool(top.loc[f"{lv} {m}", "at_edge"]),
                          "best without guard": unguarded[f"{lv} {m}"]}
                         for (lv, fam), (m, lr, v) in tuned.items()])
print(f"practitioner lr (fixed in advance): {lr_prac:g}; vanilla's tuned lr at τ_max 0: "
      f"{tuned[('tau0', 'vanilla')][1]:g}")
lr_table.round(4)

# %%
fig, axes = plt.subplots(1, len(stale) + 1, figsize=(4.3 * (len(stale) + 1), 3.6), sharey=True)
for ax, lv in zip(axes, ["tau0"] + stale):
    part = search[search.level == lv]
    sns.lineplot(part, x="lr", y="val_acc", hue="method", marker="o", seed=0, ax=ax, legend=lv == stale[-1])
    bad = part[part.diverged > 0]
    ax.scatter(bad.lr, bad.val_acc, marker="x", color="k", zorder=3, label="a seed diverged")
    ax.set(xscale="log", title=lv, xlabel="learning rate", ylabel="validation accuracy (mean of 3 seeds)")
sn.plotting.legend_right(axes[-1])
fig.suptitle(f"{model}: lr search (× = a tuning seed diverged there)", fontsize="medium")
fig.tight_layout()
sn.plotting.save_figure(fig, "05_lr_search");

# %% [markdown]
# ## Evaluation, look 1: every arm at `looks[0]` seeds
#
# Tuned view: every arm at its tuned step size (DC-ASGD and momentum at their chosen λ, μ). Practitioner
# view: vanilla and the primary at the practitioner lr at each stale level.

# %%
KEYS = ["view", "level", "arm", "seed"]
eval_arms = {("tuned", lv, fam): (m, lr) for (lv, fam), (m, lr, _) in tuned.items()}
eval_arms.update({("practitioner", lv, fam): (fam, lr_prac) for lv in stale for fam in ("vanilla", "primary")})


def evaluate(seeds_of, desc):
    """Run every arm at its seeds (cached runs are read back); the endpoint table and the histories."""
    specs = [({"view": v, "level": lv, "arm": fam, "seed": s}, config(lv, eval_arms[(v, lv, fam)][0],
                                                                       eval_arms[(v, lv, fam)][1], seed=s))
             for (v, lv, fam), seeds in seeds_of.items() for s in seeds]
    res = ex.run_all(specs, jobs=jobs, desc=desc)
    fin = ex.final(res.history, KEYS, tail=tail)
    fin["below_sanity"] = ~fin.diverged & ~(fin.test_acc >= sanity_acc)
    return res, fin


first, last = range(seed_offset, seed_offset + looks[0]), range(seed_offset, seed_offset + looks[-1])
res1, fin1 = evaluate({a: first for a in eval_arms}, "05 runs, look 1")
print(f"{len(res1)} runs ({res1.from_cache} from the cache); diverged: {int(fin1.diverged.sum())}")

# %%
COMPARISONS = []
for lv in stale:
    COMPARISONS += [{"claim": "v1", "view": "tuned", "level": lv, "other": o, "rule": "improves"}
                    for o in ("vanilla", "staleness-aware", "DC-ASGD", "momentum")]
    COMPARISONS += [{"claim": claim, "view": view, "level": lv, "other": "vanilla", "rule": rule}
                    for view in ("tuned", "practitioner") for claim, rule in
                    (("later.no-harm", "noninferior"), ("later.negligible", "equivalent"))]
    COMPARISONS += [{"claim": "v1", "view": "practitioner", "level": lv, "other": "vanilla", "rule": "improves"}]


# %%
def arms_of(fin, c):
    part = fin[(fin.view == c["view"]) & (fin.level == c["level"])]
    return {x: part[part.arm == x].set_index("seed").sort_index() for x in ("primary", c["other"])}


def gate(fin, c):
    """Counts per arm over every seed it ran, and whether both arms pass the validity gate."""
    arms = arms_of(fin, c)
    counts = {x: {"diverged": int(t.diverged.sum()), "below_sanity": int(t.below_sanity.sum()), "runs": len(t)}
              for x, t in arms.items()}
    return counts, all(decisions.valid_arm(t.test_acc, t.diverged, sanity=sanity_acc) for t in arms.values())


def answer(fin, c, n):
    a, b = (t[t.index < seed_offset + n] for t in arms_of(fin, c).values())
    return design.answer((a.test_acc - b.test_acc).to_numpy(), rule=c["rule"], delta=delta)


# %%
look1 = [answer(fin1, c, looks[0]) if gate(fin1, c)[1] else None for c in COMPARISONS]
going_on = [c for c, r in zip(COMPARISONS, look1) if r is not None and not r["final"]]
print(f"look 1: {sum(r is not None and r['final'] for r in look1)} of {len(COMPARISONS)} comparisons decided, "
      f"{sum(r is None for r in look1)} gated out, {len(going_on)} go on to look 2")

# %% [markdown]
# ## Look 2: the undecided comparisons' arms at `looks[1]` seeds
#
# The validity gate is then applied again over every seed each arm ran, for every comparison.

# %%
more = {(c["view"], c["level"], x) for c in going_on for x in ("primary", c["other"])}
res, fin = evaluate({a: last if a in more else first for a in eval_arms}, "05 runs, look 2")
hist, upd = res.history, res.updates
gates = [gate(fin, c) for c in COMPARISONS]
final_looks = [(counts, answer(fin, c, looks[-1] if c in going_on else looks[0]) if ok else None)
               for c, (counts, ok) in zip(COMPARISONS, gates)]
print(f"{len(res)} runs in all ({res.from_cache} from the cache); second-stage arms: {len(more)}")
pd.DataFrame([{**c, "look": r and r["look"], "seeds": r and r["seeds"], "answer": r["answer"] if r else "gated",
               "diff": r and r["statistic"], "low": r and r["ci_low"], "high": r and r["ci_high"]}
              for c, (_, r) in zip(COMPARISONS, final_looks)]).round(4)

# %% [markdown]
# ## Test accuracy along the run (tuned view)
#
# Mean over seeds, band = 95 % interval. A diverged run stops and keeps its last accuracy.

# %%
ORDER = ["vanilla", "primary", "staleness-aware", "DC-ASGD", "momentum"]
g = sns.relplot(hist[hist.view == "tuned"], x="step", y="test_acc", hue="arm", hue_order=ORDER, col="level",
                col_order=["tau0"] + stale, kind="line", seed=0, height=2.8, aspect=1.2)
g.set(ylim=(0.8, 1), ylabel="test accuracy", xlabel="server updates")
g.figure.suptitle(f"{model}, async SGD, each arm at its tuned lr (primary = {primary})", y=1.03, fontsize="medium")
sn.plotting.save_figure(g.figure, "05_accuracy_curves");

# %% [markdown]
# ## Endpoint per arm and level, both views (mean ± sd over the seeds each arm ran)

# %%
def heat(view, ax):
    f = fin[fin.view == view]
    mean = f.pivot_table(index="arm", columns="level", values="test_acc", aggfunc="mean")
    sd = f.pivot_table(index="arm", columns="level", values="test_acc", aggfunc="std").reindex_like(mean)
    idx = [m for m in ORDER if m in mean.index]
    annot = mean.loc[idx].map("{:.3f}".format) + sd.loc[idx].map(lambda s: "" if np.isnan(s) else f"\n±{s:.3f}")
    sns.heatmap(mean.loc[idx], annot=annot, fmt="", cmap="viridis", vmin=0.8, vmax=1, ax=ax, annot_kws={"fontsize": 8})
    ax.set(title=f"{model}, {view} view: test accuracy (mean of last {tail})", xlabel="level", ylabel="")


fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
for view, ax in zip(["tuned", "practitioner"], axes):
    heat(view, ax)
fig.tight_layout()
sn.plotting.save_figure(fig, "05_final_heatmap");

# %% [markdown]
# ## Bytes sent against accuracy
#
# Sparsification's first purpose is communication: bytes pushed over the run against the endpoint
# (tuned view; a dense MLP gradient is about 4 MB).

# %%
lf = fin[fin.view == "tuned"].groupby(["arm", "level"], as_index=False)[["test_acc", "bytes_sent"]].mean()
fig, ax = plt.subplots(figsize=(7.5, 4.2))
sns.scatterplot(lf, x="bytes_sent", y="test_acc", hue="arm", hue_order=ORDER, style="level", s=70, ax=ax)
ax.set(xscale="log", xlabel="bytes pushed over the run", ylabel="test accuracy (endpoint)",
       title=f"{model}: communication vs accuracy")
sn.plotting.legend_right(ax)
sn.plotting.save_figure(fig, "05_bytes_vs_accuracy");

# %% [markdown]
# ## Ledger: the validity gate, then one record per comparison
#
# First a check per (view, level): every arm trained (no diverged run, none below `sanity_acc`). A
# comparison whose arm fails it gets no accuracy verdict — the check *is* the finding.

# %%
for (view, lv), part in fin[fin.level != "tau0"].groupby(["view", "level"]):
    bad = part.groupby("arm")[["diverged", "below_sanity"]].sum().astype(int)
    lr_of = {fam: eval_arms[(view, lv, fam)][1] for fam in bad.index}
    ledger.record(f"05.trains.{view}.{lv}", role="check", quote="every arm trains at its step size (no diverged run, "
                  "no run below twice chance), so its accuracy can be compared",
                  test=f"{view} view, {lv}: runs that diverged or ended below {sanity_acc}, summed over arms",
                  statistic=int(bad.to_numpy().sum()), threshold=0.5, better="below", figures=["05_final_heatmap"],
                  runs=len(part), seeds=int(part.seed.nunique()), diverged=bad.diverged.to_dict(),
                  below_sanity=bad.below_sanity.to_dict(), lr=lr_of)

# %%
Q_V1 = ("sparsification consistently improves over vanilla SGD and current alternatives to mitigate "
        "the effects of staleness")
QUOTES = {"v1": Q_V1,  # the v1 abstract's words; the later versions' are known to us only as a summary:
          "later.no-harm": "(later versions, summarised) sparsification does not harm SGD under staleness",
          "later.negligible": "(later versions, summarised) its effect is negligible compared with vanilla SGD"}
READING = {("improves", "supports"): "a gain", ("noninferior", "supports"): "no loss beyond δ",
           ("equivalent", "supports"): "within ±δ", ("noninferior", "refutes"): "a loss beyond δ"}


# %%
def slug(c):
    head = f"v1.vs-{c['other'].lower()}" if c["claim"] == "v1" else c["claim"]
    return f"05.{head}.{c['level']}" + ("" if c["view"] == "tuned" else f".{c['view']}")


def reading(r):
    if r["answer"] == "undecided" or (r["rule"], r["answer"]) in READING:
        return READING.get((r["rule"], r["answer"]), "undecided")
    if r["rule"] == "improves":
        return "a loss" if r["ci_high"] < 0 else "a gain below δ"
    return "a gain beyond δ" if r["ci_low"] >= delta else "a loss beyond δ"


# %%
def follow_up(r):
    rerun = f"-p 05:looks=[{{n}}] -p 05:seed_offset={seed_offset + looks[-1]}"
    return decisions.follow_up(r, 2, run_seconds, alpha, rerun)["decide"]


def gated_text(c, counts):
    bad = [f"{x} diverged in {k['diverged']} and ended below {sanity_acc} in {k['below_sanity']} of {k['runs']} runs"
           for x, k in counts.items() if k["diverged"] or k["below_sanity"]]
    return f"no accuracy verdict (validity gate): {'; '.join(bad)}; see 05.trains.{c['view']}.{c['level']}"


# %%
def record(c, counts, r):
    arms = ("primary", c["other"])
    ni = c["rule"] == "noninferior"  # the ledger's threshold rule at −δ is the same decision
    common = dict(role="claim", quote=QUOTES[c["claim"]], margin=delta, figures=["05_decisions", "05_final_heatmap"],
                  view=c["view"], level=c["level"], comparison=f"{primary} − {c['other']}",
                  diverged={x: counts[x]["diverged"] for x in arms},
                  below_sanity={x: counts[x]["below_sanity"] for x in arms},
                  lr_tuned={x: eval_arms[(c["view"], c["level"], x)][1] for x in arms}, tune_seeds=tune_seeds,
                  variant={x: eval_arms[(c["view"], c["level"], x)][0] for x in arms},
                  rule="threshold" if ni else c["rule"], threshold=-delta if ni else 0.0, decision_rule=c["rule"])
    what = f"{model}, {c['level']}, {c['view']} lr: test accuracy of {primary} − {c['other']} (mean of the last {tail}"
    if r is None:
        runs = [k["runs"] for k in counts.values()]
        return ledger.record(slug(c), test=what + " evaluations)", statistic=float("nan"), ci_low=None, ci_high=None,
                             seeds=min(runs), runs=sum(runs), decide=gated_text(c, counts), gated=True, **common)
    return ledger.record(
        slug(c), test=what + f" evaluations), paired over seeds; {r['coverage']:.2%} repeated interval at look "
        f"{r['look']}", statistic=r["statistic"], ci_low=r["ci_low"], ci_high=r["ci_high"], seeds=r["seeds"],
        runs=2 * r["seeds"], decide=follow_up(r) if "seeds_needed" in r else None, look=r["look"], sd=r["sd"],
        coverage=r["coverage"], reading=reading(r), **common)


# %%
per_level = [record(c, counts, r) for c, (counts, r) in zip(COMPARISONS, final_looks)]
print(len(per_level), "per-level claim records;", sum(r is None for _, r in final_looks), "without a verdict (gated)")

# %% [markdown]
# ### "Consistently": at every level
#
# Intersection–union for *supports* (every level's lower end above 0), Holm across the levels and
# comparisons for *refutes* (`decisions.every_level`). A gated-out level leaves *supports* out of reach.

# %%
def distinct_runs(picked):
    arms = {(c["view"], c["level"], x) for c, _ in picked for x in ("primary", c["other"])}
    return int(sum(fin[["view", "level", "arm"]].apply(tuple, axis=1).isin(arms)))


def every_level(id, chosen, test):
    picked = [(c, r) for c, (_, r) in zip(COMPARISONS, final_looks) if chosen(c)]
    valid = [r for _, r in picked if r is not None]
    e = decisions.every_level(valid) if valid else {"statistic": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    low = e["ci_low"] if len(valid) == len(picked) else -np.inf  # a gated level: "every level" cannot hold
    open_ = ", ".join(slug(c) for c, r in picked if r and r["answer"] == "undecided")
    return ledger.record(id, role="claim", quote=Q_V1, rule="improves", margin=delta, threshold=0.0, test=test,
                         statistic=e["statistic"], ci_low=low, ci_high=e["ci_high"], figures=["05_decisions"],
                         seeds=min((r["seeds"] for r in valid), default=0), runs=distinct_runs(picked),
                         levels=[slug(c) for c, _ in picked], gated=[slug(c) for c, r in picked if r is None],
                         decide=f"the undecided levels: {open_}")


tuned_v1 = lambda c: c["claim"] == "v1" and c["view"] == "tuned"  # noqa: E731
every_level("05.v1.vs-vanilla.all-levels", lambda c: tuned_v1(c) and c["other"] == "vanilla",
            f"{model}, tuned: {primary} − vanilla at every stale level {stale}")
every_level("05.v1.all-levels", tuned_v1, f"{model}, tuned: {primary} − each of vanilla and the alternatives, "
            f"at every stale level {stale}")
ledger.frame()

# %% [markdown]
# ## Every claim record against its rule
#
# Each interval (primary − other) with the lines that decide it: 0 and δ for "improves", ±δ for the
# equivalence reading; colour = the answer.

# %%
R = ledger.records
claim_recs = pd.DataFrame([r for r in R.values() if r["role"] == "claim"])
fig, ax = plt.subplots(figsize=(8, 0.32 * len(claim_recs) + 1.2))
colours = {"supports": "C2", "refutes": "C3", "undecided": "0.5"}
for i, r in claim_recs.reset_index(drop=True).iterrows():
    low = max(r.ci_low, -0.2) if np.isfinite(r.ci_low) else -0.2
    ax.plot([low, r.ci_high], [i, i], color=colours[r.answer], lw=2)
    ax.plot(r.statistic, i, "o", color=colours[r.answer])
for x, ls in ((0, "-"), (delta, "--"), (-delta, ":")):
    ax.axvline(x, color="0.4", ls=ls, lw=1)
ax.set_yticks(range(len(claim_recs)), claim_recs.id.str.replace("05.", "", regex=False), fontsize="x-small")
ax.set(xlabel=f"test accuracy, {primary} − other (— 0, -- δ, ·· −δ)", title="05: answers (green supports, "
       "red refutes, grey undecided)")
sn.plotting.save_figure(fig, "05_decisions");

# %% [markdown]
# ## What the data say
#
# Printed from the ledger (nothing typed by hand).

# %%
for r in claim_recs.itertuples():
    extra = f" — {r.decide}" if r.answer == "undecided" and isinstance(r.decide, str) else ""
    print(f"{r.id:<44} {r.decision_rule:<11} {r.statistic:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}] "
          f"seeds {r.seeds:>2}: {r.answer.upper()}{extra}")
for r in (x for x in R.values() if x["id"].startswith("05.trains.")):
    print(f"{r['id']:<44} bad runs {r['statistic']} ({r['verdict']}); diverged {r['diverged']}")

# %% [markdown]
# **Reading it.** The tuned view is the fair question (does the sparsifier beat each method *at that
# method's best step size*?); the practitioner view repeats the common experiment (one lr, tuned without
# staleness). "Improves" needs a gain that clears 0; it is refuted when even the upper end of the gain
# stays below δ = 1 point — a gain too small to matter or a loss. "Does not harm" is refuted when the
# difference lies wholly beyond ±δ in either direction: a large *gain* refutes "negligible" as much as a
# loss does. A comparison whose arm diverged has no accuracy verdict; its `05.trains` check says so.
# Caveats: paper 1's models, staleness model and density are unknown; one density and two stale levels.

# %% [markdown]
# ## Explore the cached runs, or train one more
#
# `curves` picks among the runs above (no training); `train_one` trains one configuration on a
# button press (cached afterwards).

# %%
def curves(view="tuned", level=stale[0], arms_shown=tuple(ORDER)):
    d = hist[(hist.view == view) & (hist.level == level) & hist.arm.isin(arms_shown)]
    bad = int(d.groupby(["arm", "seed"]).diverged.any().sum()) if len(d) else 0
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if len(d):
        sns.lineplot(d, x="step", y="test_acc", hue="arm", seed=0, ax=ax)
        sn.plotting.legend_right(ax)
    ax.set(title=f"{model}, {view} view, {level}: " + (f"{bad} runs DIVERGED" if bad else "no run diverged"),
           ylim=(0, 1), ylabel="test accuracy")
    return fig


curves();

# %%
sn.widgets.panel(curves, view=["tuned", "practitioner"], level=["tau0"] + stale,
                 arms_shown=[tuple(ORDER), ("vanilla", "primary")],
                 labels={"view": "step sizes", "level": "staleness level", "arms_shown": "arms"})


# %%
def train_one(method="primary", level=stale[0], lr=lr_prac, n=40):
    h = sn.simulate(config(level, method, lr).replace(steps=n, eval_every=max(1, n // 10)))  # ten evaluations
    diverged = bool(h.diverged.any())
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(h.step, h.test_acc, marker="o", color="C3" if diverged else "C0")
    state = f"DIVERGED at update {int(h.step.iloc[-1])}" if diverged else f"{n} updates"
    ax.set(title=f"{method}, {level}, lr = {lr:g}: {state}", ylim=(0, 1), xlabel="server updates",
           ylabel="test accuracy")
    return fig


train_one(n=20);

# %%
sn.widgets.panel(train_one, run_button=True, method=list(METHODS), level=["tau0"] + stale, lr=(0.005, 1.0, 0.005),
                 n=(20, 660, 20), labels={"method": "method", "level": "staleness level", "lr": "step size η",
                                          "n": "server updates"})

# %% [markdown]
# ## Checks (what must hold whatever the verdict)
#
# 1. **Horizon** (a ledger check): the τ_max 0 vanilla curve has flattened — its mean test accuracy over
#    the last eighth of the run exceeds that over the eighth before by less than `flat_rise` (95 %
#    interval over seeds below it).
# 2. Async SGD with τ = 0 is sequential SGD: it equals a synchronous run with one worker on the same seed.
# 3. At τ_max 0 every arm beats chance by a wide margin (`sanity_acc`) — a bug check.
# 4. The delays are the configured ones: uniform on {0, …, τ_max} at the synthetic level (χ² test) and
#    never above τ_max; with n workers of random speed and no synthetic delay the mean is n − 1.
# 5. The protocol ran as registered: the records, their seeds (a look of the design), coverage and rules.
# 6. Pairing: at each level every arm of a seed saw the same delays (at the timing level the link is free,
#    so a sparse push does not change the schedule).

# %%
ref = hist[(hist.view == "tuned") & (hist.level == "tau0") & (hist.arm == "vanilla")]
cut = [ref.step.max() * q for q in (0.75, 0.875)]
rise = ref.groupby("seed").apply(lambda h: h[h.step > cut[1]].test_acc.mean()
                                 - h[(h.step > cut[0]) & (h.step <= cut[1])].test_acc.mean())
m, half, _, n = stats.ci95(rise)
ledger.record("05.horizon.flat", role="check", quote=f"the τ_max 0 vanilla curve has flattened by the horizon "
              f"(rise over the last eighth below {flat_rise})", test=f"mean test accuracy, last eighth − the eighth "
              f"before, vanilla at τ_max 0, {n} seeds", statistic=m, ci_low=m - half, ci_high=m + half,
              threshold=flat_rise, better="below", figures=["05_accuracy_curves"], seeds=n, runs=n)
print(f"rise over the last eighth: {m:+.4f} ± {half:.4f} (criterion < {flat_rise})")

# %%
cfg0 = config("tau0", "vanilla", lr_prac, size=500).replace(steps=40, eval_every=20)
sync, asyn = [r.history for r in ex.run_all([({}, cfg0.replace(protocol="sync", staleness=None, workers=1)),
                                                ({}, cfg0)], progress=False).runs]
diff = float(np.abs(sync.test_acc.to_numpy() - asyn.test_acc.to_numpy()).max())
print(f"max |accuracy difference| async τ=0 vs sync n=1: {diff:.4f}")
assert diff <= 0.01
at0 = fin[fin.level == "tau0"].groupby("arm").test_acc.mean()
print(at0.round(4).to_string())
assert (at0 > sanity_acc).all()

# %%
one = upd[(upd.arm == "vanilla") & (upd.view == "tuned")]
for lv in (x for x in stale if x.startswith("tau")):
    t = int(lv[3:])
    s = one[(one.level == lv) & (one.step >= t)].staleness.to_numpy()
    p = scipy.stats.chisquare(np.bincount(s, minlength=t + 1), len(s) * sn.Uniform(t).pmf()).pvalue
    print(f"{lv}: {len(s)} draws, mean {s.mean():.2f} (expected {t / 2:.1f}), χ² p = {p:.3f}")
    assert s.max() <= t and p > 1e-6  # P(fail) about 1e-6 per level for uniform draws
emerg = ex.run_all([({}, config("n4", "vanilla", lr_prac, size=200).replace(
    workers=timing_check_workers, steps=sn.paths.pick(200, 60), eval_every=200))], progress=False).updates
emerg = emerg[emerg.step >= timing_check_workers].staleness
print(f"timing-emergent, n = {timing_check_workers}: mean staleness {emerg.mean():.2f} "
      f"(n − 1 = {timing_check_workers - 1})")
assert abs(emerg.mean() - (timing_check_workers - 1)) <= 0.5

# %%
expected = {slug(c) for c in COMPARISONS} | {"05.v1.vs-vanilla.all-levels", "05.v1.all-levels", "05.horizon.flat"}
expected |= {f"05.trains.{v}.{lv}" for v in ("tuned", "practitioner") for lv in stale}
assert set(R) == expected, sorted(set(R) ^ expected)
for r, (c, (counts, res_c)) in zip(per_level, zip(COMPARISONS, final_looks)):
    assert (res_c is None) == bool(r.get("gated")), r["id"]  # gated exactly when an arm failed the gate
    assert r["decision_rule"] == c["rule"] and r["margin"] == delta, r["id"]
    if res_c is None:
        assert r["answer"] == "undecided" and "validity gate" in r["decide"], r["id"]
        continue
    assert r["seeds"] in looks and r["runs"] == 2 * r["seeds"], r["id"]
    assert np.isclose(r["coverage"], design.coverage(c["rule"])), r["id"]
    assert r["ci_low"] <= r["statistic"] <= r["ci_high"] and r["answer"] == res_c["answer"], r["id"]
    assert res_c["look"] == (2 if c in going_on else 1), r["id"]  # the second stage ran for look-1 undecided ones
for lv in stale:  # pairing: at each level every arm of a seed saw the same delays
    st = upd[(upd.view == "tuned") & (upd.level == lv) & (upd.seed == seed_offset)].groupby("arm").staleness
    seqs = [g.to_numpy() for _, g in st]
    assert all(len(q) == len(seqs[0]) and (q == seqs[0]).all() for q in seqs), lv
assert quick or (looks[0] >= 10 and len(tune_seeds) == 3 and steps >= 3 * epoch and every <= epoch // 4)
