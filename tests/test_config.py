"""Every bad input of docs/design.md §S6 raises a clear error naming the parameter and what is allowed."""

import json
import math

import numpy as np
import pytest

import stalenb as sn
from stalenb import staleness, timing

BAD = [
    (dict(protocol="k-of-n", workers=4, k=5), ValueError, r"k must satisfy 1 <= k <= workers \(4\)"),
    (dict(protocol="k-of-n", workers=4, k=0), ValueError, r"k must be an integer >= 1"),
    (dict(compressor="topk", density=0.0), ValueError, r"density must be a number in \(0, 1\]"),
    (dict(compressor="topk", density=1.5), ValueError, r"density must be a number in \(0, 1\]"),
    (dict(lr=0.0), ValueError, r"lr must be a finite number > 0"),
    (dict(lr=-1.0), ValueError, r"lr must be a finite number > 0"),
    (dict(lr=math.nan), ValueError, r"lr must be a finite number > 0"),
    (dict(protocol="sync", workers=3, batch_size=32), ValueError, r"batch_size must be divisible by workers"),
    (dict(protocol="fast"), ValueError, r"protocol must be one of 'sync', 'async', 'k-of-n'"),
    (dict(rule="adam"), ValueError, r"rule must be one of 'sgd', 'staleness-aware', 'dc-asgd'"),
    (dict(compressor="qsgd"), ValueError, r"compressor must be one of 'none', 'topk', 'randomk'"),
    (dict(protocol="k-of-n", late="keep"), ValueError, r"late must be one of 'drop', 'reuse'"),
    (dict(model="resnet"), ValueError, r"model must be one of 'lenet', 'lenet5', 'mlp'"),
    (dict(granularity="tensor"), ValueError, r"granularity must be one of 'model', 'layer'"),
    (dict(momentum=1.0), ValueError, r"momentum must be a number in \[0, 1\)"),
    (dict(workers=0), ValueError, r"workers must be an integer >= 1"),
    (dict(steps=0), ValueError, r"steps must be an integer >= 1"),
    (dict(workers=2.5), TypeError, r"workers must be an integer"),
    (dict(staleness=3), TypeError, r"staleness must be None or one of"),
    (dict(protocol="sync", staleness=sn.Uniform(4)), ValueError, r"staleness .* applies only to protocol='async'"),
    (dict(error_feedback=True), ValueError, r"error_feedback=True needs compressor"),
    (dict(device="tpu"), ValueError, r"device must be one of 'cpu', 'cuda'"),
]


