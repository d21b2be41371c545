"""Notebook 06's equal-time protocol for k-of-n backup workers and the poster's reuse rule
(``docs/research.md`` §2).

The master waits for the k fastest of n workers; the late gradients are either dropped (backup
workers, Chen et al. 2016) or cached and applied in the next update with a lag weight (the
poster). The claim is about *time*, so every arm runs to the same simulated-time horizon T(n) and
at its own step size tuned on the validation split:

- the arms: :func:`backup_arms` (sync, k-of-n drop / reuse, async per (n, k)), the reuse weight
  :func:`stale_weight`, names :func:`arm_name`, on the simulated cluster of :func:`base_config`;
- the horizon: :func:`horizon` (the simulated time sync needs for a number of epochs);
  :func:`schedule_until` replays a schedule up to a time without training (the gradient mass of
  each update) and :func:`at_horizon` cuts a config there;
- the step sizes: :func:`tune_arms` (each arm cut at a fraction of T, its lr grid centred for its
  gradient mass; :func:`stalenb.tuning.tune` runs the search);
- the evaluation runs: :func:`specs_at_horizon` (one spec per seed, cut at T), :func:`mean_mass`,
  :func:`evaluation_specs` (every arm at its tuned lr, the mass-matched drop arm, the reuse-weight
  sweep); :func:`confirm` tunes and runs one (n, k) on another model (the LeNet subset);
- reading the runs: :func:`value_at` (a metric at fixed simulated times), :func:`crossing_time`
  (censored time to a target), :func:`paired` (two families paired on seed at one (n, k)),
  :func:`is_main` (the main arms, not the reuse-weight sweep);
- the decisions of issue 22: :func:`run_table` (one row per run: endpoint, censored time to target),
  :func:`pair_arms` (paired differences, validity gate over every run of the cell),
  :func:`largest_safe_lr` (drop's cliff) and :func:`tta_target` (the time-to-accuracy target fixed
  from the tuning runs); the Holm decision intervals and follow-ups are in :mod:`stalenb.decisions`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .sim import timing as _timing
from .sim.config import Config

#: The arm families of :func:`backup_arms`, plus the mass-matched drop arm of :func:`evaluation_specs`.
FAMILIES = ("sync", "drop", "reuse", "async", "matched")


# -- the arms --------------------------------------------------------------------------------------
def stale_weight(stale_mass: float, workers: int, k: int) -> float:
    """Lag weight w that gives the late gradients of a k-of-n reuse round a total weight of about
    ``stale_mass`` times the fresh ones: w = c · k / (n − k).

    Up to n − k late gradients arrive per round, each weighted w / k against the k fresh ones
    (weight 1 / k each), so their total relative weight is at most w (n − k) / k = c. This is the
    lag-indexed reading of the poster's condition Σ_{j≥1} β_j ≤ (a / 2b) β_0 (``docs/research.md`` §2):
    the stale gradients together weigh at most a fixed fraction of the fresh one.

    Example:
        >>> stale_weight(0.5, 8, 2)
        0.16666666666666666
    """
    if not workers > k >= 1:
        raise ValueError(f"need workers > k >= 1 for late gradients, got workers={workers}, k={k}")
    if not stale_mass >= 0:
        raise ValueError(f"stale_mass must be >= 0, got {stale_mass!r}")
    return float(stale_mass) * k / (workers - k)


def arm_name(family: str, n: int, k: int | None = None) -> str:
    """``"reuse n=8 k=2"``, ``"sync n=8"``: the arm names of :func:`backup_arms` (k only for the k-of-n
    families drop, reuse and matched)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return f"{family} n={int(n)}" + (f" k={int(k)}" if family in ("drop", "reuse", "matched") else "")


