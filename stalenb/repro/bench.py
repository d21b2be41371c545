"""``python -m stalenb.repro.bench``: the simulator's cost against plain PyTorch loops (docs/design.md §S6).

Each case pits the engine (:func:`stalenb.run`, fast path) against a plain loop written here, on
the same model, the same batch size, the same sample stream and the same thread count. The two
sides run alternately (A B, B A, A B, …) in one process, so a load spike on a shared machine
hits both; each block times single updates, the block's median is taken, and the reported ratio
is the median over the pairs of blocks of engine / plain (or naive / engine for a speed-up).
Evaluation and setup are outside the timed region: an update's time is the gap between two
consecutive ``callback(step, x)`` calls of the engine, or one iteration of the plain loop.

Cases (targets of docs/design.md §S6, tightened by issue 13):

| case | engine | plain loop | target |
| --- | --- | --- | --- |
| ``async-lenet`` | async, ``Uniform(16)``, batch 32, sgd | ``torch.optim.SGD`` (NCHW), batch 32 | ratio ≤ 0.75 |
| ``async-lenet-topk-ef`` | the same + top-k ρ = 1 % + error feedback | the same | ratio ≤ 0.90 |
| ``async-mlp`` | the same as ``async-lenet`` with the MLP | the same | ratio ≤ 1.0 |
| ``kofn-lenet`` | k-of-n n = 16, k = 12, reuse, B = 256: one round | one SGD step on 256 | ratio ≤ 1.5 |
| ``kofn-mlp`` | the same with the MLP | the same | ratio ≤ 2.0 |
| ``n32-lenet`` / ``n32-mlp`` | sync n = 32, B = 256 (8 per worker): one round | 32 separate forward/backward passes of 8, gradients accumulated, one step | ≥ 2× faster |

Further rows: ``async-lenet-roofline`` (the LeNet step's achieved GFLOP/s ÷ this machine's
attainable rate, :func:`attainable`; ≥ 0.5), ``async-lenet-1024-workers`` (per update, 1,024
workers ÷ 4, timing-emergent staleness; ≤ 1.2), ``quadratic-10000-workers`` (per update, asynchronous SGD on
notebook 09's quadratic, d = 100, 10,000 workers of times √i ÷ 4 workers; ≤ 2, issue 24: the model
versions kept are bounded by the jobs in flight, so the cost per update does not grow with n),
``grid-16-runs-jobs-cores`` (a 05-style grid's
wall time with ``jobs`` = cores on a warm pool ÷ its runs' summed single-run time ÷ cores; ≤ 1.15;
the pool's one-off start-up is reported beside it as ``startup_s``),
``import-stalenb`` (``import stalenb`` ÷ ``import torch`` in fresh interpreters; ≤ 1.3).

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

from ..sim import data, gradients, models
from .. import paths
from ..files import atomic_write
from ..sim.config import Config
from ..sim.engine import run
from ..sim.staleness import Uniform

SEED = 0
LR = 0.01
# rows beyond the engine-versus-plain-loop cases (``--cases`` accepts their names too)
EXTRA = ("async-lenet-roofline", "async-lenet-1024-workers", "quadratic-10000-workers", "grid-16-runs-jobs-cores",
         "import-stalenb")


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
        Case("async-lenet", asyn, "sgd", 0.75),
        Case("async-lenet-topk-ef", asyn.replace(compressor="topk", density=0.01, error_feedback=True),
             "sgd", 0.90),
        Case("async-mlp", asyn.replace(model="mlp"), "sgd", 1.0),
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
        cfg = self.case.config.replace(steps=warm + n + 1)
        run(cfg, problem=self.problem, cache=False, progress=False,
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
        cfg = case.config
        self.model = models.build(cfg.model, cfg.seed)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr)
        self.X, self.y = X, y
        self.stream = data.BatchStream(len(y), cfg.seed)
        self.batch = cfg.batch_size
        self.split = cfg.workers if case.baseline == "naive" else 1

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


def alternate(a, b, repeats: int, block: int, warm: int = 3):
    """Blocks of ``a`` and ``b`` in the order A B, B A, A B, …; per pair, the ratio of the blocks'
    median update times a / b. Returns (ratios, a's block medians in ms, b's in ms)."""
    ratios, a_ms, b_ms = [], [], []
    for r in range(repeats):
        med = {}
        for side in ((a, b) if r % 2 == 0 else (b, a)):
            med[id(side)] = statistics.median(side.block(block, warm))
        a_ms.append(1e3 * med[id(a)])
        b_ms.append(1e3 * med[id(b)])
        ratios.append(med[id(a)] / med[id(b)])
    return ratios, a_ms, b_ms


def measure(case: Case, repeats: int, block: int, warm: int) -> dict:
    """Alternating A/B blocks; the median over pairs of the ratio of the blocks' medians."""
    problem = _problem(case.config)
    engine = EngineSide(case, problem)
    plain = PlainSide(case, problem.X, problem.y)
    ratios, eng_ms, plain_ms = alternate(engine, plain, repeats, block, warm)
    if case.speedup:
        ratios = [1 / r for r in ratios]
    ratio = statistics.median(ratios)
    probe = run(case.config.replace(steps=warm + block), problem=problem, cache=False, progress=False)
    h = probe.history.iloc[-1]
    samples = float(h["samples"]) / float(h["step"])
    flops = step_flops(case.config.model, round(samples))
    return {
        "case": case.name,
        "ratio": ratio,
        "kind": "speedup (plain / engine)" if case.speedup else "cost (engine / plain)",
        "target": case.target,
        "met": bool(ratio >= case.target if case.speedup else ratio <= case.target),
        "at_least": case.speedup,
        "engine_ms": statistics.median(eng_ms),
        "plain_ms": statistics.median(plain_ms),
        "ratios": ratios,
        "samples_per_update": samples,
        "gflop_per_update": flops / 1e9,
        "gflops": flops / 1e9 / (statistics.median(eng_ms) / 1e3),
        "gradients_per_update": float(h["gradients"]) / float(h["step"]),
        "config": case.config.to_dict(),
        "baseline": case.baseline,
    }


