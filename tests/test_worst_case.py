"""Tests of stalenb.worst_case: hand-built matrices, JSRs known in closed form, an independent replay."""

import math

import numpy as np
import pytest

from stalenb import worst_case as wc


def _scalar_delayed_gd(steps_hb, e0, T):
    """Delayed GD on the error written out by hand: step t uses (h_t, β(t)) = steps_hb[t % L];
    e_{t+1} = e_t − Σ_j β_j(t)·h_{t−j}·e_{t−j} (terms with t − j < 0 absent)."""
    e, h = [float(e0)], []
    for t in range(T):
        h_t, beta = steps_hb[t % len(steps_hb)]
        h.append(h_t)
        e.append(e[t] - sum(beta[j] * h[t - j] * e[t - j] for j in range(len(beta)) if t - j >= 0))
    return np.array(e)


def test_companion_by_hand():
    M = wc.companion(2.0, [0.5, 0.1, 0.2])
    assert M.tolist() == [[0.0, -0.1, -0.2], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert wc.companion(1.0, [0.25]).tolist() == [[0.75]]
    with pytest.raises(ValueError):
        wc.companion(1.0, [0.5, -0.1])


def test_vertex_set_is_the_hull_of_every_split():
    a, b, W, s = 0.5, 2.0, 4, 1.5
    mats, labels = wc.vertex_set(a, b, W, s)
    S = s * a / (2 * b) / b
    assert len(mats) == 2 * W                                   # h in {a, b} x (no stale, lag 1, 2, 3)
    assert {h for h, _ in labels} == {a, b}
    for h, beta in labels:
        assert beta[0] == 1 / b and sum(beta[1:]) in (0.0, pytest.approx(S))
    rng = np.random.default_rng(0)
    h = rng.uniform(a, b)
    split = rng.dirichlet(np.ones(W - 1)) * S * rng.uniform()  # any split of a total <= S
    M = wc.companion(h, (1 / b, *split))
    # M is the convex combination with weights (h-part) x (split-part) of the vertices
    lam_h = (h - a) / (b - a)
    weights_split = np.concatenate([[1 - split.sum() / S], split / S])
    combo = sum((lam_h if hv == b else 1 - lam_h) * weights_split[i % W] * mats[i]
                for i, (hv, _) in enumerate(labels))
    np.testing.assert_allclose(M, combo, atol=1e-14)


def test_window_one_jsr_is_max_abs_one_minus_h_over_b():
    a, b = 0.5, 2.0
    mats = np.stack([wc.companion(h, [1 / b]) for h in (a, b)])   # 1 x 1: [1 - h/b]
    lower, upper, word = wc.jsr_bounds(mats)
    assert lower == pytest.approx(1 - a / b) and word == (0,)     # max(|1 - 0.25|, |1 - 1|) = 0.75
    assert 1 - a / b <= upper <= (1 - a / b) * (1 + 1e-3) + 1e-12


def test_single_matrix_jsr_is_its_spectral_radius():
    A = np.array([[[0.5, 4.0], [0.0, 0.3]]])                   # non-normal: ‖A‖₂ ≈ 4.1, ρ = 0.5
    lower, upper, _ = wc.jsr_bounds(A)
    assert lower == pytest.approx(0.5)
    assert 0.5 <= upper <= 0.5 * (1 + 1e-3)


def test_commuting_set_jsr_is_the_largest_radius():
    mats = np.array([np.diag([0.9, 0.2]), np.diag([-0.3, 0.95])])
    lower, upper, _ = wc.jsr_bounds(mats)
    assert lower == pytest.approx(0.95)
    assert 0.95 <= upper <= 0.95 * (1 + 1e-3)


def test_golden_ratio_pair():
    """JSR{[[1,1],[0,1]], [[1,0],[1,1]]} = (1 + √5)/2, attained by the product of the two (Jungers 2009)."""
    mats = np.array([[[1.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]]])
    phi = (1 + math.sqrt(5)) / 2
    lower, upper, word = wc.jsr_bounds(mats, rel_tol=1e-2)
    assert lower == pytest.approx(phi) and sorted(word) == [0, 1]
    assert phi <= upper <= phi * 1.02


@pytest.mark.parametrize("seed", range(4))
def test_bounds_are_ordered_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    mats = rng.standard_normal((3, 3, 3)) / 2
    lower, upper, word = wc.jsr_bounds(mats, rel_tol=5e-2, max_nodes=20_000)
    radii = [max(abs(np.linalg.eigvals(A))) for A in mats]
    norms = [np.linalg.norm(A, 2) for A in mats]
    assert max(radii) <= lower * (1 + 1e-12)                     # a single matrix is a product
    assert lower <= upper <= max(norms) * (1 + 1e-6)             # the spectral norm is a valid norm
    P = np.eye(3)
    for i in word:
        P = mats[i] @ P
    assert max(abs(np.linalg.eigvals(P))) ** (1 / len(word)) == pytest.approx(lower)


def test_certify_proves_theorem_one_at_the_allowance_and_the_derived_factor_two():
    # the proof: the window maximum contracts at s = 1; a weighted max-norm gives every s < 2 (module docstring)
    for a, b, W in [(0.5, 2.0, 2), (1.0, 8.0, 4), (0.3, 0.6, 8)]:
        for s in (1.0, 1.9):
            cert = wc.certify(wc.vertex_set(a, b, W, s)[0], 1.0, max_nodes=20_000)
            assert cert is not None and cert["bound"] < 1, (a, b, W, s)


def test_oldest_lag_and_window_two_diverge_at_two_b_over_a():
    # all stale weight on one lag j with h ≡ b: e_{t+1} = −S·b·e_{t−j}, divergent iff s > 2b/a
    for W, split in [(2, "lags"), (4, "oldest"), (8, "oldest")]:
        r = wc.worst_boundary(1.0, 4.0, W, split, certify_lower=False)
        assert 8.0 < r["s_hi"] <= 8.0 * (1 + 2e-3) * (1 + 1e-9), (W, split, r["s_hi"])


def test_worst_boundary_bracket_and_witness_diverges_in_a_scalar_replay():
    a, b, W = 1.0, 4.0, 4
    r = wc.worst_boundary(a, b, W, "lags", max_nodes=50_000)
    assert 1.0 < r["s_lo"] <= r["s_hi"]                          # Theorem 1 (proven) and the bracket
    assert r["s_lo"] <= wc.worst_boundary(a, b, W, "even", certify_lower=False)["s_hi"]
    # the witness at 1.2·s_hi, replayed as plain delayed GD with a piecewise-constant curvature
    _, labels = wc.vertex_set(a, b, W, 1.2 * r["s_hi"])
    steps_hb = [labels[i] for i in r["word"]]
    e = _scalar_delayed_gd(steps_hb, 1.0, 400 * len(steps_hb))
    assert all(h in (a, b) for h, _ in steps_hb)
    assert np.abs(e[-len(steps_hb):]).max() > 1e3                 # |e_t| grows: a divergent sequence
    # the same with the module's replay and with the matrices (state (e_0, 0, …, 0))
    np.testing.assert_allclose(wc.replay(labels, r["word"], 400), e, rtol=1e-9)
    mats = wc.vertex_set(a, b, W, 1.2 * r["s_hi"])[0]
    x = np.eye(W)[0]
    for t in range(20 * len(r["word"])):
        x = mats[r["word"][t % len(r["word"])]] @ x
        assert x[0] == pytest.approx(e[t + 1], rel=1e-9, abs=1e-12)


def test_random_admissible_sequences_converge_below_the_certified_bound():
    # below s_lo every curvature sequence in [a, b] and every split of a total ≤ S converge (hull argument)
    a, b, W = 0.5, 2.0, 4
    r = wc.worst_boundary(a, b, W, "lags", max_nodes=50_000)
    s = r["s_lo"] / 2
    S = s * a / (2 * b) / b
    rng = np.random.default_rng(1)
    for _ in range(20):
        hb = [(rng.uniform(a, b), (1 / b, *(rng.dirichlet(np.ones(W - 1)) * S * rng.uniform())))
              for _ in range(3000)]
        e = _scalar_delayed_gd(hb, 1.0, len(hb))
        assert abs(e[-1]) < 1e-6


def test_describe_and_bad_arguments():
    _, labels = wc.vertex_set(1.0, 2.0, 3, 1.0)
    assert wc.describe(labels, (1, 2, 3)) == "a1 a2 b0"
    with pytest.raises(ValueError, match="window"):
        wc.vertex_set(1.0, 2.0, 1, 1.0)
    with pytest.raises(ValueError, match="a must satisfy"):
        wc.vertex_set(2.0, 1.0, 2, 1.0)
    with pytest.raises(ValueError, match="split"):
        wc.stale_weights(1.0, 2.0, 3, 1.0, split="odd")
