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
# # 06 — Backup workers on MNIST: k-of-n with dropped vs re-used late gradients
#
# **Claim reproduced** (poster, "Background – Overview" and the MNIST experiments; `docs/research.md` §2):
# the master waits only for the **k fastest of n** workers; instead of dropping the late gradients
# (backup workers, Chen et al. 2016) it **caches them and uses them in the next update** — "to use
# stale gradients to improve model convergence rate while maintaining speedup gains under backup
# worker setups". Setting as on the poster: MNIST, LeNet and the 800-500-10 fully connected network,
# global batch B = 256 split B/n over the workers.
#
# Protocols (`stalenb.schedule`): **sync** (wait for all n), **drop** (k-of-n, late jobs cancelled),
# **reuse** (k-of-n, late gradients applied when they arrive, weighted), **async** (every gradient
# applied on arrival). Simulated time comes from a worker-timing model with stragglers; all protocols
# of one seed see the same slowdown draws.

# %% tags=["parameters"]
models = ["lenet", "mlp"]   # networks: the poster's LeNet and its 784-800-500-10 network
batch_size = 256            # global batch B, split B/n over the workers (poster)
workers = [4, 8, 16]        # numbers of workers n (LeNet)
mlp_workers = [8]           # n for the MLP (fewer settings, to bound the run time)
k_fractions = [0, 0.25, 0.5]  # k is max(1, f·n): 1, n/4, n/2 (k equal to n is sync)
stale_mass = 0.5            # reuse: late gradients of a round weigh c times the fresh ones in total
sweep_at = [8, 2]           # (n, k) of the lag-weight sweep (LeNet)
sweep_masses = [0.25, 1.0, 3.0]  # c values of the sweep (c 3 at n 8, k 2 gives every late gradient weight 1)
straggler_p = 0.1           # probability that a job straggles
straggler_factor = 5.0      # slowdown of a straggling job
per_sample = {"lenet": 1e-3, "mlp": 2.5e-4}  # simulated compute seconds per sample
bandwidth = 1.25e9          # bytes/s of the server link, each direction (10 Gbit/s)
latency = 1e-4              # seconds per message
lr = 0.1                    # learning rate of every protocol (sync LeNet is stable at B 256)
steps = 80                  # server updates per run (async: steps · n single-gradient updates)
eval_every = 20             # evaluate every this many updates
eval_size = 1000            # test digits per evaluation
target = 0.95               # test accuracy of the time-to-accuracy table
seeds = 3                   # seeds per setting
jobs = 2                    # processes for runs missing from the cache (1: in this kernel)

# %%
import numpy as np
import pandas as pd
import seaborn as sns
import matplotlib.pyplot as plt
import stalenb as sn
from stalenb import experiments as ex, speedup

sn.plotting.set_style()
quick = sn.paths.quick()
workers_ = sn.paths.pick(workers, workers[:1])
mlp_workers_ = sn.paths.pick(mlp_workers, workers[:1])
k_fractions_ = sn.paths.pick(k_fractions, k_fractions[-1:])
steps_, eval_every_, eval_size_ = sn.paths.pick((steps, eval_every, eval_size), (20, 10, 500))
seed_list = list(range(sn.paths.pick(seeds, 1)))
jobs_ = sn.paths.pick(jobs, 1)
n_train = len(sn.data.mnist(train=True))
dataset = "MNIST-10k (8k train / 2k test)" if n_train == 8000 else "MNIST"
print(f"{dataset}; {'QUICK' if quick else 'full'} mode: n = {workers_} (MLP {mlp_workers_}), k = max(1, f·n) for f in "
      f"{k_fractions_}, {steps_} steps, seeds {seed_list}")


