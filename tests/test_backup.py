"""Notebook 06's protocol (``stalenb.backup``): the backup-worker arms, runs cut at a simulated-time
horizon, the gradient mass of a reuse update, the lr search and evaluation runs, values at fixed
times and censored time-to-accuracy (hand-computed cases)."""

import math

import numpy as np
import pandas as pd
import pytest

import stalenb as sn
from stalenb import backup
from stalenb import decisions as dc

# Identical workers, free communication: every job of b samples takes b · 1 ms, all workers in step.
EVEN = sn.Timing(per_sample=1e-3, slowdown=sn.timing.NoSlowdown(), latency=0.0, bandwidth=math.inf)
SYNC = sn.Config(protocol="sync", workers=4, batch_size=256, timing=EVEN)  # rounds of 64 samples: 0.064 s each


def test_stale_weight_bounds_the_late_mass():
    assert backup.stale_weight(0.5, 8, 2) == pytest.approx(0.5 * 2 / 6)
    assert backup.stale_weight(3.0, 8, 2) == pytest.approx(1.0)  # c = 3 at k = n/4: a late gradient weighs 1
    with pytest.raises(ValueError, match="workers > k"):
        backup.stale_weight(0.5, 4, 4)
    with pytest.raises(ValueError, match="stale_mass"):
        backup.stale_weight(-1.0, 8, 2)


def test_backup_arms_grid():
    arms = backup.backup_arms(sn.Config(batch_size=256), [(4, 1), (4, 2), (16, 4)], stale_mass=0.5)
    assert sorted(arms) == sorted(["sync n=4", "async n=4", "drop n=4 k=1", "reuse n=4 k=1", "drop n=4 k=2",
                                   "reuse n=4 k=2", "sync n=16", "async n=16", "drop n=16 k=4", "reuse n=16 k=4"])
    lab, cfg = arms["reuse n=16 k=4"]
    assert (lab["family"], lab["n"], lab["k"], lab["c"]) == ("reuse", 16, 4, 0.5)
    assert (cfg.protocol, cfg.late, cfg.k, cfg.workers) == ("k-of-n", "reuse", 4, 16)
    assert cfg.lag_weights == (pytest.approx(0.5 * 4 / 12),)  # late total at most c times the fresh ones
    lab, cfg = arms["async n=16"]
    assert (cfg.protocol, cfg.batch_size, lab["k"]) == ("async", 16, 1) and math.isnan(lab["c"])
    assert arms["sync n=4"][1].k_eff == 4 and arms["drop n=4 k=1"][1].late == "drop"
    assert all(name == backup.arm_name(lab["family"], lab["n"], lab["k"]) for name, (lab, _) in arms.items())
    with pytest.raises(ValueError, match="1 <= k < n"):
        backup.backup_arms(sn.Config(batch_size=256), [(4, 4)])
    with pytest.raises(ValueError, match="family"):
        backup.arm_name("wait", 4, 2)


def test_base_config_puts_the_stragglers_and_the_link_on_the_cluster():
    cfg = backup.base_config("mlp", batch_size=256, validation=1000, eval_size=None, bandwidth=1.25e9, latency=1e-4,
                             per_sample="source", straggler_p=0.1, straggler_factor=5.0)
    assert (cfg.model, cfg.batch_size, cfg.validation, cfg.eval_size) == ("mlp", 256, 1000, None)
    assert cfg.timing.slowdown == sn.timing.Straggler(0.1, 5.0)
    assert (cfg.timing.bandwidth, cfg.timing.latency) == (1.25e9, 1e-4)
    assert cfg.timing.per_sample == sn.timing.PER_SAMPLE["mlp"]