# -- the machine's own limit (roofline) --------------------------------------------------------
def count_flops(fn) -> int:
    """Floating-point operations of one call of ``fn``, counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def step_flops(model: str, batch: int) -> int:
    """FLOPs of one forward + backward of ``model`` on ``batch`` MNIST-shaped samples (counted)."""
    net = models.build(model)
    X, y = torch.zeros(batch, 1, 28, 28), torch.zeros(batch, dtype=torch.long)
    return count_flops(lambda: F.cross_entropy(net(X), y).backward())


def attainable(repeats: int = 7) -> dict:
    """This machine's attainable fp32 rate at torch's current thread count, in GFLOP/s.

    Two microbenchmarks, best of ``repeats`` timed calls each (the attainable rate is the best the
    machine delivers, not its average): a 1024 × 1024 × 1024 ``torch.mm`` and a 5 × 5 convolution
    (64 → 64 channels, 32 images of 28 × 28, ``channels_last``); FLOPs counted by
    :func:`count_flops`. The larger of the two is the roofline the cases are compared with.
    """
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    x = torch.randn(32, 64, 28, 28).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 5, 5).contiguous(memory_format=torch.channels_last)
    out = {}
    for name, fn in (("mm", lambda: torch.mm(a, b)), ("conv", lambda: F.conv2d(x, w))):
        flops = count_flops(fn)
        fn()
        best = min(_timed(fn) for _ in range(repeats))
        out[f"{name}_gflops"] = flops / best / 1e9
    out["gflops"] = max(out["mm_gflops"], out["conv_gflops"])
    out["threads"] = torch.get_num_threads()
    out["gflops_per_thread"] = out["gflops"] / out["threads"]
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# -- rows that are not engine-versus-plain-loop ------------------------------------------------
def _row(name, ratio, kind, target, at_least, **extra) -> dict:
    return {"case": name, "ratio": ratio, "kind": kind, "target": target,
            "met": bool(ratio >= target if at_least else ratio <= target), "at_least": at_least, **extra}


def roofline_row(row: dict, roof: dict, target: float = 0.5) -> dict:
    """A case's achieved GFLOP/s (counted FLOPs per update ÷ engine time) as a fraction of ``roof``."""
    return _row(f"{row['case']}-roofline", row["gflops"] / roof["gflops"], "fraction of attainable GFLOP/s",
                target, True, engine_ms=row["engine_ms"], plain_ms=None, gflops=row["gflops"],
                attainable_gflops=roof["gflops"])


