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
# # 08 · Real runs: a parameter server and workers on torch.distributed
#
# The protocols of notebooks 05–06 — `sync`, `async` (paper 1: *sparsification as a remedy for
# staleness*), `k-of-n` with late gradients dropped (backup workers) or re-used (the poster) — run
# here on **real processes**: rank 0 is the parameter server (the simulator's `stalenb.server.Server`,
# same update rules and lag weights), ranks 1–3 are workers computing LeNet gradients on MNIST, on
# gloo over loopback (`stalenb.distributed`, docs/design.md §S5). Stragglers are injected with the simulator's
# slowdown model (common random numbers: worker w's j-th job gets the same slowdown as in
# `stalenb.simulate`).
#
# What this notebook checks:
#
# 1. invariants, each with an `assert` at the end: every protocol trains (loss goes down) and every
#    worker contributes; `sync` has staleness 0; `k-of-n drop` applies exactly k gradients per round;
#    `k-of-n reuse` loses none (every gradient that arrives is applied);
# 2. **whether the simulator's timing model reproduces real processes** (docs/design.md §S4, "measured
#    staleness histogram vs the simulated one"; §S7, one server, two drivers). Mean staleness cannot
#    tell: it is n − 1 − O(1/T) for `async` and (n − k)·T/G for `k-of-n reuse` whatever the timing. So
#    the comparison is a test that can fail, with its power measured:
#    - `replicates` real runs per protocol (`async`, `k-of-n reuse`; the protocols alternate within
#      each seed, so background load cannot line up with a protocol), each with a **twin**
#      (`ag.twin_of`): the timing model fitted to it (`sd.fit_timing`: median compute time,
#      round-trip overhead, the run's slowdown law and per-worker factors) and its compute-time
#      noise (the measured compute times over their median, resampled per job: 4 processes on 2
#      cores compute at uneven speeds, and a twin without that noise moves in lockstep);
#    - two statistics between the pooled real runs and as many **twins with straggler draws of their
#      own** (independent on the two sides, compared in distribution): the total-variation distance
#      between the staleness distributions, and the Kolmogorov–Smirnov distance between the
#      distributions of the time between server updates (*round times*, each run's in units of its
#      twin's nominal job time);
#    - their **null distribution** from `draws` twin-vs-twin comparisons with fresh seeds (it holds the
#      statistics' upward bias and sampling noise; a twin's schedule costs milliseconds,
#      `stalenb.distributed.agreement`), and the Monte-Carlo p-value;
#    - a **power check**: the same test with the twins standing in for reality and a deliberately
#      wrong twin — no compute noise (lockstep), an exponential tail of the same mean slowdown, or
#      compute × 2 (round times only) — repeated `power_sets` times;
#    - a **paired check** where draws are shared: the same-seed twin against the real run gradient by
#      gradient (worker w's j-th job has the same slowdown in both; the notebook asserts it).
#
#    The server evaluates after training, from copies of the model kept at each evaluation step, so
#    no evaluation stalls the workers (an evaluation during training would empty the server's queue
#    back to back afterwards and pull the workers into step).
#
# **Decision rules, fixed before the runs.** Agreement (one record per statistic and protocol): the
# p-value's 95 % Clopper–Pearson interval (from `draws`) wholly above α = `alpha` *holds* (no
# difference the test can see), wholly below *fails* (the timing model is rejected), otherwise
# *inconclusive*. Power: the share of repetitions with p < α, with its interval, must clear
# `min_power`. **An agreement "holds" only means the test saw no difference; it vouches for the
# model only where the same statistic's power records hold** (each agreement record carries the
# lowest power bound of its statistic, `power_low`). Four agreement tests at α = 0.05 give about a
# 19 % chance of at least one "fails" when the model is right: one lone "fails" is weak evidence.
# Paired tracking: the ratio of the mean |staleness difference| against the same-seed twin to that
# against `tracking_others` independent twins, geometric mean over the replicates with a 95 %
# t-interval on the log scale, below 1 *holds* (sharing the draws lets the twin follow individual
# gradients; it is expected, the size is the information). A "fails" indicts the timing model on
# this oversubscribed 2-core machine, not the protocol logic (the server is the simulator's own
# `Round` class). All records are checks of the simulator, not claims of the sources.

