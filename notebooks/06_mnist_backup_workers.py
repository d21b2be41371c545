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
# # 06 — Backup workers on MNIST: does re-using the late gradients beat dropping them, in time?
#
# **Claim tested** (poster, "Background – Overview" and the MNIST experiments; `docs/research.md` §2):
# the master waits only for the **k fastest of n** workers; instead of dropping the late gradients
# (backup workers, Chen et al. 2016) it **caches them and uses them in the next update** — "to use
# stale gradients to improve model convergence rate while maintaining speedup gains under backup
# worker setups". Setting as on the poster: MNIST, the 784-800-500-10 network and LeNet, global batch
# B = 256 split B/n over the workers. The claim is about *time*, so the arms are compared at equal
# simulated wall-clock time. The design was fixed before any run (issue 22, `docs/preregistration.md`
# §§1–6 and its section "06"); `stalenb.backup` holds the mechanics, `stalenb.decisions` the rules.

# %% tags=["parameters"]
model = "mlp"               # network of the wide grid: the poster's 784-800-500-10 net (LeNet confirms one cell)
batch_size = 256            # global batch B, split B/n over the workers (poster)
pairs = [[4, 1], [4, 2], [4, 3], [8, 2], [8, 4], [8, 6], [16, 4], [16, 8], [16, 12]]  # cells (n, k): n 4, 8, 16
#                             (poster) and k n/4, n/2, 3n/4 (issue 22): the Holm family of the primary endpoint
stale_mass = 0.5            # reuse weight c: late gradients of a round weigh c times the fresh ones;
#                             1/2 is the most the poster's condition allows (a/2b at most 1/2)
sweep_masses = [0.125, 3.0]  # further c of the descriptive sweep: well inside the condition; past it
sweep_n = 8                 # the sweep runs at the cells of this n only, on the first seed (descriptive; budget)
delta = 0.01                # smallest effect of interest δ: 1 point of test accuracy (preregistration §1)
ratio_delta = 0.0953        # δ of the time ratios: ln 1.1, a speedup under 10 % does not pay for a protocol change
looks = [10, 20]            # cumulative seeds per arm at the two looks (Pocock; seeds 0-9, then 10-19)
seed_offset = 0             # first evaluation seed (a follow-up on fresh seeds sets it past the last seed run)
horizon_seeds = 20          # T(n) is the mean over the schedules of seeds 0-19, whatever seed_offset
mass_seeds = 10             # the matched drop's mass: mean over the schedules of seeds 0-9 (likewise fixed)
alpha = 0.05                # family error of every comparison over its looks (and of the Holm family)
sanity = 0.2                # validity gate: a run below this test accuracy (twice chance) voids its arm
epochs = 3                  # horizon T(n): simulated time sync needs for 3 epochs (fixed for the budget)
horizon_ratio = 0.95        # horizon check: sync at T must reach 0.95 of sync at 2T in every pilot seed
evals_per_epoch = 4         # evaluations per sync epoch, evenly spaced in updates (endpoint: mean of last three)
tail = 3                    # evaluations averaged at the end of a run (the endpoint, and the tuning score)
target_step = 0.005         # time-to-accuracy target: sync's worst tuning endpoint minus δ, floored to this
validation = 1000           # training digits held out for the lr search (7k train, 1k validation)
lr_center = 0.1             # grid centre for an update of gradient mass 1 (sync MLP at B 256 is stable at 0.1)
lr_span = 2.0               # the grid runs from centre/2 to centre times 2 ...
lr_points = 2               # ... with 2 points per side: 5 values a factor √2 apart
max_extend = 2              # grid extensions past an edge that holds the best value
tune_seeds = [100, 101, 102]  # lr-search seeds, disjoint from the evaluation seeds 0-19
straggler_p = 0.1           # probability that a job straggles
straggler_factor = 5.0      # slowdown of a straggling job
bandwidth = 1.25e8          # bytes/s of the server link: 1 Gbit/s, the source cluster's (primary setting)
fast_bandwidth = 1.25e9     # bytes/s of the sensitivity check: 10 Gbit/s
fast_pairs = [[8, 4]]       # cells of the 10 Gbit/s check (one cell: budget), on the first look's seeds
per_sample = "source"       # compute cost per sample: the source cluster's (timing.cluster)
latency = 1e-4              # seconds per message
lenet_pair = [8, 4]         # (n, k) of the LeNet confirmation (the middle cell); None skips it
lenet_epochs = 5            # LeNet horizon in sync epochs (issue 22: at least 5)
lenet_seeds = 5             # LeNet evaluation seeds (issue 22: at least 5; one LeNet run costs about 10 MLP runs)
lenet_tune_seeds = [100]    # LeNet lr-search seeds (one: budget)
lenet_points = 1            # LeNet grid points per side: 3 values a factor √2 apart (budget)
seconds_per_run = 4.2       # measured one-thread cost of one MLP evaluation run (AMD EPYC, probe of the compute plan)
lenet_seconds_per_run = 45.0  # the same for one LeNet run
jobs = 2                    # processes for runs missing from the cache (1: in this kernel)

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

import stalenb as sn
from stalenb import backup, claims, decisions, tuning
from stalenb import experiments as ex

sn.plotting.set_style()
quick = sn.paths.quick()  # quick mode shrinks the parameters in place
pairs, fast_pairs = ([tuple(p) for p in sn.paths.pick(v, [[4, 2]])] for v in (pairs, fast_pairs))
epochs, lenet_epochs, looks = sn.paths.pick((epochs, lenet_epochs, looks), (0.4, 0.1, [2, 3]))
lr_points, max_extend, jobs, tune_seeds = sn.paths.pick((lr_points, max_extend, jobs, tune_seeds), (1, 0, 1, [100]))
sweep_n, lenet_seeds, lenet_pair = sn.paths.pick((sweep_n, lenet_seeds, lenet_pair), (4, 2, [4, 2]))
horizon_seeds, mass_seeds = sn.paths.pick((horizon_seeds, mass_seeds), (3, 2))
eval_size = sn.paths.pick(None, 500)  # all 2,000 test digits; quick mode 500
design = decisions.Looks(looks, alpha)
seeds = list(range(seed_offset, seed_offset + looks[-1]))  # evaluation seeds; the first looks[0] are stage 1
evals = max(tail, math.ceil(evals_per_epoch * epochs))

# %%
assert not set(tune_seeds) & set(seeds), "tuning seeds must differ from evaluation seeds"
PRIMARY, m_cells = "reuse-vs-matched-drop", len(pairs)  # the pre-named family: Holm over these m cells
ledger = claims.Ledger("06", source="CS744 poster 'Benefits of staleness and asynchrony' "
                                    "(docs/seeds/benefits-of-staleness-poster.md)")