def scale_row(repeats: int, block: int, quick: bool) -> dict:
    """Async LeNet, timing-emergent staleness: cost per update with 1,024 workers ÷ with 4.

    The 1,024-worker side is timed after every worker has pushed once (steady state: about a
    thousand versions readable at once), the 4-worker side after the same warm-up count."""
    base = Config(protocol="async", staleness=None, batch_size=32, lr=LR, seed=SEED, eval_every=10**9,
                  eval_size=1)
    many, few = base.replace(workers=1024), base.replace(workers=4)
    problem = _problem(base)
    warm = 2 if quick else 1024 + 16
    sides = [_Fixed(EngineSide(Case("n1024", many, "sgd", 0), problem), warm),
             _Fixed(EngineSide(Case("n4", few, "sgd", 0), problem), warm)]
    ratios, a_ms, b_ms = alternate(sides[0], sides[1], repeats, block)
    return _row("async-lenet-1024-workers", statistics.median(ratios), "cost (1,024 workers / 4)", 1.2, False,
                engine_ms=statistics.median(a_ms), plain_ms=statistics.median(b_ms), ratios=ratios)


def quadratic_scale_row(repeats: int, block: int, quick: bool) -> dict:
    """Async SGD on notebook 09's quadratic (d = 100, Gaussian noise, τ_i = √i, free links): cost per
    update with 10,000 workers ÷ with 4, both timed after 10,016 updates (every worker has pushed)."""
    from ..optimality import Landscape, laws

    landscape = Landscape()
    sides = []
    for n in (10_000, 4):
        cfg = Config(protocol="async", workers=n, batch_size=1, lr=1e-4, seed=SEED, timing=laws("sqrt", n)[0],
                     eval_every=10**9)
        sides.append(_Fixed(EngineSide(Case(f"n{n}", cfg, "sgd", 0), landscape.problem(SEED)),
                            2 if quick else 10_016))
    ratios, a_ms, b_ms = alternate(sides[0], sides[1], repeats, block)
    return _row("quadratic-10000-workers", statistics.median(ratios), "cost (10,000 workers / 4)", 2.0, False,
                engine_ms=statistics.median(a_ms), plain_ms=statistics.median(b_ms), ratios=ratios)


class _Fixed:
    """A side whose warm-up count is fixed (``block(n, warm)`` ignores the caller's ``warm``)."""

    def __init__(self, side, warm: int):
        self.side, self.warm = side, warm

    def block(self, n: int, warm: int) -> list[float]:
        return self.side.block(n, self.warm)


def grid_specs(quick: bool) -> list:
    """A 05-style grid of 16 short runs: async LeNet, 2 methods × 4 staleness levels × 2 seeds."""
    from .. import experiments

    base = Config(protocol="async", batch_size=32, lr=LR, steps=12 if quick else 60, eval_every=20,
                  eval_size=500)
    methods = {"vanilla": {}, "topk-ef": {"compressor": "topk", "density": 0.01, "error_feedback": True}}
    taus = {t: {"staleness": Uniform(t)} for t in (0, 4, 16, 64)}
    return experiments.product(base, method=methods, tau=taus, seed=[0, 1])


