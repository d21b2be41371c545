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
# # 07 — Speedup against the number of workers: a model that can bend, and the simulated cluster
#
# **Claim tested** (poster, Fig. 3 "Speedup Performances"; data in `docs/research.md` §2): "Our system
# gain good speedups as number of nodes scales up" (a PyTorch + MPI parameter server). The numbers behind it
# are printed by `hwang595/ps_pytorch`, file `analysis/Speedup_Comparisons_LeNet.ipynb` (cell 5) at
# commit `9bf38e8d902253eb51f9be3ab38b60f7d13f1649` (LeNet/MNIST, batch 8192, AWS m4.2xlarge, first
# 100 steps): the LeNet curve **peaks at 16 workers and falls at 32**. Its two series are defined by
# that code: **"wait for all, measured"** sums per step the slowest worker's time; **"ideal: fastest
# worker per step"** sums the fastest worker's time inside the same run — an ideal, not a protocol that
# was run. A worker's time runs from the step's start to its last gradient send (weight fetch, which
# waits for the master's broadcast, + forward + backward); the master's update after the last message
# is not in it. The same notebook plots two more LeNet series — **TensorFlow** (cells 1 and 3) and an
# **older MPI implementation** (cell 6): S(32)/S(16) = 0.61 and 0.48 against 0.56; they are the
# source's spread (`speedup.PUBLISHED_SPREAD`). (The ResNet-18 series of the same repository,
# `analysis/Speedups_with_GradCompression.ipynb` at `23d0a67`, has a synthetic 1-worker time: 2.1 × the
# 2-worker time; it is not used here.)
#
# Two models of time are compared with those points:
#
# 1. **An analytic model of ps_pytorch's step** (`speedup.StepModel`), built from its source code at
#    the same commit: compute A·m_n/n (m_n the expected largest slowdown of n workers: the master waits
#    for all), a tree broadcast of the float64 model (`MPI_Bcast`, ⌈log₂(n + 1)⌉ hops over master + n
#    workers), a gather serialized at the master (n messages, each with a handling cost c_msg and a
#    transfer b·d/β, b = 8 bytes per parameter) and an optional incast term κ·n(n − 1)/2. Its free
#    parameters are **fitted on n ≤ 16 only** and **S(32) is predicted out of sample**.
# 2. **The simulated cluster** of `stalenb.timing` / `stalenb.schedule` (shared with notebook 06):
#    per-sample compute from the source's own 1-worker run (0.415 ms per LeNet sample on m4.2xlarge), a
#    1 Gbit/s server link each direction, slowdowns 1 + Exp(0.066) matched to the source's 2-worker
#    runs, float32 messages. Nothing in it is fitted to the speedup curve.
#
# **Protocol, fixed before the run** (thresholds and reasons in the parameters cell). Ledger records:
# `07.speedup.scales-up` (**claim**: the poster's sentence, read on the published points: does every
# doubling of the nodes raise the speedup?); `07.speedup.predict-32` and `07.speedup.predict-32.overlap`
# (**checks of the model**: the out-of-sample error at n = 32 of the additive model the source code
# implies, and of the variant where the master's gather hides behind compute — the knee-shaped form
# issue 23 proposed after the knee was known, so it is labelled as such); `07.speedup.peak-height` and
# `07.speedup.drop-32-16` (**checks of the simulator**: its peak height and its drop against 9.80 and
# 0.561). Earlier checks that could hardly fail (the n of the peak within ±1 octave; the fastest-vs-all
# gap growing with n, which order statistics guarantee) are no longer recorded.

