"""Command line: ``torchrun --nproc-per-node N -m stalenb.distributed [options]`` or, without
torchrun, ``python -m stalenb.distributed --workers n [options]`` (starts 1 + n local processes).

The options are :class:`stalenb.Config`'s fields (:mod:`stalenb.distributed.cli`; ``--help`` lists
them). Under torchrun, rank 0 is the server and ranks 1..N−1 the workers (``workers`` =
WORLD_SIZE − 1); every rank must get the same options. Rank 0 (or the local launcher) writes
``history.csv`` and ``updates.csv`` into ``--out`` and prints the last history row.

:func:`stalenb.distributed.launch` starts its ranks with this same entry point (fresh
interpreters, never the caller's ``__main__``), with ``RANK``/``WORLD_SIZE``/``MASTER_*`` set as
torchrun sets them and ``STALENB_REPORT=1``: each rank then writes its result or failure as one
JSON line on stdout (prefix :data:`REPORT`) instead of files.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import torch

from ..files import atomic_write
from . import launcher as _launch
from . import wire
from .cli import checked_config, config_from, parser
from .launcher import REPORT


def report(payload: dict) -> None:
    """One JSON line for the local launcher (stdout, flushed at once)."""
    sys.stdout.write(REPORT + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _write(out, hist, upd) -> None:
    print(hist.tail(1).to_string(index=False))
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (("history.csv", hist), ("updates.csv", upd)):
            with atomic_write(folder / name) as fh:
                frame.to_csv(fh, index=False)
        print(f"wrote {folder / 'history.csv'} and {folder / 'updates.csv'}")


def rank_main(args) -> int:
    """Play this process's rank (``RANK``, ``WORLD_SIZE`` from the environment); the exit code."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    reporting = os.environ.get("STALENB_REPORT") == "1"
    if world < 2:
        raise SystemExit("torchrun needs --nproc-per-node >= 2 (one server + at least one worker)")
    torch.set_num_threads(args.threads)
    factor = 1.0 if rank == 0 or not args.factors else args.factors[rank - 1]
    print(f"stalenb rank {rank}/{world} ({'server' if rank == 0 else 'worker'}), pid {os.getpid()}, "
          f"meeting at {os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}", file=sys.stderr, flush=True)
    try:
        config = config_from(args, world - 1)
        _launch.check(config)
        _launch.init(rank, world, "env://", args.timeout)
        on_start = (lambda: report({"rank": 0, "started": True})) if reporting else None
        out = _launch.role(config, rank, args.timeout, factor, progress=rank == 0 and not reporting,
                           on_start=on_start)
        if rank != 0:
            return 0
        hist, upd, error = out
        if reporting:
            report({"rank": 0, "history": hist.to_dict("list"), "updates": upd.to_dict("list"),
                    "error": None if error is None else str(error),
                    "lost": None if error is None else error.rank})
            return 0
        _write(args.out, hist, upd)
        if error is not None:
            print(json.dumps({"error": str(error), "rank": error.rank}), file=sys.stderr)
            return 1
        return 0
    except wire.PeerLost as exc:
        print(f"rank {rank}: {exc}", file=sys.stderr)
        if reporting:
            report({"rank": rank, "error": str(exc), "lost": exc.rank})
        return 1
    except Exception as exc:  # noqa: BLE001 - report, then exit non-zero
        traceback.print_exc()
        if reporting:
            report({"rank": rank, "error": f"rank {rank} failed: {exc!r}", "lost": rank})
        return 1


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if "RANK" not in os.environ:  # no torchrun: start the ranks here
        config = checked_config(p, args, args.workers)
        try:
            _launch.check(config)
        except ValueError as exc:
            p.error(str(exc).replace("staleness must", "--staleness must", 1))
        run = _launch.launch(config, slowdown=args.factors, timeout=args.timeout,
                             addr=args.addr, threads=args.threads)
        _write(args.out, run.history, run.updates)
        return 0
    world = int(os.environ.get("WORLD_SIZE", "0"))
    if world >= 2:  # a bad value: one usage error on each rank, before any rank starts to wait for the others
        _launch.check(checked_config(p, args, world - 1))
    code = rank_main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # reader threads may still block in gloo


if __name__ == "__main__":
    sys.exit(main())
