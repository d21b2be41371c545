"""Decision rules fixed before the runs (stalenb.decisions, issue 22): hand cases, textbook sample
sizes, and the properties the rules are for, checked by simulation."""

import math

import numpy as np
import pytest
from scipy import stats

from stalenb import decisions as dc


@pytest.mark.parametrize("low, high, answer", [
    (0.004, 0.021, "supports"),   # above 0, reaches past δ
    (-0.003, 0.006, "refutes"),   # whatever the gain, below δ = 0.01
    (0.002, 0.008, "refutes"),    # real but negligible: refutation first
    (-0.01, 0.03, "undecided"),
    (-math.inf, math.inf, "undecided"),
])
def test_improves_by_hand(low, high, answer):
    assert dc.improves(low, high, delta=0.01) == answer


@pytest.mark.parametrize("low, high, answer", [
    (-0.004, 0.006, "supports"), (0.011, 0.05, "refutes"), (-0.05, -0.01, "refutes"),
    (-0.002, 0.012, "undecided"), (math.nan, 0.0, "undecided"),
    (-math.inf, -0.02, "refutes"), (-math.inf, 0.0, "undecided"),
])
def test_equivalence_by_hand(low, high, answer):
    assert dc.equivalent(low, high, delta=0.01) == answer


def test_a_plus_five_point_gain_is_not_negligible():
    """The review's case: a non-inferiority reading called +5 points "negligible"; TOST refutes it."""
    assert dc.equivalent(0.03, 0.07, delta=0.01) == "refutes"


def test_holm_by_hand_and_its_bounds():
    np.testing.assert_allclose(dc.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(dc.holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(dc.holm([0.02]), [0.02])


def test_textbook_paired_sample_sizes():
    """Two-sided paired t, α = 0.05, power 0.8 (G*Power): d = 1 → 10, 0.5 → 34, 0.2 → 199 pairs."""
    assert [dc.seeds_for_power(sd=1.0, delta=d) for d in (1.0, 0.5, 0.2)] == [10, 34, 199]
    assert dc.power_paired(34, sd=1.0, delta=0.5) >= 0.8 > dc.power_paired(33, sd=1.0, delta=0.5)


def test_the_planned_seeds_refute_a_null_effect_as_often_as_promised():
    """With the true gain 0 and paired SD σ, n = seeds_for_power(σ, δ) seeds put the 95 % interval's
    upper end below δ (improves → refutes) in ≈ 80 % of experiments (4,000 simulated, SE 0.006)."""
    sd, delta = 0.018, 0.01
    n = dc.seeds_for_power(sd=sd, delta=delta)
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, sd, (4000, n))
    half = stats.t.ppf(0.975, n - 1) * x.std(1, ddof=1) / math.sqrt(n)
    answers = [dc.improves(m - h, m + h, delta=delta) for m, h in zip(x.mean(1), half)]
    share = np.mean([a == "refutes" for a in answers])
    assert 0.77 <= share <= 0.90, (n, share)  # ≥ 0.8 by construction (one-sided use of a two-sided n)
    assert np.mean([a == "supports" for a in answers]) < 0.035  # false "improves" ≈ 2.5 %


def test_the_planned_seeds_support_equivalence_as_often_as_promised():
    """True difference 0: n = seeds_for_equivalence(σ, δ) seeds put the 90 % interval inside (−δ, δ)
    in ≈ 80 % of 4,000 simulated experiments; n − 2 seeds fall short (the exact power is monotone)."""
    sd, delta = 0.018, 0.01
    n = dc.seeds_for_equivalence(sd=sd, delta=delta)
    assert n > dc.seeds_for_power(sd=sd, delta=delta)
    assert dc.power_equivalence(n, sd=sd, delta=delta) >= 0.8 > dc.power_equivalence(n - 1, sd=sd, delta=delta)
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, sd, (4000, n))
    half = stats.t.ppf(0.95, n - 1) * x.std(1, ddof=1) / math.sqrt(n)
    share = np.mean([dc.equivalent(m - h, m + h, delta=delta) == "supports" for m, h in zip(x.mean(1), half)])
    assert 0.77 <= share <= 0.84, (n, share)


def test_validity_gate():
    assert dc.valid_arm([0.91, 0.93], [False, False], sanity=0.2)
    assert not dc.valid_arm([0.91, 0.93], [False, True], sanity=0.2)
    assert not dc.valid_arm([0.91, 0.11], [False, False], sanity=0.2)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="delta"):
        dc.improves(0, 1, delta=0)
    with pytest.raises(ValueError, match="low <= high"):
        dc.equivalent(0.2, 0.1, delta=0.1)
    with pytest.raises(ValueError, match="sd"):
        dc.seeds_for_power(sd=-1.0, delta=0.1)
    with pytest.raises(ValueError, match="pvalues"):
        dc.holm([0.2, 1.5])
    with pytest.raises(ValueError, match="one final accuracy"):
        dc.valid_arm([0.9], [False, False], sanity=0.2)