# %% [markdown]
# ## Settings
#
# - **Timing**: a job of b samples takes `per_sample × b × s` seconds, with s = 5 for a straggling
#   job (probability 0.1) and s = 1 otherwise; every pull and push crosses the server's 10 Gbit/s link.
#   `per_sample` is fixed (not calibrated) so that runs are cached across sessions; 1 ms per LeNet sample
#   is of the order of one CPU core.
# - **Reuse weights**: a late gradient enters the next update with weight w relative to a fresh one.
#   With w = 1 a k = 1 round at n = 16 would add ~15 stale gradients to one fresh one and diverge
#   (the lag condition of notebook 01 is violated). stalenb sets w = c·k/(n − k) so that the late
#   gradients of a round weigh at most c = `stale_mass` of the fresh ones (the lag-indexed reading of
#   the poster's condition Σ β_j ≤ (a/2b) β_0), and sweeps c at one setting.
# - **Sizes** (run-time budget on 2 cores): 80 updates of B = 256 (≈ 2.6 epochs of the 8k digits), 3 seeds,
#   evaluation on 1000 test digits every 20 updates; the MLP only at n = 8. Async runs compute as many
#   gradients as sync (steps·n single-gradient updates with the same lr).

# %%
def base_for(model):
    timing = sn.Timing(per_sample=per_sample[model], slowdown=sn.timing.Straggler(straggler_p, straggler_factor),
                       latency=latency, bandwidth=bandwidth)
    return sn.Config(model=model, batch_size=batch_size, steps=steps_, eval_every=eval_every_,
                     eval_size=eval_size_, lr=lr, timing=timing)

specs = [({"model": m, **labels}, cfg) for m in models for labels, cfg in ex.backup_specs(
    base_for(m), workers_ if m == "lenet" else mlp_workers_, k_fractions_, stale_mass,
    sweep_at if m == "lenet" else None, sweep_masses, seed_list)]
res = ex.run_all(specs, jobs=jobs_, desc="06 runs")
hist, upd = res.history, res.updates
print(f"{len(res)} runs ({res.from_cache} from the cache), {int(hist.diverged.sum())} diverged")


# %% [markdown]
# ## Accuracy against server updates and against simulated time
#
# Top row: test accuracy per server update (sync and k-of-n; an async update is one small gradient,
# so it is left out here). Bottom row: against simulated seconds — where waiting for stragglers costs.
# Mean over seeds, band = ± 1 sd. Main settings only (the lag-weight sweep is shown further down).

# %%
def accuracy_figure(model, x_axes=("step", "sim_time")):
    d = hist[(hist.model == model) & ~hist.variant.str.contains(" c=")]
    d = d.assign(k_label=np.where(d.family.isin(["sync", "async"]), d.family, "k=" + d.k.astype(str)))
    ns = sorted(d.n.unique())
    fig, axes = plt.subplots(len(x_axes), len(ns), figsize=(4.2 * len(ns), 3.4 * len(x_axes)), squeeze=False, sharey=True)
    for row, x in enumerate(x_axes):
        for col, n in enumerate(ns):
            part = d[(d.n == n) & ((d.family != "async") | (x != "step"))]
            sns.lineplot(part, x=x, y="test_acc", hue="family", style="k_label", errorbar="sd", ax=axes[row, col],
                         legend=(row == 0 and col == len(ns) - 1))
            axes[row, col].set(title=f"{model}, n = {n}", xlabel={"step": "server updates", "sim_time": "simulated seconds"}[x],
                               ylim=(max(0.0, part.test_acc.min() - 0.02), 1.0), ylabel="test accuracy")
    if len(ns):
        axes[0, -1].legend(fontsize="x-small", loc="lower right")
    fig.suptitle(f"{dataset}, B = {batch_size}, stragglers p = {straggler_p}, ×{straggler_factor:g}", fontsize="medium")
    fig.tight_layout()
    return fig

fig = accuracy_figure("lenet")
sn.plotting.save_figure(fig, "06_lenet_accuracy");

# %%
fig = accuracy_figure("mlp")
sn.plotting.save_figure(fig, "06_mlp_accuracy");

# %% [markdown]
# ## Time to accuracy
#
# Simulated seconds until the test accuracy first reaches the target (mean over the seeds that reach
# it; `reached` = how many did within the run). Re-using the late gradients should reach the target
# earlier than dropping them at the same k if the poster's claim holds; sync pays for every straggler.

