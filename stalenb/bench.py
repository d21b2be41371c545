"""``python -m stalenb.bench``: the simulator's cost against plain PyTorch loops (docs/design.md §S6).

Each case pits the engine (:func:`stalenb.run`, fast path) against a plain loop written here, on
the same model, the same batch size, the same sample stream and the same thread count. The two
sides run alternately (A B, B A, A B, …) in one process, so a load spike on a shared machine
hits both; each block times single updates, the block's median is taken, and the reported ratio
is the median over the pairs of blocks of engine / plain (or naive / engine for a speed-up).
Evaluation and setup are outside the timed region: an update's time is the gap between two
consecutive ``callback(step, x)`` calls of the engine, or one iteration of the plain loop.

Cases (targets from docs/design.md §S6):

| case | engine | plain loop | target |
| --- | --- | --- | --- |
| ``async-lenet`` | async, ``Uniform(16)``, batch 32, sgd | ``torch.optim.SGD``, batch 32 | ratio ≤ 1.15 |
| ``async-lenet-topk-ef`` | the same + top-k ρ = 1 % + error feedback | the same | ratio ≤ 1.30 |
| ``kofn-lenet`` | k-of-n n = 16, k = 12, reuse, B = 256: one round | one SGD step on 256 | ratio ≤ 1.5 |
| ``kofn-mlp`` | the same with the MLP | the same | ratio ≤ 2.0 |
| ``n32-lenet`` / ``n32-mlp`` | sync n = 32, B = 256 (8 per worker): one round | 32 separate forward/backward passes of 8, gradients accumulated, one step | ≥ 2× faster |

Peak memory: after the timings, each side of each case runs again in a fresh subprocess (two at
a time); the peak resident set size (``VmHWM``, reset after set-up) and its growth over the set-up
process (interpreter, torch, MNIST, model) are reported.

Writes ``build/bench.json`` (atomically); ``--quick`` is a seconds-long smoke run. Both sides use torch's default
thread count (all cores, as the targets are stated for a 2-core machine); on a machine shared with
other work pass ``--threads 1``, since spinning threads then turn timings to noise. The exit status is 1 when a full run
misses a target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data, gradients, models, paths
from .files import atomic_write
from .config import Config
from .engine import run
from .staleness import Uniform

SEED = 0
LR = 0.01


@dataclass(frozen=True)
class Case:
    """One row: the engine's configuration, the plain loop it is compared with, the target."""

    name: str
    config: Config
    baseline: str  # "sgd": plain SGD loop on config.batch_size; "naive": one pass per worker
    target: float
    speedup: bool = False  # target is a minimum of plain / engine instead of a maximum of engine / plain
    notes: dict = field(default_factory=dict)


def cases() -> list[Case]:
    common = dict(lr=LR, seed=SEED, eval_every=10**9, eval_size=1)
    asyn = Config(protocol="async", workers=16, staleness=Uniform(16), batch_size=32, **common)
    kofn = Config(protocol="k-of-n", workers=16, k=12, late="reuse", batch_size=256, **common)
    sync = Config(protocol="sync", workers=32, batch_size=256, **common)
    return [
        Case("async-lenet", asyn, "sgd", 1.15),
        Case("async-lenet-topk-ef", asyn.replace(compressor="topk", density=0.01, error_feedback=True),
             "sgd", 1.30),
        Case("kofn-lenet", kofn, "sgd", 1.5),
        Case("kofn-mlp", kofn.replace(model="mlp"), "sgd", 2.0),
        Case("n32-lenet", sync, "naive", 2.0, speedup=True),
        Case("n32-mlp", sync.replace(model="mlp"), "naive", 2.0, speedup=True),
    ]


# -- the two sides -----------------------------------------------------------------------------
class EngineSide:
    """Runs the engine for ``warm + n`` updates and returns the last ``n`` update times."""

    def __init__(self, case: Case, problem):
        self.case, self.problem = case, problem

    def block(self, n: int, warm: int) -> list[float]:
        stamps = []
        c = self.case.config.replace(steps=warm + n + 1)
        run(c, problem=self.problem, cache=False, progress=False,
            callback=lambda step, x: stamps.append(time.perf_counter()))
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        return gaps[warm:]


