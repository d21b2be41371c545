"""The synthetic delay models draw what they claim."""

import numpy as np
import pytest

from stalenb import staleness


@pytest.mark.parametrize("model", [staleness.Constant(3), staleness.Uniform(8), staleness.Geometric(0.3, 10)])
def test_draws_follow_pmf(model):
    rng = np.random.default_rng(0)
    draws = np.array([model.sample(rng) for _ in range(20000)])
    assert draws.min() >= 0 and draws.max() <= model.tau_max
    freq = np.bincount(draws, minlength=model.tau_max + 1) / len(draws)
    assert np.abs(freq - model.pmf()).max() < 0.02
    assert np.isclose(model.pmf().sum(), 1.0)


def test_geometric_is_truncated_and_decreasing():
    p = staleness.Geometric(0.5, 4).pmf()
    assert np.all(np.diff(p) < 0)
    assert np.isclose(p[1] / p[0], 0.5)