# %% tags=["parameters"]
model = "lenet"          # network whose gradients are pushed (the poster's LeNet, 431,080 parameters)
batch_size = 8192        # global batch B split over the n workers (ps_pytorch's LeNet speedup runs)
steps = 100              # updates timed per point (the published "first 100 steps")
max_workers = 32         # the number of workers n runs from 1 to max_workers
per_sample = "source"    # compute per sample: source (m4.2xlarge, timing.cluster), local (calibrate here), or seconds
bandwidth = 1.25e8       # bytes/s of the server link each direction (1 Gbit/s, m4.2xlarge class High)
latency = 1e-4           # seconds per message (intra-datacenter order of magnitude)
density = 0.01           # kept fraction of the top-k compressed pushes
seeds = 3                # independent slowdown draws per point: the fewest that give a t-interval (time budget)
bytes_per_param = 8      # ps_pytorch sends float64 (.astype(np.float64), MPI.DOUBLE; speedup.PS_BYTES_PER_PARAM)
fit_max = 16             # the analytic model is fitted on the published points up to this many workers ...
predict_n = 32           # ... and predicts S(predict_n), the one published point left out
free = ("bandwidth", "msg_cost", "incast")  # 3 free parameters for 4 informative points (2, 4, 8, 16 workers)
ratio_tolerance = 0.25   # drop, peak height and prediction: |ln(model / published)| below ln(1 + this)
level = 0.95             # coverage of the intervals over seeds

# %% [markdown]
# Reasons for the settings above, fixed before any fit or simulation:
#
# - **Fixed from documented facts, not fitted:** A = per-sample cost × B (the source's 1-worker run,
#   `timing.SOURCE_PER_SAMPLE`), m_n from the slowdown 1 + Exp(0.066) (`timing.CLUSTER_SLOWDOWN`, matched
#   to the source's 2-worker max/min ratio), d = 431,080 (ps_pytorch's LeNet), b = 8 (float64 in its code),
#   ℓ = 100 µs. **Fitted:** the effective bandwidth β (what a message of b·d bytes really costs: blosc
#   compression and the real NIC are unknown), c_msg and κ — 3 parameters for the 4 points n = 2, 4, 8, 16
#   (S(1) = 1 on both sides carries no information): at most points − 1. Least squares on ln S
#   (`speedup.fit_step_model`: `scipy.optimize.least_squares`, all parameters ≥ 0, a grid of starts).
# - **Which model is the test:** the *additive* model is the one the source code implies — each worker
#   waits for its previous layer's send before the next layer's backward (`req_send_check[-1].wait()` in
#   `src/model_ops/lenet.py`) and the master takes one message at a time, so the gather adds to the
#   compute. The *overlap* variant (gather hidden behind compute, T = max(compute, gather) + broadcast) is
#   issue 23's knee-shaped form, proposed after the published knee was known; it is recorded too, as
#   such, whichever way it comes out.
# - **Tolerance ln(1.25) ≈ 0.22** for the drop, the peak height and the prediction: the tolerance this
#   notebook used for the drop before this fit existed; there is one published run per n and no
#   replicate spread. For scale, the nearest other implementation in the source's figure (TensorFlow) is
#   ln(7.28 / 5.50) = 0.28 away at n = 32, and the farthest (old MPI) 0.54.
# - **The claim** "good speedups as number of nodes scales up", read in its direction: every doubling of
#   the nodes in the published range raises the speedup, i.e. min over n of S(2n)/S(n) > 1 (exact:
#   the published points, no interval).

# %%
import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

import stalenb as sn
from stalenb import claims, speedup

sn.plotting.set_style()
workers = sn.paths.pick(list(range(1, max_workers + 1)), [1, 2, 4, 8, 12, 16, 24, 32])
steps, seeds = sn.paths.pick((steps, seeds), (20, 3))  # quick mode shrinks the parameters in place
seed_list = list(range(seeds))
net = sn.models.build(model)
dim = sum(p.numel() for p in net.parameters())
timing = sn.timing.cluster(model, bandwidth=bandwidth, latency=latency, per_sample=per_sample)
per_sample_s = timing.per_sample  # seconds per sample, resolved from `per_sample`
tolerance = float(np.log1p(ratio_tolerance))
ledger = claims.Ledger("07", source="CS744 poster Fig. 3 (docs/seeds/benefits-of-staleness-poster.md); "
                          "numbers: hwang595/ps_pytorch analysis/Speedup_Comparisons_LeNet.ipynb @ 9bf38e8")
print(f"d = {dim:,} parameters; per-sample compute {1e3 * per_sample_s:.4f} ms ({per_sample}); "
      f"slowdown {timing.slowdown}")

