"""Per-arm step-size search on the validation split."""

import pytest

import stalenb as sn
from stalenb import tuning


def test_log_grid_is_symmetric_in_log_space():
    g = tuning.log_grid(0.1, 4.0, 2)
    assert g == [0.025, 0.05, 0.1, 0.2, 0.4]
    with pytest.raises(ValueError):
        tuning.log_grid(0.1, 1.0, 2)


def test_tune_needs_a_validation_split():
    with pytest.raises(ValueError, match="validation > 0"):
        tuning.tune({"a": sn.Config(steps=2)}, [0.01, 0.1, 1.0])


def test_best_at_an_edge_extends_the_grid(tmp_path, monkeypatch):
    """With a grid far below the useful range, the search walks past the upper edge."""
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    base = sn.Config(protocol="sync", model="mlp", batch_size=32, steps=30, eval_every=30, eval_size=200,
                     validation=500, train_size=3000)
    best, table = tuning.tune({"mlp": base}, [1e-4, 2e-4, 4e-4], max_extend=1)
    assert sorted(table.lr) == [1e-4, 2e-4, 4e-4, 8e-4]  # one step past the upper edge
    assert best["mlp"] == 8e-4 and table.loc[table.best, "at_edge"].item()
    assert table.best.sum() == 1


def _fake_scores(rows):
    """A stand-in for the runs: (arm, lr) -> (val_acc, diverged fraction)."""
    import pandas as pd

    def scores(arms, lrs, seeds, tail, jobs, executor, desc):
        return pd.DataFrame([{"arm": a, "lr": lr, "val_acc": rows[(a, lr)][0], "diverged": rows[(a, lr)][1],
                              "worst_val_acc": rows[(a, lr)][0]} for a in arms for lr in lrs[a]])
    return scores


def test_guard_keeps_the_choice_one_step_clear_of_divergence(monkeypatch):
    """Hand case: the best score sits at 0.2, but a tuning seed diverged at 0.4 (its next larger value);
    with the guard the choice is 0.1, without it 0.2."""
    rows = {("a", 0.05): (0.90, 0.0), ("a", 0.1): (0.93, 0.0), ("a", 0.2): (0.95, 0.0), ("a", 0.4): (0.60, 1 / 3)}
    monkeypatch.setattr(tuning, "_scores", _fake_scores(rows))
    cfg = {"a": sn.Config(validation=100)}
    grid = [0.05, 0.1, 0.2, 0.4]
    assert tuning.tune(cfg, grid, max_extend=0)[0]["a"] == 0.2
    best, table = tuning.tune(cfg, grid, max_extend=0, guard=True)
    assert best["a"] == 0.1
    assert table.set_index("lr").eligible.to_dict() == {0.05: True, 0.1: True, 0.2: False, 0.4: False}


def test_guard_falls_back_when_every_value_diverged(monkeypatch):
    rows = {("a", lr): (acc, 1.0) for lr, acc in ((0.1, 0.3), (0.2, 0.2), (0.4, 0.1))}
    monkeypatch.setattr(tuning, "_scores", _fake_scores(rows))
    best, table = tuning.tune({"a": sn.Config(validation=100)}, [0.1, 0.2, 0.4], max_extend=0, guard=True)
    assert best["a"] == 0.1 and table.eligible.all() and table.guard_fallback.all()


def test_guard_counts_a_run_stuck_below_sanity_as_a_failure(monkeypatch):
    """No seed diverged numerically, but one ended at chance at 0.4: with sanity 0.2 the guard steps back."""
    import pandas as pd

    def scores(arms, lrs, seeds, tail, jobs, executor, desc):
        acc = {0.1: (0.93, 0.92), 0.2: (0.95, 0.94), 0.4: (0.96, 0.1)}
        return pd.DataFrame([{"arm": a, "lr": lr, "val_acc": acc[lr][0], "diverged": 0.0, "worst_val_acc": acc[lr][1]}
                             for a in arms for lr in lrs[a]])
    monkeypatch.setattr(tuning, "_scores", scores)
    cfg, grid = {"a": sn.Config(validation=100)}, [0.1, 0.2, 0.4]
    assert tuning.tune(cfg, grid, max_extend=0, guard=True)[0]["a"] == 0.4  # sanity 0: only divergence counts
    best, table = tuning.tune(cfg, grid, max_extend=0, guard=True, sanity=0.2)
    assert best["a"] == 0.1 and not table.guard_fallback.any()
