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
