"""Starting the processes: one role per rank, locally (:func:`launch`) or under ``torchrun``.

:func:`launch` starts 1 + n local processes as fresh interpreters of the package's own entry
point, ``python -m stalenb.distributed <the config as options>`` (:mod:`stalenb.distributed.cli`),
with the environment torchrun would give them (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` =
127.0.0.1, a free ``MASTER_PORT``). The caller's ``__main__`` is never re-imported, so a plain
script without a ``if __name__ == "__main__":`` guard, or a notebook, can call it. The ranks meet
in a gloo process group; results come back as JSON lines on the ranks' stdout (never pickled).
The caller watches the processes: a rank that exits abnormally, or reports that its peer was
lost, ends the run within ``timeout`` (+ a few seconds) with a :class:`DistributedError` naming
the rank and quoting the last lines of the lost ranks' stderr; the server's partial log travels
with the error.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import torch.distributed as dist

from .. import cache as _cache
from ..sim import history
from ..sim.config import Config
from ..sim.engine import Run
from ..sim.timing import SLOWDOWNS
from . import ps, worker

BACKEND = "gloo"
REPORT = "@stalenb-report "  # prefix of the JSON lines a rank writes for :func:`launch`
TAIL = 15  # stderr lines kept per rank, quoted in a DistributedError


class DistributedError(RuntimeError):
    """A real run that ended early. ``rank``: the rank at fault (0 = server, -1 = unknown);
    ``run``: the partial :class:`stalenb.Run` (history + updates up to the failure), if any;
    ``stderr``: the last lines each rank wrote to stderr (``{rank: [line, ...]}``)."""

    def __init__(self, rank: int, message: str, run: Run | None = None, stderr: dict | None = None):
        super().__init__(message)
        self.rank, self.run, self.stderr = rank, run, stderr or {}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


#: The protocols the real parameter server runs; the others (Rennala, Ringmaster, the gradient
#: table, a user's) run in the simulator only. Every server rule runs in both.
REAL_PROTOCOLS = ("sync", "async", "k-of-n")


def check(config: Config) -> None:
    """Reject configurations a real run cannot honour (``ValueError`` naming the field)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a stalenb.Config, got {type(config).__name__}")
    if config.protocol not in REAL_PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(map(repr, REAL_PROTOCOLS))} for real runs, got "
                         f"{config.protocol!r}: it runs in the simulator only (the real server's messages have "
                         "no job cancellation and no per-worker gradient table yet)")
    for name in ("stop_loss", "time_limit"):
        if getattr(config, name) is not None:
            raise ValueError(f"{name} must be None for real runs (it stops simulated runs only), "
                             f"got {name}={getattr(config, name)!r}")
    if config.staleness is not None:
        raise ValueError("staleness must be None for real runs: staleness is measured, not drawn "
                         f"(got staleness={config.staleness!r})")
    if not isinstance(config.timing.slowdown, SLOWDOWNS):
        raise ValueError(f"timing.slowdown must be one of {', '.join(c.__name__ for c in SLOWDOWNS)} for real runs, "
                         f"got {type(config.timing.slowdown).__name__}: a replayed compute-time trace runs in the "
                         "simulator only (its values below 1 would ask a real worker to outrun its own compute); "
                         "give real workers fixed speeds with timing.factors or slowdown=")


def worker_factors(config: Config, slowdown=None) -> list[float]:
    """Each real worker's fixed slowdown: ``config.timing.factors`` (all 1 when ``None``) times
    ``slowdown`` (one extra factor per worker, or ``None``).

    A real worker cannot run faster than it computes (it sleeps (f − 1) × its compute time), so
    every product must be ≥ 1; otherwise ``ValueError`` names the parameter.

    Example:
        >>> from stalenb import Config, Timing
        >>> worker_factors(Config(workers=3, timing=Timing(factors=(1, 2, 3))), slowdown=(1, 1, 2))
        [1.0, 2.0, 6.0]
    """
    n = config.workers
    base = [1.0] * n if config.timing.factors is None else [float(f) for f in config.timing.factors]
    if any(not f >= 1.0 for f in base):
        raise ValueError(f"timing.factors must all be >= 1 for real runs (a real worker cannot run faster than "
                         f"it computes), got {config.timing.factors!r}")
    extra = [1.0] * n if slowdown is None else [float(s) for s in slowdown]
    if len(extra) != n or any(not (f >= 1.0) for f in extra):
        raise ValueError(f"slowdown must list {n} factors >= 1 (one per worker), got {slowdown!r}")
    return [a * b for a, b in zip(base, extra)]