def test_schedule_until_times_and_reuse_mass_by_hand():
    s = backup.schedule_until(SYNC, dim=10, horizon=0.2)
    assert s.step.tolist() == [0, 1, 2] and s.time.tolist() == pytest.approx([0.064, 0.128, 0.192])
    assert s.mass.tolist() == [1.0, 1.0, 1.0]
    # reuse, k = 2 of 4 in lockstep: workers 2 and 3 always finish just after the round closed, so from
    # update 1 on each update applies 2 fresh gradients and 2 late ones of lag 1 (weight 0.5 each):
    # mass (2 + 2 · 0.5) / 2 = 1.5; update 0 has no late gradient yet.
    reuse = SYNC.replace(protocol="k-of-n", k=2, late="reuse", lag_weights=(0.5,))
    s = backup.schedule_until(reuse, dim=10, horizon=0.2)
    assert s.time.tolist() == pytest.approx([0.064, 0.128, 0.192]) and s.mass.tolist() == [1.0, 1.5, 1.5]
    drop = reuse.replace(late="drop")
    assert backup.schedule_until(drop, dim=10, horizon=0.2).mass.tolist() == [1.0, 1.0, 1.0]
    assert backup.mean_mass(reuse, [0, 1], dim=10, horizon=0.2) == pytest.approx(4 / 3)  # (1 + 1.5 + 1.5) / 3
    assert backup.mean_mass(drop, [0], dim=10, horizon=0.2) == 1.0


def test_at_horizon_cuts_at_the_last_update_before_the_horizon():
    cfg = backup.at_horizon(SYNC, 10, 0.2, evals=2)
    assert (cfg.steps, cfg.eval_every) == (3, 2)  # updates at 0.064, 0.128, 0.192 s; evaluate at 2 and at the end
    assert backup.at_horizon(cfg, 10, 0.01, evals=4).steps == 1  # at least one update


def test_horizon_by_hand_and_against_the_runs_it_stands_for():
    # 1.5 epochs of 512 digits at B = 256: ⌈3⌉ = 3 sync rounds of 0.064 s, whatever the seed
    assert backup.horizon(SYNC, 4, 1.5, 512, [0, 1], dim=10) == pytest.approx(3 * 0.064)
    assert backup.horizon(SYNC, 8, 1.5, 512, [0], dim=10) == pytest.approx(3 * 0.032)  # B/n = 32 samples per job
    # with stragglers the horizon is the mean over the seeds of the time a real sync run ends at
    base = backup.base_config("mlp", batch_size=64, validation=64, eval_size=64, bandwidth=1e9, latency=1e-4,
                              per_sample=1e-3, straggler_p=0.5, straggler_factor=5.0).replace(train_size=256)
    dim = sum(p.numel() for p in sn.models.build("mlp").parameters())
    T = backup.horizon(base, 4, 1.0, 192, [0, 1, 2], dim)
    ends = [sn.run(base.replace(protocol="sync", workers=4, steps=3, eval_every=3, seed=s), progress=False,
                   cache=False).history.sim_time.iloc[-1] for s in (0, 1, 2)]
    assert T == pytest.approx(np.mean(ends)) and len(set(ends)) > 1  # the seeds' straggler draws differ


def test_specs_at_horizon_one_spec_per_seed_cut_at_the_horizon():
    specs = backup.specs_at_horizon({"arm": "sync n=4"}, SYNC.replace(lr=0.3), [3, 5], dim=10, horizon=0.2, evals=2)
    assert [lab for lab, _ in specs] == [{"arm": "sync n=4", "seed": 3}, {"arm": "sync n=4", "seed": 5}]
    assert [(c.seed, c.steps, c.eval_every, c.lr) for _, c in specs] == [(3, 3, 2, 0.3), (5, 3, 2, 0.3)]


def test_tune_arms_cuts_at_the_fraction_and_centres_each_grid_for_its_mass():
    arms = backup.backup_arms(SYNC, [(4, 2)], stale_mass=1.0, asynchronous=False)  # reuse lag weight 1.0
    cfgs, grids, masses = backup.tune_arms(arms, 10, {4: 0.4}, seed=100, fraction=0.5, lr_center=0.1, lr_span=4.0,
                                           lr_points=1)
    assert set(cfgs) == set(grids) == set(masses) == set(arms)
    for arm, cfg in cfgs.items():  # 3 updates by 0.2 s = 0.5 · 0.4 s; one evaluation, at the end
        assert (cfg.seed, cfg.steps, cfg.eval_every) == (100, 3, 3), arm
    assert masses["sync n=4"] == masses["drop n=4 k=2"] == 1.0
    assert masses["reuse n=4 k=2"] == pytest.approx((1 + 2 + 2) / 3)  # (2 fresh + 2 late of weight 1) / 2
    assert grids["sync n=4"] == [0.025, 0.1, 0.4]
    assert grids["reuse n=4 k=2"] == pytest.approx([0.025 * 0.6, 0.1 * 0.6, 0.4 * 0.6], rel=1e-5)


