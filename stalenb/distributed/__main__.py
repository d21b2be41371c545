"""Command line: ``torchrun --nproc-per-node N -m stalenb.distributed [options]`` or, without
torchrun, ``python -m stalenb.distributed --workers n [options]`` (spawns 1 + n local processes).

Under torchrun, rank 0 is the server and ranks 1..N−1 the workers (``workers`` = WORLD_SIZE − 1);
every rank must get the same options. Rank 0 (or the local launcher) writes ``history.csv`` and
``updates.csv`` into ``--out`` and prints the last history row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .. import timing
from ..files import atomic_write
from ..config import Config
from . import launcher as _launch
from . import wire

SLOWDOWNS = {"none": lambda a: timing.NoSlowdown(), "exp": lambda a: timing.ShiftedExponential(a[0]),
             "lognormal": lambda a: timing.LogNormal(a[0]), "straggler": lambda a: timing.Straggler(a[0], a[1])}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stalenb.distributed", description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--protocol", default="async", choices=("sync", "async", "k-of-n"))
    add("--workers", type=int, default=None, help="local launch only (torchrun: WORLD_SIZE - 1)")
    add("--k", type=int, default=None)
    add("--late", default="drop", choices=("drop", "reuse"))
    add("--compressor", default="none", choices=("none", "topk", "randomk"))
    add("--density", type=float, default=1.0)
    add("--granularity", default="model", choices=("model", "layer"))
    add("--error-feedback", action="store_true")
    add("--rule", default="sgd", choices=("sgd", "staleness-aware", "dc-asgd"))
    add("--lr", type=float, default=0.05)
    add("--momentum", type=float, default=0.0)
    add("--batch-size", type=int, default=32)
    add("--steps", type=int, default=100)
    add("--eval-every", type=int, default=10)
    add("--eval-size", type=int, default=1000)
    add("--train-size", type=int, default=None)
    add("--model", default="lenet")
    add("--seed", type=int, default=0)
    add("--data-root", default=None)
    add("--device", default="cpu", choices=("cpu", "cuda"))
    add("--slowdown", nargs="+", default=["none"], metavar="KIND [ARGS]",
        help="per-job slowdown: none | exp MEAN | lognormal SIGMA | straggler P FACTOR")
    add("--factors", type=float, nargs="+", default=None, help="fixed slowdown per worker (>= 1)")
    add("--timeout", type=float, default=60.0, help="seconds of silence before the run is ended")
    add("--addr", default="127.0.0.1", help="local launch: address rank 0 listens on")
    add("--out", default=None, help="folder for history.csv and updates.csv")
    return p


def config_from(args, workers: int) -> Config:
    kind, *values = args.slowdown
    if kind not in SLOWDOWNS:
        raise ValueError(f"--slowdown must start with one of {', '.join(SLOWDOWNS)}, got {kind!r}")
    return Config(protocol=args.protocol, workers=workers, k=args.k, late=args.late,
                  compressor=args.compressor, density=args.density, granularity=args.granularity,
                  error_feedback=args.error_feedback, rule=args.rule, lr=args.lr, momentum=args.momentum,
                  batch_size=args.batch_size, steps=args.steps, eval_every=args.eval_every,
                  eval_size=args.eval_size, train_size=args.train_size, model=args.model, seed=args.seed,
                  data_root=args.data_root, device=args.device,
                  timing=timing.Timing(slowdown=SLOWDOWNS[kind]([float(v) for v in values])))


def _write(out, hist, upd) -> None:
    print(hist.tail(1).to_string(index=False))
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (("history.csv", hist), ("updates.csv", upd)):
            with atomic_write(folder / name) as fh:
                frame.to_csv(fh, index=False)
        print(f"wrote {folder / 'history.csv'} and {folder / 'updates.csv'}")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if "RANK" not in os.environ:  # no torchrun: start the ranks here
        if args.workers is None:
            raise SystemExit("--workers is required without torchrun")
        run = _launch.launch(config_from(args, args.workers), slowdown=args.factors,
                             timeout=args.timeout, addr=args.addr)
        _write(args.out, run.history, run.updates)
        return 0
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world < 2:
        raise SystemExit("torchrun needs --nproc-per-node >= 2 (one server + at least one worker)")
    config = config_from(args, world - 1)
    _launch.check(config)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    factor = 1.0 if rank == 0 or not args.factors else args.factors[rank - 1]
    code = 0
    try:
        _launch.init(rank, world, "env://", args.timeout)
        out = _launch.role(config, rank, args.timeout, factor, progress=rank == 0)
        if rank == 0:
            hist, upd, error = out
            _write(args.out, hist, upd)
            if error is not None:
                print(json.dumps({"error": str(error), "rank": error.rank}), file=sys.stderr)
                code = 1
    except wire.PeerLost as exc:
        print(f"rank {rank}: {exc}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # reader threads may still block in gloo


if __name__ == "__main__":
    sys.exit(main())