def with_factors(config: Config, factors: list[float]) -> Config:
    """``config`` with ``timing.factors`` = ``factors`` (``None`` when all are 1, as in a run without them)."""
    import dataclasses

    fixed = None if all(f == 1.0 for f in factors) and config.timing.factors is None else tuple(factors)
    return config.replace(timing=dataclasses.replace(config.timing, factors=fixed))


def init(rank: int, world: int, init_method: str, timeout: float) -> None:
    """Join the gloo process group (its own timeout generous: deadlines are enforced by the inboxes)."""
    pg_timeout = datetime.timedelta(seconds=max(300.0, 10 * timeout))
    dist.init_process_group(BACKEND, init_method=init_method, rank=rank, world_size=world,
                            timeout=pg_timeout)


def role(config: Config, rank: int, timeout: float, factor: float = 1.0, progress=False,
         on_start=None):
    """Play ``rank``'s part in an initialised process group; the server returns its frames."""
    from ..sim.gradients import from_config

    problem = from_config(config)
    if rank == 0:
        return ps.serve(config, problem, timeout, progress, on_start)
    worker.serve(config, problem, rank, timeout, factor)
    return None


def _frames(payload: dict):
    hist = pd.DataFrame(payload["history"])
    hist = hist.astype({col: "int64" for col in ("step", "samples", "gradients", "dropped", "staleness_max",
                                             "bytes_sent")} | {"diverged": "bool"})
    upd = pd.DataFrame(payload["updates"],
                       columns=list(history.UPDATE_COLUMNS) + list(ps.EXTRA_COLUMNS))
    upd = upd.astype({"step": "int64", "worker": "int64", "version": "int64", "staleness": "int64",
                      "weight": "float64", "time": "float64", "applied": "bool", "rank": "int64"}
                     | {n: "float64" for n in ps.EXTRA_COLUMNS[1:]})
    return hist, upd



