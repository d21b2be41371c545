"""The frozen run configuration and all input validation.

One :class:`Config` describes one simulated run completely; with the package version it is the
cache key. Every bad value raises ``ValueError`` (or ``TypeError`` for a wrong type) whose message
names the parameter and what is allowed (the rules of :mod:`stalenb.sim.checks`: numpy integers
and floats are accepted and stored as Python ``int`` / ``float``).

Choices stalenb makes where the sources are silent (``docs/research.md`` §1–2) are fields with documented
defaults: the staleness model, the number of workers, the compressor and its density, error
feedback, the lag weights of re-used gradients, the timing model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from . import checks
from . import staleness as _staleness
from . import timing as _timing
from .compress import KINDS as COMPRESSORS
from .models import MODELS
from .rules import RULES
from .schedule import PROTOCOLS

LATE = ("drop", "reuse")
GRANULARITIES = ("model", "layer")
DEVICES = ("cpu", "cuda")
SPLITS = ("train", "test", "val")  # what an evaluation may compute (Config.eval_splits)
# The allowed values of each string field, declared once: validation and the command line
# (``python -m stalenb.distributed``) both read them. ``protocol`` and ``rule`` are live registries
# (:mod:`stalenb.sim.registry`): a user's registered entry is allowed as soon as it is registered.
CHOICES = {"protocol": PROTOCOLS, "late": LATE, "compressor": COMPRESSORS, "granularity": GRANULARITIES,
           "rule": RULES, "model": MODELS, "device": DEVICES, "eval_splits": SPLITS}


@dataclass(frozen=True)
class Config:
    """One simulated run (docs/design.md §S3). Fields, with their meaning and allowed values:

    Attributes:
        protocol: ``"sync"`` (wait for all n), ``"async"`` (apply each gradient on arrival, paper 1),
            ``"k-of-n"`` (wait for the first k gradients of the current model, the poster);
            the late-gradient policies of the time-optimal literature ``"rennala"`` (k = B fresh
            gradients per update), ``"ringmaster"`` (asynchronous, delays >= ``max_delay``
            discarded) and ``"gradient-table"`` (IA²SGD); or a user's (:mod:`stalenb.sim.schedule`).
        workers: number of workers n (>= 1).
        k: gradients waited for per round with ``"k-of-n"``, 1 <= k <= workers (default: workers);
            with ``"rennala"`` the batch B of fresh gradients per update (may exceed workers).
        max_delay: ``"ringmaster"``'s R >= 1: a gradient of delay >= R is discarded (default ``None``:
            R = workers).
        cancel_stale: ``"ringmaster"``: cancel a job as soon as its delay reaches R; ``"rennala"``:
            restart every worker at each update. ``False``: stale jobs finish and are discarded.
        late: what ``"k-of-n"`` does with late gradients: ``"drop"`` (backup workers, Chen et al.
            2016) or ``"reuse"`` (cache them and apply them at the next update, the poster).
        lag_weights: relative weight of a re-used gradient of lag j = 1, 2, … (entry j−1; the last
            entry repeats for larger lags). A fresh gradient has weight 1, so under the lag-indexed
            reading of the poster's update β_0 = lr and β_j = lr · (count_j / k) · lag_weights[j−1].
        staleness: synthetic delay model for ``"async"`` (:mod:`stalenb.staleness`), or a measured
            delay sequence replayed in order (:class:`stalenb.staleness.Trace`: at least ``steps``
            delays unless it cycles); ``None`` means staleness emerges from the timing model and the
            number of workers.
        timing: compute / communication model (:class:`stalenb.timing.Timing`) giving simulated time;
            its ``factors`` (one per worker) and a :class:`stalenb.timing.TraceSlowdown` (one sequence
            per worker) must match ``workers``.
        compressor: ``"none"``, ``"topk"`` or ``"randomk"``, applied at the worker before sending.
        density: kept fraction ρ in (0, 1]; k = ⌈ρ·d⌉ entries (per layer with ``granularity="layer"``).
        granularity: ``"model"`` (one top-k over the flat gradient) or ``"layer"`` (per layer).
        error_feedback: per-worker memory m ← m + g; u = comp(m); m ← m − u (Stich et al. 2018).
        rule: server update: ``"sgd"`` (optional momentum), ``"staleness-aware"`` (lr / max(1, τ),
            Zhang et al. 2016), ``"dc-asgd"`` (delay compensation, Zheng et al. 2017),
            ``"delay-adaptive"`` (lr · n / max(n, τ), Mishchenko et al. 2022), ``"poly-staleness"``
            (lr · (1 + τ)^(−poly_exponent), FLSim); or a user's (:mod:`stalenb.sim.rules`).
        lr: learning rate α > 0.
        momentum: heavy-ball momentum μ in [0, 1).
        dc_lambda: DC-ASGD's λ >= 0 (0.04 as in MXNet).
        poly_exponent: ``"poly-staleness"``'s exponent a >= 0 (0.5, FLSim's default).
        batch_size: global batch for ``"sync"`` and ``"k-of-n"`` (each worker computes on
            batch_size / workers samples, which must divide evenly); the batch of each gradient
            for the other protocols.
        steps: server updates to run.
        eval_every: evaluate every this many updates (and at step 0 and at the end).
        eval_size: test (and train-subset) samples used per evaluation; ``None`` = the whole test set.
        eval_splits: the splits each evaluation computes, a non-empty tuple drawn from ``"train"``
            (``train_loss`` on the training subset), ``"test"`` (``test_loss``, ``test_acc``) and
            ``"val"`` (``val_loss``, ``val_acc``, with ``validation`` > 0); a split left out reads NaN.
            Evaluation never changes the iterates, so leaving a split out changes no other number;
            it buys time where a study reads only one split (an MLP evaluation on 2,000 train-subset
            + 2,000 test + 1,000 validation digits costs as much as ~45 batch-32 updates).
        train_size: use only the first this many training samples; ``None`` = all.
        validation: hold out the last this many training digits (after ``train_size``) as a
            validation split, evaluated as ``val_loss`` / ``val_acc``; training never draws them.
            0 = none. Learning rates are tuned on it, never on the test digits.
        model: ``"lenet"`` (the poster's), ``"lenet5"`` or ``"mlp"`` (784-800-500-10).
        seed: seeds the model init, the batches, the delays, the timing draws and random-k.
        data_root: folder with ``MNIST/raw`` (default: the project's ``data/``).
        download: let torchvision download MNIST when files are missing.
        device: ``"cpu"`` or ``"cuda"`` (used only when asked and available).
        diverge_loss: a mini-batch loss above this (or not finite) stops the run, flagged ``diverged``.
        stop_loss: stop at the first evaluation whose ``train_loss`` is at most this (``None``: never).
        time_limit: stop at the first update at or after this many simulated seconds, evaluating
            there (``None``: never); ``steps`` still caps the run.
    """

    protocol: str = "async"
    workers: int = 1
    k: int | None = None
    max_delay: int | None = field(default=None, metadata=checks.OMIT_DEFAULT)
    cancel_stale: bool = field(default=False, metadata=checks.OMIT_DEFAULT)
    late: str = "drop"
    lag_weights: tuple = (1.0,)
    staleness: _staleness.Constant | _staleness.Uniform | _staleness.Geometric | _staleness.Trace | None = None
    timing: _timing.Timing = field(default_factory=_timing.Timing)
    compressor: str = "none"
    density: float = 1.0
    granularity: str = "model"
    error_feedback: bool = False
    rule: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.0
    dc_lambda: float = 0.04
    poly_exponent: float = field(default=0.5, metadata=checks.OMIT_DEFAULT)
    batch_size: int = 32
    steps: int = 100
    eval_every: int = 10
    eval_size: int | None = 1000
    eval_splits: tuple = field(default=SPLITS, metadata=checks.OMIT_DEFAULT)
    train_size: int | None = None
    validation: int = 0
    model: str = "lenet"
    seed: int = 0
    data_root: str | None = None
    download: bool = True
    device: str = "cpu"
    diverge_loss: float = 1e4
    stop_loss: float | None = field(default=None, metadata=checks.OMIT_DEFAULT)
    time_limit: float | None = field(default=None, metadata=checks.OMIT_DEFAULT)

    def __post_init__(self):
        # Each check returns the value as a plain Python object (numpy scalars become int / float),
        # stored back so that equal configurations compare, hash and serialise the same.
        checks.assign(self, protocol=checks.choice("protocol", self.protocol, CHOICES["protocol"]),
                      workers=checks.integer("workers", self.workers, minimum=1))
        spec = PROTOCOLS[self.protocol]
        if self.k is not None:
            checks.assign(self, k=checks.integer("k", self.k, minimum=1))
            if self.k > self.workers and not spec.k_above_workers:
                raise ValueError(f"k must satisfy 1 <= k <= workers ({self.workers}), got k={self.k}")
        if self.max_delay is not None:
            checks.assign(self, max_delay=checks.integer("max_delay", self.max_delay, minimum=1))
        checks.assign(self, cancel_stale=checks.boolean("cancel_stale", self.cancel_stale))
        for name, unset in (("max_delay", None), ("cancel_stale", False)):
            if getattr(self, name) != unset and name not in spec.uses:
                users = [p for p in PROTOCOLS if name in PROTOCOLS[p].uses]
                raise ValueError(f"{name} applies only to protocol {' or '.join(map(repr, users))}, "
                                 f"got protocol={self.protocol!r}")
        checks.assign(self, late=checks.choice("late", self.late, CHOICES["late"]))
        if not isinstance(self.lag_weights, tuple) or not self.lag_weights:
            raise TypeError(f"lag_weights must be a non-empty tuple of numbers >= 0, got {self.lag_weights!r}")
        checks.assign(self, lag_weights=tuple(checks.real("lag_weights entries", w, ge=0) for w in self.lag_weights))
        checks.instance("staleness", self.staleness, _staleness.MODELS + _staleness.REPLAYS, optional=True)
        if self.staleness is not None and self.protocol != "async":
            raise ValueError(
                f"staleness (a synthetic delay model) applies only to protocol='async', "
                f"got protocol={self.protocol!r}; use timing for sync / k-of-n"
            )
        checks.instance("timing", self.timing, (_timing.Timing,))
        if self.timing.factors is not None and len(self.timing.factors) != self.workers:
            raise ValueError(f"timing.factors must have one entry per worker (workers={self.workers}), "
                             f"got {len(self.timing.factors)} factors")
        if isinstance(self.timing.slowdown, _timing.TraceSlowdown) and self.timing.slowdown.workers != self.workers:
            raise ValueError(f"timing.slowdown (a TraceSlowdown) must hold one sequence per worker "
                             f"(workers={self.workers}), got {self.timing.slowdown.workers}")
        checks.assign(
            self,
            compressor=checks.choice("compressor", self.compressor, CHOICES["compressor"]),
            density=checks.real("density", self.density, gt=0, le=1),
            granularity=checks.choice("granularity", self.granularity, CHOICES["granularity"]),
            error_feedback=checks.boolean("error_feedback", self.error_feedback),
        )
        if self.error_feedback and self.compressor == "none":
            raise ValueError("error_feedback=True needs compressor 'topk' or 'randomk' (got 'none')")
        checks.assign(
            self,
            rule=checks.choice("rule", self.rule, CHOICES["rule"]),
            lr=checks.real("lr", self.lr, gt=0),
            momentum=checks.real("momentum", self.momentum, ge=0, lt=1),
            dc_lambda=checks.real("dc_lambda", self.dc_lambda, ge=0),
            poly_exponent=checks.real("poly_exponent", self.poly_exponent, ge=0),
            batch_size=checks.integer("batch_size", self.batch_size, minimum=1),
        )
        if spec.split_batch and self.batch_size % self.workers:
            raise ValueError(
                f"batch_size must be divisible by workers for protocol={self.protocol!r} "
                f"(each worker computes on batch_size / workers samples); got "
                f"batch_size={self.batch_size}, workers={self.workers}"
            )
        checks.assign(
            self,
            steps=checks.integer("steps", self.steps, minimum=1),
            eval_every=checks.integer("eval_every", self.eval_every, minimum=1),
            eval_size=None if self.eval_size is None else checks.integer("eval_size", self.eval_size, minimum=1),
            train_size=None if self.train_size is None else checks.integer("train_size", self.train_size, minimum=1),
            validation=checks.integer("validation", self.validation, minimum=0),
        )
        if not isinstance(self.eval_splits, tuple) or not self.eval_splits \
                or len(set(self.eval_splits)) != len(self.eval_splits):
            raise ValueError(f"eval_splits must be a non-empty tuple of distinct names from {SPLITS}, "
                             f"got {self.eval_splits!r}")
        checks.assign(self, eval_splits=tuple(checks.choice("eval_splits entries", s, SPLITS)
                                              for s in self.eval_splits))
        if self.stop_loss is not None and "train" not in self.eval_splits:
            raise ValueError(f"stop_loss reads train_loss: eval_splits must contain 'train', got {self.eval_splits!r}")
        if isinstance(self.staleness, _staleness.Trace) and not self.staleness.cycle \
                and self.steps > len(self.staleness.delays):
            raise ValueError(f"staleness: the Trace holds {len(self.staleness.delays)} delays, fewer than "
                             f"steps={self.steps}; run at most that many steps or use Trace(delays, cycle=True)")
        if self.train_size is not None and self.validation >= self.train_size:
            raise ValueError(f"validation must be smaller than train_size ({self.train_size}), got {self.validation}")
        checks.assign(
            self,
            model=checks.choice("model", self.model, CHOICES["model"]),
            seed=checks.integer("seed", self.seed, minimum=0),
            data_root=checks.path("data_root", self.data_root, optional=True),
            download=checks.boolean("download", self.download),
            device=checks.choice("device", self.device, CHOICES["device"]),
            diverge_loss=checks.real("diverge_loss", self.diverge_loss, gt=0),
            stop_loss=None if self.stop_loss is None else checks.real("stop_loss", self.stop_loss),
            time_limit=None if self.time_limit is None else checks.real("time_limit", self.time_limit, gt=0),
        )

    # -- derived quantities -------------------------------------------------------------------
    @property
    def k_eff(self) -> int:
        """What an update's summed directions are divided by: n (sync, gradient-table), k (k-of-n,
        rennala), 1 (async, ringmaster)."""
        return PROTOCOLS[self.protocol].averaged_over(self)

    @property
    def push_batch(self) -> int:
        """Samples behind one worker's gradient."""
        return self.batch_size // self.workers if PROTOCOLS[self.protocol].split_batch else self.batch_size

    def lag_weight(self, lag: int) -> float:
        """Relative weight of a gradient of ``lag`` in a k-of-n reuse update (1 for lag 0)."""
        if lag <= 0 or self.protocol != "k-of-n":
            return 1.0
        return float(self.lag_weights[min(lag, len(self.lag_weights)) - 1])

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` applied (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            allowed = ", ".join(f.name for f in dataclasses.fields(self))
            raise ValueError(f"unknown Config field(s) {sorted(unknown)}; allowed: {allowed}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """A JSON-ready dict; nested models carry their class name under ``"kind"``. Fields added
        after runs were cached (``checks.OMIT_DEFAULT``) are left out while they hold their default."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not (f.metadata.get("omit_default") and getattr(self, f.name) == f.default)}


def _plain(value):
    if dataclasses.is_dataclass(value):
        out = {"kind": type(value).__name__}
        out.update({f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                    if not (f.metadata.get("omit_default") and getattr(value, f.name) == f.default)})
        return out
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