# %%
tta = ex.time_to_accuracy(hist, ["model", "n", "variant", "family", "k", "seed"], target, x="sim_time")
tta_steps = ex.time_to_accuracy(hist, ["model", "n", "variant", "seed"], target, x="step")
tta = tta.merge(tta_steps, on=["model", "n", "variant", "seed"])
table = tta.groupby(["model", "n", "variant"]).agg(
    seconds=("sim_time", "mean"), updates=("step", "mean"), reached=("sim_time", lambda s: f"{s.notna().sum()}/{len(s)}"))
table.round(2)

# %% [markdown]
# ## Does re-using late gradients beat dropping them?
#
# Paired on seed (same initial model, same batches, same slowdown draws), reuse − drop at the same
# (n, k): final test accuracy after the same number of updates, and time to the target. A 95 %
# t-interval above 0 means reuse is better; with 3 seeds per setting the pooled row (all n, k) is the
# one with power.

# %%
fin = ex.final(hist, ["model", "n", "variant", "family", "k", "seed"], tail=1)
main = fin[fin.family.isin(["drop", "reuse"]) & ~fin.variant.str.contains(" c=")]
rows = []
for (model, n, k), grp in list(main.groupby(["model", "n", "k"])) + [(("all", "all", "all"), main)]:
    diff = ex.paired_difference(grp.assign(pair=grp.model + grp.n.astype(str) + grp.k.astype(str)),
                                "reuse", "drop", column="family", pair_on=("pair", "seed"))
    rows.append({"model": model, "n": n, "k": k, **{c: diff[c] for c in ("diff", "ci_low", "ci_high")},
                 "pairs": diff["n"], "reuse improves": ex.verdict(diff, "improves")})
verdicts = pd.DataFrame(rows).round(4)
verdicts

# %% [markdown]
# ## The lag-weight sweep and the staleness of re-used gradients
#
# Left: final accuracy of reuse at n = 8, k = 2 as the total weight c of the late gradients grows
# (c = 3 there means weight 1 for every late gradient, the poster's rule taken literally). Right: how
# stale the re-used gradients are (lag = updates between the read and the apply), per n and k.

# %%
sweep = fin[(fin.model == "lenet") & (fin.n == sweep_at[0]) & (fin.k == sweep_at[1]) & (fin.family != "async")]
sweep = sweep.merge(pd.DataFrame([l for l, _ in specs])[["model", "n", "variant", "stale_mass"]].drop_duplicates(),
                    on=["model", "n", "variant"])
reused = upd[(upd.family == "reuse") & (upd.staleness > 0) & upd.applied & ~upd.variant.str.contains(" c=")]
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
if len(sweep[sweep.family == "reuse"]):
    sns.pointplot(sweep[sweep.family == "reuse"], x="stale_mass", y="test_acc", errorbar="sd", ax=ax)
    for fam, ls in (("drop", "--"), ("sync", ":")):
        ax.axhline(sweep[sweep.family == fam].test_acc.mean(), ls=ls, color="0.4", label=fam)
    ax.legend(fontsize="small")
ax.set(xlabel="total weight c of the late gradients", ylabel="final test accuracy", title=f"lenet, n, k = {tuple(sweep_at)}")
sns.histplot(reused.assign(setting="n=" + reused.n.astype(str) + " k=" + reused.k.astype(str)), x="staleness",
             hue="setting", discrete=True, stat="probability", common_norm=False, element="step", fill=False, ax=ax2)
ax2.set(xlabel="lag of a re-used gradient (updates)", title="staleness of re-used gradients", xlim=(0.5, None))
fig.tight_layout()
sn.plotting.save_figure(fig, "06_reuse_sweep_staleness");

# %% [markdown]
# ## Round times for the same draws (schedules only, no training)
#
# The time of one round is set by the k-th fastest job instead of the slowest. For each n and k, the
# rounds of drop and sync below use identical slowdown draws (common random numbers), so the comparison
# is round by round.