def backup_arms(base: Config, pairs, stale_mass: float = 0.5, asynchronous: bool = True) -> dict:
    """The poster's protocols for each (n, k) of ``pairs`` as ``{arm: (labels, config)}``.

    Per n: ``sync`` (wait for all n) and, if ``asynchronous``, ``async`` (each gradient of B / n
    samples applied on arrival); per (n, k) with k < n: ``drop`` (k-of-n, late jobs cancelled; backup
    workers, Chen et al. 2016) and ``reuse`` (late gradients cached and applied in the next update,
    each with lag weight w = :func:`stale_weight` (``stale_mass``, n, k); ``docs/research.md`` §2).
    Arm names read ``"reuse n=8 k=2"``; labels are ``arm``, ``family``, ``n``, ``k`` (k = n for
    sync, 1 for async) and ``c`` (the reuse weight, NaN elsewhere). ``base.batch_size`` is the
    global batch B.

    Example:
        >>> arms = backup_arms(Config(batch_size=256), [(8, 2)])
        >>> sorted(arms), arms["reuse n=8 k=2"][1].lag_weights
        (['async n=8', 'drop n=8 k=2', 'reuse n=8 k=2', 'sync n=8'], (0.16666666666666666,))
    """
    out = {}
    for n, k in pairs:
        n, k = int(n), int(k)
        if not 1 <= k < n:
            raise ValueError(f"need 1 <= k < n for k-of-n, got (n, k) = ({n}, {k})")
        arms = [("sync", n, {"protocol": "sync", "workers": n}, math.nan),
                ("drop", k, {"protocol": "k-of-n", "workers": n, "k": k, "late": "drop"}, math.nan),
                ("reuse", k, {"protocol": "k-of-n", "workers": n, "k": k, "late": "reuse",
                              "lag_weights": (stale_weight(stale_mass, n, k),)}, float(stale_mass))]
        if asynchronous:
            arms.append(("async", 1, {"protocol": "async", "workers": n, "batch_size": base.batch_size // n},
                         math.nan))
        for family, kk, changes, c in arms:
            name = arm_name(family, n, kk)
            out[name] = ({"arm": name, "family": family, "n": n, "k": kk, "c": c}, base.replace(**changes))
    return out


def base_config(model: str, *, batch_size: int, validation: int, eval_size: int | None, bandwidth: float,
                latency: float, per_sample, straggler_p: float, straggler_factor: float) -> Config:
    """The config every arm of notebook 06 starts from: ``model`` with global batch ``batch_size``,
    ``validation`` training digits held out, ``eval_size`` test digits (None: all), on the simulated
    cluster shared with notebook 07 (:func:`stalenb.timing.cluster`: the source's per-sample cost)
    with this link (``bandwidth`` bytes/s, ``latency`` s per message) and stragglers (a job is
    ``straggler_factor`` times slower with probability ``straggler_p``)."""
    cluster = _timing.cluster(model, bandwidth=bandwidth, latency=latency, per_sample=per_sample,
                              slowdown=_timing.Straggler(straggler_p, straggler_factor))
    return Config(model=model, batch_size=batch_size, validation=validation, eval_size=eval_size, timing=cluster)


# -- simulated-time horizons ------------------------------------------------------------------------
def horizon(base: Config, workers: int, epochs: float, n_train: int, seeds, dim: int) -> float:
    """T(n): the simulated time sync with ``workers`` workers needs for ``epochs`` passes over
    ``n_train`` training digits (⌈epochs · n_train / B⌉ updates of the global batch B =
    ``base.batch_size``): the time of its last update, mean over ``seeds`` (no training: the
    schedule alone, :func:`stalenb.speedup.update_times`). ``dim`` is the model's parameter count."""
    from .speedup import update_times

    cfg = base.replace(protocol="sync", workers=int(workers), steps=math.ceil(epochs * n_train / base.batch_size))
    return float(np.mean([update_times(cfg.replace(seed=s), dim)[-1] for s in seeds]))


def schedule_until(config: Config, dim: int, horizon: float) -> pd.DataFrame:
    """The updates of ``config``'s schedule completed by simulated time ``horizon`` (no training).

    Columns: ``step``, ``time`` and ``mass`` = Σ_i w(lag_i) / K, the gradient mass of the update (its
    step length relative to one averaged fresh gradient; 1 for sync, drop and async; above 1 for
    reuse, whose late gradients add to the k fresh ones). ``dim`` is the model's parameter count
    (dense pushes and pulls of 4·d bytes). ``config.steps`` is ignored: the schedule runs to ``horizon``.
    """
    from .sim.compress import Compressor
    from .sim.schedule import Schedule

    cfg = config.replace(steps=10**9)
    sched = Schedule(cfg, Compressor(cfg.compressor, cfg.density, int(dim)).push_bytes, 4 * int(dim),
                     np.random.default_rng(cfg.seed))
    rows = []
    for u in sched:
        if u.time > horizon:
            break
        rows.append((u.step, u.time, sum(cfg.lag_weight(u.step - p.version) for p in u.pushes) / cfg.k_eff))
    return pd.DataFrame(rows, columns=["step", "time", "mass"])


def at_horizon(config: Config, dim: int, horizon: float, evals: int) -> Config:
    """``config`` running exactly the updates completed by simulated time ``horizon`` (at least one),
    evaluated about ``evals`` times (every ⌈steps / evals⌉ updates, and at the end)."""
    steps = max(1, len(schedule_until(config, dim, horizon)))
    return config.replace(steps=steps, eval_every=max(1, math.ceil(steps / int(evals))))


def mean_mass(config: Config, seeds, dim: int, horizon: float) -> float:
    """The mean gradient mass Σw/K of ``config``'s updates up to ``horizon`` (:func:`schedule_until`),
    averaged over the updates of each seed, then over ``seeds``: 1 for sync, drop and async."""
    return float(np.mean([schedule_until(config.replace(seed=s), dim, horizon).mass.mean() for s in seeds]))


def specs_at_horizon(labels: dict, config: Config, seeds, dim: int, horizon: float, evals: int) -> list:
    """``(labels + seed, config)`` per seed of ``seeds``, each cut at ``horizon`` (:func:`at_horizon`,
    ``evals`` evaluations): the runs of one arm, for :func:`stalenb.experiments.run_all`."""
    return [({**labels, "seed": s}, at_horizon(config.replace(seed=s), dim, horizon, evals)) for s in seeds]


# -- step sizes and evaluation runs -----------------------------------------------------------------
def tune_arms(arms: dict, dim: int, horizons: dict, *, seed: int, fraction: float, lr_center: float,
              lr_span: float, lr_points: int, evals: int = 1, **changes) -> tuple[dict, dict, dict]:
    """The lr search of each arm of ``arms`` (:func:`backup_arms`), without running it.

    Each arm runs at the tuning ``seed`` up to ``fraction`` · T(n) (``horizons`` maps n to T), about
    ``evals`` evaluations (one, at the end, by default), with the Config fields ``changes`` set (e.g. a
    small ``eval_size``: the search reads only the validation split); its grid (:func:`stalenb.tuning.log_grid`, ``lr_points`` per side, up to
    ``lr_span`` away) is centred at ``lr_center`` divided by the arm's mean gradient mass up to that
    time (:func:`schedule_until`; 1 except for reuse), so that each arm's grid covers the same step
    lengths. Returns ``({arm: config}, {arm: lr grid}, {arm: mass})`` for :func:`stalenb.tuning.tune`.
    """
    from .tuning import log_grid

    cfgs, grids, masses = {}, {}, {}
    for name, (lab, cfg) in arms.items():
        until = fraction * horizons[lab["n"]]
        cfg = at_horizon(cfg.replace(seed=seed, **changes), dim, until, evals)
        masses[name] = float(schedule_until(cfg, dim, until).mass.mean())
        cfgs[name], grids[name] = cfg, log_grid(lr_center / masses[name], lr_span, lr_points)
    return cfgs, grids, masses


def evaluation_specs(arms: dict, lrs: dict, horizons: dict, dim: int, *, seeds, baseline_seeds,
                     sweep_masses=(), sweep_seeds=(), evals: int) -> tuple[list, dict]:
    """Every evaluation run of the protocol, cut at its T(n): ``(specs, matched_lr)``.

    - each arm of ``arms`` at its tuned lr (``lrs``): drop and reuse on ``seeds``, sync and async on
      ``baseline_seeds``;
    - per reuse arm, the **mass-matched drop** arm (family ``matched``): drop at reuse's lr × reuse's
      :func:`mean_mass` over ``baseline_seeds`` (``matched_lr``, keyed by the reuse arm), i.e. the
      same mean step length with only fresh gradients, on ``baseline_seeds``;
    - per reuse arm and total late weight c of ``sweep_masses``, reuse at its tuned lr with lag weight
      :func:`stale_weight` (c, n, k), arm ``"reuse n=8 k=2 c=3"``, on ``sweep_seeds``.

    Every run is evaluated ``evals`` times (:func:`specs_at_horizon`).
    """
    specs, matched_lr = [], {}
    for name, (lab, cfg) in arms.items():
        hor, cfg = horizons[lab["n"]], cfg.replace(lr=lrs[name])
        specs += specs_at_horizon(lab, cfg, seeds if lab["family"] in ("drop", "reuse") else baseline_seeds,
                                  dim, hor, evals)
        if lab["family"] == "reuse":
            matched_lr[name] = lrs[name] * mean_mass(cfg, baseline_seeds, dim, hor)
            drop_lab, drop_cfg = arms[arm_name("drop", lab["n"], lab["k"])]
            specs += specs_at_horizon({**drop_lab, "arm": arm_name("matched", lab["n"], lab["k"]),
                                       "family": "matched"},
                                      drop_cfg.replace(lr=matched_lr[name]), baseline_seeds, dim, hor, evals)
            for c in sweep_masses:
                specs += specs_at_horizon({**lab, "arm": f"{name} c={c:g}", "c": c},
                                          cfg.replace(lag_weights=(stale_weight(c, lab["n"], lab["k"]),)),
                                          sweep_seeds, dim, hor, evals)
    return specs, matched_lr


def confirm(base: Config, pair, dim: int, horizon: float, *, seeds, tune_seeds, stale_mass: float,
            fraction: float, lr_center: float, lr_span: float, lr_points: int, max_extend: int,
            jobs: int = 1, desc: str = "06 LeNet") -> dict:
    """The confirmatory comparison at one (n, k) = ``pair`` on ``base``'s model: reuse and drop only.

    Each arm gets its own lr (:func:`tune_arms` at ``tune_seeds[0]`` and :func:`stalenb.tuning.tune`
    over ``tune_seeds``, as the main grid), then runs on ``seeds`` to ``horizon`` with one evaluation,
    at the end. Returns ``{"lr": {family: lr}, "final": per-run table (arm labels, seed, at,
    test_acc at the horizon), "diff": stats.paired_difference reuse − drop on seed}``.
    """
    from . import stats, tuning
    from .experiments import run_all

    n, _ = pair
    arms = {a: v for a, v in backup_arms(base, [pair], stale_mass, asynchronous=False).items()
            if v[0]["family"] != "sync"}
    cfgs, grids, _ = tune_arms(arms, dim, {n: horizon}, seed=tune_seeds[0], fraction=fraction,
                               lr_center=lr_center, lr_span=lr_span, lr_points=lr_points)
    best, _ = tuning.tune(cfgs, grids, seeds=tune_seeds, max_extend=max_extend, jobs=jobs, desc=f"{desc} lr search")
    specs = [s for a, (lab, cfg) in arms.items()
             for s in specs_at_horizon(lab, cfg.replace(lr=best[a]), seeds, dim, horizon, 1)]
    res = run_all(specs, jobs=jobs, desc=f"{desc} runs")
    final = value_at(res.history, ["arm", "seed"], [horizon]).merge(
        pd.DataFrame([lab for lab, _ in arms.values()]), on="arm")
    return {"lr": {lab["family"]: best[a] for a, (lab, _) in arms.items()}, "final": final,
            "diff": stats.paired_difference(final, "reuse", "drop", column="family")}


# -- reading the runs -------------------------------------------------------------------------------
def is_main(frame: pd.DataFrame, stale_mass: float) -> pd.Series:
    """Rows of the main arms: every arm but the reuse-weight sweep (reuse at a c other than
    ``stale_mass``; the other families have c = NaN)."""
    return frame.c.isna() | (frame.c == stale_mass)


def paired(table: pd.DataFrame, a: str, b: str, n: int, k: int, metric: str) -> dict:
    """:func:`stalenb.stats.paired_difference` of families ``a`` − ``b`` at (n, k), paired on seed
    (sync, whose k is n, counts as at every k). ``table`` has columns ``n``, ``k``, ``family``,
    ``seed`` and ``metric``, one row per run."""
    from .stats import paired_difference

    sel = table[(table.n == n) & (table.family.isin([a, b])) & ((table.k == k) | (table.family == "sync"))]
    return paired_difference(sel, a, b, column="family", pair_on=("seed",), metric=metric)


def value_at(history: pd.DataFrame, by, points, x: str = "sim_time", metric: str = "test_acc",
             interpolate: bool = False) -> pd.DataFrame:
    """Per run (``by``) and point p of ``points``: ``metric`` at ``x`` = p.

    By default the value of the last evaluation with ``x`` ≤ p (what the system holds at simulated time
    or update p; NaN before the first evaluation); with ``interpolate``, linear between the two
    evaluations around p (constant past the last one). A diverged run keeps the value of its last
    evaluation (the broken model's; a non-finite value counts as 0). Columns: ``by``, ``at``, ``metric``.

    Example:
        >>> h = pd.DataFrame({"run": 0, "step": [0, 1, 2], "sim_time": [0.0, 1.0, 2.0],
        ...                   "test_acc": [0.1, 0.5, 0.9]})
        >>> value_at(h, ["run"], [1.5]).test_acc.item(), value_at(h, ["run"], [1.5], interpolate=True).test_acc.item()
        (0.5, 0.7)
    """
    rows = []
    for key, grp in history.sort_values(["step"]).groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        xs, vals = grp[x].to_numpy(dtype=float), np.nan_to_num(grp[metric].to_numpy(dtype=float), nan=0.0)
        for p in points:
            i = np.searchsorted(xs, p, side="right") - 1
            v = float(np.interp(p, xs, vals)) if interpolate else (float(vals[i]) if i >= 0 else math.nan)
            rows.append({**dict(zip(by, key)), "at": p, metric: v})
    return pd.DataFrame(rows)


def crossing_time(history: pd.DataFrame, by, target: float, horizon=None, metric: str = "test_acc",
                  x: str = "sim_time") -> pd.DataFrame:
    """Per run: when ``metric`` first reaches ``target``, linear between the evaluation below and the
    first one at or above it (the evaluations are sparse; :func:`stalenb.experiments.time_to_accuracy`
    reports the evaluation's own time instead). Runs that never reach it (or diverge first) are
    *censored*: ``reached`` False and the time set to ``horizon`` (a number, or a dict keyed by the
    first column of ``by``), or NaN without one. Columns: ``by``, ``x``, ``reached``.

    Example:
        >>> h = pd.DataFrame({"run": 0, "step": [0, 1, 2], "sim_time": [0.0, 1.0, 2.0],
        ...                   "test_acc": [0.1, 0.5, 0.9], "diverged": False})
        >>> crossing_time(h, ["run"], 0.7)[["sim_time", "reached"]].to_dict("records")
        [{'sim_time': 1.5, 'reached': True}]
    """
    rows = []
    for key, grp in history.sort_values("step").groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        xs, vals = grp[x].to_numpy(dtype=float), grp[metric].to_numpy(dtype=float)
        ok = np.flatnonzero((vals >= target) & ~grp["diverged"].to_numpy(dtype=bool))
        if len(ok):
            i = int(ok[0])
            t = xs[i] if i == 0 else xs[i - 1] + (target - vals[i - 1]) / (vals[i] - vals[i - 1]) * (xs[i] - xs[i - 1])
        elif isinstance(horizon, dict):
            t = horizon.get(key[0], math.nan)
        else:
            t = math.nan if horizon is None else horizon
        rows.append({**dict(zip(by, key)), x: float(t), "reached": bool(len(ok))})
    return pd.DataFrame(rows)


# -- the two-stage decisions of issue 22 ------------------------------------------------------------
def run_table(history: pd.DataFrame, by, target: float, horizons: dict, tail: int = 3) -> pd.DataFrame:
    """One row per run (``by``: label columns with ``n`` first and ``seed``): ``test_acc`` = the
    endpoint, the mean of the run's last ``tail`` evaluations (the run ends at its horizon T(n), so
    these are the last ones up to T); ``diverged``; ``sim_time`` and ``reached`` of
    :func:`crossing_time` at ``target`` (censored at T(n) = ``horizons[n]``); ``log_tta`` its log."""
    from .experiments import final

    fin = final(history, by, "test_acc", tail=tail)[[*by, "test_acc", "diverged"]]
    tta = crossing_time(history, by, target, horizon=horizons)
    out = fin.merge(tta, on=list(by))
    out["log_tta"] = np.log(out.sim_time)
    return out


def pair_arms(table: pd.DataFrame, a: str, b: str, n: int, k: int, seeds, metric: str = "test_acc",
              sanity: float = 0.2) -> dict:
    """Families ``a`` and ``b`` at (n, k) (sync: at every k) paired on ``seeds``: ``diffs`` (a − b per
    seed, in seed order) and ``reached`` (runs of these seeds that reached the target, per family).

    The validity gate reads **every run the family has at the cell** in ``table``, not only ``seeds``
    (a stage-2 seed run for another comparison counts too): ``runs``, ``diverged`` and ``below`` (runs
    under the ``sanity`` accuracy) per family over all of them, and ``valid``
    (:func:`stalenb.decisions.valid_arm` for both). Raises when a seed lacks a run of either family (a
    pairing bug)."""
    from .decisions import valid_arm

    cell = table[(table.n == n) & table.family.isin([a, b]) & ((table.k == k) | (table.family == "sync"))]
    sel = cell[cell.seed.isin(list(seeds))]
    wide = sel.pivot_table(index="seed", columns="family", values=metric, aggfunc="first")
    if sorted(wide.index) != sorted(seeds) or wide[[a, b]].isna().any().any():
        raise ValueError(f"{a} and {b} at n={n} k={k} lack runs for some of the seeds {list(seeds)}")
    out = {"diffs": (wide[a] - wide[b]).loc[list(seeds)].to_numpy(dtype=float), "diverged": {}, "below": {},
           "runs": {}, "reached": {}}
    valid = True
    for fam in (a, b):
        every = cell[cell.family == fam]
        out["runs"][fam] = len(every)
        out["diverged"][fam] = int(every.diverged.sum())
        out["below"][fam] = int((every.test_acc < sanity).sum())
        out["reached"][fam] = int(sel[sel.family == fam].reached.sum()) if "reached" in sel else None
        valid &= valid_arm(every.test_acc, every.diverged, sanity=sanity)
    out["valid"] = bool(valid)
    return out


def largest_safe_lr(table: pd.DataFrame, arm: str, sanity: float = 0.0) -> float | None:
    """The largest lr of ``arm``'s search (:func:`stalenb.tuning.tune`'s table) that the cliff guard
    allows (``eligible``) and where no tuning seed failed (diverged, or ended below ``sanity``
    validation accuracy); None when there is none (every value failed: the guard fell back)."""
    from .tuning import failed

    part = table[table.arm == arm]
    ok = part.eligible & ~failed(part, sanity)
    return float(part[ok].lr.max()) if ok.any() else None


def tta_target(table: pd.DataFrame, arms, delta: float, step: float = 0.005) -> float:
    """The time-to-accuracy target, fixed from the tuning runs before any evaluation run: the smallest
    endpoint at T of the ``arms`` (sync per n) at their chosen lr over every tuning seed
    (``worst_val_acc`` of the best row), minus ``delta``, floored to a multiple of ``step``.

    Example:
        >>> t = pd.DataFrame({"arm": ["s4", "s4", "s8"], "lr": [0.1, 0.2, 0.1], "best": [True, False, True],
        ...                   "worst_val_acc": [0.953, 0.99, 0.962]})
        >>> tta_target(t, ["s4", "s8"], 0.01)
        0.94
    """
    best = table[table.arm.isin(list(arms)) & table.best]
    if best.arm.nunique() != len(set(arms)):
        raise ValueError(f"the table lacks a chosen lr for some of {list(arms)}")
    low = float(best.worst_val_acc.min()) - delta
    return round(math.floor(round(low / step, 9)) * step, 10)