n_train = len(sn.data.mnist(train=True)) - validation
print(f"{'QUICK' if quick else 'paper'} profile: cells (n, k) = {pairs}, T = {epochs} sync epochs of {n_train} "
      f"digits, {evals} evaluations per run, looks at {looks} seeds from seed {seed_offset} "
      f"(coverage {design.coverage('improves'):.4f})")

# %% [markdown]
# The simulated cluster is notebook 07's (the source's per-sample cost on m4.2xlarge workers) with this
# notebook's stragglers and the source's **1 Gbit/s** link. T(n) is the simulated time sync with n workers
# needs for `epochs` epochs of the training split (mean over the schedules of seeds 0–19, the schedule alone;
# fixed, so that a follow-up on fresh seeds keeps T).

# %%
cluster = dict(latency=latency, per_sample=per_sample, straggler_p=straggler_p, straggler_factor=straggler_factor)
TEST, VAL = {"eval_splits": ("test",)}, {"eval_splits": ("val",)}  # what evaluation runs / the lr search read
bases = {m: backup.base_config(m, batch_size=batch_size, validation=validation, eval_size=eval_size,
                               bandwidth=bandwidth, **cluster).replace(**TEST) for m in dict.fromkeys([model, "lenet"])}
fast_base = backup.base_config(model, batch_size=batch_size, validation=validation, eval_size=eval_size,
                               bandwidth=fast_bandwidth, **cluster).replace(**TEST)
dims = {m: sum(p.numel() for p in sn.models.build(m).parameters()) for m in bases}
horizons = {n: backup.horizon(bases[model], n, epochs, n_train, range(horizon_seeds), dims[model])
            for n in sorted({n for n, _ in pairs})}
pd.Series(horizons, name="horizon T (simulated s)").rename_axis("n").to_frame().round(3)

# %% [markdown]
# ## Protocol and decision rule (fixed before any result below)
#
# - **Arms** per cell (n, k): **reuse** (k-of-n, late gradients cached and applied in the next update with
#   lag weight w = c·k/(n − k), so the late gradients of a round weigh at most c = 1/2 of the fresh ones:
#   the largest total the poster's condition Σ_{j≥1} β_j ≤ (a/2b)·β_0 admits), **mass-matched drop**
#   (drop at reuse's tuned lr × reuse's mean gradient mass Σw/k over the schedules of seeds 0–9: the same
#   mean step length with only fresh gradients; not tuned), **drop** (backup workers at its own tuned lr)
#   and, per n, **sync**. Async is not run (below). **Pairing:** the arms of one seed share the initial
#   model, the data stream and the straggler draws, but not the assignment of mini-batches to updates
#   (reuse applies a late job's batch one update later, drop never), so "paired" pairs those, not updates.
# - **Primary endpoint**, named before any run: **reuse − mass-matched drop**, test accuracy at equal
#   simulated time T(n) (the mean of the last three evaluations up to T, 2,000 test digits), per cell,
#   paired on seeds, rule *improves* with δ = 1 point: **supports** when the lower end of the interval
#   clears 0, **refutes** when its upper end lies below δ (a gain smaller than the smallest that matters),
#   else undecided. **Holm across the 9 cells** (`decisions.holm_answers`), decided from the p-values;
#   each record states its own answer and the Holm answer, and the ledger's interval is the cell's **Holm
#   decision interval** (its ends at the levels Holm's step-down spent on the cell,
#   `decisions.holm_intervals`; not a simultaneous confidence interval), so the ledger answer is the Holm one.
# - **Matched drop past drop's cliff** (a rule, applied whatever the data): a cell where drop's search
#   located a cliff (a tuning seed failed at some grid value) and whose matched lr lies above drop's
#   largest eligible tuned value (allowed by the cliff guard, no failed tuning seed at it) gets **no
#   primary answer** (undecided, the reason named; it counts in the Holm family with p = 1 and
#   runs no stage 2 for it): there the matched arm would be drop at a step size its own search never
#   showed stable. Each primary record carries the matched lr, that value, `matched_past_cliff`, and the
#   tuned arms' `at_edge` and `guard_fallback`.
# - **Secondary** (each its own record, same looks, **no Holm and no other multiplicity correction**: the
#   4 × 9 = 36 secondary records are read one by one): reuse − tuned drop at T (*improves*, δ = 1 point);
#   time to the target accuracy (below), reuse / matched drop and reuse / sync, as the log ratio with
#   δ = ln 1.1 (*improves* on −log ratio: **supports** when the interval of the log ratio lies below 0,
#   reuse faster; **refutes** when it lies above −ln 1.1, any speedup under 10 %); and "maintaining
#   speedup gains": reuse / tuned drop's time to target, **non-inferior** with margin ln 1.1 (supports when
#   the upper end of the log ratio lies below ln 1.1, refutes when its lower end lies above; the ledger's
#   threshold rule at ln 1.1, better below), from runs that exist anyway (it never adds a run).
#   Times are censored at T; a ratio with a censored run gets no verdict (the ratio would be biased to 1).
# - **Time-to-accuracy target**, fixed from the tuning runs before any evaluation run: the smallest sync
#   endpoint at T (validation accuracy) over the three tuning seeds and every n, minus δ, floored to 0.005.
# - **Seeds, two looks** (`decisions.Looks(looks)`, Pocock repeated intervals, coverage 0.9706 at each
#   look): stage 1 runs seeds 0–9 of every arm. After look 1, Holm runs over the 9 primary cells and
#   **every cell Holm leaves undecided** goes on (also one decided on its own); a secondary goes on when
#   undecided on its own. Stage 2 runs seeds 10–19 only for the arms of the comparisons that go on. This is
#   valid: repeated intervals keep their coverage under any stopping rule. The final Holm runs over each
#   cell's result at the look where it stopped. An undecided final record states the **fresh** seeds a
#   fixed-size follow-up needs for 80 % power at δ (the primary at α/9, a secondary at α) and the
#   core-hours of those new runs only; `-p 06:looks=[N] -p 06:seed_offset=20` runs them.
# - **Validity gate:** every record carries the diverged runs and runs below 0.2 accuracy per arm, counted
#   over **every run the arm has at the cell** (all seeds it ran, also stage-2 seeds run for another
#   comparison); an arm with either gets no verdict (undecided, the reason in `decide`). The differences
#   are still paired on the comparison's own seeds.
# - **Tuning** (validation split, never the test digits): 5 values a factor √2 apart, centred at
#   `lr_center` ÷ the arm's mean gradient mass, extended past an edge that holds the best (at most twice);
#   three tuning seeds (100–102), runs to T, score = mean validation accuracy of the last three
#   evaluations; with the cliff guard (no value at or next below one where a tuning seed failed). Each
#   arm's runs are cut at seed 100's update count at T: seeds 101–102 run that many updates (their own
#   schedules would reach T a little earlier or later). Reuse and drop per cell, sync per n.
# - **Horizon check** (a check, not a claim): sync at its tuned lr, on the tuning seeds, run to 2T: in every
#   seed the endpoint at T is at least 0.95 × the endpoint at 2T; the record also gives the gap in points
#   (sync at 2T − sync at T). E = 3 epochs is fixed for the budget (compute plan below).
# - **Sensitivity** (role check): the primary endpoint at (n 8, k 4) on a 10 Gbit/s link, its own T, reuse at
#   its 1 Gbit/s lr, seeds 0–9, one look (95 %). **LeNet** (claim): the primary endpoint at (n 8, k 4),
#   5 sync epochs, 5 seeds, one look (95 %), reuse tuned over 3 values √2 apart on **one** tuning seed —
#   a deviation from the three tuning seeds of issue 22, for the budget.
#
# **Compute plan** (cold, paper profile; one thread per run; AMD EPYC, AVX2, 2 cores; probes with
# `OMP_NUM_THREADS=1 nice -n 19` while another notebook ran beside them): one MLP update costs 8–28 ms by
# arm (drop at k = n/4 computes only k jobs; reuse and sync all n), one evaluation on 2,000 test + 2,000
# train-loss + 1,000 validation digits 0.145 s (0.034 s with the tuning's 100 digits); since then each run
# evaluates only the split it is read on (`eval_splits`: test for evaluation runs, validation for the
# search), which leaves every iterate and every read number as it was. Measured per run, all splits, at
# E = 3: evaluation runs 3.1–5.5 s (reuse ≈ 4.5, drop ≈ 3.3, sync ≈ 4.2), tuning runs 1.4–3.3 s (sync
# 2.4, drop 1.7, reuse 2.8), 10 Gbit/s runs 3.6–4.8 s, LeNet (5 epochs) 33 s (reuse), 26 s (drop), 21 s
# (tuning). Runs: tuning 9 × 5 × 3 reuse + as many drop + 3 × 5 × 3 sync = 315 (+ edge extensions)
# ≈ 720–870 s; horizon check 9 sync runs to 2T ≈ 75 s; stage 1, 9 cells × 3 arms × 10 seeds + 3 sync
# × 10 = 300 runs ≈ 1,125 s; stage 2 from 0 (every comparison decided at look 1) to ≈ 1,125 s (none);
# sweep 6 runs ≈ 27 s; 10 Gbit/s 20 runs ≈ 85 s; LeNet 3 (+ extensions) tuning + 10 runs ≈ 360–400 s;
# kernel, schedules and figures ≈ 60 s. **Total ≈ 2,450 s of one core without stage 2 and ≈ 3,600 s with
# a full one**: 41–60 min in one process (`reproduce --jobs 2` beside 05 gives each notebook one), about
# half that with this notebook's own 2 processes (`jobs = 2`, run alone). Async is not run: at 1 Gbit/s one
# async run at n = 16 costs ≈ 38 s (1,434 updates of B/16) and no record uses it. *Measured after the run*
# (same machine, notebook alone with `jobs = 2`): 29 min 50 s cold, about 50 s warm; after the evaluation
# savings, in one cold `make reproduce` of everything (one process beside 05): 45 min.