def test_evaluation_specs_seeds_matched_arm_and_sweep():
    arms = backup.backup_arms(SYNC, [(4, 2)], stale_mass=0.5)
    lrs = {a: 0.1 for a in arms}
    specs, matched = backup.evaluation_specs(arms, lrs, {4: 0.2}, 10, seeds=[0, 1, 2], baseline_seeds=[0, 1],
                                             sweep_masses=[3.0], sweep_seeds=[0], evals=2)
    runs = pd.DataFrame([{**lab, "steps": c.steps, "lr": c.lr, "w": c.lag_weights} for lab, c in specs])
    per_arm = runs.groupby("arm").seed.apply(list).to_dict()
    assert per_arm == {"drop n=4 k=2": [0, 1, 2], "reuse n=4 k=2": [0, 1, 2], "sync n=4": [0, 1], "async n=4": [0, 1],
                       "matched n=4 k=2": [0, 1], "reuse n=4 k=2 c=3": [0]}
    assert (runs[runs.family != "async"].steps == 3).all()  # every run cut at the horizon: 3 rounds by 0.2 s
    assert (runs[runs.family == "async"].steps == 12).all()  # async: 4 gradients of 64 samples per 0.064 s
    assert matched == {"reuse n=4 k=2": pytest.approx(0.1 * 4 / 3)}  # lr × reuse's mean mass (1 + 1.5 + 1.5) / 3
    m = runs[runs.arm == "matched n=4 k=2"].iloc[0]
    assert (m.family, m.lr, m.k) == ("matched", pytest.approx(0.1 * 4 / 3), 2)
    sweep = runs[runs.arm == "reuse n=4 k=2 c=3"].iloc[0]
    assert (sweep.family, sweep.c, sweep.w) == ("reuse", 3.0, (pytest.approx(3.0),))  # w = c · k / (n − k)
    assert backup.is_main(runs, 0.5).tolist() == [arm != "reuse n=4 k=2 c=3" for arm in runs.arm]


def test_paired_matches_families_at_n_k_and_sync_at_every_k():
    rows = [{"n": 4, "k": k, "family": fam, "seed": s, "acc": v + 0.01 * s}
            for fam, k, v in (("reuse", 2, 0.9), ("drop", 2, 0.8), ("reuse", 1, 0.5), ("sync", 4, 0.7))
            for s in range(3)] + [{"n": 8, "k": 2, "family": "drop", "seed": 0, "acc": 0.0}]
    table = pd.DataFrame(rows)
    d = backup.paired(table, "reuse", "drop", 4, 2, "acc")
    assert (d["diff"], d["n"]) == (pytest.approx(0.1), 3)
    assert backup.paired(table, "reuse", "sync", 4, 1, "acc")["diff"] == pytest.approx(-0.2)