# %% tags=["parameters"]
workers = 3                 # worker processes (plus one server process)
k = 2                       # gradients per k-of-n round
steps = 200                 # server updates per run (full profile)
quick_steps = 40            # server updates per run (quick profile: STALENB_QUICK set)
replicates = 5              # real runs per compared protocol (seeds 0, 1, ...): the minimum
quick_replicates = 2        # real runs per compared protocol in the quick profile
batch_size = 24             # global batch (sync, k-of-n: split 8 per worker); async: per gradient
lr = 0.05                   # learning rate
train_size = 4000           # MNIST training digits used
eval_size = 500             # test digits per evaluation
eval_every = 10             # evaluate every this many updates
straggler_p = 0.25          # probability that a job is slowed down (Straggler slowdown model)
straggler_factor = 4.0      # slowdown factor of a straggling job
alpha = 0.05                # level of the agreement test
draws = 200                 # twin-vs-twin draws per null distribution: p resolved to 0.005, its interval ±0.03 at 0.05
quick_draws = 40            # null draws in the quick profile
power_sets = 100            # repetitions per power check: the power's 95 % interval about ±0.08 at 0.8
quick_power_sets = 20       # power repetitions in the quick profile
min_power = 0.8             # the conventional 80 %: a weaker test cannot vouch for a "holds"
tracking_others = 50        # independent twins behind each tracking denominator
seed = 0                    # first replicate's seed (model, batches, slowdown draws); also seeds the null draws
timeout = 60                # seconds of silence before a run is ended with an error
remeasure = False           # True: launch the processes again instead of loading the last measurement

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from scipy import stats

import stalenb as sn
import stalenb.distributed as sd
from stalenb import traces
from stalenb.distributed import agreement as ag

# %%
torch.set_num_threads(1)  # the worker processes use one thread each; so does the simulator here
sn.plotting.set_style()
ledger = sn.claims.Ledger("08", source="docs/design.md §S4 (08_real_distributed) and §S7 (one server, two drivers)")
steps, replicates, draws, power_sets = sn.paths.pick(
    (steps, replicates, draws, power_sets), (quick_steps, quick_replicates, quick_draws, quick_power_sets))
base = sn.Config(workers=workers, k=k, steps=steps, batch_size=batch_size, lr=lr, train_size=train_size,
                 eval_size=eval_size, eval_every=eval_every, seed=seed,
                 timing=sn.Timing(slowdown=sn.timing.Straggler(straggler_p, straggler_factor)))
protocols = {"sync": dict(protocol="sync"), "async": dict(protocol="async"),
             "k-of-n drop": dict(protocol="k-of-n", late="drop"),
             "k-of-n reuse": dict(protocol="k-of-n", late="reuse")}
compared = ["async", "k-of-n reuse"]  # the protocols whose staleness varies
seeds = [seed + r for r in range(replicates)]

# %% [markdown]
# ## Real runs
#
# Each `sd.launch` starts 1 + 3 processes on this machine and returns the history (one row per
# evaluation, `wall_time` in measured seconds without the server's evaluations) and the
# per-gradient record (`staleness` measured at the server, plus the measured `compute_s`, `job_s`).
# A measurement is kept in the results cache, so a re-run redraws the figures from it; set
# `remeasure = True` to launch the processes again. `sync` and `k-of-n drop` run once (their
# staleness is fixed by the protocol); `async` and `k-of-n reuse` run `replicates` times, alternating
# within each seed. `load` is the machine's 1-minute load average just before each launch.

# %%
reps, load = {name: [] for name in protocols}, {}
for s in seeds:
    for name in protocols if s == seed else compared:
        load[name, s] = os.getloadavg()[0]
        reps[name].append(sd.launch(base.replace(seed=s, **protocols[name]), timeout=timeout, cache=not remeasure))
runs = {name: rs[0] for name, rs in reps.items()}
summary = pd.DataFrame({
    name: {"wall s": r.history["wall_time"].iloc[-1], "test acc": r.history["test_acc"].iloc[-1],
           "load": load[name, seed],
           "applied": int(r.updates["applied"].sum()), "dropped": int((~r.updates["applied"]).sum()),
           "mean staleness": r.updates.loc[r.updates["applied"], "staleness"].mean()}
    for name, r in runs.items()}).T
summary.round(3)


