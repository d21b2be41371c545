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


# -- the group-sequential design (issue 22, item 2) -------------------------------------------------

@pytest.mark.parametrize("fractions, alpha, c", [
    ((0.5, 1.0), 0.05, 2.178), ((0.5, 1.0), 0.10, 1.875), ((1 / 3, 2 / 3, 1.0), 0.05, 2.289),
])
def test_pocock_constants_from_the_textbook(fractions, alpha, c):
    """Jennison & Turnbull (2000), Table 2.1: Pocock's C_P(K, α) for equally spaced looks."""
    level = dc.pocock_level(fractions, alpha)
    assert stats.norm.isf(level / 2) == pytest.approx(c, abs=0.003)


def test_pocock_one_look_is_the_plain_level_and_bad_looks_raise():
    assert dc.pocock_level((1.0,), 0.05) == 0.05
    for bad in [(0.5,), (0.6, 0.5, 1.0), (0.0, 1.0)]:
        with pytest.raises(ValueError, match="fractions"):
            dc.pocock_level(bad)


def test_looks_keep_the_error_over_both_looks():
    """Under a true effect of 0, "supports" (lower end above 0 at either look, stopping at the first)
    happens at most α/2 of the time; 95 % intervals at both looks would give about 0.04 instead."""
    rng = np.random.default_rng(3)
    looks, reps = dc.Looks((10, 20)), 6000
    hits = 0
    for d in rng.normal(0.0, 0.02, size=(reps, 20)):
        first = looks.answer(d[:10], rule="improves", delta=0.01)
        r = first if first["final"] else looks.answer(d, rule="improves", delta=0.01)
        hits += r["answer"] == "supports"
    assert hits / reps < 0.025 + 4 * math.sqrt(0.025 * 0.975 / reps)


def test_looks_answer_fields_and_refusals():
    looks = dc.Looks((10, 20))
    d = np.full(10, 0.03) + np.linspace(-1e-3, 1e-3, 10)
    r = looks.answer(d, rule="improves", delta=0.01)
    assert (r["answer"], r["look"], r["final"], r["seeds"]) == ("supports", 1, True, 10) and "seeds_needed" not in r
    wide = np.tile([0.05, -0.05], 10)
    r2 = looks.answer(wide, rule="improves", delta=0.01)
    assert r2["answer"] == "undecided" and r2["final"] and r2["seeds_needed"] > 20
    assert not looks.answer(wide[:10], rule="improves", delta=0.01)["final"]
    with pytest.raises(ValueError, match="not a look"):
        looks.answer(d[:7], rule="improves", delta=0.01)
    with pytest.raises(ValueError, match="rule"):
        looks.coverage("negligible")


def test_holm_answers_of_one_is_its_own_answer_and_holm_is_stricter():
    rng = np.random.default_rng(0)
    looks = dc.Looks((10, 20))
    results = [looks.answer(rng.normal(m, 0.01, 10), rule="improves", delta=0.01)
               for m in rng.uniform(-0.01, 0.03, 40)]
    assert [dc.holm_answers([r])[0] for r in results] == [r["answer"] for r in results]
    family = dc.holm_answers(results)
    assert all(f == r["answer"] or f == "undecided" for f, r in zip(family, results))  # never a new decision
    # a hand case: two comparisons whose lower ends barely clear 0 alone; Holm over both keeps neither
    t = stats.t.isf(0.9 * looks.nominal("improves"), 9)
    edge = {"rule": "improves", "delta": 0.01, "seeds": 10, "sd": 1.0, "statistic": t / math.sqrt(10),
            "nominal": looks.nominal("improves"), "looks": looks, "answer": "supports"}
    assert dc.holm_answers([edge]) == ["supports"] and dc.holm_answers([edge, edge]) == ["undecided"] * 2


def test_noninferior_by_hand_and_in_looks():
    assert dc.noninferior(-0.009, 0.02, delta=0.01) == "supports"
    assert dc.noninferior(-0.03, -0.011, delta=0.01) == "refutes"
    assert dc.noninferior(-0.02, 0.0, delta=0.01) == "undecided"
    looks = dc.Looks((10, 20))
    assert looks.coverage("noninferior") == looks.coverage("improves")
    r = looks.answer(np.linspace(-0.004, 0.004, 10), rule="noninferior", delta=0.01)
    assert r["answer"] == "supports" and r["final"]


def test_every_level_by_hand():
    looks = dc.Looks((10, 20))
    up = looks.answer(0.03 + np.linspace(-1e-3, 1e-3, 10), rule="improves", delta=0.01)
    flat = looks.answer(np.linspace(-1e-3, 1e-3, 10), rule="improves", delta=0.01)
    both = dc.every_level([up, flat])
    assert both["answer"] == "refutes" and both["ci_low"] == flat["ci_low"] and both["ci_high"] < 0.01
    assert dc.every_level([up, up])["answer"] == "supports"
    # Holm's first step: the upper end at the one-sided level nominal/m lies above the per-level one
    assert dc.every_level([flat, flat])["ci_high"] > flat["ci_high"]


@pytest.mark.parametrize("mean, rule, distance", [
    (0.004, "improves", 0.006),    # in (0, δ): refuting (high < δ) needs the interval to shrink below 0.006
    (0.007, "improves", 0.007),    # supporting (low > 0) comes first
    (-0.02, "improves", 0.03),     # a loss: only refuting, 0.03 below δ
    (0.015, "improves", 0.015),    # past δ: only supporting
    (-0.004, "noninferior", 0.006), (-0.013, "noninferior", 0.003),
    (0.0128, "equivalent", 0.0028), (-0.002, "equivalent", 0.008),
])
def test_distance_to_decision_by_hand(mean, rule, distance):
    assert dc.distance_to_decision(mean, rule=rule, delta=0.01) == pytest.approx(distance)


def test_seeds_to_decide_grow_as_the_centre_nears_a_boundary():
    near = dc.seeds_to_decide(0.0128, 0.0144, rule="equivalent", delta=0.01)
    far = dc.seeds_to_decide(0.002, 0.0144, rule="equivalent", delta=0.01)
    assert near > 100 > far  # the observed case of 05: a gain just past δ is far from decided
    assert dc.seeds_to_decide(0.01, 0.01, rule="equivalent", delta=0.01) is None


def test_half_widths_are_the_intervals_answer_draws():
    """The half-width the design promises before the runs is that of the interval ``answer`` gives
    (through ``stats.ci95``) for differences of that SD, at every look and at a Holm level."""
    looks = dc.Looks((10, 20))
    rng = np.random.default_rng(5)
    for n in looks.seeds:
        d = rng.normal(size=n)
        d = 0.3 + (d - d.mean()) / d.std(ddof=1) * 0.012  # sample SD exactly 0.012
        r = looks.answer(d, rule="improves", delta=0.01)
        assert r["ci_high"] - r["statistic"] == pytest.approx(looks.half_widths(0.012)[looks.seeds.index(n)], rel=1e-9)
    wide, narrow = looks.half_widths(0.01, alpha=0.05 / 9), looks.half_widths(0.01)
    assert all(w > m for w, m in zip(wide, narrow)) and narrow[1] < narrow[0]
