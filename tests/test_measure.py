"""Measured vs simulated staleness (stalenb.distributed.measure.staleness_gap), on hand-made records."""

import pandas as pd
import pytest

import stalenb as sn
import stalenb.distributed as sd


def _run(staleness, per_step=2, applied=None):
    steps = [1 + i // per_step for i in range(len(staleness))]
    upd = pd.DataFrame({"step": steps, "staleness": staleness,
                        "applied": [True] * len(staleness) if applied is None else applied})
    return sn.Run(sn.Config(), pd.DataFrame(), upd)


def test_identical_records_have_no_gap():
    r = _run([0, 1, 2, 1, 0, 3, 1, 1])
    gap = sd.staleness_gap(r, r, block=1)
    assert gap["diff"] == gap["tv"] == 0.0
    assert gap["abs_diff_ci"][0] >= 0.0 and gap["tv_ci"][0] >= 0.0


def test_hand_computed_means_and_total_variation():
    real = _run([0, 0, 1, 1, 5], applied=[True, True, True, True, False])  # the dropped one is ignored
    sim = _run([0, 1, 1, 1])
    gap = sd.staleness_gap(real, sim, block=1)
    assert gap["mean_measured"] == pytest.approx(0.5) and gap["mean_simulated"] == pytest.approx(0.75)
    assert gap["diff"] == pytest.approx(-0.25) and gap["abs_diff"] == pytest.approx(0.25)
    assert gap["tv"] == pytest.approx(0.25)  # ½(|0.5 − 0.25| + |0.5 − 0.75|)
    assert gap["gradients"] == (4, 4) and gap["blocks"] == (2, 2)


def test_disjoint_constant_records_give_degenerate_intervals():
    gap = sd.staleness_gap(_run([2] * 40), _run([0] * 40), block=3, resamples=200)
    assert gap["abs_diff_ci"] == pytest.approx((2.0, 2.0)) and gap["tv_ci"] == pytest.approx((1.0, 1.0))


def test_the_interval_of_the_gap_always_contains_it_even_when_the_means_are_close():
    """The case that failed make reproduce: equal means, where every resample's |difference| exceeds
    the observed one — a percentile interval of |·| then misses the estimate; this one cannot."""
    import numpy as np

    rng = np.random.default_rng(1)
    same = list(rng.integers(0, 4, 400))
    close = sd.staleness_gap(_run(same), _run(list(rng.permutation(same))), block=5, seed=3)
    assert close["abs_diff"] == pytest.approx(0.0, abs=1e-12)
    assert close["abs_diff_ci"][0] == 0.0 <= close["abs_diff"] <= close["abs_diff_ci"][1]
    real, sim = _run(list(rng.integers(0, 4, 400))), _run(list(rng.integers(0, 3, 400)))
    fine = sd.staleness_gap(real, sim, block=1, seed=2)
    coarse = sd.staleness_gap(real, sim, block=40, seed=2)
    for gap in (fine, coarse):
        assert gap["diff_ci"][0] <= gap["diff"] <= gap["diff_ci"][1]
        assert gap["abs_diff_ci"][0] <= gap["abs_diff"] <= gap["abs_diff_ci"][1]
    assert fine["abs_diff"] == pytest.approx(0.5, abs=0.15)  # means 1.5 vs 1.0
    assert coarse["abs_diff_ci"][1] > coarse["abs_diff_ci"][0]  # random records: a real interval


def test_abs_interval_by_hand():
    from stalenb.distributed.measure import abs_interval

    assert abs_interval(-0.2, 0.5) == (0.0, 0.5) and abs_interval(0.1, 0.3) == (0.1, 0.3)
    assert abs_interval(-0.5, -0.2) == (0.2, 0.5) and abs_interval(0.0, 0.0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="low <= high"):
        abs_interval(1.0, 0.0)
