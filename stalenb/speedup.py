"""Speedup against the number of workers from the wall-clock model (notebook 07).

No gradients are computed: a protocol's simulated time depends only on the configuration and the
seed (:mod:`stalenb.schedule`), so a speedup curve costs milliseconds. For a global batch B split
over n workers, one synchronous update takes roughly

    T(n) ≈ per_sample · (B / n) · E[slowdown of the k-th fastest of n]        (compute)
         + n · (push_bytes + pull_bytes) / bandwidth + 2 · latency              (server link)

The compute term falls as 1/n, the communication term grows as n because every push and every
model pull crosses the server's one link (``stalenb.timing.Link``). The speedup
S(n) = T_ref(1) / T(n) therefore peaks near

    n* = sqrt(per_sample · B · bandwidth / (push_bytes + pull_bytes))           (:func:`bend`)

and falls beyond it: the server link saturates. Waiting for the k fastest workers (backup workers,
Chen et al. 2016; the poster's k-of-n) shortens the compute term (the k-th order statistic instead
of the maximum) and removes n − k pushes; compressing pushes (top-k / random-k) shrinks
``push_bytes`` only (pulls stay dense). The time of compressing a gradient is not modelled.

:data:`PUBLISHED` holds the speedups printed by ``hwang595/ps_pytorch``'s analysis notebooks (MPI runs on
AWS m4.2xlarge, first 100 steps; ``docs/research.md`` §2), cited by file and commit in
:data:`PUBLISHED_SOURCES`. Its two series are defined by the source's code, not by two protocols:
"wait for all, measured" sums per step the *slowest* worker's time; "ideal: fastest worker per step"
sums per step the *fastest* worker's time inside the same wait-for-all run — an ideal, never run
as a protocol. A worker's time ("Time Cost": weight fetch + forward + backward) excludes the server.
The ResNet-18 1-worker reference is synthetic: 2.1 × the 2-worker time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .sim.compress import Compressor
from .sim.config import Config
from .sim.schedule import Schedule

#: Where the published numbers are printed (repository, commit, file, cell) per model.
PUBLISHED_SOURCES = {
    "LeNet/MNIST": ("hwang595/ps_pytorch", "9bf38e8d902253eb51f9be3ab38b60f7d13f1649",
                    "analysis/Speedup_Comparisons_LeNet.ipynb", "cell 5 (parsing MPI output files)"),
    "ResNet-18/CIFAR-10": ("hwang595/ps_pytorch", "23d0a67d4780b52ff975cf6c815c6f95032a6274",
                           "analysis/Speedups_with_GradCompression.ipynb", "cell 2 (ResNet-18, batch 1024)"),
}
#: The two series as the source defines them (see the module docstring).
WAIT_ALL, IDEAL = "wait for all, measured", "ideal: fastest worker per step"

#: Published ps_pytorch speedups (docs/research.md §2), rounded to 2 decimals from the printed values.
PUBLISHED = pd.DataFrame(
    [
        (model, batch, policy, n, s)
        for model, batch, policy, values in [
            ("LeNet/MNIST", 8192, WAIT_ALL, (1.00, 2.08, 3.45, 5.90, 9.80, 5.50)),
            ("LeNet/MNIST", 8192, IDEAL, (1.00, 2.21, 3.86, 7.30, 11.36, 6.99)),
            ("ResNet-18/CIFAR-10", 1024, WAIT_ALL, (1.00, 2.10, 3.82, 6.85, 9.19, 6.81)),
            ("ResNet-18/CIFAR-10", 1024, IDEAL, (1.00, 2.24, 4.27, 8.25, 12.91, 12.45)),
        ]
        for n, s in zip((1, 2, 4, 8, 16, 32), values)
    ],
    columns=["model", "batch", "policy", "workers", "speedup"],
)
PUBLISHED["note"] = np.where(PUBLISHED["model"] == "ResNet-18/CIFAR-10",
                             "1-worker time synthetic (2.1 x the 2-worker time)", "")
PUBLISHED["source"] = [":".join(PUBLISHED_SOURCES[m][::2]) + "@" + PUBLISHED_SOURCES[m][1][:7]
                       for m in PUBLISHED["model"]]

#: Named waiting policies: k as a function of n.
POLICIES = {
    "wait for all": lambda n: n,
    "wait for half": lambda n: max(1, n // 2),
    "fastest only": lambda n: 1,
}


def push_bytes(dim: int, compressor: str = "none", density: float = 1.0) -> int:
    """Bytes of one push: 4·d dense, 8 per kept entry with top-k / random-k (:mod:`stalenb.compress`)."""
    return Compressor(compressor, density, dim).push_bytes


def update_times(config: Config, dim: int) -> np.ndarray:
    """Simulated times of the ``config.steps`` updates of ``config`` (model of ``dim`` parameters).

    Uses the protocol's schedule with ``config.seed``; pushes are compressed as the config says,
    pulls are dense (4·d bytes).
    """
    sched = Schedule(config, push_bytes(dim, config.compressor, config.density), 4 * int(dim),
                     np.random.default_rng(config.seed))
    return np.array([u.time for u in sched])


def round_durations(config: Config, dim: int) -> np.ndarray:
    """Duration of each update (round) of ``config``: differences of :func:`update_times` from 0."""
    return np.diff(update_times(config, dim), prepend=0.0)


def wait_config(base: Config, workers: int, k: int) -> Config:
    """``base`` with n = ``workers`` waiting for the first ``k``: ``sync`` if k = n, else k-of-n drop.

    The global batch stays ``base.batch_size`` rounded to a multiple of n (each worker computes
    round(B / n) samples), so that every n in 1…32 can be simulated.
    """
    per_worker = max(1, round(base.batch_size / workers))
    if k == workers:
        return base.replace(protocol="sync", workers=workers, k=None, batch_size=per_worker * workers)
    return base.replace(protocol="k-of-n", workers=workers, k=k, late="drop",
                        batch_size=per_worker * workers)


def curve(base: Config, dim: int, workers=range(1, 33), policies=("wait for all", "fastest only"),
          compressors=(("none", 1.0),), seeds=(0,)) -> pd.DataFrame:
    """Speedup vs number of workers for waiting policies × compressors × seeds.

    Every row is one (policy, compressor, density, workers, seed) with ``time`` (simulated seconds
    of ``base.steps`` updates), ``speedup`` = T(dense, wait for all, n = 1) / T — one common
    reference per seed, the published convention of timing the same number of steps — and
    ``speedup_self`` relative to the same policy and compressor at n = 1, plus ``link_share``,
    the fraction of the time the server's uplink and downlink are busy (a proxy for
    "communication dominates").

    Args:
        base: protocol-free settings (``batch_size`` = global B, ``steps``, ``timing``).
        dim: model dimension d.
        workers: the n values.
        policies: names in :data:`POLICIES` (or callables n → k).
        compressors: (kind, density) pairs.
        seeds: slowdown draws; the same seed gives every policy the same draws.
    """
    rows = []
    for seed in seeds:
        ref = update_times(wait_config(base, 1, 1).replace(seed=seed), dim)[-1]
        for kind, density in compressors:
            for pol in policies:
                k_of = POLICIES[pol] if isinstance(pol, str) else pol
                name = pol if isinstance(pol, str) else getattr(pol, "__name__", "custom")
                own1 = None
                for n in workers:
                    cfg = wait_config(base, n, k_of(n)).replace(compressor=kind, density=density, seed=seed)
                    t = update_times(cfg, dim)[-1]
                    own1 = t if own1 is None else own1
                    pb = push_bytes(dim, kind, density)
                    pushes = cfg.k_eff  # dropped jobs never push
                    busy = base.steps * (pushes * pb + n * 4 * dim) / base.timing.bandwidth
                    rows.append({"policy": name, "compressor": kind, "density": density, "workers": n,
                                 "k": cfg.k_eff, "seed": seed, "time": t, "speedup": ref / t,
                                 "speedup_self": own1 / t, "link_share": min(1.0, busy / t)})
    return pd.DataFrame(rows)


def bend(per_sample: float, batch: int, bandwidth: float, push: int, pull: int,
         slowdown: float = 1.0) -> float:
    """n* = sqrt(per_sample · B · s · bandwidth / max(push, pull)): the n that minimises :func:`model_time`.

    Setting d/dn [per_sample·B·s/n + n·max(push, pull)/bandwidth] = 0: where the compute time of
    one worker's share meets the time the busier direction of the server link needs for all n
    messages. Beyond n* adding workers makes a round longer.
    """
    if min(per_sample, batch, bandwidth, max(push, pull), slowdown) <= 0:
        raise ValueError("per_sample, batch, bandwidth, slowdown and max(push, pull) must be > 0")
    if math.isinf(bandwidth):
        return math.inf
    return math.sqrt(per_sample * batch * slowdown * bandwidth / max(push, pull))


def model_time(n, per_sample: float, batch: int, bandwidth: float, push: int, pull: int,
               latency: float = 0.0, slowdown: float = 1.0):
    """Round time of the deterministic sync model (exact for ``NoSlowdown`` and B divisible by n).

    T(n) = per_sample·(B/n)·s + (n − 1)·max(push, pull)/bandwidth + (push + pull)/bandwidth
    + 2·latency: the n model pulls leave the server one after another, each worker computes as
    soon as its copy arrives, and its push follows on the uplink (pushes queue behind each other
    when they are larger than pulls).
    """
    n = np.asarray(n, dtype=float)
    return (per_sample * batch / n * slowdown + (n - 1) * max(push, pull) / bandwidth
            + (push + pull) / bandwidth + 2 * latency)


def figure(df: pd.DataFrame, published: pd.DataFrame | None = PUBLISHED, n_star: float | None = None,
           title: str = ""):
    """Two panels: speedup vs n (policies × dense / compressed, mean over seeds, published points
    overlaid) and the server link's busy share vs n (why the curve bends). Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    d = df.assign(push=np.where(df["compressor"] == "none", "dense",
                                df["compressor"] + " " + (100 * df["density"]).map("{:g}%".format)))
    sns.lineplot(d, x="workers", y="speedup", hue="policy", style="push", errorbar=None, ax=ax)
    top = int(d["workers"].max())
    ax.plot([1, top], [1, top], color="0.6", lw=0.8, ls=":", label="linear")
    if published is not None:
        pub = published[published["model"].str.startswith("LeNet")]
        for (pol, grp), marker in zip(pub.groupby("policy", sort=False), ("o", "s")):
            ax.scatter(grp["workers"], grp["speedup"], marker=marker, s=36, facecolors="none",
                       edgecolors="k", zorder=5, label=f"ps_pytorch LeNet, {pol}")
    if n_star is not None and math.isfinite(n_star):
        ax.axvline(n_star, color="0.3", lw=0.8, ls="--")
        ax.annotate(f"n* ≈ {n_star:.0f} ", (n_star, ax.get_ylim()[1] * 0.02), ha="right", fontsize="small")
    ax.set(xlabel="workers n", ylabel="speedup T(1) / T(n)", title=title or "speedup (simulated)")
    ax.legend(fontsize="x-small", ncol=1, loc="upper left")
    sns.lineplot(d, x="workers", y="link_share", hue="policy", style="push", errorbar=None, ax=ax2,
                 legend=False)
    ax2.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax2.set(xlabel="workers n", ylabel="server link busy share", ylim=(0, 1.05),
            title="communication share of a round")
    fig.tight_layout()
    return fig


def shape(wait_all, fastest) -> dict:
    """Shape metrics of two speedup curves (pandas Series indexed by n), as compared in notebook 07.

    ``n_peak`` (n of the largest wait-for-all speedup), ``ratio_32_16`` (S(32) / S(16) of wait for
    all), ``gap_2``, ``gap_32`` (S_fastest / S_wait − 1 at n = 2 and 32) and ``gap_growth``
    (gap_32 − gap_2; > 0: the gap widens with n).

    Example:
        >>> import pandas as pd
        >>> m = shape(pd.Series({2: 2.0, 16: 8.0, 32: 4.0}), pd.Series({2: 2.2, 16: 9.0, 32: 6.0}))
        >>> m["n_peak"], m["ratio_32_16"], round(m["gap_growth"], 3)
        (16, 0.5, 0.4)
    """
    w, f = wait_all.astype(float), fastest.astype(float)
    gap = f / w - 1.0
    return {"n_peak": int(w.idxmax()), "ratio_32_16": float(w[32] / w[16]), "gap_2": float(gap[2]),
            "gap_32": float(gap[32]), "gap_growth": float(gap[32] - gap[2])}
