"""A worker process (rank r ≥ 1, worker index r − 1): read → compute → compress → push, until STOP.

Per job: the server sends the model x it read (version v) and the batch indices; the worker
computes the mini-batch gradient with :meth:`stalenb.gradients.NeuralNet.loss_grad` (the
simulator's oracle), compresses it with its own :class:`stalenb.compress.Compressor` (its
error-feedback memory is this worker's row), and pushes the kept values + int32 indices.

Straggler injection: after computing for t seconds the worker sleeps (s − 1)·t, where the slowdown
s = ``config.timing.slowdown`` draw × ``factor``. The draws are the simulator's common random
numbers (:class:`stalenb.timing.Slowdowns` seeded with ``config.seed``): worker w's j-th job gets
the same s in a real run as in ``stalenb.simulate``. While sleeping the worker listens for CANCEL
(k-of-n drop cancels the round's stragglers) and STOP.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..sim.compress import Compressor
from ..sim.timing import Slowdowns
from . import wire


def encode(g: torch.Tensor, comp: Compressor, worker: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, int32 indices) of the push of gradient ``g`` (:meth:`Compressor.sparse`, with the
    worker's error feedback); dense: (values, empty). Scattering the message back gives exactly
    ``comp(g)``: ⌈ρ·d_s⌉ entries per segment s.
    """
    idx, values = comp.sparse(g, worker)
    if idx is None:
        return values.float(), wire._EMPTY_I32
    return values.float(), idx.to(torch.int32)


def decode(msg: wire.Message, dim: int, like: torch.Tensor) -> torch.Tensor:
    """The dense gradient of a GRAD message, as ``like``'s dtype and device."""
    if msg.i32.numel() == 0:
        return msg.f32.to(device=like.device, dtype=like.dtype)
    out = torch.zeros(dim, dtype=like.dtype, device=like.device)
    out[msg.i32.to(device=like.device, dtype=torch.int64)] = msg.f32.to(device=like.device, dtype=like.dtype)
    return out


def serve(config, problem, rank: int, timeout: float, factor: float = 1.0) -> None:
    """Run worker ``rank`` until the server says STOP; raises :class:`wire.PeerLost` on silence."""
    w = rank - 1
    comp = Compressor(config.compressor, config.density, problem.dim, workers=1,
                      error_feedback=config.error_feedback,
                      layer_sizes=problem.layer_sizes if config.granularity == "layer" else None,
                      seed=config.seed + w, device=problem.x0.device)
    slow = Slowdowns(config.timing.slowdown, config.workers, np.random.default_rng(config.seed))
    inbox = wire.Inbox([0], last=wire.STOP)
    jobs = 0
    while True:
        msg = inbox.get(timeout, waiting_for=[0])
        if msg.kind == wire.STOP:
            wire.send(wire.Message(wire.BYE), 0)
            return
        if msg.kind != wire.JOB:  # a CANCEL for a job already pushed
            continue
        t0 = time.perf_counter()
        x = msg.f32.to(device=problem.x0.device, dtype=problem.x0.dtype)
        loss, g = problem.loss_grad(x, msg.i32.to(torch.int64))
        values, idx = encode(g, comp)
        compute = time.perf_counter() - t0
        s = slow(w, jobs) * factor
        jobs += 1
        stopped = _sleep(inbox, (s - 1.0) * compute, msg.job)
        timings = torch.tensor([loss, compute, time.perf_counter() - t0, s], dtype=torch.float64)
        if stopped is None:
            wire.send(wire.Message(wire.GRAD, msg.version, msg.job, values, idx, timings), 0)
        else:
            wire.send(wire.Message(wire.CANCELLED, msg.version, msg.job, f64=timings), 0)
            if stopped.kind == wire.STOP:
                inbox.put_back(stopped)


def _sleep(inbox: wire.Inbox, seconds: float, job: int):
    """Sleep ``seconds`` unless CANCEL(job) or STOP arrives (returned); other messages are kept."""
    end = time.perf_counter() + max(0.0, seconds)
    kept_aside = []
    try:
        while (left := end - time.perf_counter()) > 0:
            msg = inbox.poll(left)
            if msg is None:
                return None
            if msg.kind == wire.STOP or (msg.kind == wire.CANCEL and msg.job == job):
                return msg
            kept_aside.append(msg)
        return None
    finally:
        inbox.pending[:0] = kept_aside