# %%
def plot_accuracy(runs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for name, r in runs.items():
        axes[0].plot(r.history["wall_time"], r.history["test_acc"], marker="o", ms=3, label=name)
        axes[1].plot(r.history["step"], r.history["test_acc"], marker="o", ms=3, label=name)
    axes[0].set(xlabel="measured wall-clock (s)", ylabel="test accuracy")
    axes[1].set(xlabel="server updates")
    sn.plotting.legend_right(axes[1])
    return fig

fig = plot_accuracy(runs)
sn.plotting.save_figure(fig, "08_accuracy_vs_wall_clock");

# %% [markdown]
# ## Twins: the fitted timing model, simulated
#
# `fit_timing` reads a real run's measured per-sample compute time and round-trip overhead and keeps
# its slowdown law and per-worker factors; `twin_of` adds the run's compute-time noise. Its twin with
# the *same* seed shares the straggler draws (`sd.simulated_twin` trains the same LeNet, without the
# noise, for accuracy against time); twins with *other* seeds draw their own stragglers and noise
# (`ag.draw`: the schedule alone, no gradients). The 4 real processes share 2 CPU cores; the
# operating system's scheduling adds delays the fitted model may not contain, and the test below is
# there to see them.

# %%
twins = {name: [ag.twin_of(r) for r in reps[name]] for name in compared}
lenet_twins = {name: [sd.simulated_twin(r) for r in reps[name]] for name in compared}
pd.DataFrame({name: {"per_sample ms": np.mean([t.config.timing.per_sample for t in ts]) * 1e3,
                     "latency ms": np.mean([t.config.timing.latency for t in ts]) * 1e3,
                     "compute noise CV": np.mean([np.std(t.noise) / np.mean(t.noise) for t in ts])}
              for name, ts in twins.items()}).T.round(4)


# %%
def plot_accuracy_twins(name):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (r, t) in enumerate(zip(reps[name], lenet_twins[name])):
        ax.plot(r.history["wall_time"], r.history["test_acc"], color="C0", alpha=0.7,
                label="real" if i == 0 else None)
        ax.plot(t.history["sim_time"], t.history["test_acc"], color="C1", ls="--", alpha=0.7,
                label="twin (same draws)" if i == 0 else None)
    ax.set(xlabel="seconds (real: measured wall-clock; twin: simulated)", ylabel="test accuracy",
           title=f"{name}: {len(reps[name])} real runs and their twins")
    sn.plotting.legend_right(ax)
    return fig

sn.plotting.save_figure(plot_accuracy_twins("async"), "08_accuracy_twins_async")
sn.plotting.save_figure(plot_accuracy_twins("k-of-n reuse"), "08_accuracy_twins_reuse");

# %% [markdown]
# ## The test: real against twin, twin against twin

# %%
real_updates = {name: [r.updates for r in reps[name]] for name in compared}
statistics = {"staleness": ag.staleness_tv, "rounds": ag.round_time_ks}
tests = {(stat, name): ag.agreement(real_updates[name], twins[name], fn, draws=draws, seed=seed)
         for stat, fn in statistics.items() for name in compared}
pd.DataFrame(tests).T[["statistic", "null_mean", "null_q95", "p", "p_ci"]]


# %%
def independent_twins(name):
    return tests["staleness", name]["twins"]  # the test's own independent draws

def plot_staleness(name):
    frames = [pd.DataFrame({"staleness": u.loc[u["applied"], "staleness"], "source": source})
              for source, us in (("measured", real_updates[name]), ("twins, own draws", independent_twins(name)))
              for u in us]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    sns.histplot(pd.concat(frames, ignore_index=True), x="staleness", hue="source", discrete=True,
                 stat="probability", common_norm=False, multiple="dodge", shrink=0.8, ax=ax)
    ax.set(title=f"{name}: staleness of applied gradients ({len(reps[name])} runs each)")
    return fig

sn.plotting.save_figure(plot_staleness("async"), "08_staleness_async")
sn.plotting.save_figure(plot_staleness("k-of-n reuse"), "08_staleness_reuse");


# %%
def plot_round_times(name):
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for source, us in (("measured", real_updates[name]), ("twins, own draws", independent_twins(name))):
        times = np.concatenate([ag.round_times(u) / t.job_time for u, t in zip(us, twins[name])])
        sns.ecdfplot(times, label=source, ax=ax)
    ax.set(xlabel="time between server updates (nominal job times)", ylabel="share of updates",
           title=f"{name}: round times")
    ax.legend(loc="lower right")
    return fig

sn.plotting.save_figure(plot_round_times("async"), "08_round_times_async")
sn.plotting.save_figure(plot_round_times("k-of-n reuse"), "08_round_times_reuse");


# %%
def plot_null():
    fig, axes = plt.subplots(len(statistics), len(compared), figsize=(10, 6), squeeze=False)
    for (i, stat), (j, name) in ((a, b) for a in enumerate(statistics) for b in enumerate(compared)):
        ax = axes[i, j]
        ax.hist(tests[stat, name]["null"], bins=30, color="0.7", label="twin vs twin (null)")
        ax.axvline(tests[stat, name]["statistic"], color="C3", label="real vs twin")
        ax.set(title=f"{name}: {stat} (p = {tests[stat, name]['p']:.3f})",
               xlabel="total-variation distance" if stat == "staleness" else "Kolmogorov–Smirnov distance")
    sn.plotting.legend_right(axes[0, -1])
    fig.tight_layout()
    return fig

sn.plotting.save_figure(plot_null(), "08_null_distributions");

# %% [markdown]
# ## Could the test fail? Power against wrong twins
#
# Reality is played by the twins (fresh draws), the twin by a wrong model: no compute noise (the
# workers in lockstep); an exponential tail with the same mean slowdown (1 + p·(factor − 1)); every
# compute time × 2. Compute × 2 is tested on round times only: staleness depends on the ratio of
# latency to compute alone, so a record of the staleness test's power against it would be a
# "fails" built in.

# %%
mean_extra = straggler_p * (straggler_factor - 1)
wrong_models = {
    "no-noise": lambda t: t.without_noise(),
    "exponential-tail": lambda t: t.with_timing(slowdown=sn.timing.ShiftedExponential(mean_extra)),
    "compute-x2": lambda t: t.with_timing(per_sample=2 * t.config.timing.per_sample),
}
against = {"staleness": ["no-noise", "exponential-tail"], "rounds": list(wrong_models)}
powers = {(stat, wrong, name): ag.power(twins[name], [wrong_models[wrong](t) for t in twins[name]],
                                        statistics[stat], sets=power_sets, draws=draws, alpha=alpha, seed=seed)
          for stat in statistics for wrong in against[stat] for name in compared}
pd.DataFrame(powers).T[["power", "power_ci", "detected", "sets"]]

# %% [markdown]
# ## Where the draws are shared: gradient by gradient

# %%
tracking = {name: [ag.tracking(r, t, others=tracking_others, seed=seed) for r, t in zip(reps[name], twins[name])]
            for name in compared}
pd.concat({name: pd.DataFrame(rows, index=[f"seed {s}" for s in seeds]) for name, rows in tracking.items()}).round(3)

# %% [markdown]
# ## Replaying a real run
#
# A real run's record can drive the simulator directly (`stalenb.traces`): its step delays as a
# `sn.Trace` (`traces.updates_trace`: the staleness of each update, in order), or its workers'
# measured job seconds as the timing model (`traces.updates_timing`, a `TraceSlowdown`). The first
# reproduces the staleness by construction (asserted below) and trains LeNet on the real delays; the
# second lets staleness emerge again from the replayed job times, which shows how much of the real
# staleness the job times alone explain (the rest is queueing and transfer at the server).

# %%
real = runs["async"]
trace_run = sn.run(real.config.replace(staleness=traces.updates_trace(real.updates)), progress=False)
replay = ag.schedule_updates(real.config.replace(timing=traces.updates_timing(
    real.updates, real.config.push_batch, latency=sd.fit_timing(real).latency, bandwidth=float("inf"))))
paired = pd.concat({"real": ag.by_job(real.updates)["staleness"], "replayed": ag.by_job(replay)["staleness"]},
                   axis=1, join="inner")
pd.Series({"real final test acc": real.history["test_acc"].iloc[-1],
           "delay-trace run final test acc": trace_run.history["test_acc"].iloc[-1],
           "job-time replay: share of gradients with the real staleness":
               (paired["real"] == paired["replayed"]).mean(),
           "job-time replay: mean |real − replayed| staleness":
               (paired["real"] - paired["replayed"]).abs().mean()}).round(3)

# %% [markdown]
# ## Records

# %%
what = {name: f"{len(reps[name])} real {name} runs (1 server + {workers} workers, {steps} updates each) against "
              f"twins simulated from the timing model and compute noise of each run" for name in compared}
described = {"staleness": "total-variation distance between the staleness distributions of the applied gradients",
             "rounds": "Kolmogorov–Smirnov distance between the distributions of the time between server updates"}
quote = "measured staleness histogram vs the simulated one"
for (stat, name), t in tests.items():
    tag = name.split()[-1]
    ledger.record(f"08.agree-{stat}.{tag}", role="check", quote=quote,
                  test=f"Monte-Carlo p-value of the {described[stat]}: {what[name]}, independent straggler draws "
                       f"on the two sides, null from {draws} twin-vs-twin draws; 95 % Clopper–Pearson interval "
                       f"of p; holds when it lies above α",
                  statistic=t["p"], ci_low=t["p_ci"][0], ci_high=t["p_ci"][1], threshold=alpha, better="above",
                  figures=["08_null_distributions", f"08_{stat.replace('rounds', 'round_times')}_{tag}"],
                  runs=len(reps[name]), seeds=len(reps[name]), distance=t["statistic"], null_q95=t["null_q95"],
                  null_mean=t["null_mean"], draws=draws, power_low=min(
                      pw["power_ci"][0] for (st, _, nm), pw in powers.items() if (st, nm) == (stat, name)))

# %%
for (stat, wrong, name), pw in powers.items():
    ledger.record(f"08.power-{stat}.{wrong}.{name.split()[-1]}", role="check", quote=quote,
                  test=f"power of the {stat} agreement test at α = {alpha} against a twin with {wrong} (reality "
                       f"played by the twins, {len(twins[name])} runs a side), {pw['sets']} repetitions; "
                       f"95 % Clopper–Pearson interval",
                  statistic=pw["power"], ci_low=pw["power_ci"][0], ci_high=pw["power_ci"][1], threshold=min_power,
                  better="above", figures=["08_null_distributions"], runs=0, seeds=pw["sets"], draws=draws)

# %%
for name, rows in tracking.items():
    logs = np.log([row["ratio"] for row in rows])
    half = float(stats.t.ppf(0.975, len(logs) - 1) * stats.sem(logs))
    ledger.record(f"08.tracking.{name.split()[-1]}", role="check", quote=quote,
                  test=f"mean |measured − twin| staleness per gradient, twin with the same straggler draws over "
                       f"{tracking_others} twins with independent draws, paired by (worker, job); geometric mean over "
                       f"{len(logs)} real runs, 95 % t-interval on the log scale; below 1: the shared draws let the "
                       f"twin follow individual gradients",
                  statistic=float(np.exp(logs.mean())), ci_low=float(np.exp(logs.mean() - half)),
                  ci_high=float(np.exp(logs.mean() + half)), threshold=1.0, better="below",
                  figures=[f"08_staleness_{name.split()[-1]}"], runs=len(logs), seeds=len(logs),
                  ratios=[round(row["ratio"], 4) for row in rows],
                  exact_share=float(np.mean([r["exact"] for r in rows])))
ledger.frame()

# %% [markdown]
# Browse the real runs against their twins (no training happens here: the controls pick among the
# finished runs).

# %%
sn.widgets.panel(plot_staleness, name=compared, labels={"name": "protocol"})

# %% [markdown]
# ## Checks

# %%
for name, rs in reps.items():
    for r in rs:
        assert r.history["train_loss"].iloc[-1] < r.history["train_loss"].iloc[0], name
        assert set(r.updates.loc[r.updates["applied"], "worker"]) == set(range(workers)), name  # all contributed
        assert (r.updates["staleness"] >= 0).all(), name
assert (runs["sync"].updates["staleness"] == 0).all()
drop = runs["k-of-n drop"].updates
assert (drop[drop["applied"]].groupby("step").size() == k).all()  # exactly k gradients per round
for r in reps["k-of-n reuse"]:
    assert r.updates["applied"].all() and r.history["dropped"].iloc[-1] == 0  # reuse lost none

# %%
expected = ({f"08.agree-{stat}.{n.split()[-1]}" for stat in statistics for n in compared}
            | {f"08.power-{stat}.{w}.{n.split()[-1]}" for stat in statistics for w in against[stat] for n in compared}
            | {f"08.tracking.{n.split()[-1]}" for n in compared})
assert set(ledger.records) == expected
for rec in ledger.records.values():
    assert all(np.isfinite([rec["statistic"], rec["ci_low"], rec["ci_high"]])), rec["id"]
    assert rec["ci_low"] <= rec["statistic"] <= rec["ci_high"], rec["id"]
    assert rec["role"] == "check", rec["id"]
for t in tests.values():  # a Monte-Carlo p-value is never 0 and has the draws' resolution
    assert 1 / (draws + 1) <= t["p"] <= 1 and t["draws"] == draws
applied = real.updates[real.updates["applied"]].sort_values("step")  # a replayed delay trace is the real staleness
assert trace_run.updates["staleness"].tolist() == applied["staleness"].tolist()
for name in compared:  # the pairing of real and twin jobs is right: the same slowdown for each (worker, job)
    assert all(row["pairing_error"] == 0.0 for row in tracking[name]), tracking[name]
for name in compared:  # the pre-registered sample: every server step applied at least one gradient
    assert all(r.updates.loc[r.updates["applied"], "step"].nunique() == steps for r in reps[name]), name