# %% [markdown]
# ### Power before the runs
#
# What the design can decide at paired SDs of 0.5, 1 and 2 points (the scale of the last design's
# reuse − drop intervals, issue 22): the half-width of each look's repeated interval for the primary (at
# Holm's first level α/9) and for a secondary (at α), and the seeds a fixed design would need for 80 %
# power at δ. An effect within a half-width of both 0 and δ stays undecided; the follow-ups then say how
# many fresh seeds would decide it.

# %%
for sd in (0.005, 0.01, 0.02):
    for role, a in (("primary", alpha / m_cells), ("secondary", alpha)):
        half = design.half_widths(sd, alpha=a)
        print(f"paired SD {sd:.3f}, {role} (α {a:.4f}): half-width "
              + ", ".join(f"{h:.4f} at {k} seeds" for h, k in zip(half, looks))
              + f"; fixed design for 80 % power at δ: {decisions.seeds_for_power(sd=sd, delta=delta, alpha=a)} seeds")

# %% [markdown]
# ## Step sizes tuned per arm (validation split)
#
# Each arm's grid is centred at `lr_center` divided by its mean gradient mass Σw/K to T (1 for sync and
# drop; above 1 for reuse). The table lists the chosen lr, the mass, and whether the best value still sits
# at an edge of the searched range after the extensions; `eligible` marks the values the cliff guard allows.

# %%
search = dict(lr_center=lr_center, lr_span=lr_span, lr_points=lr_points)
arms = {a: v for a, v in backup.backup_arms(bases[model], pairs, stale_mass, asynchronous=False).items()}
tune_cfgs, grids, masses = backup.tune_arms(arms, dims[model], horizons, seed=tune_seeds[0], fraction=1.0, evals=evals,
                                            **VAL, **search)
lr_best, lr_table = tuning.tune(tune_cfgs, grids, seeds=tune_seeds, tail=tail, max_extend=max_extend, jobs=jobs,
                                guard=True, sanity=sanity, desc="06 lr search")
lr_frame = pd.DataFrame([{**arms[a][0], "lr": lr_best[a], "mass": masses[a],
                          "grid": f"{min(grids[a]):.3g}–{max(grids[a]):.3g}",
                          "at_edge": bool(lr_table[(lr_table.arm == a) & lr_table.best].at_edge.iloc[0]),
                          "guard_fallback": bool(lr_table[lr_table.arm == a].guard_fallback.any()),
                          "largest_safe": backup.largest_safe_lr(lr_table, a, sanity),
                          "diverged_at": lr_table[(lr_table.arm == a) & (lr_table.diverged > 0)].lr.round(4).tolist()}
                         for a in arms])
lr_frame.drop(columns="c").round(4)

# %%
fig, axes = plt.subplots(1, len(horizons), figsize=(4.2 * len(horizons), 3.4), squeeze=False, sharey=True)
curves = lr_table.merge(pd.DataFrame([arms[a][0] for a in arms]), on="arm")
for ax, n in zip(axes[0], horizons):
    sns.lineplot(curves[curves.n == n], x="lr", y="val_acc", hue="family", style="k", marker="o", seed=0, ax=ax,
                 legend=ax is axes[0, -1])
    ax.set(xscale="log", title=f"n = {n}", xlabel="learning rate", ylabel="validation accuracy at T")
fig.suptitle(f"lr search ({model}, mean of seeds {tune_seeds}, run to T): each arm's lr is its eligible maximum",
             fontsize="medium")
fig.tight_layout()
sn.plotting.save_figure(fig, "06_lr_search");

# %% [markdown]
# The time-to-accuracy target, fixed here from the tuning runs before any evaluation run: sync's smallest
# endpoint at T (validation accuracy) over the tuning seeds and every n, minus δ, floored to `target_step`.