@pytest.mark.parametrize("kwargs, exc, message", BAD)
def test_bad_config_names_parameter(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        sn.Config(**kwargs)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: staleness.Constant(-1), r"tau must be an integer >= 0"),
        (lambda: staleness.Uniform(-3), r"tau_max must be an integer >= 0"),
        (lambda: staleness.Geometric(0.5, -1), r"tau_max must be an integer >= 0"),
        (lambda: staleness.Geometric(0.0, 4), r"p must be a probability in \(0, 1\]"),
        (lambda: timing.Straggler(p=2.0), r"p must be a probability"),
        (lambda: timing.Timing(bandwidth=0), r"timing.bandwidth must be a number > 0 \(bytes/s; inf allowed\)"),
        (lambda: timing.Timing(per_sample=-1.0), r"timing.per_sample must be a finite number >= 0"),
    ],
)
def test_bad_models_name_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_replace_rejects_unknown_field_and_revalidates():
    cfg = sn.Config()
    with pytest.raises(ValueError, match="unknown Config field"):
        cfg.replace(learning_rate=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        cfg.replace(lr=-0.1)
    assert cfg.replace(lr=0.2).lr == 0.2


def test_config_is_frozen_hashable_and_serialisable():
    cfg = sn.Config(protocol="async", staleness=sn.Uniform(8))
    assert hash(cfg) == hash(sn.Config(protocol="async", staleness=sn.Uniform(8)))
    with pytest.raises(Exception):
        cfg.lr = 1.0  # frozen
    d = cfg.to_dict()
    assert d["staleness"] == {"kind": "Uniform", "tau_max": 8}
    assert d["timing"]["slowdown"]["kind"] == "ShiftedExponential"


def test_derived_quantities():
    cfg = sn.Config(protocol="k-of-n", workers=8, k=2, batch_size=256, lag_weights=(0.5, 0.25))
    assert cfg.k_eff == 2 and cfg.push_batch == 32
    assert [cfg.lag_weight(j) for j in range(4)] == [1.0, 0.5, 0.25, 0.25]
    assert sn.Config(protocol="sync", workers=4, batch_size=64).k_eff == 4
    assert sn.Config(protocol="async", workers=4, batch_size=64).push_batch == 64


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    """One rule everywhere (stalenb.sim.checks): numpy integers and floats are numbers, normalised on entry."""
    py = sn.Config(protocol="k-of-n", workers=4, k=2, late="reuse", lag_weights=(0.5,), lr=0.1, steps=10,
                   eval_every=5, batch_size=8, seed=3, density=0.5, compressor="topk")
    cfg = sn.Config(protocol=np.str_("k-of-n"), workers=np.int64(4), k=np.int32(2), late="reuse",
                    lag_weights=(np.float64(0.5),), lr=np.float64(0.1), steps=np.int64(10),
                    eval_every=np.uint8(5), batch_size=np.int64(8), seed=np.int64(3), density=np.float64(0.5),
                    compressor="topk")
    assert cfg == py and hash(cfg) == hash(py)
    assert json.dumps(cfg.to_dict()) == json.dumps(py.to_dict())
    assert type(cfg.steps) is int and type(cfg.k) is int and type(cfg.lr) is float and type(cfg.protocol) is str
    assert sn.Config(staleness=staleness.Uniform(np.int64(4))) == sn.Config(staleness=staleness.Uniform(4))
    assert type(staleness.Geometric(np.float64(0.3), np.int64(5)).tau_max) is int
    assert timing.Timing(per_sample=np.float64(2e-4), bandwidth=np.inf) == timing.Timing(per_sample=2e-4,
                                                                                          bandwidth=math.inf)


@pytest.mark.parametrize(
    "make, exc, message",
    [
        (lambda: sn.Config(steps=True), TypeError, r"steps must be an integer >= 1, got True"),
        (lambda: sn.Config(lr="0.1"), TypeError, r"lr must be a finite number > 0, got '0.1'"),
        (lambda: sn.Config(download="yes"), TypeError, r"download must be True or False"),
        (lambda: staleness.Uniform(True), TypeError, r"tau_max must be an integer >= 0"),
        (lambda: staleness.Constant(2.0), TypeError, r"tau must be an integer >= 0"),
        (lambda: timing.Timing(slowdown=None), TypeError, r"timing.slowdown must be one of stalenb.timing.NoSlowdown"),
        (lambda: timing.Straggler(factor=0.5), ValueError, r"factor must be a finite number >= 1 \(a slowdown\)"),
    ],
)
def test_wrong_types_are_type_errors_naming_the_parameter(make, exc, message):
    with pytest.raises(exc, match=message):
        make()


def test_default_config_serialises_as_before():
    """The results cache keys on this JSON: a change here would orphan every cached run."""
    assert json.dumps(sn.Config().to_dict()) == DEFAULT_JSON


DEFAULT_JSON = (
    '{"protocol": "async", "workers": 1, "k": null, "late": "drop", "lag_weights": [1.0], "staleness": null, '
    '"timing": {"kind": "Timing", "per_sample": 0.0001, "slowdown": {"kind": "ShiftedExponential", "mean": 0.5}, '
    '"latency": 0.0001, "bandwidth": 1250000000.0}, "compressor": "none", "density": 1.0, "granularity": "model", '
    '"error_feedback": false, "rule": "sgd", "lr": 0.05, "momentum": 0.0, "dc_lambda": 0.04, "batch_size": 32, '
    '"steps": 100, "eval_every": 10, "eval_size": 1000, "train_size": null, "validation": 0, "model": "lenet", '
    '"seed": 0, "data_root": null, "download": true, "device": "cpu", "diverge_loss": 10000.0}'
)