def test_confirm_tunes_and_runs_reuse_against_drop(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    base = backup.base_config("mlp", batch_size=64, validation=64, eval_size=64, bandwidth=1e9, latency=1e-4,
                              per_sample=1e-3, straggler_p=0.1, straggler_factor=5.0).replace(train_size=256)
    dim = sum(p.numel() for p in sn.models.build("mlp").parameters())
    T = backup.horizon(base, 4, 1.0, 128, [0, 1], dim)  # two sync rounds
    out = backup.confirm(base, (4, 2), dim, T, seeds=[0, 1], tune_seeds=[100], stale_mass=0.5, fraction=1.0,
                         lr_center=0.1, lr_span=2.0, lr_points=1, max_extend=0, desc="test")
    arms = {a: v for a, v in backup.backup_arms(base, [(4, 2)], 0.5).items() if v[0]["family"] in ("drop", "reuse")}
    _, grids, _ = backup.tune_arms(arms, dim, {4: T}, seed=100, fraction=1.0, lr_center=0.1, lr_span=2.0, lr_points=1)
    assert out["lr"]["drop"] in grids["drop n=4 k=2"] and out["lr"]["reuse"] in grids["reuse n=4 k=2"]
    fin = out["final"]
    assert sorted(fin.family.unique()) == ["drop", "reuse"] and len(fin) == 4 and (fin["at"] == T).all()
    assert out["diff"]["n"] == 2 and out["diff"]["a"] == "reuse" and np.isfinite(out["diff"]["diff"])


def _history(times, accs, diverged=None):
    return pd.DataFrame({"run": 0, "step": range(len(times)), "sim_time": times, "test_acc": accs,
                         "diverged": diverged or [False] * len(times)})


def test_value_at_last_evaluation_and_interpolated():
    h = _history([0.0, 1.0, 3.0], [0.1, 0.5, float("nan")], [False, False, True])  # diverged at 3 s
    last = backup.value_at(h, ["run"], [-1.0, 0.5, 2.9, 5.0])
    assert last.test_acc.tolist()[1:] == [0.1, 0.5, 0.0] and math.isnan(last.test_acc.iloc[0])
    lin = backup.value_at(h, ["run"], [0.5, 2.0], interpolate=True)
    assert lin.test_acc.tolist() == pytest.approx([0.3, 0.25])


def test_crossing_time_interpolates_and_censors():
    runs = pd.concat([_history([0.0, 2.0, 4.0], [0.1, 0.6, 0.95]).assign(n=4, run=0),
                      _history([0.0, 2.0, 4.0], [0.1, 0.6, 0.8]).assign(n=4, run=1),
                      _history([0.0, 2.0], [0.1, 0.97], [False, True]).assign(n=8, run=2)])
    out = backup.crossing_time(runs, ["n", "run"], 0.9, horizon={4: 4.5, 8: 6.0})
    assert out.sim_time.tolist() == pytest.approx([2.0 + 0.3 / 0.35 * 2.0, 4.5, 6.0])  # a diverged row never counts
    assert out.reached.tolist() == [True, False, False]
    assert math.isnan(backup.crossing_time(runs, ["n", "run"], 0.99).sim_time.iloc[0])
    assert backup.crossing_time(runs, ["n", "run"], 0.99, horizon=7.0).sim_time.tolist() == [7.0, 7.0, 7.0]


def test_tune_arms_passes_evaluations_and_config_changes():
    arms = backup.backup_arms(SYNC, [(4, 2)], stale_mass=1.0, asynchronous=False)
    cfgs, _, _ = backup.tune_arms(arms, 10, {4: 0.4}, seed=100, fraction=1.0, lr_center=0.1, lr_span=2.0,
                                  lr_points=2, evals=3, eval_size=7)
    for arm, cfg in cfgs.items():  # 6 updates by 0.4 s, evaluated every ⌈6 / 3⌉ = 2 updates, on 7 digits
        assert (cfg.steps, cfg.eval_every, cfg.eval_size) == (6, 2, 7), arm


def _runs(rows):
    return pd.DataFrame([{"n": n, "k": k, "family": f, "seed": s, "test_acc": a, "diverged": d, "reached": r}
                         for n, k, f, s, a, d, r in rows])


def test_run_table_endpoint_is_the_mean_of_the_last_three_evaluations():
    h = pd.concat([_history([0.0, 1.0, 2.0, 3.0], [0.1, 0.5, 0.7, 0.9]).assign(n=4, seed=0, bytes_sent=0, samples=0),
                   _history([0.0, 1.0, 2.0], [0.1, 0.95, 0.2]).assign(n=4, seed=1, bytes_sent=0, samples=0)])
    t = backup.run_table(h, ["n", "seed"], 0.9, {4: 3.5})
    assert t.test_acc.tolist() == pytest.approx([0.7, (0.1 + 0.95 + 0.2) / 3])
    assert t.reached.tolist() == [True, True] and t.sim_time.tolist() == pytest.approx([3.0, 1.0 - 0.05 / 0.85])
    assert t.log_tta.tolist() == pytest.approx(np.log(t.sim_time).tolist())


def test_pair_arms_pairs_on_seed_counts_divergence_and_gates():
    rows = [(4, 2, "reuse", s, 0.9 + 0.01 * s, False, True) for s in range(3)]
    rows += [(4, 2, "matched", s, 0.88, s == 2, s != 1) for s in (2, 0, 1)]  # shuffled seeds; seed 2 diverged
    rows += [(4, 4, "sync", s, 0.15, False, False) for s in range(3)]         # sync at k = n, below the sanity 0.2
    t = _runs(rows)
    p = backup.pair_arms(t, "reuse", "matched", 4, 2, [0, 1, 2])
    assert p["diffs"] == pytest.approx([0.02, 0.03, 0.04]) and not p["valid"]
    assert (p["diverged"], p["reached"]) == ({"reuse": 0, "matched": 1}, {"reuse": 3, "matched": 2})
    # the gate reads every run of the arm at the cell: seed 2's divergence voids the pairing on seeds 0-1 too
    two = backup.pair_arms(t, "reuse", "matched", 4, 2, [0, 1])
    assert not two["valid"] and two["diverged"] == {"reuse": 0, "matched": 1} and two["runs"] == {"reuse": 3, "matched": 3}
    assert two["diffs"] == pytest.approx([0.02, 0.03]) and two["reached"] == {"reuse": 2, "matched": 1}
    clean = t[~((t.family == "matched") & (t.seed == 2))]
    assert backup.pair_arms(clean, "reuse", "matched", 4, 2, [0, 1])["valid"]
    s = backup.pair_arms(t, "reuse", "sync", 4, 2, [0, 1])
    assert s["below"] == {"reuse": 0, "sync": 3} and not s["valid"]  # all 3 sync runs, not only seeds 0-1
    with pytest.raises(ValueError, match="lack runs"):
        backup.pair_arms(t, "reuse", "matched", 4, 2, [0, 1, 2, 3])


def test_holm_intervals_give_holm_answers_and_widen_with_the_family():
    from stalenb import decisions

    looks = decisions.Looks((10, 20))
    rng = np.random.default_rng(0)
    results = [looks.answer(rng.normal(mu, 0.01, 10), rule="improves", delta=0.01) for mu in (0.03, 0.012, 0.0, -0.001)]
    out = dc.holm_intervals(results)
    assert [o["answer"] for o in out] == decisions.holm_answers(results)
    for r, o in zip(results, out):  # Holm spends at most the look's own level on each side: wider, never narrower
        assert o["ci_low"] <= r["ci_low"] + 1e-12 and o["ci_high"] >= r["ci_high"] - 1e-12
        assert decisions.improves(o["ci_low"], o["ci_high"], delta=0.01) == o["answer"]
    one = dc.holm_intervals(results[:1])[0]  # a family of one: the cell's own interval
    assert (one["ci_low"], one["ci_high"]) == (pytest.approx(results[0]["ci_low"]), pytest.approx(results[0]["ci_high"]))
    gated = dc.holm_intervals([results[0], None])  # a gated cell keeps the family's size (p-values 1)
    assert gated[1] is None and gated[0]["ci_low"] < one["ci_low"]
    # a cell decided on its own can turn undecided under Holm (here: 9 copies of a barely decided one)
    barely = next(r for r in (looks.answer(rng.normal(0.012, 0.01, 10), rule="improves", delta=0.01) for _ in range(200))
                  if r["answer"] == "supports" and r["ci_low"] < 0.004)
    assert {o["answer"] for o in dc.holm_intervals([barely] * 9)} == {"undecided"}


def test_holm_intervals_decide_from_p_values_on_a_floating_point_tie(monkeypatch):
    from stalenb import decisions

    looks = decisions.Looks((10, 20))
    r = looks.answer(np.random.default_rng(1).normal(0.03, 0.01, 10), rule="improves", delta=0.01)
    honest = dc.holm_intervals([r])[0]
    assert honest["answer"] == "supports" and not honest["tie"]
    # the lower end computed at the spent level, shifted onto 0 as a rounding error would: p decides
    monkeypatch.setattr(dc, "_one_sided", lambda res, side: 0.0 if side == "supports" else 1.0)
    r0 = {**r, "statistic": r["statistic"] - honest["ci_low"]}  # its lower end now lies at 0 (up to rounding)
    tied = dc.holm_intervals([r0])[0]
    assert tied["answer"] == "supports" and tied["ci_low"] > 0
    assert decisions.improves(tied["ci_low"], tied["ci_high"], delta=0.01) == "supports"
    assert dc.agree(1e-18, 0.5, 0.01, (False, False)) == (0.0, 0.5, True)
    assert dc.agree(-0.2, 0.01, 0.01, (False, True))[1] < 0.01
    assert dc.agree(-0.2, 0.5, 0.01, (False, False)) == (-0.2, 0.5, False)


def test_holm_at_look_one_sends_every_holm_undecided_cell_on():
    from stalenb import decisions

    looks = decisions.Looks((10, 20))
    rng = np.random.default_rng(0)
    barely = next(r for r in (looks.answer(rng.normal(0.012, 0.01, 10), rule="improves", delta=0.01)
                              for _ in range(200)) if r["answer"] == "supports" and r["ci_low"] < 0.004)
    family = [barely] * 9
    assert barely["final"]  # decided on its own: alone it would stop at look 1
    holm = dc.holm_intervals(family)
    assert all(h["answer"] == "undecided" for h in holm)   # but Holm leaves it undecided: it goes on


def test_follow_up_fresh_seeds_at_the_family_level():
    """A centre of 0.002 under "improves" (δ 0.01) is decided first by refuting (high < δ), 0.008 away:
    the fresh seeds are those of a design powered at that distance; Holm's α/9 asks for more."""
    r = {"seeds": 20, "sd": 0.02, "delta": 0.01, "statistic": 0.002, "rule": "improves"}
    own, primary = dc.follow_up(r, 2, 3.6), dc.follow_up(r, 2, 3.6, alpha=0.05 / 9)
    assert own["seeds_needed"] == dc.seeds_for_power(sd=0.02, delta=0.008, alpha=0.05)
    assert own["seeds_design"] == dc.seeds_for_power(sd=0.02, delta=0.01, alpha=0.05)
    assert primary["seeds_needed"] > own["seeds_needed"] and primary["follow_up_alpha"] == pytest.approx(0.05 / 9)
    assert own["core_hours"] == round(own["seeds_needed"] * 2 * 3.6 / 3600, 2)
    edge = dc.follow_up({**r, "statistic": -0.01, "rule": "noninferior"}, 2, 3.6)  # centre on −δ: none decides
    assert edge["seeds_needed"] is None and edge["core_hours"] is None


def test_largest_safe_lr_and_tta_target():
    t = pd.DataFrame({"arm": "d", "lr": [0.05, 0.1, 0.2, 0.4], "eligible": [True, True, False, False],
                      "diverged": [0.0, 0.0, 0.0, 1 / 3], "worst_val_acc": [0.9, 0.95, 0.96, 0.1],
                      "best": [False, True, False, False]})
    assert backup.largest_safe_lr(t, "d", 0.2) == 0.1
    assert backup.largest_safe_lr(t.assign(diverged=1.0, eligible=True), "d", 0.2) is None  # guard fell back
    assert backup.tta_target(t, ["d"], 0.01) == pytest.approx(0.94)
    assert backup.tta_target(t.assign(worst_val_acc=0.9574), ["d"], 0.01) == pytest.approx(0.945)
    with pytest.raises(ValueError, match="lacks"):
        backup.tta_target(t, ["d", "e"], 0.01)