# %%
target = backup.tta_target(lr_table, [backup.arm_name("sync", n) for n in horizons], delta, target_step)
print(f"time-to-accuracy target: {target:.3f} test accuracy (sync's worst tuning endpoint at T minus δ = {delta})")

# %% [markdown]
# ## Horizon check: has sync flattened by T?
#
# Sync at its tuned lr on the tuning seeds, run to 2T with the same evaluation spacing; per seed the endpoint
# (mean of the last three evaluations) at T over the endpoint at 2T. A check: it holds when every seed is at
# or above `horizon_ratio`; `gap_points` is the largest gain from T to 2T (sync at 2T − sync at T, points).

# %%
sync_at = {n: backup.arm_name("sync", n) for n in horizons}
long = [({"n": n, "seed": s}, cfg.replace(steps=2 * cfg.steps)) for n, a in sync_at.items() for s in tune_seeds
        for cfg in [backup.at_horizon(arms[a][1].replace(lr=lr_best[a], seed=s), dims[model], horizons[n], evals)]]
hl = ex.run_all(long, jobs=jobs, desc="06 horizon check").history


def endpoints(h):
    """One sync run to 2T: its endpoint up to T (its first half of updates) and at 2T."""
    h = h.sort_values("step")
    at_t = h[h.step <= h.step.max() // 2].test_acc.tail(tail).mean()
    return pd.Series({"T": at_t, "2T": h.test_acc.tail(tail).mean()})


for n in horizons:
    h = hl[hl.n == n]
    ends = h.groupby("seed")[["step", "test_acc"]].apply(endpoints)
    ratio_t, gap = ends["T"] / ends["2T"], 100 * (ends["2T"] - ends["T"])
    ledger.record(f"06.horizon.n{n}", role="check", statistic=float(ratio_t.min()), threshold=horizon_ratio,
                  quote=f"sync has reached ≥ {horizon_ratio:.0%} of its final accuracy by T in every pilot seed",
                  test=f"min over tuning seeds {tune_seeds} of sync's endpoint at T ÷ at 2T (n = {n}, lr "
                       f"{lr_best[sync_at[n]]:.3g}, T = {horizons[n]:.3g} s)", runs=len(ratio_t), seeds=len(ratio_t),
                  diverged={"sync": int(h.groupby("seed").diverged.any().sum())}, tune_seeds=tune_seeds,
                  gap_points=float(gap.max()), gap_points_per_seed=gap.round(3).tolist())
ledger.frame().tail(len(horizons))

# %% [markdown]
# ## Evaluation runs, stage 1 (seeds 0–9 of every arm)
#
# Every run ends at the last update completed by T(n). `configs` maps each (n, k, family) to its labels and
# its config at the tuned lr (matched drop: drop at reuse's lr × reuse's mean mass over the schedules of seeds
# 0–9). `cliff` applies the rule fixed above, before any evaluation run: a cell whose matched lr lies past
# drop's largest eligible tuned value gets no primary answer.

# %%
configs, matched_lr = {}, {}
for a, (lab, cfg) in arms.items():
    configs[(lab["n"], lab["k"], lab["family"])] = (lab, cfg.replace(lr=lr_best[a]))
    if lab["family"] == "reuse":
        n, k = lab["n"], lab["k"]
        matched_lr[(n, k)] = lr_best[a] * backup.mean_mass(cfg, range(mass_seeds), dims[model], horizons[n])
        d_lab, d_cfg = arms[backup.arm_name("drop", n, k)]
        configs[(n, k, "matched")] = ({**d_lab, "arm": backup.arm_name("matched", n, k), "family": "matched"},
                                      d_cfg.replace(lr=matched_lr[(n, k)]))

# %%
tuned = lr_frame.set_index("arm")
cliff = {}


def drop_failed(arm):  # did a tuning seed of the arm fail somewhere on its grid (a located cliff)?
    return bool(tuning.failed(lr_table[lr_table.arm == arm], sanity).any())


for n, k in pairs:
    drop, reuse = backup.arm_name("drop", n, k), backup.arm_name("reuse", n, k)
    safe = backup.largest_safe_lr(lr_table, drop, sanity)
    cliff[(n, k)] = {"matched_lr": matched_lr[(n, k)], "drop_largest_safe_lr": safe,
                     "matched_past_cliff": safe is None or (drop_failed(drop) and matched_lr[(n, k)] > safe),
                     "at_edge": {f: bool(tuned.at_edge[x]) for f, x in (("reuse", reuse), ("drop", drop))},
                     "guard_fallback": {f: bool(tuned.guard_fallback[x])
                                        for f, x in (("reuse", reuse), ("drop", drop))}}
pd.DataFrame(cliff).T


# %%
def run_arms(wanted, desc):
    """Run (or load) ``{(n, k, family): seeds}`` cut at T(n); the per-run table and the history."""
    specs = [s for key, ss in wanted.items() for s in
             backup.specs_at_horizon(configs[key][0], configs[key][1], ss, dims[model], horizons[key[0]], evals)]
    res = ex.run_all(specs, jobs=jobs, desc=desc)
    h = res.history.assign(T=lambda d: d.n.map(horizons))
    return backup.run_table(h, ["n", "k", "family", "arm", "seed"], target, horizons, tail), h, res.updates


stage1 = {key: seeds[:looks[0]] for key in configs}
table, hist, upd = run_arms(stage1, "06 stage 1")
print(f"stage 1: {len(table)} runs, {int(table.diverged.sum())} diverged, {int((table.test_acc < sanity).sum())} "
      f"below {sanity}")

# %% [markdown]
# ## The comparisons at each look
#
# `look(cell, claim, m)` pairs the claim's two arms on the first m seeds, applies the validity gate over every
# run the two arms have at the cell (and, for a time ratio, refuses a verdict when a paired run is censored;
# for the primary, the cliff rule) and returns the pairing, the look's answer and m. After look 1, Holm over
# the 9 primary cells decides which of them go on.

# %%
COMPARISONS = {  # claim: arms a and b, metric, sign of the gain, δ, decision rule, whether it may add runs
    PRIMARY: ("reuse", "matched", "test_acc", 1, delta, "improves", True),
    "reuse-vs-drop": ("reuse", "drop", "test_acc", 1, delta, "improves", True),
    "tta-reuse-over-matched": ("reuse", "matched", "log_tta", -1, ratio_delta, "improves", True),
    "tta-reuse-over-sync": ("reuse", "sync", "log_tta", -1, ratio_delta, "improves", True),
    "speedup-maintained": ("reuse", "drop", "log_tta", -1, ratio_delta, "noninferior", False)}


def look(cell, claim, m):
    a, b, metric, sign, d, rule, _ = COMPARISONS[claim]
    p = backup.pair_arms(table, a, b, *cell, seeds[:m], metric, sanity=sanity)
    p["censored"] = metric == "log_tta" and min(p["reached"].values()) < m
    p["cliff"] = claim == PRIMARY and cliff[cell]["matched_past_cliff"]
    ok = p["valid"] and not p["censored"] and not p["cliff"]
    return p, (design.answer(sign * p["diffs"], rule=rule, delta=d) if ok else None), m


def goes_on(key, r):
    """Whether a comparison's arms get stage 2: a primary cell Holm leaves undecided at look 1, a secondary
    undecided on its own (one that never adds runs, and a gated one, never)."""
    if r is None or len(looks) == 1:
        return False
    return holm1[key[0]]["answer"] == "undecided" if key[1] == PRIMARY else COMPARISONS[key[1]][6] and not r["final"]


# %%
first = {(cell, c): look(cell, c, looks[0]) for cell in pairs for c in COMPARISONS}
holm1 = dict(zip(pairs, decisions.holm_intervals([first[(cell, PRIMARY)][1] for cell in pairs])))
pending = [key for key, (_, r, _) in first.items() if goes_on(key, r)]
print(f"look 1: {len(first) - len(pending)} of {len(first)} comparisons stop, {len(pending)} go on to stage 2; "
      f"primary cells Holm leaves undecided: {[c for c in pairs if holm1[c] and holm1[c]['answer'] == 'undecided']}")

# %% [markdown]
# ## Stage 2 (seeds 10–19, only the arms of the comparisons that go on)
#
# Then every comparison is read again at the look where it stopped, gated over every run its arms now have
# (a stage-2 seed run for another comparison counts); "speedup-maintained" reads look 2 when it was undecided
# at look 1 and both its arms already have the stage-2 seeds. The final Holm runs over these results.

# %%
def family_key(n, k, fam):
    return (n, n, "sync") if fam == "sync" else (n, k, fam)


stage2 = {family_key(*cell, fam): seeds[looks[0]:] for cell, c in pending for fam in COMPARISONS[c][:2]}
if stage2:
    more, more_h, more_u = run_arms(stage2, "06 stage 2")
    table, hist, upd = (pd.concat([x, y], ignore_index=True) for x, y in ((table, more), (hist, more_h), (upd, more_u)))
free = [key for key, (_, r, _) in first.items() if r is not None and not r["final"] and not COMPARISONS[key[1]][6]
        and all(family_key(*key[0], f) in stage2 for f in COMPARISONS[key[1]][:2])]
final = {key: look(*key, looks[-1] if key in pending or key in free else looks[0]) for key in first}
holm = dict(zip(pairs, decisions.holm_intervals([final[(cell, PRIMARY)][1] for cell in pairs])))
print(f"stage 2: {sum(len(s) for s in stage2.values())} runs of {len(stage2)} arms")

# %% [markdown]
# ## One ledger record per claim and cell
#
# Test accuracy in points; a time ratio as its log (reuse / other; below 0 = reuse faster). `decide` of an
# undecided record gives the fresh seeds and core-hours a follow-up needs (the primary at α/9, the others at
# α), or the reason it has no verdict (validity gate, censored run, cliff rule).

# %%
quote = ("use stale gradients to improve model convergence rate while maintaining speedup gains "
         "under backup worker setups")


def why(p, r, answer, alpha_f=alpha, cost=seconds_per_run, rerun=None):
    """The ``decide`` text and follow-up fields of a record whose (ledger) ``answer`` is undecided."""
    if p.get("cliff"):
        return {"decide": f"no primary answer (rule fixed before the runs): the matched lr "
                          f"{p['cliff_lr'][0]:.4g} lies past drop's largest eligible tuned lr {p['cliff_lr'][1]}"}
    if r is None:
        reason = "a run was censored at T (never reached the target)" if p.get("censored") else "the validity gate"
        return {"decide": f"no verdict: {reason}; over {p['runs']} runs diverged {p['diverged']}, below {sanity}: "
                          f"{p['below']}"}
    if answer != "undecided":
        return {}
    rerun = (rerun or "-p 06:looks=[{n}]") + f" -p 06:seed_offset={seed_offset + looks[-1]}"
    return decisions.follow_up(r, 2, cost, alpha_f, rerun)


# %%
def primary_extra(cell, own):
    """The primary's Holm decision interval and answer, and the cliff rule's numbers."""
    extra = dict(cliff[cell])
    h = holm[cell]
    if h:
        extra |= {"holm_answer": h["answer"], "own_ci": list(own),
                  "holm_decision_interval": [h["ci_low"], h["ci_high"]],
                  "holm_decision_levels": [h["level_low"], h["level_high"]], "holm_tie": h["tie"]}
    return extra


# %%
def record(cell, claim):
    n, k = cell
    (a, b, metric, sign, d, rule, _), (p, r, m) = COMPARISONS[claim], final[(cell, claim)]
    own = (r["ci_low"], r["ci_high"]) if r else (-math.inf, math.inf)  # no verdict: an unbounded interval
    lo, hi = own if sign > 0 else (-own[1], -own[0])
    extra = {"own_answer": r["answer"] if r else "undecided", "look": looks.index(m) + 1, "decision_rule": rule}
    extra |= primary_extra(cell, own) if claim == PRIMARY else {}
    p["cliff_lr"] = (cliff[cell]["matched_lr"], cliff[cell]["drop_largest_safe_lr"])
    (lo, hi), answer = extra.get("holm_decision_interval", (lo, hi)), extra.get("holm_answer", extra["own_answer"])
    lrs = {f: float(configs[family_key(n, k, f)][1].lr) for f in (a, b)}
    what = "test accuracy" if metric == "test_acc" else f"log time to {target:.3f} test accuracy"
    test = (f"{a} − {b} {what} at T = {horizons[n]:.3g} simulated s ({model}, n = {n}, k = {k}, 1 Gbit/s), paired "
            f"on seeds, Pocock look {extra['look']} of {looks}, rule {rule}"
            + (", Holm decision interval across the 9 cells" if "holm_answer" in extra
               else ", no multiplicity correction"))
    ni = rule == "noninferior"  # the ledger's threshold rule at ln 1.1, better below, is the same decision
    return ledger.record(f"06.{claim}.n{n}k{k}", role="claim", quote=quote, test=test,
                         statistic=float(np.mean(p["diffs"])) if r is None else sign * r["statistic"], ci_low=lo,
                         ci_high=hi, threshold=d if ni else 0.0, margin=d, better="above" if sign > 0 else "below",
                         rule="threshold" if ni else "improves", runs=2 * len(p["diffs"]), seeds=len(p["diffs"]),
                         figures=["06_reuse_vs_drop"], diverged=p["diverged"], below_sanity=p["below"],
                         gate_runs=p["runs"], reached=p["reached"], lr_tuned=lrs, tune_seeds=tune_seeds,
                         coverage=design.coverage(rule), horizon_s=horizons[n], reuse_weight_c=stale_mass,
                         **({"target": target} if metric == "log_tta" else {}), **extra,
                         **why(p, r, answer, alpha / m_cells if claim == PRIMARY else alpha))


# %%
for cell in pairs:
    for claim in COMPARISONS:
        record(cell, claim)
ledger.frame()

# %% [markdown]
# ## Accuracy against simulated time
#
# Test accuracy (2,000 test digits) the system holds at each evaluation fraction of the horizon T(n), linear
# between evaluations; mean over the first look's seeds, band = 95 % interval.

# %%
fracs = np.arange(1, evals + 1) / evals
first_seeds = hist[hist.seed.isin(seeds[:looks[0]])]
acc = pd.concat([backup.value_at(part, ["arm", "seed"], horizons[n] * fracs, interpolate=True)
                 for n, part in first_seeds.groupby("n")], ignore_index=True)
acc = acc.merge(table[["arm", "n", "k", "family"]].drop_duplicates("arm"), on="arm")
fig, axes = plt.subplots(1, len(horizons), figsize=(4.4 * len(horizons), 3.6), squeeze=False)
for ax, n in zip(axes[0], horizons):
    part = acc[acc.n == n].assign(k=lambda d: d.k.astype(str))
    sns.lineplot(part, x="at", y="test_acc", hue="family", style="k", errorbar=("ci", 95), seed=0, ax=ax,
                 legend=ax is axes[0, -1])
    ax.set(title=f"{model}, n = {n}", xlabel="simulated seconds", ylabel="test accuracy",
           ylim=(max(0.5, part.test_acc.quantile(0.05) - 0.02), 1.0))
fig.suptitle(f"B = {batch_size}, 1 Gbit/s, stragglers p = {straggler_p}, ×{straggler_factor:g}; tuned lrs",
             fontsize="medium")
fig.tight_layout()
sn.plotting.save_figure(fig, "06_accuracy_vs_time");

# %%
recs = pd.DataFrame(ledger.records.values())
recs = recs[recs.role == "claim"].assign(claim=lambda d: d.id.str.split(".").str[1],
                                         setting=lambda d: d.id.str.split(".").str[2])
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for ax, shown, scale, label in (
        (axes[0], ["reuse-vs-matched-drop", "reuse-vs-drop"], 100, "test accuracy difference at T (points)"),
        (axes[1], ["tta-reuse-over-matched", "tta-reuse-over-sync", "speedup-maintained"], 1,
         f"log time-to-{target:.3f} ratio, reuse / other")):
    for j, claim in enumerate(shown):
        r = recs[recs.claim == claim].reset_index(drop=True)
        x, lo, hi = np.arange(len(r)) + 0.15 * (2 * j - 1), r.ci_low.fillna(-9.0), r.ci_high.fillna(9.0)
        err = [scale * (r.statistic - lo).clip(0), scale * (hi - r.statistic).clip(0)]
        ax.errorbar(x, scale * r.statistic, yerr=err,
                    fmt="o", capsize=3, label=claim)
        ax.set_xticks(np.arange(len(r)), r.setting, fontsize="small")
    ax.axhline(0, color="0.4", ls="--")
    for line in ([delta] if scale > 1 else [-ratio_delta, ratio_delta]):  # δ; ∓ln 1.1 (improves, non-inferior)
        ax.axhline(scale * line, color="0.6", ls=":")
    ax.set(ylabel=label, xlabel="cell (n, k)", ylim=(-8, 8) if scale > 1 else (-1, 1))
    ax.legend(fontsize="x-small")
fig.suptitle("reuse vs mass-matched drop (Holm decision intervals), drop and sync at equal simulated time; "
             "dotted: δ", fontsize="medium")
fig.tight_layout()
sn.plotting.save_figure(fig, "06_reuse_vs_drop");

# %% [markdown]
# ## Where reuse helps, hurts or diverges: the reuse-weight sweep (descriptive)
#
# Reuse at its tuned lr (tuned for c = 1/2) with other total late weights c, minus drop at its tuned lr,
# test accuracy at T, on the first evaluation seed at the cells of n = `sweep_n` († = diverged). c > 1/2 breaks
# the poster's condition; with k = n/4 the lag weight is w = c/3, so c = 3 is the rule read literally.

# %%
sweep_specs = []
for (n, k, fam), (lab, cfg) in configs.items():
    if fam == "reuse" and n == sweep_n:
        for c in sweep_masses:
            sweep_specs += backup.specs_at_horizon({**lab, "arm": f"{lab['arm']} c={c:g}", "c": c},
                                                   cfg.replace(lag_weights=(backup.stale_weight(c, n, k),)),
                                                   seeds[:1], dims[model], horizons[n], evals)
sw = backup.run_table(ex.run_all(sweep_specs, jobs=jobs, desc="06 sweep").history, ["n", "k", "c", "seed"], target,
                      horizons, tail)
first_drop = (table.family == "drop") & (table.seed == seeds[0])
drops = table.loc[first_drop, ["n", "k", "test_acc"]].rename(columns={"test_acc": "drop"})
cells = sw.merge(drops, on=["n", "k"]).assign(diff=lambda d: d.test_acc - d["drop"])
cells["setting"] = "n=" + cells.n.astype(str) + " k=" + cells.k.astype(str)
heat = cells.pivot(index="setting", columns="c", values="diff")
note = cells.assign(t=[f"{100 * d:+.1f}" + ("†" if v else "") for d, v in zip(cells["diff"], cells.diverged)]).pivot(
    index="setting", columns="c", values="t")
fig, ax = plt.subplots(figsize=(1.4 * heat.shape[1] + 3, 0.5 * heat.shape[0] + 1.8))
lim = max(0.01, float(np.nanmax(np.abs(heat.to_numpy()))))
sns.heatmap(100 * heat, annot=note, fmt="", cmap="RdBu", center=0, vmin=-100 * lim, vmax=100 * lim, ax=ax,
            cbar_kws={"label": "reuse(c) − drop at T (points)"})
ax.set(xlabel="total late weight c", ylabel="", title=f"{model}: reuse-weight sweep at the tuned lr (seed {seeds[0]})")
sn.plotting.save_figure(fig, "06_reuse_weight_sweep");

# %% [markdown]
# ## Sensitivity: the primary endpoint on a 10 Gbit/s link (check)
#
# The cells of `fast_pairs` with the link 10× faster: T recomputed for the faster link, reuse at its 1 Gbit/s
# tuned lr, the matched drop at that lr × reuse's mass on this link; seeds 0–9, one look (95 %), no Holm.

# %%
fast_design = decisions.Looks([looks[0]], alpha)


def pair_run(base, cell, lr, dim, T, run_seeds, n_evals, desc, mass_from):
    """Reuse at ``lr`` and drop at lr × reuse's mean mass (over the schedules of ``mass_from``) at one cell on
    ``base``: per-run table and matched lr."""
    arms2 = {v[0]["family"]: v for v in backup.backup_arms(base, [cell], stale_mass, asynchronous=False).values()}
    m_lr = lr * backup.mean_mass(arms2["reuse"][1], mass_from, dim, T)
    specs = backup.specs_at_horizon(arms2["reuse"][0], arms2["reuse"][1].replace(lr=lr), run_seeds, dim, T, n_evals)
    specs += backup.specs_at_horizon({**arms2["drop"][0], "family": "matched"}, arms2["drop"][1].replace(lr=m_lr),
                                     run_seeds, dim, T, n_evals)
    h = ex.run_all(specs, jobs=jobs, desc=desc).history
    return backup.run_table(h, ["n", "k", "family", "seed"], target, {cell[0]: T}, tail), m_lr


# %%
for n, k in fast_pairs:
    T_fast = backup.horizon(fast_base, n, epochs, n_train, range(horizon_seeds), dims[model])
    lr = lr_best[backup.arm_name("reuse", n, k)]
    ft, m_lr = pair_run(fast_base, (n, k), lr, dims[model], T_fast, seeds[:looks[0]], evals, "06 10 Gbit/s",
                        range(mass_seeds))
    p = backup.pair_arms(ft, "reuse", "matched", n, k, seeds[:looks[0]], sanity=sanity)
    r = fast_design.answer(p["diffs"], rule="improves", delta=delta) if p["valid"] else None
    ledger.record(f"06.link10g.reuse-vs-matched-drop.n{n}k{k}", role="check", quote=quote,
                  test=f"reuse − mass-matched drop test accuracy at T = {T_fast:.3g} s on a 10 Gbit/s link (n = {n}, "
                       f"k = {k}; reuse lr {lr:.3g} tuned at 1 Gbit/s, matched lr {m_lr:.3g}), one look, no Holm",
                  statistic=float(np.mean(p["diffs"])), ci_low=r["ci_low"] if r else -math.inf,
                  ci_high=r["ci_high"] if r else math.inf,
                  threshold=0.0, margin=delta, rule="improves", runs=2 * len(p["diffs"]), seeds=len(p["diffs"]),
                  diverged=p["diverged"], below_sanity=p["below"], lr_tuned={"reuse": lr, "matched": m_lr},
                  tune_seeds=tune_seeds, coverage=fast_design.coverage("improves"), look=1, horizon_s=T_fast)
ledger.frame().tail(len(fast_pairs))

# %% [markdown]
# ## Confirmation: LeNet
#
# The poster's LeNet at one cell, the primary endpoint: reuse (lr tuned on the validation split) against drop
# at reuse's lr × mass, horizon `lenet_epochs` sync epochs, `lenet_seeds` seeds, one look (95 %), its own record.
# **Deviation** (budget): reuse's lr is tuned on one seed (`lenet_tune_seeds`), not the three of the MLP grid.

# %%
lenet_summary = "LeNet confirmation not run in this profile (lenet_pair is None)"
if lenet_pair:
    ln, lk = lenet_pair
    lenet_design = decisions.Looks([lenet_seeds], alpha)
    lenet_run_seeds = list(range(seed_offset, seed_offset + lenet_seeds))
    lenet_T = backup.horizon(bases["lenet"], ln, lenet_epochs, n_train, range(horizon_seeds), dims["lenet"])
    lenet_evals = max(tail, math.ceil(evals_per_epoch * lenet_epochs))
    reuse_arm = {a: v for a, v in backup.backup_arms(bases["lenet"], [(ln, lk)], stale_mass, False).items()
                 if v[0]["family"] == "reuse"}
    cfgs, grids_l, _ = backup.tune_arms(reuse_arm, dims["lenet"], {ln: lenet_T}, seed=lenet_tune_seeds[0], fraction=1.0,
                                        evals=lenet_evals, **VAL, lr_center=lr_center,
                                        lr_span=2 ** (lenet_points / 2), lr_points=lenet_points)
    lenet_lr, _ = tuning.tune(cfgs, grids_l, seeds=lenet_tune_seeds, tail=tail, max_extend=max_extend, jobs=jobs,
                              guard=True, sanity=sanity, desc="06 LeNet lr search")
    lr_l = lenet_lr[next(iter(reuse_arm))]
    lt, lm_lr = pair_run(bases["lenet"], (ln, lk), lr_l, dims["lenet"], lenet_T, lenet_run_seeds, lenet_evals,
                         "06 LeNet", range(lenet_seeds))
    lp = backup.pair_arms(lt, "reuse", "matched", ln, lk, lenet_run_seeds, sanity=sanity)
    lr_ = lenet_design.answer(lp["diffs"], rule="improves", delta=delta) if lp["valid"] else None
    lenet_summary = lt.groupby("family").test_acc.describe()[["count", "mean", "std", "min", "max"]].round(4)
lenet_summary

# %%
if lenet_pair:
    ledger.record(f"06.lenet.reuse-vs-matched-drop.n{ln}k{lk}", role="claim", quote=quote,
                  test=f"LeNet: reuse − mass-matched drop test accuracy at T = {lenet_T:.3g} s ({lenet_epochs} sync "
                       f"epochs, n = {ln}, k = {lk}, 1 Gbit/s), paired on seeds, one look, no Holm",
                  statistic=float(np.mean(lp["diffs"])), ci_low=lr_["ci_low"] if lr_ else -math.inf,
                  ci_high=lr_["ci_high"] if lr_ else math.inf, threshold=0.0, margin=delta, rule="improves",
                  runs=2 * len(lp["diffs"]), seeds=len(lp["diffs"]), figures=["06_reuse_vs_drop"],
                  diverged=lp["diverged"], below_sanity=lp["below"], lr_tuned={"reuse": lr_l, "matched": lm_lr},
                  tune_seeds=lenet_tune_seeds, coverage=lenet_design.coverage("improves"), look=1,
                  horizon_s=lenet_T, deviation="reuse's lr tuned on one seed (budget), not three",
                  **why(lp, lr_, lr_["answer"] if lr_ else "undecided", cost=lenet_seconds_per_run,
                        rerun="-p 06:lenet_seeds={n}"))

# %% [markdown]
# ## What the data say
#
# Computed from the ledger records (no number typed in by hand).

# %%
def pts(r, scale=100, unit=" points"):
    lo = r["ci_low"] if r["ci_low"] is not None else -math.inf
    hi = r["ci_high"] if r["ci_high"] is not None else math.inf
    return f"{scale * r['statistic']:+.2f}{unit} [{scale * lo:+.2f}, {scale * hi:+.2f}] → {r['answer']}"


for n, k in pairs:
    r = {c: ledger.records[f"06.{c}.n{n}k{k}"] for c in COMPARISONS}
    p = r[PRIMARY]
    print(f"n = {n}, k = {k} (lr reuse {p['lr_tuned']['reuse']:.3g}, matched {p['lr_tuned']['matched']:.3g}, "
          f"drop's largest eligible {p['drop_largest_safe_lr']}{', PAST THE CLIFF' if p['matched_past_cliff'] else ''}"
          f"; look {p['look']}, {p['seeds']} seeds):"
          f"\n  PRIMARY reuse − matched drop: {pts(p)} (own answer {p['own_answer']}, Holm {p.get('holm_answer')})"
          f"\n  reuse − drop: {pts(r['reuse-vs-drop'])}"
          f"\n  log time to {target:.3f}: reuse/matched {pts(r['tta-reuse-over-matched'], 1, '')}; "
          f"reuse/sync {pts(r['tta-reuse-over-sync'], 1, '')}; reuse/drop (non-inferior, ln 1.1) "
          f"{pts(r['speedup-maintained'], 1, '')}")
answers = pd.Series([r["answer"] for r in ledger.records.values() if r["role"] == "claim"]).value_counts()
print("claims:", answers.to_dict())

# %%
ended = table.groupby("arm", as_index=False).agg(n=("n", "first"), family=("family", "first"),
                                                 diverged=("diverged", "sum"))


def show(n=pairs[0][0], families=("sync", "drop", "reuse", "matched")):
    d = acc[(acc.n == n) & acc.family.isin(families)].assign(k=lambda d: d.k.astype(str))
    bad = int(ended[(ended.n == n) & ended.family.isin(families)].diverged.sum())
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if len(d):
        sns.lineplot(d, x="at", y="test_acc", hue="family", style="k", errorbar=("ci", 95), seed=0, ax=ax)
        sn.plotting.legend_right(ax)
    ax.set(title=f"{model}, n = {n} (tuned lrs): " + (f"{bad} runs DIVERGED" if bad else "no run diverged"),
           xlabel="simulated seconds", ylabel="test accuracy")
    return fig


show();

# %%
sn.widgets.panel(show, n=sorted(horizons), families=[("sync", "drop", "reuse", "matched"), ("reuse", "matched"),
                                                     ("drop", "reuse"), ("sync", "reuse")],
                 labels={"n": "workers n", "families": "protocols"})

# %% [markdown]
# ## Checks (true whatever the verdicts)
#
# 1. k-of-n reuse with k = n is exactly sync (no gradient is ever late), history and simulated times.
# 2. Drop discards exactly the late jobs: each update applies k gradients of the current model and drops the
#    other n − k, none ready before the k-th applied one; reuse applies every gradient.
# 3. Simulated time is monotone in every run and no run passes its horizon T.
# 4. The protocol ran as registered: every arm has the first look's seeds, and the second look's exactly when
#    a comparison it belongs to went on; the ledger holds exactly the expected records, each with the rule,
#    δ and direction registered, seeds and look number of the design, its diverged counts over every run of
#    its arms at the cell, and for the primary the Holm answer equal to `decisions.holm_answers` and to the
#    ledger's answer, stage 2 for exactly the cells Holm left undecided at look 1, and no answer past the cliff.

# %%
ref = bases[model].replace(protocol="sync", workers=pairs[0][0], steps=4, eval_every=2, lr=lr_center)
a, b = ex.run_all([({}, ref), ({}, ref.replace(protocol="k-of-n", k=ref.workers, late="reuse", lag_weights=(0.3,)))],
                  progress=False).runs
pd.testing.assert_frame_equal(a.history, b.history)
pd.testing.assert_frame_equal(a.updates, b.updates)
assert upd[upd.family == "reuse"].applied.all()
u = upd[upd.family.isin(["drop", "matched"])]  # per (arm, seed, step): k fresh gradients kept, the n − k latest dropped
per = u.groupby(["arm", "seed", "step"]).agg(k=("k", "first"), n=("n", "first"), kept=("applied", "sum"),
                                             rows=("applied", "size"))
kept, gone = (u[m].groupby(["arm", "seed", "step"]) for m in (u.applied, ~u.applied))
per = per.join(kept.staleness.max().rename("kept_lag")).join(kept.time.max().rename("kept_t"))
per = per.join(gone.time.min().rename("gone_t"))
bad = per[(per.kept != per.k) | (per.rows != per.n) | (per.kept_lag != 0) | ~(per.gone_t >= per.kept_t - 1e-12)]
assert bad.empty, bad.head()
for (arm, seed), h in hist.groupby(["arm", "seed"]):
    assert h.sim_time.is_monotonic_increasing and h.sim_time.max() <= h["T"].iloc[0] + 1e-12, (arm, seed)

# %%
counts = table.groupby(["n", "k", "family"]).seed.apply(sorted)
for key, got in counts.items():
    assert got == seeds[:looks[-1] if key in stage2 else looks[0]], (key, got)
assert set(counts.index) == set(configs)
expected = {f"06.{c}.n{n}k{k}" for n, k in pairs for c in COMPARISONS} | {f"06.horizon.n{n}" for n in horizons}
expected |= {f"06.link10g.reuse-vs-matched-drop.n{n}k{k}" for n, k in fast_pairs}
expected |= {"06.lenet.reuse-vs-matched-drop.n{}k{}".format(*lenet_pair)} if lenet_pair else set()
assert set(ledger.records) == expected, sorted(set(ledger.records) ^ expected)
valid_primary = [final[(cell, PRIMARY)][1] for cell in pairs]
if all(valid_primary):
    assert [holm[c]["answer"] for c in pairs] == decisions.holm_answers(valid_primary)
if len(looks) > 1:  # stage 2 took exactly the primary cells Holm left undecided at look 1
    went_on = {c for c, x in pending if x == PRIMARY}
    assert {c for c in pairs if holm1[c] and holm1[c]["answer"] == "undecided"} == went_on

# %%
for rec in ledger.records.values():
    claim = rec["id"].split(".")[1]
    if claim not in COMPARISONS:
        continue
    a, b, _, _, d, rule, _ = COMPARISONS[claim]
    ni = rule == "noninferior"
    assert rec.get("rule", "threshold") == ("threshold" if ni else "improves") and rec["decision_rule"] == rule
    assert rec["threshold"] == (d if ni else 0) and rec["margin"] == d and rec["seeds"] in looks, rec["id"]
    assert rec["look"] == looks.index(rec["seeds"]) + 1 and set(rec["diverged"]) == {a, b}, rec["id"]
    cell = tuple(int(x) for x in rec["id"].split(".")[2][1:].split("k"))
    assert rec["gate_runs"] == {f: len(table[table.arm == configs[family_key(*cell, f)][0]["arm"]]) for f in (a, b)}
    assert rec["answer"] == rec.get("holm_answer", rec["answer"]), rec["id"]
    assert rec["answer"] != "undecided" or rec["decide"], rec["id"]
    if claim == PRIMARY and rec["matched_past_cliff"]:
        assert rec["answer"] == "undecided" and "past drop's largest" in rec["decide"], rec["id"]