def grid_row(repeats: int, quick: bool) -> dict:
    """``run_all(jobs=cores)`` wall time ÷ (sum of the runs' single-run times ÷ cores), warm pool.

    Single-run times: each run alone in this process, one thread, no cache. Grid: a fresh, empty
    cache folder each time (``STALENB_CACHE``), so every run is computed by the pool. The pool
    lives as long as the process (:func:`stalenb.experiments.run_all` keeps it between calls), so
    its start-up (worker processes, imports, MNIST loaded once per worker) is paid once: an
    untimed warm-up grid on a throwaway cache folder comes first, and its extra wall time over the
    median timed grid is reported as ``startup_s``. The two sides then alternate (A B, B A, …);
    the ratio is the median over the pairs."""
    import tempfile

    from .. import experiments

    specs, cores = grid_specs(quick), os.cpu_count() or 1
    problem = _problem(specs[0][1])

    def singles() -> float:
        with experiments.single_thread():
            t = time.perf_counter()
            for _, cfg in specs:
                run(cfg, problem=problem, cache=False, progress=False)
            return time.perf_counter() - t

    def grid() -> float:
        before = os.environ.get("STALENB_CACHE")
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["STALENB_CACHE"] = tmp
            try:
                t = time.perf_counter()
                experiments.run_all(specs, jobs=cores, progress=False)
                return time.perf_counter() - t
            finally:
                if before is None:
                    os.environ.pop("STALENB_CACHE", None)
                else:
                    os.environ["STALENB_CACHE"] = before

    experiments.close_pool()  # the warm-up starts a pool from cold
    cold = grid()
    ratios, sums, walls = [], [], []
    for r in range(repeats):
        if r % 2 == 0:
            s, w = singles(), grid()
        else:
            w, s = grid(), singles()
        sums.append(s)
        walls.append(w)
        ratios.append(w / (s / cores))
    return _row("grid-16-runs-jobs-cores", statistics.median(ratios), f"wall / (sum of runs / {cores} cores)",
                1.15, False, engine_ms=1e3 * statistics.median(walls), plain_ms=1e3 * statistics.median(sums),
                ratios=ratios, runs=len(specs), cores=cores, startup_s=cold - statistics.median(walls),
                cold_ms=1e3 * cold)


def _import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "TQDM_DISABLE": "1"})
    return float(proc.stdout.strip().splitlines()[-1])


