"""Starting the processes: one role per rank, locally (:func:`launch`) or under ``torchrun``.

:func:`launch` starts 1 + n local processes (``multiprocessing``, ``forkserver`` start method so
that torch is imported once; ``spawn`` elsewhere) that meet in a gloo process group on
``127.0.0.1`` and a free port. Results come back to the caller as JSON through a pipe (never
pickled to disk). The caller watches the processes: a rank that exits abnormally, or reports that
its peer was lost, ends the run within ``timeout`` (+ a few seconds) with a
:class:`DistributedError` naming the rank; the server's partial log travels with the error.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing as mp
from multiprocessing.connection import wait
import os
import signal
import socket
import sys
import time
import traceback

import pandas as pd
import torch
import torch.distributed as dist

from .. import cache as _cache
from .. import history
from ..config import Config
from ..engine import Run
from . import ps, wire, worker

BACKEND = "gloo"


class DistributedError(RuntimeError):
    """A real run that ended early. ``rank``: the rank at fault (0 = server, -1 = unknown);
    ``run``: the partial :class:`stalenb.Run` (history + updates up to the failure), if any."""

    def __init__(self, rank: int, message: str, run: Run | None = None):
        super().__init__(message)
        self.rank, self.run = rank, run


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check(config: Config) -> None:
    """Reject configurations a real run cannot honour (``ValueError`` naming the field)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a stalenb.Config, got {type(config).__name__}")
    if config.staleness is not None:
        raise ValueError("staleness must be None for real runs: staleness is measured, not drawn "
                         f"(got staleness={config.staleness!r})")


def init(rank: int, world: int, init_method: str, timeout: float) -> None:
    """Join the gloo process group (its own timeout generous: deadlines are enforced by the inboxes)."""
    pg_timeout = datetime.timedelta(seconds=max(300.0, 10 * timeout))
    dist.init_process_group(BACKEND, init_method=init_method, rank=rank, world_size=world,
                            timeout=pg_timeout)


def role(config: Config, rank: int, timeout: float, factor: float = 1.0, progress=False,
         on_start=None):
    """Play ``rank``'s part in an initialised process group; the server returns its frames."""
    from ..gradients import from_config

    problem = from_config(config)
    if rank == 0:
        return ps.serve(config, problem, timeout, progress, on_start)
    worker.serve(config, problem, rank, timeout, factor)
    return None


def _child(rank, world, addr, port, config, timeout, factor, threads, conn):
    torch.set_num_threads(threads)
    code = 0
    try:
        init(rank, world, f"tcp://{addr}:{port}", timeout)
        out = role(config, rank, timeout, factor,
                   on_start=lambda: conn.send_bytes(json.dumps({"rank": 0, "started": True}).encode()))
        if rank == 0:
            hist, upd, error = out
            conn.send_bytes(json.dumps({
                "rank": 0, "history": hist.to_dict("list"), "updates": upd.to_dict("list"),
                "error": None if error is None else str(error),
                "lost": None if error is None else error.rank}).encode())
    except wire.PeerLost as exc:
        code = 1
        conn.send_bytes(json.dumps({"rank": rank, "error": str(exc), "lost": exc.rank}).encode())
    except BaseException as exc:  # noqa: BLE001 - report, then exit non-zero
        code = 1
        conn.send_bytes(json.dumps({"rank": rank, "error": f"rank {rank} failed: {exc!r}\n"
                                    f"{traceback.format_exc(limit=4)}", "lost": rank}).encode())
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # reader threads may still block in gloo: leave without joining them


def _frames(payload: dict):
    hist = pd.DataFrame(payload["history"])
    hist = hist.astype({c: "int64" for c in ("step", "samples", "gradients", "dropped", "staleness_max",
                                             "bytes_sent")} | {"diverged": "bool"})
    upd = pd.DataFrame(payload["updates"],
                       columns=list(history.UPDATE_COLUMNS) + list(ps.EXTRA_COLUMNS))
    upd = upd.astype({"step": "int64", "worker": "int64", "version": "int64", "staleness": "int64",
                      "weight": "float64", "time": "float64", "applied": "bool", "rank": "int64"}
                     | {n: "float64" for n in ps.EXTRA_COLUMNS[1:]})
    return hist, upd


