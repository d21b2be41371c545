"""Every bad input of docs/design.md §S6 raises a clear error naming the parameter and what is allowed."""

import math

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
        (lambda: timing.Timing(bandwidth=0), r"timing.bandwidth must be > 0"),
        (lambda: timing.Timing(per_sample=-1.0), r"timing.per_sample must be a finite number >= 0"),
    ],
)
def test_bad_models_name_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_replace_rejects_unknown_field_and_revalidates():
    c = sn.Config()
    with pytest.raises(ValueError, match="unknown Config field"):
        c.replace(learning_rate=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        c.replace(lr=-0.1)
    assert c.replace(lr=0.2).lr == 0.2


def test_config_is_frozen_hashable_and_serialisable():
    c = sn.Config(protocol="async", staleness=sn.Uniform(8))
    assert hash(c) == hash(sn.Config(protocol="async", staleness=sn.Uniform(8)))
    with pytest.raises(Exception):
        c.lr = 1.0  # frozen
    d = c.to_dict()
    assert d["staleness"] == {"kind": "Uniform", "tau_max": 8}
    assert d["timing"]["slowdown"]["kind"] == "ShiftedExponential"


def test_derived_quantities():
    c = sn.Config(protocol="k-of-n", workers=8, k=2, batch_size=256, lag_weights=(0.5, 0.25))
    assert c.k_eff == 2 and c.push_batch == 32
    assert [c.lag_weight(j) for j in range(4)] == [1.0, 0.5, 0.25, 0.25]
    assert sn.Config(protocol="sync", workers=4, batch_size=64).k_eff == 4
    assert sn.Config(protocol="async", workers=4, batch_size=64).push_batch == 64