# %% [markdown]
# ## The published points and the source's spread
#
# The three LeNet wait-for-all series of ps_pytorch's notebook, side by side, and the ratio of each
# doubling S(2n)/S(n).

# %%
spread = speedup.PUBLISHED_SPREAD.pivot(index="workers", columns="system", values="speedup")
spread = spread[speedup.PUBLISHED_SPREAD.system.unique()]
doubling = (spread / spread.shift(1)).iloc[1:].set_axis([f"S({n})/S({n // 2})" for n in spread.index[1:]])
pd.concat([spread.T, doubling.T], axis=1).round(2)

# %%
pub = speedup.PUBLISHED.query("model == 'LeNet/MNIST'").pivot(index="workers", columns="policy", values="speedup")
mpi = pub[speedup.WAIT_ALL]  # the series the poster's system ran ("PyTorch + MPI (new)")
ratios = (mpi / mpi.shift(1)).dropna()
ledger.record("07.speedup.scales-up", role="claim", quote="Our system gain good speedups as number of nodes scales up",
              test="published ps_pytorch LeNet wait-for-all speedups (probably the data behind Fig. 3, "
                   "docs/research.md §2): the smallest ratio S(2n)/S(n) over the doublings 1 → 2 … 16 → 32 "
                   "must exceed 1 for the speedup to keep rising as nodes are added",
              statistic=float(ratios.min()), threshold=1.0, better="above", figures=["07_speedup"],
              runs=len(mpi), ratios={int(n): float(r) for n, r in ratios.items()},
              ratio_32_16_tensorflow=float(doubling.loc["S(32)/S(16)", "TensorFlow"]),
              ratio_32_16_mpi_old=float(doubling.loc["S(32)/S(16)", "PyTorch + MPI (old)"]))
ledger.frame()

# %% [markdown]
# Up to 16 nodes every doubling raises the speedup by 1.66–2.08×; from 16 to 32 it falls to 0.56× in
# the poster's implementation, and to 0.61× and 0.48× in the other two. Read as "adding nodes keeps
# paying", the sentence holds up to 16 nodes and not beyond.
#
# ## An analytic model of ps_pytorch's step, fitted on n ≤ 16
#
# `speedup.StepModel` (its docstring names the source file of each term). Below: the model with the
# documented 1 Gbit/s link and nothing fitted, term by term, in seconds per step — at that bandwidth the
# float64 gather alone (27.6 ms per worker) would take longer at n = 16 than the whole measured step
# (0.35 s), so the effective cost of a message must be fitted.

# %%
source_model = speedup.StepModel(compute=sn.timing.SOURCE_PER_SAMPLE * sn.timing.SOURCE_BATCH, dim=dim,
                                 slowdown=sn.timing.CLUSTER_SLOWDOWN, bytes_per_param=bytes_per_param,
                                 bandwidth=bandwidth, latency=latency)
ns_pub = np.array(spread.index)
measured = np.array(sn.timing.SOURCE_TIME_COSTS) / sn.timing.SOURCE_STEPS
source_model.terms(ns_pub).assign(measured=measured, S_model=source_model.speedup(ns_pub),
                                  S_published=mpi.to_numpy()).set_index("workers").round(3)

# %%
def fit_and_predict(series, overlap, n_fit=fit_max, n_out=predict_n, names=free):
    """Fit `names` of the (additive or overlap) model on the points n <= n_fit; predict S(n_out)."""
    inside = series[series.index <= n_fit]
    fit = speedup.fit_step_model(dataclasses.replace(source_model, overlap=overlap), inside.index,
                                 inside.to_numpy(), free=names)
    predicted = float(fit.model.speedup(n_out)[0])
    return fit, predicted, float(abs(np.log(predicted / series[n_out])))


forms = {"additive": False, "overlap": True}
fits = {name: fit_and_predict(mpi, overlap) for name, overlap in forms.items()}
pd.DataFrame({name: {"beta (Gbit/s)": 8 * f.model.bandwidth / 1e9, "c_msg (ms)": 1e3 * f.model.msg_cost,
                     "kappa (ms)": 1e3 * f.model.incast, "rms ln S, n<=16": f.rms,
                     f"S({predict_n}) predicted": p, f"S({predict_n}) published": mpi[predict_n], "|ln error|": e,
                     "peak n": f.model.peak()[0], "peak S": f.model.peak()[1]}
              for name, (f, p, e) in fits.items()}).round(4)

