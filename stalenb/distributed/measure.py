"""Measured versus simulated: a timing model fitted to a real run, and its simulated twin.

:func:`fit_timing` reads the per-gradient record of a real run (``compute_s``: the worker's own
gradient + compression time; ``arrived − sent − job_s``: the round trip spent in transfer and
queueing) and returns the :class:`stalenb.timing.Timing` that the simulator needs to replay the
same cluster: ``per_sample`` = median compute time / push batch, ``latency`` = half the median
round-trip overhead, free bandwidth (loopback), and the run's own slowdown model.
:func:`simulated_twin` runs ``stalenb.run`` with it, so the two staleness distributions can be
set side by side (notebook 08).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import Run
from ..engine import run as simulate_run
from ..timing import Timing


def fit_timing(run: Run) -> Timing:
    """The timing model of ``run`` (a finished :func:`stalenb.distributed.launch`)."""
    upd = run.updates
    if upd.empty:
        raise ValueError("run has no gradients to fit a timing model to")
    per_sample = float(np.median(upd["compute_s"])) / run.config.push_batch
    overhead = (upd["arrived"] - upd["sent"] - upd["job_s"]).clip(lower=0.0)
    return Timing(per_sample=per_sample, slowdown=run.config.timing.slowdown,
                  latency=float(np.median(overhead)) / 2, bandwidth=float("inf"))


def simulated_twin(run: Run, cache: bool = True) -> Run:
    """``stalenb.run`` of the same configuration with the timing model fitted to ``run``."""
    return simulate_run(run.config.replace(timing=fit_timing(run)), cache=cache, progress=False)


def staleness_summary(real: Run, sim: Run) -> pd.DataFrame:
    """Mean, max and share of zero staleness over the applied gradients, measured vs simulated."""
    rows = {}
    for name, r in (("measured", real), ("simulated", sim)):
        s = r.updates.loc[r.updates["applied"], "staleness"]
        rows[name] = {"mean": float(s.mean()), "max": int(s.max()), "share_zero": float((s == 0).mean()),
                      "dropped": int((~r.updates["applied"]).sum()), "gradients": int(len(s))}
    return pd.DataFrame(rows).T
