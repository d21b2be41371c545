"""The wall-clock model: FIFO link arithmetic, slowdown laws, calibration."""

import math

import numpy as np
import pytest

from stalenb import models, timing


def test_link_is_fifo_with_bandwidth_and_latency():
    link = timing.Link(timing.Timing(latency=0.5, bandwidth=100.0))
    # 100 bytes take 1 s on the link, then 0.5 s latency
    assert link.send(0.0, 100) == pytest.approx(1.5)
    # a second message ready at t=0.2 waits for the link (free at 1.0)
    assert link.send(0.2, 100) == pytest.approx(2.5)
    # a message ready after the link is free starts at once
    assert link.send(10.0, 50) == pytest.approx(11.0)


def test_infinite_bandwidth_is_free():
    link = timing.Link(timing.Timing(latency=0.0, bandwidth=math.inf))
    assert link.send(3.0, 10**9) == 3.0


@pytest.mark.parametrize(
    "law, mean",
    [(timing.NoSlowdown(), 1.0), (timing.ShiftedExponential(0.5), 1.5),
     (timing.Straggler(0.1, 5.0), 1.4), (timing.LogNormal(0.3), math.exp(0.045))],
)
def test_slowdown_laws_have_their_means(law, mean):
    draws = law.sample(np.random.default_rng(0), 200_000)
    assert draws.min() > 0
    assert draws.mean() == pytest.approx(mean, rel=0.02)


def test_common_random_numbers_do_not_depend_on_access_order():
    a = timing.Slowdowns(timing.ShiftedExponential(1.0), 4, np.random.default_rng(3))
    b = timing.Slowdowns(timing.ShiftedExponential(1.0), 4, np.random.default_rng(3))
    forward = [a(w, j) for j in range(5) for w in range(4)]
    backward = [b(w, j) for j in reversed(range(5)) for w in reversed(range(4))]
    assert forward == list(reversed(backward))


def test_calibrate_measures_a_positive_per_sample_cost():
    per_sample = timing.calibrate(models.lenet(), batch_size=16, repeats=2)
    assert 0 < per_sample < 1.0


def test_flops_per_sample_recounted():
    """The documented FLOPs equal a fresh count with torch's FlopCounterMode (batch 64)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    for name, documented in timing.FLOPS_PER_SAMPLE.items():
        net = models.build(name)
        x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
        with FlopCounterMode(display=False) as fc:
            torch.nn.functional.cross_entropy(net(x), y).backward()
        assert fc.get_total_flops() / 64 == pytest.approx(documented, rel=1e-9), name


def test_cluster_per_sample_is_derived_from_the_source_run():
    # 339.826 s for 100 steps of 8192 samples on one worker: 0.41483 ms per LeNet sample
    assert timing.cluster("lenet").per_sample == pytest.approx(339.826 / 819_200, rel=1e-12)
    # the other models cost their FLOPs at the same rate (~31.8 GFLOP/s)
    assert timing.SOURCE_FLOP_RATE == pytest.approx(31.78e9, rel=1e-3)
    ratio = timing.cluster("mlp").per_sample / timing.cluster("lenet").per_sample
    assert ratio == pytest.approx(4_938_800 / 13_182_000)
    # the 2-worker ratio 163.5474 / 153.7221 = 1.0639 gives 1 + Exp(0.066)
    assert timing.CLUSTER_SLOWDOWN.mean == pytest.approx(0.0660, abs=1e-4)
    m = timing.CLUSTER_SLOWDOWN.mean
    assert (1 + 1.5 * m) / (1 + 0.5 * m) == pytest.approx(163.5474 / 153.7221, rel=1e-3)


def test_cluster_options():
    t = timing.cluster("lenet5", bandwidth=1.25e9, latency=0.0, slowdown=timing.NoSlowdown(), per_sample=2e-4)
    assert (t.per_sample, t.bandwidth, t.latency) == (2e-4, 1.25e9, 0.0)
    assert isinstance(t.slowdown, timing.NoSlowdown)
    local = timing.cluster("lenet5", per_sample="local")
    assert 0 < local.per_sample < 0.1  # measured here: positive, far below 100 ms per sample
    with pytest.raises(ValueError, match="model"):
        timing.cluster("resnet")
    with pytest.raises(ValueError, match="per_sample"):
        timing.cluster("lenet", per_sample="fast")
