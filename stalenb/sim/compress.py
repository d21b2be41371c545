"""Gradient sparsification at the worker: top-k, random-k, per-worker error feedback.

- top-k keeps the k = ⌈ρ·d⌉ entries of largest magnitude (``torch.topk`` on the flat vector);
- random-k keeps k entries drawn uniformly without replacement from a seeded generator;
- with ``granularity="layer"`` each layer keeps ⌈ρ·d_l⌉ of its own d_l entries;
- error feedback (Stich, Cordonnier & Jaggi, NeurIPS 2018, "Sparsified SGD with memory"):
  m ← m + g;  u = comp(m);  m ← m − u;  send u. The memory is per worker and kept in gradient
  units (the server multiplies by the learning rate), which equals Stich's m ← m + α·g for a
  constant α.

Bytes sent per push: dense 4·d (float32); sparse 8 bytes per kept entry (float32 value + int32
index).
"""

from __future__ import annotations

import math

import numpy as np
import torch

KINDS = ("none", "topk", "randomk")


def kept(d: int, density: float) -> int:
    """k = ⌈ρ·d⌉ (at least 1)."""
    return max(1, math.ceil(density * d - 1e-9))


_PREFILTER_MIN = 1 << 15  # below this size a plain torch.topk is fast enough
_SAMPLE = 4096  # strided sample used to guess a threshold


def topk_indices(v: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest |v| (flat), as ``torch.topk(v.abs(), k)`` (order unspecified).

    Exact, with a prefilter for large vectors: a threshold t is guessed from a strided sample of
    |v| (the sample's ⌈2k/d·m⌉-th largest value), ``torch.topk`` then runs on the candidates
    |v| ≥ t only. Every entry left out is smaller than every candidate, so when there are at least
    k candidates their top k is the top k of v; otherwise the full ``torch.topk`` runs. (The
    prefilter pays off on model-sized vectors at small ρ, where a full ``torch.topk`` sorts far more
    entries than it keeps.)
    """
    a = v.abs()
    d = a.numel()
    if d < _PREFILTER_MIN or 4 * k > d:
        return torch.topk(a, k, sorted=False).indices
    sample = a[:: d // _SAMPLE]
    m = sample.numel()
    t = torch.topk(sample, min(m, 2 * k * m // d + 8), sorted=False).values.min()
    if not t > 0:  # many zeros (ties): the prefilter would keep too much
        return torch.topk(a, k, sorted=False).indices
    cand = _at_least(a, t)
    if cand.numel() < k:
        return torch.topk(a, k, sorted=False).indices
    return cand[torch.topk(a[cand], k, sorted=False).indices]


def _at_least(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Indices i (increasing) with a_i >= t: ``torch.nonzero(a >= t)``; on the CPU through NumPy's
    ``flatnonzero``, the same indices in about a third of the time (the prefilter's costliest pass)."""
    if a.device.type != "cpu":
        return torch.nonzero(a >= t).squeeze(1)
    return torch.from_numpy(np.flatnonzero(a.numpy() >= t.item()))


def randomk_indices(d: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k indices drawn uniformly without replacement from ``generator``."""
    return torch.randperm(d, generator=generator)[:k]


def sparsify(v: torch.Tensor, kind: str, density: float, generator=None, segments=None) -> torch.Tensor:
    """Dense copy of ``v`` with all but the kept entries zeroed (the values a worker sends)."""
    if kind == "none" or density >= 1.0:
        return v.clone()
    idx = kept_indices(v, kind, density, generator, segments)
    out = torch.zeros_like(v)
    out[idx] = v[idx]
    return out


def kept_indices(v: torch.Tensor, kind: str, density: float, generator=None, segments=None) -> torch.Tensor:
    """Flat indices of the entries ``sparsify`` keeps (per segment when ``segments`` is given)."""
    parts = []
    for start, stop in segments or [(0, v.numel())]:
        k = kept(stop - start, density)
        idx = topk_indices(v[start:stop], k) if kind == "topk" else randomk_indices(stop - start, k, generator)
        parts.append(idx.to(v.device) + start if start else idx.to(v.device))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class Compressor:
    """The compression stage of all workers: one object, one memory row per worker.

    Args:
        kind: ``"none" | "topk" | "randomk"``.
        density: kept fraction ρ in (0, 1].
        dim: model dimension d.
        workers: number of workers (error-feedback memories).
        error_feedback: keep a per-worker memory.
        layer_sizes: sizes d_l of the layers for per-layer compression (``None``: whole model).
        seed: seeds random-k's generator.
        device: where the error-feedback memory lives.

    Everything after ``dim`` is keyword-only: ``Compressor("topk", 0.01, d, workers=4,
    error_feedback=True)``.
    """

    def __init__(self, kind="none", density=1.0, dim=1, *, workers=1, error_feedback=False,
                 layer_sizes=None, seed=0, device="cpu"):
        if kind not in KINDS:
            raise ValueError(f"compressor must be one of {KINDS}, got {kind!r}")
        self.kind, self.density, self.dim = kind, float(density), int(dim)
        self.segments = None
        if layer_sizes is not None:
            bounds = [0]
            for n in layer_sizes:
                bounds.append(bounds[-1] + int(n))
            self.segments = list(zip(bounds[:-1], bounds[1:]))
        self.generator = torch.Generator().manual_seed(int(seed) + 7919)
        self.memory = torch.zeros(workers, dim, device=device) if error_feedback else None

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.density < 1.0

    @property
    def push_bytes(self) -> int:
        """Bytes of one push: 4·d dense, 8 per kept entry sparse."""
        if not self.active:
            return 4 * self.dim
        segs = self.segments or [(0, self.dim)]
        return 8 * sum(kept(b - a, self.density) for a, b in segs)

    def sparse(self, g: torch.Tensor, worker: int = 0):
        """What worker ``worker`` sends for gradient ``g``: ``(indices, values)``; ``(None, g)`` dense.

        With error feedback: m ← m + g; the kept entries of m are sent and zeroed in m (m ← m − u).
        """
        if self.memory is None:
            if not self.active:
                return None, g
            idx = kept_indices(g, self.kind, self.density, self.generator, self.segments)
            return idx, g[idx]
        m = self.memory[worker]
        m.add_(g)
        if not self.active:
            u = m.clone()
            m.zero_()
            return None, u
        idx = kept_indices(m, self.kind, self.density, self.generator, self.segments)
        values = m[idx]
        m[idx] = 0  # m ← m − u: exactly zero where u took m's value, unchanged elsewhere
        return idx, values

    def __call__(self, g: torch.Tensor, worker: int = 0) -> torch.Tensor:
        """The (dense-stored) sparse vector worker ``worker`` sends for gradient ``g``."""
        idx, values = self.sparse(g, worker)
        if idx is None:
            return values
        u = torch.zeros_like(g)
        u[idx] = values
        return u