class PlainSide:
    """The plain PyTorch loop: an ``nn.Module``, ``torch.optim.SGD``, the same batch stream.

    ``baseline="sgd"``: one step on ``config.batch_size`` samples. ``baseline="naive"``: the
    ``config.workers`` workers' forward/backward passes one after the other on their
    ``batch_size / workers`` samples each, gradients accumulated in ``.grad`` (the cheapest way to
    combine them), then one step with the mean.
    """

    def __init__(self, case: Case, X, y):
        c = case.config
        self.model = models.build(c.model, c.seed)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=c.lr)
        self.X, self.y = X, y
        self.stream = data.BatchStream(len(y), c.seed)
        self.batch = c.batch_size
        self.split = c.workers if case.baseline == "naive" else 1

    def step(self) -> None:
        self.opt.zero_grad()
        per = self.batch // self.split
        for _ in range(self.split):
            idx = self.stream.next(per)
            loss = F.cross_entropy(self.model(self.X[idx]), self.y[idx]) / self.split
            loss.backward()
        self.opt.step()

    def block(self, n: int, warm: int) -> list[float]:
        for _ in range(warm):
            self.step()
        out = []
        for _ in range(n):
            t = time.perf_counter()
            self.step()
            out.append(time.perf_counter() - t)
        return out


def _problem(config: Config):
    return gradients.from_config(config)


def measure(case: Case, repeats: int, block: int, warm: int) -> dict:
    """Alternating A/B blocks; the median over pairs of the ratio of the blocks' medians."""
    problem = _problem(case.config)
    engine = EngineSide(case, problem)
    plain = PlainSide(case, problem.X, problem.y)
    ratios, eng_ms, plain_ms = [], [], []
    for r in range(repeats):
        order = (engine, plain) if r % 2 == 0 else (plain, engine)
        med = {}
        for side in order:
            med[side] = statistics.median(side.block(block, warm))
        eng_ms.append(1e3 * med[engine])
        plain_ms.append(1e3 * med[plain])
        ratios.append(med[plain] / med[engine] if case.speedup else med[engine] / med[plain])
    ratio = statistics.median(ratios)
    probe = run(case.config.replace(steps=warm + block), problem=problem, cache=False, progress=False)
    h = probe.history.iloc[-1]
    return {
        "case": case.name,
        "ratio": ratio,
        "kind": "speedup (plain / engine)" if case.speedup else "cost (engine / plain)",
        "target": case.target,
        "met": bool(ratio >= case.target if case.speedup else ratio <= case.target),
        "engine_ms": statistics.median(eng_ms),
        "plain_ms": statistics.median(plain_ms),
        "ratios": ratios,
        "samples_per_update": float(h["samples"]) / float(h["step"]),
        "gradients_per_update": float(h["gradients"]) / float(h["step"]),
        "config": case.config.to_dict(),
        "baseline": case.baseline,
    }


# -- peak memory, one fresh process per side ---------------------------------------------------
def _status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_child(name: str, side: str, steps: int, threads: int) -> dict:
    """In a subprocess: set up, reset the peak RSS, run ``steps`` updates, report the peak."""
    torch.set_num_threads(threads)
    case = {c.name: c for c in cases()}[name]
    problem = _problem(case.config)
    plain = PlainSide(case, problem.X, problem.y) if side == "plain" else None
    reset = _reset_peak()
    base = _status_kib("VmRSS")
    if plain is not None:
        plain.block(steps, 0)
    else:
        run(case.config.replace(steps=steps), problem=problem, cache=False, progress=False)
    peak = _status_kib("VmHWM") if reset else None
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_mib": peak / 1024, "growth_mib": (peak - (base or 0)) / 1024}