def import_row(repeats: int) -> dict:
    """``import stalenb`` ÷ ``import torch``, each in a fresh interpreter, alternating; median ratio."""
    ratios, ours, theirs = [], [], []
    for r in range(repeats):
        if r % 2 == 0:
            a, b = _import_seconds("stalenb"), _import_seconds("torch")
        else:
            b, a = _import_seconds("torch"), _import_seconds("stalenb")
        ours.append(a)
        theirs.append(b)
        ratios.append(a / b)
    return _row("import-stalenb", statistics.median(ratios), "cost (import stalenb / import torch)", 1.3, False,
                engine_ms=1e3 * statistics.median(ours), plain_ms=1e3 * statistics.median(theirs), ratios=ratios)


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
    case = {case.name: case for case in cases()}[name]
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
    cmd = [sys.executable, "-m", "stalenb.repro.bench", "--memory-child", name, side, str(steps),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report ------------------------------------------------------------------------------------
def table(rows: list[dict], roof: dict | None = None) -> str:
    """The report: one line per row with its target and whether it is met; then the roofline."""
    head = (f"{'case':<30}{'ratio':>7}  {'target':<8}{'met':<5}{'A ms':>9}{'B ms':>9}{'GFLOP/s':>9}"
            f"{'peak MiB (A / B)':>18}  ratio = A / B")
    lines = [head, "-" * len(head)]
    for r in rows:
        target = (">= " if r.get("at_least") else "<= ") + f"{r['target']:g}"
        mem = r.get("memory") or {}
        e, p = mem.get("engine") or {}, mem.get("plain") or {}
        peak = (f"{e['peak_rss_mib']:.0f} / {p['peak_rss_mib']:.0f}"
                if "peak_rss_mib" in e and "peak_rss_mib" in p else "-")
        ms = ["-" if r.get(k) is None else f"{r[k]:.1f}" for k in ("engine_ms", "plain_ms")]
        gflops = "-" if r.get("gflops") is None else f"{r['gflops']:.1f}"
        lines.append(f"{r['case']:<30}{r['ratio']:>7.2f}  {target:<8}{'yes' if r['met'] else 'NO':<5}"
                     f"{ms[0]:>9}{ms[1]:>9}{gflops:>9}{peak:>18}  {r['kind']}")
    if roof:
        lines.append(f"\nattainable fp32 at {roof['threads']} thread(s): {roof['gflops']:.1f} GFLOP/s "
                     f"({roof['gflops_per_thread']:.1f} per thread; mm {roof['mm_gflops']:.1f}, "
                     f"conv {roof['conv_gflops']:.1f})")
    return "\n".join(lines)


def write_json(obj: dict, target: Path) -> Path:
    """Write ``obj`` as JSON to ``target`` atomically (:func:`stalenb.files.atomic_write`)."""
    with atomic_write(target) as fh:
        json.dump(obj, fh, indent=2, default=str)
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m stalenb.repro.bench", description=__doc__.splitlines()[0])
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
        known = {case.name for case in chosen}
        bad = sorted(set(a.cases) - known - set(EXTRA))
        if bad:
            p.error(f"unknown case(s) {bad}; known: {sorted(known) + list(EXTRA)}")
        chosen = [case for case in chosen if case.name in a.cases]
    repeats = a.repeats or (2 if a.quick else 7)
    rows, start = [], time.perf_counter()
    roof = attainable(2 if a.quick else 7)
    print(f"  attainable: {roof['gflops']:.1f} GFLOP/s at {a.threads} thread(s)", file=sys.stderr, flush=True)
    for case in chosen:
        lenet_big = case.config.batch_size > 32 and case.config.model == "lenet"
        block, warm = (3, 1) if a.quick else ((6, 3) if lenet_big else (20, 3))
        row = measure(case, repeats, block, warm)
        row["memory_steps"] = warm + block
        rows.append(row)
        print(f"  {case.name}: {row['ratio']:.2f} (target {row['target']:g}, {'met' if row['met'] else 'NOT met'})",
              file=sys.stderr, flush=True)
    extra = [] if a.cases is None else [x for x in a.cases if x in EXTRA]
    if a.cases is None or "async-lenet-roofline" in extra:
        lenet = next((r for r in rows if r["case"] == "async-lenet"), None)
        if lenet is not None:
            rows.append(roofline_row(lenet, roof))
    more = {"async-lenet-1024-workers": lambda: scale_row(max(2, repeats // 2), 3 if a.quick else 20, a.quick),
            "quadratic-10000-workers": lambda: quadratic_scale_row(max(2, repeats // 2), 3 if a.quick else 200, a.quick),
            "grid-16-runs-jobs-cores": lambda: grid_row(1 if a.quick else a.repeats or 2, a.quick),
            "import-stalenb": lambda: import_row(2 if a.quick else 6)}
    for name, make in more.items():
        if a.cases is None or name in extra:
            rows.append(make())
            startup = f"; pool start-up {rows[-1]['startup_s']:.1f} s" if "startup_s" in rows[-1] else ""
            print(f"  {name}: {rows[-1]['ratio']:.2f} (target {rows[-1]['target']:g}, "
                  f"{'met' if rows[-1]['met'] else 'NOT met'}{startup})", file=sys.stderr, flush=True)
    if not (a.quick or a.no_memory):  # after the timings, two fresh processes at a time
        names = {case.name for case in chosen}
        jobs = [(r, side) for r in rows if r["case"] in names for side in ("engine", "plain")]
        with ThreadPoolExecutor(2) as pool:
            peaks = list(pool.map(lambda job: memory(job[0]["case"], job[1], job[0]["memory_steps"], a.threads), jobs))
        for (r, side), peak in zip(jobs, peaks):
            r.setdefault("memory", {})[side] = peak
    out = {"threads": a.threads, "quick": a.quick, "repeats": repeats, "torch": torch.__version__, "attainable": roof,
           "cpu_count": os.cpu_count(), "seconds": time.perf_counter() - start, "cases": rows}
    target = write_json(out, a.out or paths.build_dir() / "bench.json")
    print(table(rows, roof))
    print(f"\n{len(rows)} cases, {out['seconds']:.0f} s, {a.threads} thread(s); JSON: {target}")
    return 0 if a.quick or all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
