"""Real runs: a parameter server and n workers as processes on torch.distributed (docs/design.md §S5).

Rank 0 is the parameter server — the simulator's :class:`stalenb.server.Server` with the same
update rules (:mod:`stalenb.rules`), lag weights and history (:mod:`stalenb.history`); ranks
1..n are workers computing gradients with the simulator's oracle
(:class:`stalenb.gradients.NeuralNet`) and compressing them with :class:`stalenb.compress.Compressor`
(top-k / random-k sent as values + int32 indices, error feedback per worker). Protocols ``sync``,
``async`` and ``k-of-n`` (``drop`` / ``reuse``) as in :mod:`stalenb.schedule`, but staleness is
*measured*: the number of server updates between the model a worker read and the update that
applies its gradient. Transport: gloo point-to-point, on CPU tensors (a worker computes on CUDA
when ``config.device="cuda"``). Listens on 127.0.0.1 unless told otherwise.

Two ways to start it:

- :func:`run` / :func:`launch` from Python: starts 1 + ``config.workers`` local processes, each a
  fresh ``python -m stalenb.distributed`` interpreter (so scripts without a main guard and
  notebooks can call it), with the config as command-line options (:mod:`stalenb.distributed.cli`);
- ``torchrun --nproc-per-node N -m stalenb.distributed --protocol async ...`` (N = 1 + workers),
  also across machines with ``--nnodes`` and a rendezvous address (see the README).

Straggler injection: ``config.timing.slowdown`` (drawn per job, the simulator's common random
numbers) and a fixed ``slowdown`` factor per worker; a worker sleeps (s − 1) × its compute time.

Failures: a worker that dies or a server that stops answering ends the run within ``timeout``
seconds with :class:`DistributedError` naming the rank and quoting the last lines of its stderr;
``error.run`` keeps the partial log, ``error.stderr`` the ranks' last stderr lines.

Example:
    >>> import stalenb as sn, stalenb.distributed as sd
    >>> cfg = sn.Config(protocol="async", workers=3, steps=30, train_size=512, eval_size=64)
    >>> hist = sd.run(cfg)                       # doctest: +SKIP
    >>> r = sd.launch(cfg, slowdown=(1, 1, 4))   # doctest: +SKIP
    >>> r.updates.groupby("worker").staleness.mean()  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

from .launcher import DistributedError, free_port, launch
from .measure import fit_timing, simulated_twin, staleness_gap, staleness_summary
from .ps import EXTRA_COLUMNS
from .wire import PeerLost

__all__ = ["run", "launch", "DistributedError", "PeerLost", "free_port", "EXTRA_COLUMNS", "fit_timing",
           "simulated_twin", "staleness_gap", "staleness_summary"]


def run(config, *, slowdown=None, timeout: float = 60.0, addr: str = "127.0.0.1", port=None,
        threads: int = 1) -> pd.DataFrame:
    """Run ``config`` on real local processes; the history frame (as ``stalenb.simulate``'s).

    Args:
        config: a :class:`stalenb.Config` (``staleness`` must be None: it is measured).
        slowdown: one fixed slowdown factor ≥ 1 per worker (straggler injection), on top of
            ``config.timing.slowdown``.
        timeout: seconds of silence after which a run ends with :class:`DistributedError`.
        addr, port: where rank 0 listens (default 127.0.0.1 and a free port).
        threads: torch threads per process.

    Returns:
        One row per evaluation with the columns of :data:`stalenb.history.HISTORY_COLUMNS`, but
        ``wall_time`` in the place of ``sim_time``: *measured* seconds since the start (the
        server evaluates its kept copies of the model after training, so no evaluation stalls the
        workers or enters the clock; one time column, named for what it holds;
        :func:`stalenb.experiments.final` and ``time_to_accuracy`` read either). Use
        :func:`launch` for the per-gradient record too (``.updates``, with the measured ``rank,
        sent, arrived, compute_s, job_s, slowdown``).
    """
    return launch(config, slowdown=slowdown, timeout=timeout, addr=addr, port=port,
                  threads=threads).history