# %%
dim = sum(p.numel() for p in sn.models.build("lenet").parameters())
rounds = []
for n in workers:
    for k in sorted({max(1, int(f * n)) for f in k_fractions} | {n}):
        cfg = speedup.wait_config(base_for("lenet").replace(steps=200), n, k)
        rounds.append(pd.DataFrame({"n": n, "k": k, "protocol": cfg.protocol, "round": np.arange(200),
                                    "seconds": speedup.round_durations(cfg, dim)}))
rounds = pd.concat(rounds)
fig, ax = plt.subplots(figsize=(6.4, 3.6))
sns.barplot(rounds, x="n", y="seconds", hue="k", errorbar=None, ax=ax)
ax.set(ylabel="mean simulated seconds per round", title="LeNet round time: wait for k of n (k = n: sync)")
sn.plotting.save_figure(fig, "06_round_times");


# %%
def show(model="lenet", n=workers_[0], x="sim_time", families=("sync", "drop", "reuse", "async")):
    d = hist[(hist.model == model) & (hist.n == n) & hist.family.isin(families) & ~hist.variant.str.contains(" c=")]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if len(d):
        sns.lineplot(d[(d.family != "async") | (x != "step")], x=x, y="test_acc", hue="variant", errorbar="sd", ax=ax)
    ax.set(title=f"{model}, n = {n} (cached runs)", ylabel="test accuracy")
    return fig

show();

# %%
sn.widgets.panel(show, model=models, n=sorted(hist.n.unique().tolist()), x=["sim_time", "step", "samples"],
                 families=[("sync", "drop", "reuse", "async"), ("drop", "reuse"), ("sync", "reuse")])

# %% [markdown]
# ## Checks
#
# 1. k-of-n with k = n and drop is exactly sync (same history, same simulated times).
# 2. Reuse loses no gradient: every computed gradient is applied (no `applied=False` row, nothing
#    dropped), and fresh ones are applied at lag 0.
# 3. Drop discards exactly the late jobs: each update applies k gradients of the current model and
#    drops the other n − k, none of which was ready before the k-th applied one.
# 4. For the same draws, every round of k-of-n drop is at most as long as the same round of sync.

# %%
n0 = workers_[0]
ref = base_for("lenet").replace(protocol="sync", workers=n0, seed=seed_list[0])
a, b = ex.run_all([({}, ref), ({}, ref.replace(protocol="k-of-n", k=n0, late="drop"))], progress=False).runs
pd.testing.assert_frame_equal(a.history, b.history)
assert (b.updates.applied.all() and len(b.updates) == n0 * ref.steps)

# %%
for _, u in upd[upd.family == "reuse"].groupby(["model", "n", "variant", "seed"]):
    assert u.applied.all() and (u.weight > 0).all()
assert (hist[hist.family == "reuse"].dropped == 0).all()
last = hist.sort_values("step").groupby(["model", "n", "variant", "seed"]).last()
counts = upd.groupby(["model", "n", "variant", "seed"]).applied.sum()
assert (last.gradients == counts.loc[last.index]).all()

# %%
for (model, n, k, seed), u in upd[upd.family == "drop"].groupby(["model", "n", "k", "seed"]):
    for step, s in u.groupby("step"):
        kept, gone = s[s.applied], s[~s.applied]
        assert len(kept) == k and len(gone) == n - k and (kept.staleness == 0).all(), (model, n, k, step)
        assert gone.time.min() >= kept.time.max() - 1e-12, (model, n, k, step)

# %%
sync_rounds = rounds[rounds.protocol == "sync"].set_index(["n", "round"]).seconds
for (n, k), grp in rounds[rounds.protocol != "sync"].groupby(["n", "k"]):
    assert (grp.set_index(["n", "round"]).seconds <= sync_rounds.loc[grp.set_index(["n", "round"]).index] + 1e-12).all(), (n, k)
