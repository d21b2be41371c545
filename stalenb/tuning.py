"""Step sizes tuned per arm on a validation split: the fair comparison of notebooks 05–06.

Each *arm* (a method at a staleness level, a protocol at (n, k), …) gets its own learning rate from
a log-spaced grid, chosen by the validation accuracy held out of the training digits
(``Config.validation``), never by the test digits. A grid whose best value sits at an edge is
extended by one grid step past that edge (up to ``max_extend`` times), so the reported best is
never an edge of the searched range unless the search says so (``at_edge`` column).

Score of one (arm, lr): the mean over ``seeds`` of the run's final ``val_acc`` (mean of the last
``tail`` evaluations); a diverged run scores its last value, which is chance level or worse, so a
too-large step loses without special-casing. With ``guard=True`` (issue 22) a step size is not
eligible when a tuning seed diverged at it or at the next larger grid value: the choice stays one grid
step clear of the divergence cliff (``eligible`` column; with ``sanity`` > 0 a run that ends below
that validation accuracy counts as failed too).

Example:
    >>> log_grid(0.1, 4.0, 2)
    [0.025, 0.05, 0.1, 0.2, 0.4]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import experiments as ex


def log_grid(center: float, span: float, points_per_side: int) -> list[float]:
    """``2·points_per_side + 1`` values, log-spaced from ``center/span`` to ``center·span``."""
    if not center > 0 or not span > 1 or int(points_per_side) < 1:
        raise ValueError(f"need center > 0, span > 1, points_per_side >= 1; got {center}, {span}, {points_per_side}")
    n = int(points_per_side)
    return [float(f"{center * span ** (i / n):.6g}") for i in range(-n, n + 1)]


def _scores(arms: dict, lrs, seeds, tail, jobs, executor, desc) -> pd.DataFrame:
    specs = [({"arm": arm, "lr": lr, "seed": s}, cfg.replace(lr=lr, seed=s))
             for arm, cfg in arms.items() for lr in lrs[arm] for s in seeds]
    kw = {"jobs": jobs, "desc": desc}
    if executor is not None:
        kw["executor"] = executor
    res = ex.run_all(specs, **kw)
    fin = ex.final(res.history, ["arm", "lr", "seed"], metric="val_acc", tail=tail)
    fin["val_acc"] = fin["val_acc"].fillna(0.0)
    return fin.groupby(["arm", "lr"], as_index=False).agg(val_acc=("val_acc", "mean"),
                                                            diverged=("diverged", "mean"),
                                                            worst_val_acc=("val_acc", "min"))


def failed(table: pd.DataFrame, sanity: float = 0.0) -> pd.Series:
    """Rows of a search table (:func:`tune`'s) where a tuning seed failed: it diverged, or ended below
    ``sanity`` validation accuracy (``worst_val_acc``)."""
    return table.diverged.gt(0) | ~table.worst_val_acc.ge(sanity)


def _eligible(part: pd.DataFrame, guard: bool, sanity: float = 0.0) -> pd.Series:
    """Rows of one arm's (sorted) grid that may be chosen: all, or with ``guard`` those where no tuning
    seed :func:`failed` at the value and at the next larger one; all again when that leaves none (the
    table's ``guard_fallback`` says so)."""
    if not guard:
        return pd.Series(True, index=part.index)
    bad = failed(part, sanity).to_numpy()
    ok = ~bad & ~np.append(bad[1:], False)
    return pd.Series(ok if ok.any() else np.ones(len(part), bool), index=part.index)


def _best(part: pd.DataFrame, guard: bool, sanity: float = 0.0):
    part = part.sort_values("lr")
    return part[_eligible(part, guard, sanity)].val_acc.idxmax()


def tune(arms: dict, grid, *, seeds=(0,), tail: int = 1, max_extend: int = 2, jobs: int = 1,
         executor=None, desc: str = "lr search", guard: bool = False,
         sanity: float = 0.0) -> tuple[dict, pd.DataFrame]:
    """Best learning rate per arm by validation accuracy.

    Args:
        arms: ``{label: Config}``; each config must hold out a validation split (``validation > 0``).
        grid: the learning rates tried for every arm (sorted, log-spaced), or ``{label: grid}``.
        seeds: seeds averaged per (arm, lr); tuning seeds should differ from the evaluation seeds.
        tail: evaluations averaged at the end of a run.
        max_extend: how many times a grid may grow past an edge that holds the best value.
        jobs, executor: passed to :func:`stalenb.experiments.run_all`.
        guard: keep the choice one grid step clear of a value where a tuning seed failed: diverged,
            or ended below ``sanity`` validation accuracy (a run stuck at chance is a failure too).

    Returns:
        ``(best, table)``: ``best`` maps each arm to its chosen lr; ``table`` has one row per
        (arm, lr) tried with ``val_acc``, ``diverged`` (fraction of seeds), ``best`` and, on the best
        row, ``at_edge`` (True when the best is still the grid's edge after the extensions).
    """
    for arm, cfg in arms.items():
        if not getattr(cfg, "validation", 0):
            raise ValueError(f"arm {arm!r}: tuning needs Config.validation > 0 (never tune on the test digits)")
    grids = {arm: sorted(grid[arm] if isinstance(grid, dict) else grid) for arm in arms}
    for arm, g in grids.items():
        if len(g) < 3 or min(g) <= 0:
            raise ValueError(f"arm {arm!r}: the grid needs >= 3 positive values, got {g}")
    seeds = list(seeds)
    table = _scores(arms, grids, seeds, tail, jobs, executor, desc)
    for _ in range(int(max_extend)):
        grow = {}
        for arm, g in grids.items():
            part = table[table.arm == arm]
            best = float(part.loc[_best(part, guard, sanity), "lr"])
            tried = sorted(part.lr)
            ratio = tried[1] / tried[0]
            if math.isclose(best, tried[0]):
                grow[arm] = [float(f"{tried[0] / ratio:.6g}")]
            elif math.isclose(best, tried[-1]):
                grow[arm] = [float(f"{tried[-1] * ratio:.6g}")]
        if not grow:
            break
        extra = _scores({a: arms[a] for a in grow}, grow, seeds, tail, jobs, executor, desc + " (edge)")
        table = pd.concat([table, extra], ignore_index=True)
    table = table.sort_values(["arm", "lr"], ignore_index=True)
    groups = table.groupby("arm", sort=False)
    table["eligible"] = pd.concat([_eligible(part, guard, sanity) for _, part in groups])
    any_failed = failed(table, sanity).groupby(table.arm).transform("any")
    table["guard_fallback"] = guard & any_failed & table.groupby("arm").eligible.transform("all")
    best_idx = pd.Series({arm: _best(part, guard, sanity) for arm, part in groups})
    table["best"] = False
    table.loc[best_idx.to_numpy(), "best"] = True
    edges = table.groupby("arm").lr.agg(["min", "max"])
    table["at_edge"] = [bool(b and (np.isclose(lr, edges.loc[a, "min"]) or np.isclose(lr, edges.loc[a, "max"])))
                        for a, lr, b in zip(table.arm, table.lr, table.best)]
    best = {a: float(table.loc[i, "lr"]) for a, i in best_idx.items()}
    return {a: best[a] for a in arms}, table
