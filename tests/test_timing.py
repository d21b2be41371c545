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