def _loopback_interface() -> str | None:
    """The name of the loopback interface (``lo`` on Linux, ``lo0`` on macOS), if there is one."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


class _Rank:
    """One rank's process: its reports (stdout JSON lines) go to a shared queue, the last
    :data:`TAIL` lines of its stderr into :attr:`tail`."""

    def __init__(self, rank, argv, env, reports: queue.Queue):
        self.rank, self.tail = rank, collections.deque(maxlen=TAIL)
        self.proc = subprocess.Popen([sys.executable, "-m", "stalenb.distributed", *argv], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.readers = [threading.Thread(target=self._stdout, args=(reports,), daemon=True),
                        threading.Thread(target=self._stderr, daemon=True)]
        for t in self.readers:
            t.start()

    def _stdout(self, reports):
        for line in self.proc.stdout:
            if line.startswith(REPORT):
                reports.put((self.rank, json.loads(line[len(REPORT):])))
        reports.put((self.rank, None))  # EOF: the process is gone or going

    def _stderr(self):
        for line in self.proc.stderr:
            self.tail.append(line.rstrip("\n"))

    def exitcode(self, wait: float = 1.0):
        try:
            return self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, deadline: float) -> None:
        if self.exitcode(max(0.0, deadline - time.monotonic())) is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for t in self.readers:
            t.join(timeout=2)
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()


def _environment(rank, world, addr, port, threads) -> dict:
    package_parent = str(Path(__file__).resolve().parents[2])  # stalenb importable as in the caller
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
               LOCAL_WORLD_SIZE=str(world), MASTER_ADDR=addr, MASTER_PORT=str(port), STALENB_REPORT="1",
               OMP_NUM_THREADS=str(threads), PYTHONPATH=path, TQDM_DISABLE="1")
    if addr.startswith("127.") and _loopback_interface():
        env.setdefault("GLOO_SOCKET_IFNAME", _loopback_interface())  # gloo's sockets on loopback too
    return env


def launch(config: Config, *, slowdown=None, timeout: float = 60.0, addr: str = "127.0.0.1",
           port: int | None = None, threads: int = 1, cache: bool = False, _kill=None) -> Run:
    """Run ``config`` on 1 + ``config.workers`` local processes; see :func:`stalenb.distributed.run`.

    Each rank is a fresh ``python -m stalenb.distributed`` process (safe from scripts without a
    main guard and from notebooks). ``cache=True`` stores the *measured* run in the results cache
    (:mod:`stalenb.cache`, keyed by the config, the slowdown factors and ``"distributed"``) and
    returns it on the next call instead of measuring again (``Run.from_cache`` tells which); the
    default measures every time.

    ``_kill=(rank, seconds[, signal])`` kills (or stops, with ``signal.SIGSTOP``) that rank so many
    seconds after the server started training (tests of failure handling).
    """
    from .cli import to_argv

    check(config)
    factors = worker_factors(config, slowdown)
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    extra = {"driver": "distributed", "slowdown": factors}
    key = _cache.key(config, extra=extra, code=("distributed",)) if cache else None
    hit = _cache.load(key) if key else None
    config = with_factors(config, factors)  # the run records the speeds its workers had
    if hit is not None:
        return Run(config, hit[0]["history"], hit[0]["updates"], from_cache=True)
    port = free_port(addr) if port is None else int(port)
    argv = to_argv(config) + ["--factors", *map(repr, factors), "--timeout", repr(float(timeout)),
                              "--threads", str(threads)]
    reports: queue.Queue = queue.Queue()
    world = config.workers + 1
    ranks = [_Rank(r, argv, _environment(r, world, addr, port, threads), reports) for r in range(world)]
    try:
        result = _watch(config, ranks, reports, timeout, _kill)
        if key:
            _cache.save(key, {"history": result.history, "updates": result.updates}, {"driver": "distributed"})
        return result
    finally:
        deadline = time.monotonic() + 5.0
        for r in ranks:
            r.stop(deadline)


def _watch(config, ranks, reports: queue.Queue, timeout, kill) -> Run:
    """Wait for the server's log; turn a lost rank into :class:`DistributedError` (never hang)."""
    started, failed, failure_at, errors = None, {}, None, []
    grace = timeout + 10.0
    while True:
        if kill is not None and started is not None and time.monotonic() - started >= kill[1]:
            os.kill(ranks[kill[0]].proc.pid, kill[2] if len(kill) > 2 else signal.SIGKILL)
            kill = None
        try:
            rank, payload = reports.get(timeout=0.1)
        except queue.Empty:
            rank, payload = None, None
        if rank is not None and payload is None:  # the rank's stdout closed: it exited
            code = ranks[rank].exitcode()
            if code != 0:
                failed[rank] = code
        elif rank == 0 and payload.get("started"):
            started = time.monotonic()
        elif rank == 0 and "history" in payload:
            run = Run(config, *_frames(payload))
            if payload["error"] is None:
                return run
            raise DistributedError(payload["lost"], f"distributed run ended early: {payload['error']}"
                                   + _tails(ranks, [payload["lost"]]), run, _stderr(ranks))
        elif payload is not None:
            errors.append(payload)
        if failed or errors:
            failure_at = failure_at or time.monotonic()
        server_lost = 0 in failed or any(r.get("lost") == 0 for r in errors)
        if server_lost or (failure_at is not None and time.monotonic() - failure_at > grace):
            time.sleep(0.2)  # let the readers take the last stderr lines
            lost, message = _blame(failed, errors, grace)
            blamed = sorted({lost, *failed, *(r["rank"] for r in errors)} - {-1})
            raise DistributedError(lost, message + _tails(ranks, blamed), None, _stderr(ranks))


def _stderr(ranks) -> dict:
    return {r.rank: list(r.tail) for r in ranks}


def _tails(ranks, which) -> str:
    """The last stderr lines of the ranks in ``which``, as a block for an error message."""
    parts = []
    for rank in which:
        if rank is None or not 0 <= rank < len(ranks):
            continue
        lines = list(ranks[rank].tail)
        body = "\n".join("    " + line for line in lines) if lines else "    (nothing)"
        parts.append(f"\n  last stderr lines of rank {rank}:\n{body}")
    return "".join(parts)


def _blame(failed: dict, reports: list, grace: float):
    """(rank at fault, message) from the exit codes and the ranks' own reports."""
    lost = [r["lost"] for r in reports if r.get("lost") is not None]
    rank = 0 if 0 in lost or 0 in failed else (lost[0] if lost else min(failed, default=-1))
    detail = "; ".join(r["error"].splitlines()[0] for r in reports) or "no report from the ranks"
    codes = ", ".join(f"rank {r} exit code {code}" for r, code in sorted(failed.items()))
    if rank == 0:
        return 0, (f"distributed run failed: the server (rank 0) was lost"
                   f"{f' ({codes})' if codes else ''}: {detail}; its log is lost with it")
    return rank, (f"distributed run failed: worker rank {rank} was lost ({codes or 'no exit code'}): "
                  f"{detail}; no log from the server within {grace:g} s")
