"""The published ps_pytorch points against the source's own printed time sums, and the shape metrics."""

import numpy as np
import pandas as pd
import pytest

from stalenb import speedup, timing


@pytest.mark.parametrize("policy,sums", [(speedup.WAIT_ALL, timing.SOURCE_TIME_COSTS),
                                         (speedup.IDEAL, timing.SOURCE_IDEAL_TIME_COSTS)])
def test_published_lenet_points_are_the_ratios_of_the_printed_time_sums(policy, sums):
    """Two independent transcriptions of the source: its speedup list and its time sums (T(1)/T(n))."""
    pub = speedup.PUBLISHED.query("model == 'LeNet/MNIST' and policy == @policy").set_index("workers").speedup
    ratios = np.round(sums[0] / np.asarray(sums), 2)
    assert np.allclose(pub.to_numpy(), ratios, atol=0.005)


def test_published_sources_cite_file_and_commit():
    for (repo, commit, path, cell) in speedup.PUBLISHED_SOURCES.values():
        assert repo == "hwang595/ps_pytorch" and len(commit) == 40 and int(commit, 16) >= 0
        assert path.startswith("analysis/") and path.endswith(".ipynb") and "cell" in cell
    assert set(speedup.PUBLISHED.policy) == {speedup.WAIT_ALL, speedup.IDEAL}
    assert (speedup.PUBLISHED.query("model == 'ResNet-18/CIFAR-10'").note.str.contains("synthetic")).all()


def test_shape_metrics_by_hand():
    # the published LeNet curves: peak at 16, S(32)/S(16) = 5.50 / 9.80, gaps 2.21/2.08 − 1 and 6.99/5.50 − 1
    pub = speedup.PUBLISHED.query("model == 'LeNet/MNIST'").pivot(index="workers", columns="policy", values="speedup")
    m = speedup.shape(pub[speedup.WAIT_ALL], pub[speedup.IDEAL])
    assert m["n_peak"] == 16
    assert m["ratio_32_16"] == pytest.approx(5.50 / 9.80)
    assert m["gap_growth"] == pytest.approx(6.99 / 5.50 - 2.21 / 2.08)
    flat = speedup.shape(pd.Series({2: 2.0, 16: 3.0, 32: 4.0}), pd.Series({2: 3.0, 16: 4.5, 32: 6.0}))
    assert (flat["n_peak"], flat["gap_growth"]) == (32, 0.0)
