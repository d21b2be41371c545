"""Where one simulator step's time goes: ``python tools/profile_step.py [lenet|mlp] [--threads N]``.

Runs the engine's gradient of one push (``NeuralNet.loss_grad_buffer``: forward + backward into the
flat buffer, batch 32) under ``torch.profiler`` and prints each operator's share of the step's
self CPU time, the kernels' achieved GFLOP/s where the profiler counts FLOPs, and the step's
achieved GFLOP/s against this machine's attainable rate (:func:`stalenb.repro.bench.attainable`) — the
diagnosis behind the README's roofline row. (The profiler's own start-up lines on stderr are
torch's, not errors of this script.)
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from stalenb.repro import bench
from stalenb.sim.gradients import NeuralNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="lenet", choices=("lenet", "mlp", "lenet5"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = NeuralNet(args.model, 0, None, 256, 16)
    x, idx = net.x0.clone(), torch.arange(32)
    for _ in range(20):
        net.loss_grad_buffer(x, idx)
    t = time.perf_counter()
    for _ in range(args.steps):
        net.loss_grad_buffer(x, idx)
    step = (time.perf_counter() - t) / args.steps
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(args.steps):
            net.loss_grad_buffer(x, idx)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    roof = bench.attainable()["gflops"]
    flops = bench.step_flops(args.model, 32)
    print(f"{args.model}, batch 32, {args.threads} thread(s): {1e3 * step:.2f} ms per step, "
          f"{flops / step / 1e9:.1f} GFLOP/s = {flops / step / 1e9 / roof:.2f} of attainable {roof:.1f}")
    print(f"{'operator':40s} {'share':>6s} {'ms/step':>8s} {'GFLOP/s':>8s}")
    for e in events[:10]:
        ms = e.self_cpu_time_total / 1e3 / args.steps
        rate = f"{e.flops / e.self_cpu_time_total / 1e3:8.1f}" if e.flops else f"{'':8s}"
        print(f"{e.key:40s} {e.self_cpu_time_total / total:6.1%} {ms:8.2f} {rate}")


if __name__ == "__main__":
    main()