# %% [markdown]
# Both forms fit the four points n ≤ 16 about equally well (in-sample rms of ln S ≈ 0.06; neither can
# give S(2) > 2, a 4 % superlinear point). The fitted incast κ is 0 in both: the points n ≤ 16 show no
# superlinear growth of the overhead, so the incast term cannot switch on before the knee. They part
# beyond the data. The additive model, with an effective ~4.7 Gbit/s per float64 message, bends only
# gently and keeps rising to n = 32. The overlap form reads the n = 16 shortfall (9.80 where compute
# alone gives ~14) as the serialized gather having just caught up with compute at 16, and falls beyond.
#
# **How robust is the prediction?** The same two forms, fitted the same way on the other two series of
# the source (n ≤ 16 → 32), and on n ≤ 8 to predict 16 (3 informative points: 2 free parameters, β and
# c_msg).

# %%
rows = []
for system in spread.columns:
    for name, overlap in forms.items():
        for n_fit, n_out, names in ((fit_max, predict_n, free), (fit_max // 2, fit_max, free[:2])):
            f, p, e = fit_and_predict(spread[system], overlap, n_fit, n_out, names)
            rows.append({"series": system, "form": name, "fit on": f"n <= {n_fit}", "predict": f"S({n_out})",
                         "predicted": p, "published": spread[system][n_out], "|ln error|": e,
                         "within tolerance": e < tolerance})
robust = pd.DataFrame(rows)
robust.round(3)

# %% [markdown]
# Read with the table: the additive form, the one the source code implies, misses S(32) for all three
# series (it cannot see a knee that the points before it do not show). The overlap form's close hit
# for the poster's series does not carry over: it misses TensorFlow's S(32) by more than the tolerance,
# and fitted on n ≤ 8 it predicts a collapse at 16 that did not happen in any series. The knee at 32 is
# therefore not something these models predict from the points before it; a fit that lands on it once
# is not evidence that it explains it.

# %% [markdown]
# ## The simulated cluster
#
# Each worker computes its B/n samples at `per_sample × B/n × s` seconds. The server link carries
# 4·d = 1.7 MB per dense message (float32 pushes and pulls, each direction at 1 Gbit/s); a top-k push at
# density ρ carries 8 bytes per kept entry (value + index). Pulls stay dense. Three waiting policies on
# the *same* slowdown draws (common random numbers): **wait for all** (sync), **wait for half** (k = n/2)
# and **fastest only** (k = 1; late jobs are dropped, as in the published "fastest worker only" runs).

# %%
base = sn.Config(batch_size=batch_size, steps=steps, timing=timing)
push_dense, push_sparse = speedup.push_bytes(dim), speedup.push_bytes(dim, "topk", density)
n_star = speedup.bend(per_sample_s, batch_size, bandwidth, push_dense, 4 * dim)
print(f"push: dense {push_dense / 1e6:.2f} MB, top-k {100 * density:g}% {push_sparse / 1e3:.1f} kB; "
      f"pull {4 * dim / 1e6:.2f} MB; link {8 * bandwidth / 1e9:g} Gbit/s each way; bend n* = {n_star:.1f}")

# %%
curves = speedup.curve(base, dim, workers, policies=("wait for all", "wait for half", "fastest only"),
                       compressors=(("none", 1.0), ("topk", density)), seeds=seed_list)
table = curves.pivot_table(index="workers", columns=["compressor", "policy"], values="speedup")
table.loc[[n for n in (1, 2, 4, 8, 16, 32) if n in table.index]].round(2)

# %% [markdown]
# ## The figure
#
# Left: the three published series and the two model forms fitted on n ≤ 16 (solid), extended beyond
# (dashed) to their predictions at n = 32 (stars). Middle: the simulated curves with the published
# ps_pytorch points. Right: how busy the busier direction of the simulated server link is.

# %%
fig = speedup.figure(curves, speedup.PUBLISHED, n_star,
                     title=f"LeNet, B = {batch_size}, {8 * bandwidth / 1e9:g} Gbit/s link (simulated)",
                     fits={f"{name} model": f.model for name, (f, _, _) in fits.items()},
                     spread=speedup.PUBLISHED_SPREAD, fit_max=fit_max)
sn.plotting.save_figure(fig, "07_speedup");

# %% [markdown]
# ## Where and why the simulated curve bends
#
# The compute share falls as 1/n while each direction of the server link carries n messages per round,
# one after another: once the busier direction is busy most of the round (right panel), adding workers
# lengthens rounds. The deterministic round time T(n) = per_sample·B·s/n + (n − 1)·max(push, pull)/bandwidth
# + (push + pull)/bandwidth + 2·latency (`speedup.model_time`) is smallest at
# n* = √(per_sample · B · s · bandwidth / max(push, pull)) (`speedup.bend`, dashed line) — one formula for
# n* here and in the module. Compressing the *pushes* helps little because the dense *pulls* keep the
# downlink just as busy — the curve bends at nearly the same n; compressing the model broadcast too would
# move n*. Unlike ps_pytorch, the simulated server sends n separate float32 pulls (no tree), has no
# per-message cost and no incast. Move the sliders to see how bandwidth and compute cost move the bend.

# %%
def explore(bandwidth_gbit=8 * bandwidth / 1e9, per_sample_ms=1e3 * per_sample_s, slowdown_mean=timing.slowdown.mean,
            density=density):
    t = sn.Timing(per_sample=per_sample_ms / 1e3, slowdown=sn.timing.ShiftedExponential(slowdown_mean),
                  latency=latency, bandwidth=bandwidth_gbit * 1e9 / 8)
    df = speedup.curve(sn.Config(batch_size=batch_size, steps=20, timing=t), dim, [1, 2, 4, 8, 12, 16, 24, 32],
                       ("wait for all", "fastest only"), (("none", 1.0), ("topk", density)))
    n_s = speedup.bend(t.per_sample, batch_size, t.bandwidth, speedup.push_bytes(dim), 4 * dim)
    return speedup.figure(df, speedup.PUBLISHED, n_s, title=f"{bandwidth_gbit:g} Gbit/s, {per_sample_ms:.2f} ms/sample")

explore();

# %%
sn.widgets.panel(explore, bandwidth_gbit=(0.1, 10.0, 0.1), per_sample_ms=(0.02, 2.0, 0.02),
                 slowdown_mean=(0.0, 2.0, 0.05), density=[0.001, 0.01, 0.1],
                 labels={"bandwidth_gbit": "server link (Gbit/s)", "per_sample_ms": "compute per sample (ms)",
                         "slowdown_mean": "mean extra slowdown (× compute)", "density": "top-k density"})

# %% [markdown]
# ## The records (ledger)
#
# **Model checks:** the out-of-sample error |ln(S_model(32) / 5.50)| of each form fitted on n ≤ 16, with
# the robustness numbers above as extra fields. **Simulator checks**, per seed from the dense simulated
# curves: the height of the wait-for-all peak against the published 9.80, and the drop S(32)/S(16)
# against 0.561 (t-intervals over seeds).

# %%
def t_interval(x):
    x = np.asarray(x, dtype=float)
    if x.size < 2 or np.ptp(x) == 0:
        return float(x.mean()), float(x.mean())
    return tuple(float(v) for v in stats.t.interval(level, x.size - 1, loc=x.mean(), scale=stats.sem(x)))


def other(form, column):
    """|ln error| of `form` in the robustness table, by series and target."""
    return {f"{r['series']}, {r['fit on']} -> {r['predict']}": float(r[column])
            for _, r in robust[robust.form == form].iterrows()}


# %%
fit_ns = [int(n) for n in mpi.index if n <= fit_max]
record_ids = {"additive": "07.speedup.predict-32", "overlap": "07.speedup.predict-32.overlap"}
forms_said = {"additive": "A·m_n/n + tree broadcast + serialized n-to-1 gather (+ incast)",
              "overlap": "max(A·m_n/n, serialized gather + incast) + tree broadcast (issue 23's knee-shaped "
                         "form, proposed after the published knee was known)"}
for name, rid in record_ids.items():
    f, predicted, err = fits[name]
    ledger.record(rid, role="check",
                  quote=f"ps_pytorch's step = {forms_said[name]}, fitted on the published points n <= {fit_max}, "
                        f"predicts the published S({predict_n}) = {mpi[predict_n]:.2f}",
                  test=f"|ln(S({predict_n}) predicted by the {name} StepModel fitted (least squares on ln S, free "
                       f"{', '.join(free)}) on the published LeNet wait-for-all points n <= {fit_max} / published)|",
                  statistic=err, threshold=tolerance, better="below", figures=["07_speedup"], runs=len(mpi),
                  fit_ns=fit_ns, predicted=predicted, published=float(mpi[predict_n]), free=list(free),
                  points=f.points, rms_in_sample=f.rms, bandwidth_fit=f.model.bandwidth,
                  msg_cost_fit=f.model.msg_cost, incast_fit=f.model.incast, bytes_per_param=bytes_per_param,
                  robustness_ln_error=other(name, "|ln error|"))

# %%
def seed_shapes(df):
    rows = []
    for s, g in df[df.compressor == "none"].groupby("seed"):
        w = g[g.policy == "wait for all"].set_index("workers").speedup
        f = g[g.policy == "fastest only"].set_index("workers").speedup
        rows.append({"seed": s, "peak": float(w.max()), **speedup.shape(w, f)})
    return pd.DataFrame(rows)


shapes = seed_shapes(curves)
published_shape = speedup.shape(pub[speedup.WAIT_ALL], pub[speedup.IDEAL])
published_peak = float(mpi.max())
pd.concat([shapes.describe().loc[["mean", "min", "max"]],
           pd.DataFrame([{**published_shape, "peak": published_peak}], index=["published"])])

# %%
common = {"role": "check", "figures": ["07_speedup"], "runs": len(shapes), "seeds": len(shapes),
          "per_sample_ms": 1e3 * per_sample_s, "bandwidth": bandwidth, "slowdown_mean": timing.slowdown.mean}
height = np.abs(np.log(shapes.peak / published_peak))
lo, hi = t_interval(height)
ledger.record("07.speedup.peak-height", quote=f"the published LeNet speedup peaks at {published_peak:.2f} (16 workers)",
              test=f"|ln(simulated wait-for-all peak speedup / published {published_peak:.2f})|, 1 Gbit/s source "
                   "cluster, nothing fitted to the curve",
              statistic=float(height.mean()), ci_low=lo, ci_high=hi, threshold=tolerance, better="below",
              peak_sim=float(shapes.peak.mean()), n_peak_sim=float(shapes.n_peak.mean()),
              peak_published=published_peak,
              peak_model={name: fits[name][0].model.peak()[1] for name in forms}, **common)
drop = np.abs(np.log(shapes.ratio_32_16 / published_shape["ratio_32_16"]))
lo, hi = t_interval(drop)
ledger.record("07.speedup.drop-32-16", quote="speedup falls from 9.80 at 16 to 5.50 at 32 workers (wait for all)",
              test="|ln(simulated S(32)/S(16) / published 0.561)|", statistic=float(drop.mean()), ci_low=lo,
              ci_high=hi, threshold=tolerance, better="below",
              ratio_sim=float(shapes.ratio_32_16.mean()), ratio_published=published_shape["ratio_32_16"], **common)
ledger.frame()

# %% [markdown]
# ## Checks
#
# 1. For the same slowdown draws, waiting for the k fastest is never slower than waiting for all:
#    speedup(wait-k) ≥ speedup(wait-all) at every n, for every seed and both push formats.
# 2. Compression never lowers the speedup where communication dominates (the busier link direction busy
#    ≥ half of the round), in the named setting and on a 20× slower link where most settings are
#    communication-bound: smaller pushes can only make messages arrive earlier on a FIFO link.
#    The speedup is measured against one common reference, the dense single worker. Measured against
#    its *own* single-worker time, compression can look worse: it shortens the 1-worker round more,
#    in relative terms, than a round that is bound by the dense pulls.
# 3. The simulated sync round time equals the closed-form model exactly when slowdowns are switched
#    off (the model behind n*), and the link's busy share grows with n (the reason for the bend).
# 4. The fits used only the points n ≤ 16 and no more free parameters than points − 1; each recorded
#    prediction is the fitted model's S(32); the additive model's terms add up to its time.

# %%
wide = curves.pivot_table(index=["seed", "compressor", "workers"], columns="policy", values="speedup")
for pol in ("wait for half", "fastest only"):
    assert (wide[pol] >= wide["wait for all"] - 1e-9).all(), pol

# %%
slow_link = sn.Config(batch_size=batch_size, steps=steps, timing=dataclasses.replace(timing, bandwidth=bandwidth / 20))
heavy = speedup.curve(slow_link, dim, [1, 2, 4, 8, 16, 32], ("wait for all", "fastest only"),
                      (("none", 1.0), ("topk", density)), seed_list)
both = pd.concat([curves.assign(link="named"), heavy.assign(link="bandwidth / 20")])
by_push = both.pivot_table(index=["link", "seed", "policy", "workers"], columns="compressor",
                           values=["speedup", "speedup_self", "link_share"])
comm = by_push[("link_share", "none")] >= 0.5
print(f"{int(comm.sum())} of {len(comm)} settings are communication-dominated")
assert comm.sum() >= 5
assert (by_push.loc[comm, ("speedup", "topk")] >= by_push.loc[comm, ("speedup", "none")] - 1e-9).all()
self_lower = by_push.loc[comm, ("speedup_self", "topk")] < by_push.loc[comm, ("speedup_self", "none")]
print(f"relative to its own 1-worker time, compression looks worse in {int(self_lower.sum())} of them")

# %%
quiet = sn.Timing(per_sample=per_sample_s, slowdown=sn.timing.NoSlowdown(), latency=latency, bandwidth=bandwidth)
for n in (1, 4, 32):
    cfg = speedup.wait_config(sn.Config(batch_size=batch_size, steps=3, timing=quiet), n, n)
    sim = speedup.round_durations(cfg, dim)
    assert np.allclose(sim, speedup.model_time(n, per_sample_s, batch_size, bandwidth, push_dense, 4 * dim, latency))
share = curves[(curves.policy == "wait for all") & (curves.compressor == "none")]
share = share.groupby("workers")["link_share"].mean()
assert share.is_monotonic_increasing

# %%
for name, (f, predicted, err) in fits.items():
    assert max(f.workers) <= fit_max and len(f.free) <= f.points - 1, name       # out of sample, not overfitted
    assert np.isclose(ledger.records[record_ids[name]]["predicted"], f.model.speedup(predict_n)[0], rtol=1e-5)
terms = fits["additive"][0].model.terms(ns_pub)
assert np.allclose(terms[["compute", "broadcast", "gather", "incast"]].sum(axis=1), terms["time"])
assert np.isclose(fits["additive"][0].model.speedup(1)[0], 1.0) and len(robust) == 3 * 2 * 2

# %%
assert (curves.groupby(["policy", "compressor", "workers"]).seed.nunique() == seeds).all()  # every point, every seed
assert set(curves.workers) == set(workers) and len(shapes) == seeds                       # pre-registered sizes
assert per_sample != "source" or per_sample_s == sn.timing.PER_SAMPLE[model]            # machine-independent
assert set(ledger.records) == {"07.speedup.scales-up", "07.speedup.predict-32", "07.speedup.predict-32.overlap",
                               "07.speedup.peak-height", "07.speedup.drop-32-16"}
for r in ledger.records.values():  # finite; t-intervals over the seeds centred on their mean
    assert np.isfinite([r["statistic"], r["ci_low"], r["ci_high"]]).all(), r["id"]
    assert r["ci_low"] <= r["statistic"] <= r["ci_high"], r["id"]
assert all(ledger.records[i]["seeds"] == seeds for i in ("07.speedup.peak-height", "07.speedup.drop-32-16"))