def memory(name: str, side: str, steps: int, threads: int) -> dict | None:
    cmd = [sys.executable, "-m", "stalenb.bench", "--memory-child", name, side, str(steps),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report ------------------------------------------------------------------------------------
def table(rows: list[dict]) -> str:
    head = f"{'case':<22}{'ratio':>8}  {'target':<8}{'met':<5}{'engine ms':>10}{'plain ms':>10}{'peak MiB (engine / plain)':>28}"
    lines = [head, "-" * len(head)]
    for r in rows:
        target = (">= " if "speedup" in r["kind"] else "<= ") + f"{r['target']:g}"
        mem = r.get("memory") or {}
        e, p = mem.get("engine") or {}, mem.get("plain") or {}
        peak = (f"{e['peak_rss_mib']:.0f} / {p['peak_rss_mib']:.0f}"
                if "peak_rss_mib" in e and "peak_rss_mib" in p else "not measured")
        lines.append(f"{r['case']:<22}{r['ratio']:>8.2f}  {target:<8}{'yes' if r['met'] else 'NO':<5}"
                     f"{r['engine_ms']:>10.1f}{r['plain_ms']:>10.1f}{peak:>28}")
    return "\n".join(lines)


def write_json(obj: dict, target: Path) -> Path:
    """Write ``obj`` as JSON to ``target`` atomically (:func:`stalenb.files.atomic_write`)."""
    with atomic_write(target) as fh:
        json.dump(obj, fh, indent=2, default=str)
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m stalenb.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run (few, short blocks; no memory)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="torch threads for both sides (default: torch's default, all cores; use 1 "
                        "on a machine shared with other work)")
    p.add_argument("--repeats", type=int, default=None, help="A/B pairs per case (default 7, quick 2)")
    p.add_argument("--cases", nargs="*", default=None, help="run only these cases")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default build/bench.json)")
    p.add_argument("--memory-child", nargs=3, metavar=("CASE", "SIDE", "STEPS"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.memory_child:
        name, side, steps = a.memory_child
        print(json.dumps(memory_child(name, side, int(steps), a.threads)))
        return 0
    torch.set_num_threads(a.threads)
    chosen = cases()
    if a.cases:
        known = {c.name for c in chosen}
        bad = sorted(set(a.cases) - known)
        if bad:
            p.error(f"unknown case(s) {bad}; known: {sorted(known)}")
        chosen = [c for c in chosen if c.name in a.cases]
    repeats = a.repeats or (2 if a.quick else 7)
    rows, start = [], time.perf_counter()
    for case in chosen:
        lenet_big = case.config.batch_size > 32 and case.config.model == "lenet"
        block, warm = (3, 1) if a.quick else ((6, 3) if lenet_big else (20, 3))
        row = measure(case, repeats, block, warm)
        row["memory_steps"] = warm + block
        rows.append(row)
        print(f"  {case.name}: {row['ratio']:.2f} (target {row['target']:g}, {'met' if row['met'] else 'NOT met'})",
              file=sys.stderr, flush=True)
    if not (a.quick or a.no_memory):  # after the timings, two fresh processes at a time
        jobs = [(r, side) for r in rows for side in ("engine", "plain")]
        with ThreadPoolExecutor(2) as pool:
            peaks = list(pool.map(lambda job: memory(job[0]["case"], job[1], job[0]["memory_steps"], a.threads), jobs))
        for (r, side), peak in zip(jobs, peaks):
            r.setdefault("memory", {})[side] = peak
    out = {"threads": a.threads, "quick": a.quick, "repeats": repeats, "torch": torch.__version__,
           "cpu_count": os.cpu_count(), "seconds": time.perf_counter() - start, "cases": rows}
    target = write_json(out, a.out or paths.build_dir() / "bench.json")
    print(table(rows))
    print(f"\n{len(rows)} cases, {out['seconds']:.0f} s, {a.threads} thread(s); JSON: {target}")
    return 0 if a.quick or all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
