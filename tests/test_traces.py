"""Replay of measured traces: staleness.Trace, the loaders of stalenb.traces on hand-made files in tests/data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stalenb as sn
from stalenb import staleness, timing, traces

DATA = Path(__file__).parent / "data"
#: Hand-written contents of the files in tests/data (what the loaders must read back).
BCD = [0, 1, 2, 3, 2, 4, 1, 5]
PIAG = [[0, 0, 0], [1, 0, 1], [2, 1, 0], [0, 2, 1], [1, 3, 2], [2, 1, 3]]
MINIBATCH = [[400, 420, 380], [800, 760, 840], [500, 600, 400]]  # by worker, in time order
UPDATES_STALENESS = [0, 1, 1, 3, 2, 2]
UPDATES_JOB_S = [[0.1, 0.1, 0.12], [0.15, 0.16], [0.3]]


def _quadratic():
    """f(x) = ½‖x‖²: the gradient is the model read, so the iterates show which version each step used."""
    return sn.Quadratic(a=[1.0, 1.0], x0=[1.0, -2.0])


def _replayed_updates(trace, steps, workers=2):
    cfg = sn.Config(workers=workers, staleness=trace, steps=steps, lr=0.1, eval_every=steps)
    return sn.run(cfg, _quadratic(), cache=False, progress=False).updates


# --- staleness.Trace ---------------------------------------------------------------------------------

def test_replayed_staleness_equals_the_trace():
    trace = staleness.Trace(BCD)
    upd = _replayed_updates(trace, len(BCD))
    assert upd["staleness"].tolist() == BCD  # every delay <= its step: nothing clipped
    assert upd["version"].tolist() == [t - d for t, d in enumerate(BCD)]


def test_replayed_iterates_use_the_versions_of_the_trace():
    """x_{t+1} = x_t − lr · x_{t−τ_t} for f = ½‖x‖², computed here by hand from the trace."""
    delays, lr = [0, 1, 2, 1, 3, 0], 0.1
    xs = [np.array([1.0, -2.0])]
    for t, d in enumerate(delays):
        xs.append(xs[t] - lr * xs[t - d])
    seen = []
    cfg = sn.Config(workers=2, staleness=staleness.Trace(delays), steps=len(delays), lr=lr, eval_every=6)
    sn.run(cfg, _quadratic(), cache=False, progress=False, callback=lambda t, x: seen.append(x.clone()))
    for t, x in enumerate(seen):
        np.testing.assert_allclose(x.numpy(), xs[t + 1], rtol=0, atol=1e-15)


def test_delays_beyond_the_step_are_clipped_like_the_laws():
    upd = _replayed_updates(staleness.Trace([3, 3, 3, 3, 3]), 5)
    assert upd["staleness"].tolist() == [0, 1, 2, 3, 3]  # min(τ_t, t), as Uniform's draws are clipped


def test_a_run_longer_than_the_trace_is_an_error_unless_it_cycles():
    with pytest.raises(ValueError, match=r"staleness: the Trace holds 3 delays, fewer than steps=5"):
        sn.Config(staleness=staleness.Trace([0, 1, 2]), steps=5)
    upd = _replayed_updates(staleness.Trace([0, 1, 2], cycle=True), 7)
    assert upd["staleness"].tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(IndexError, match="past the end"):
        staleness.Trace([0, 1]).delay(2)


@pytest.mark.parametrize(
    "delays, exc, message",
    [([0, -1], ValueError, r"delays must be integers >= 0, got -1 at index 1"),
     ([0.5, 1.0], TypeError, r"delays must be integers >= 0"),
     ([], ValueError, r"delays must be a non-empty"),
     ("012", TypeError, r"delays must be a sequence"),
     ([[0, 1]], ValueError, r"one-dimensional")],
)
def test_bad_traces_name_the_parameter(delays, exc, message):
    with pytest.raises(exc, match=message):
        staleness.Trace(delays)


def test_trace_is_frozen_hashable_and_serialises_in_full():
    a, b = staleness.Trace(np.array([2, 0, 1])), staleness.Trace([2, 0, 1])
    assert a == b and hash(a) == hash(b) and type(a.delays[0]) is int
    assert a.tau_max == 2 and a.pmf().tolist() == [1 / 3, 1 / 3, 1 / 3]
    d = sn.Config(staleness=a, steps=3).to_dict()["staleness"]
    assert json.dumps(d) == '{"kind": "Trace", "delays": [2, 0, 1], "cycle": false}'
    assert "3 delays" in repr(a)
    with pytest.raises(ValueError, match="staleness .* applies only to protocol='async'"):
        sn.Config(protocol="sync", staleness=a, steps=3)


# --- Delay-data ------------------------------------------------------------------------------------

def test_delay_data_single_column():
    trace = traces.delay_trace(DATA / "delay_bcd.csv")
    assert trace.delays == tuple(BCD) and not trace.cycle
    assert traces.read_delay_csv(DATA / "delay_bcd.csv").dtype == np.int64


def test_delay_data_one_column_per_worker():
    path = DATA / "delay_piag.csv"
    assert traces.read_delay_csv(path).tolist() == PIAG
    assert traces.delay_trace(path, column=1).delays == (0, 0, 1, 2, 3, 1)
    assert traces.delay_trace(path, column="max", cycle=True).delays == (0, 1, 2, 2, 3, 3)
    with pytest.raises(ValueError, match=r"column must be a column index 0\.\.2 or 'max'"):
        traces.delay_trace(path)
    with pytest.raises(ValueError, match=r"column must be an integer in \[0, 2\] \(the file has 3 columns\)"):
        traces.delay_trace(path, column=3)
    with pytest.raises(ValueError, match="column must be None, a column index or 'max'"):
        traces.delay_trace(path, column="mean")


@pytest.mark.parametrize("text", ["0\n1.5\n", "0\n-1\n"])
def test_delay_data_rejects_non_integer_delays(tmp_path, text):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"bad.csv: delays must be integers >= 0, got .* at row 1, column 0"):
        traces.read_delay_csv(bad)


# --- Alibaba mini-batch time ---------------------------------------------------------------------------

def test_minibatch_times_by_worker_in_time_order():
    times = traces.read_minibatch_times(DATA / "minibatch_norm.csv")
    assert [t.tolist() for t in times] == MINIBATCH
    assert [t.tolist() for t in traces.read_minibatch_times(DATA / "minibatch_norm.csv", workers=[2, 0])] == \
        [MINIBATCH[2], MINIBATCH[0]]
    assert len(traces.read_minibatch_times(DATA / "minibatch_norm.csv", workers=2)) == 2
    held = traces.read_minibatch_times(DATA / "minibatch_norm.csv", hold=2)
    assert held[0].tolist() == [400, 400, 420, 420, 380, 380]
    with pytest.raises(ValueError, match=r"workers must be ids among \[0, 1, 2\]"):
        traces.read_minibatch_times(DATA / "minibatch_norm.csv", workers=[7])
    with pytest.raises(ValueError, match="missing"):
        traces.read_minibatch_times(pd.DataFrame({"worker": [0], "time": [1]}))


def test_minibatch_slowdown_is_relative_to_the_overall_mean():
    law = traces.minibatch_slowdown(DATA / "minibatch_norm.csv")
    mean = 5100 / 9  # sum of the nine hand-written values / 9
    assert law.workers == 3
    for got, want in zip(law.times, MINIBATCH):
        assert got == pytest.approx([v / mean for v in want], rel=1e-15)
    # it drives a 3-worker run; the slowdown of worker 1's 4th job cycles back to its first value
    slow = timing.Slowdowns(law, 3, np.random.default_rng(0))
    assert slow(1, 3) == pytest.approx(800 / mean, rel=1e-15)


# --- stalenb's updates.csv ---------------------------------------------------------------------------

def test_updates_csv_gives_the_staleness_trace_and_the_job_times():
    path = DATA / "updates_async.csv"
    assert traces.updates_trace(path).delays == tuple(UPDATES_STALENESS)
    times = traces.updates_times(path)
    assert [t.tolist() for t in times] == UPDATES_JOB_S
    assert traces.updates_times(path, column="compute_s")[2].tolist() == [0.06]
    tm = traces.updates_timing(path, batch=4, latency=0.0)
    slow = timing.Slowdowns(tm.slowdown, 3, np.random.default_rng(0))
    for w, row in enumerate(UPDATES_JOB_S):
        for j, seconds in enumerate(row):
            assert tm.compute_time(4, slow(w, j), w) == pytest.approx(seconds, rel=1e-12)


def test_updates_trace_refuses_rounds():
    frame = pd.DataFrame({"step": [0, 0, 1, 1], "staleness": [0, 0, 0, 1], "applied": [True, True, True, True]})
    with pytest.raises(ValueError, match="one applied gradient per step.*step 0 applies several"):
        traces.updates_trace(frame)


def test_a_simulated_run_replays_its_own_staleness():
    """updates of an async timing run → Trace → a replayed run with the same staleness, step for step."""
    cfg = sn.Config(workers=3, steps=30, lr=0.05, eval_every=30,
                    timing=sn.Timing(factors=(1.0, 2.0, 4.0), bandwidth=float("inf"), latency=0.0))
    first = sn.run(cfg, _quadratic(), cache=False, progress=False).updates
    trace = traces.updates_trace(first)
    replayed = sn.run(cfg.replace(staleness=trace), _quadratic(), cache=False, progress=False).updates
    assert replayed["staleness"].tolist() == first["staleness"].tolist()
    assert first["staleness"].max() > 0  # not a trivial all-zero trace