def launch(config: Config, *, slowdown=None, timeout: float = 60.0, addr: str = "127.0.0.1",
           port: int | None = None, threads: int = 1, start_method: str | None = None,
           cache: bool = False, _kill=None) -> Run:
    """Run ``config`` on 1 + ``config.workers`` local processes; see :func:`stalenb.distributed.run`.

    ``cache=True`` stores the *measured* run in the results cache (:mod:`stalenb.cache`, keyed by
    the config, the slowdown factors and ``"distributed"``) and returns it on the next call
    instead of measuring again (``Run.from_cache`` tells which); the default measures every time.

    ``_kill=(rank, seconds[, signal])`` kills (or stops, with ``signal.SIGSTOP``) that rank so many
    seconds after the server started training (tests of failure handling).
    """
    check(config)
    n = config.workers
    factors = [1.0] * n if slowdown is None else [float(s) for s in slowdown]
    if len(factors) != n or any(not (f >= 1.0) for f in factors):
        raise ValueError(f"slowdown must list {n} factors >= 1 (one per worker), got {slowdown!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    key = _cache.key(config, extra={"driver": "distributed", "slowdown": factors}) if cache else None
    hit = _cache.load(key) if key else None
    if hit is not None:
        return Run(config, hit[0]["history"], hit[0]["updates"], from_cache=True)
    port = free_port(addr) if port is None else int(port)
    methods = mp.get_all_start_methods()
    ctx = mp.get_context(start_method or ("forkserver" if "forkserver" in methods else "spawn"))
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["stalenb.distributed"])
    pipes = [ctx.Pipe(duplex=False) for _ in range(n + 1)]
    procs = [ctx.Process(target=_child, args=(r, n + 1, addr, port, config, timeout,
                                             1.0 if r == 0 else factors[r - 1], threads, pipes[r][1]),
                         name=f"stalenb-rank-{r}", daemon=True) for r in range(n + 1)]
    for p in procs:
        p.start()
    for _, send_end in pipes:
        send_end.close()  # the children hold the only write ends: EOF means the rank is gone
    try:
        result = _watch(config, procs, [recv_end for recv_end, _ in pipes], timeout, _kill)
        if key:
            _cache.save(key, {"history": result.history, "updates": result.updates}, {"driver": "distributed"})
        return result
    finally:
        end = time.monotonic() + 5.0
        for p in procs:
            p.join(timeout=max(0.0, end - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        for recv_end, _ in pipes:
            recv_end.close()


def _read(conns, timeout):
    """Reports ready within ``timeout`` s, as ``(rank, payload or None at EOF)``."""
    out = []
    for conn in wait([c for c in conns if not c.closed], timeout):
        rank = conns.index(conn)
        try:
            out.append((rank, json.loads(conn.recv_bytes())))
        except (EOFError, OSError):
            conn.close()
            out.append((rank, None))
    return out


def _watch(config, procs, conns, timeout, kill) -> Run:
    """Wait for the server's log; turn a lost rank into :class:`DistributedError` (never hang)."""
    started, failed, failure_at, reports = None, set(), None, []
    grace = timeout + 10.0
    while True:
        if kill is not None and started is not None and time.monotonic() - started >= kill[1]:
            os.kill(procs[kill[0]].pid, kill[2] if len(kill) > 2 else signal.SIGKILL)
            kill = None
        for rank, payload in _read(conns, 0.1):
            if payload is None:  # the rank exited; fine after a clean report
                procs[rank].join(timeout=1)
                if procs[rank].exitcode != 0:
                    failed.add(rank)
                continue
            if rank == 0 and payload.get("started"):
                started = time.monotonic()
                continue
            if rank == 0 and "history" in payload:
                run = Run(config, *_frames(payload))
                if payload["error"] is None:
                    return run
                raise DistributedError(payload["lost"], f"distributed run ended early: {payload['error']}", run)
            reports.append(payload)
        if failed or reports:
            failure_at = failure_at or time.monotonic()
        server_lost = 0 in failed or any(r.get("lost") == 0 for r in reports)
        if server_lost or (failure_at is not None and time.monotonic() - failure_at > grace):
            codes = {r: procs[r].exitcode for r in failed}
            raise DistributedError(*_blame(codes, reports, grace))


def _blame(failed: dict, reports: list, grace: float):
    """(rank at fault, message) from the exit codes and the ranks' own reports."""
    lost = [r["lost"] for r in reports if r.get("lost") is not None]
    rank = 0 if 0 in lost or 0 in failed else (lost[0] if lost else min(failed, default=-1))
    detail = "; ".join(r["error"].splitlines()[0] for r in reports) or "no report from the ranks"
    codes = ", ".join(f"rank {r} exit code {c}" for r, c in sorted(failed.items()))
    if rank == 0:
        return 0, (f"distributed run failed: the server (rank 0) was lost"
                   f"{f' ({codes})' if codes else ''}: {detail}; its log is lost with it")
    return rank, (f"distributed run failed: worker rank {rank} was lost ({codes or 'no exit code'}): "
                  f"{detail}; no log from the server within {grace:g} s")
