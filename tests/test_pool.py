"""The reusable local pool of ``run_all`` (loky's): kept between calls, replaced when broken, closed
on request; runs handed out longest first, at most ``jobs`` in flight, results independent of jobs."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time

import pandas as pd
import pytest

import stalenb as sn
from stalenb import experiments as ex

BASE = sn.Config(model="mlp", batch_size=16, steps=3, eval_every=3, train_size=256, eval_size=64)


@pytest.fixture(autouse=True)
def fresh_pool():
    """Every test starts without a pool (so none can pass on a pool an earlier test left) and
    frees its workers at the end (each idle worker holds torch and MNIST)."""
    ex.close_pool()
    assert ex.close_pool() is False
    yield
    ex.close_pool()


@pytest.fixture
def used(monkeypatch):
    """The executors ``run_all`` computed on, in call order."""
    real, seen = ex._compute, []

    def spy(executor, missing, *args, **kwargs):
        seen.append(executor)
        return real(executor, missing, *args, **kwargs)

    monkeypatch.setattr(ex, "_compute", spy)
    return seen


def _gone(pid: int, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _worker_pids(executor, n: int = 2) -> set[int]:
    """PIDs of workers that answer ``n`` tasks submitted together (each holds the task a moment)."""
    return set(executor.map(_slow_getpid, range(n)))


def _slow_getpid(_):
    time.sleep(0.3)
    return os.getpid()


def test_one_pool_serves_successive_calls_and_results_do_not_depend_on_jobs(tmp_path, monkeypatch, used):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "a"))
    first = ex.run_all(ex.product(BASE, seed=[0, 1]), jobs=2, progress=False)
    assert first.from_cache == 2 and len(used) == 1
    pids = _worker_pids(used[0])
    assert os.getpid() not in pids and len(pids) >= 1  # computed in other processes
    # a second call, into another cache folder: the same executor and its same workers
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "b"))
    specs = ex.product(BASE, seed=[2, 3], rule={"sgd": {}, "sa": {"rule": "staleness-aware"}})
    pooled = ex.run_all(specs, jobs=2, progress=False)
    assert pooled.from_cache == 4 and len(list((tmp_path / "b").glob("run-*.npz"))) == 4
    assert len(used) == 2 and used[1] is used[0]
    # the same runs in this process, one job, a fresh cache: equal bit for bit
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "c"))
    local = ex.run_all(specs, jobs=1, progress=False)
    assert local.from_cache == 0 and len(used) == 2  # jobs=1 uses no pool
    pd.testing.assert_frame_equal(pooled.history, local.history, check_exact=True)
    pd.testing.assert_frame_equal(pooled.updates, local.updates, check_exact=True)


def test_a_pool_with_a_killed_worker_is_replaced(tmp_path, monkeypatch, used):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    old = ex.pool(2)
    victim = min(_worker_pids(old))
    os.kill(victim, signal.SIGKILL)
    assert _gone(victim)
    res = ex.run_all(ex.product(BASE, seed=[4, 5]), jobs=2, progress=False)
    assert res.from_cache == 2 and used and used[-1] is not old
    assert victim not in _worker_pids(used[-1])


def test_a_pool_broken_during_a_call_is_replaced_and_the_runs_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    real, seen = ex._compute, []

    def breaks_once(executor, missing, *args, **kwargs):
        seen.append(len(missing))
        if len(seen) == 1:
            raise concurrent.futures.process.BrokenProcessPool("a worker died")
        return real(executor, missing, *args, **kwargs)

    monkeypatch.setattr(ex, "_compute", breaks_once)
    res = ex.run_all(ex.product(BASE, seed=[6, 7]), jobs=2, progress=False)
    assert res.from_cache == 2 and seen == [2, 2]


def test_close_pool_stops_the_workers_and_a_later_call_starts_a_new_pool(tmp_path, monkeypatch, used):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    first = ex.pool(2)
    pids = _worker_pids(first)
    assert ex.close_pool() is True and ex.close_pool() is False
    assert pids and all(_gone(pid) for pid in pids)
    assert ex.run_all(ex.product(BASE, seed=[8, 9]), jobs=2, progress=False).from_cache == 2
    assert used and used[-1] is not first and not pids & _worker_pids(used[-1])


class _Recorder:
    """An executor that runs each task at once, recording the configs in submission order."""

    def __init__(self):
        self.order = []

    def submit(self, fn, config, *args):
        self.order.append(config)
        future = concurrent.futures.Future()
        future.set_result(fn(config, *args))
        return future


def test_missing_runs_are_handed_out_longest_first(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    short = BASE.replace(steps=2, eval_every=100)
    specs = [({"i": 0}, short), ({"i": 1}, short.replace(steps=6)), ({"i": 2}, short.replace(seed=1)),
             ({"i": 3}, short.replace(protocol="sync", workers=2, batch_size=32)), ({"i": 4}, short.replace(steps=5))]
    # by hand: MLP, 0.2 ms per sample and 4 ms per gradient; two evaluations of 2 × 64 digits at a third
    grad, evals = 16 * 0.2 + 4, 2 * 128 * 0.2 / 3
    costs = [2 * grad + evals, 6 * grad + evals, 2 * grad + evals, 2 * 2 * grad + evals, 5 * grad + evals]
    assert [ex.estimated_cost(cfg) for _, cfg in specs] == pytest.approx(costs)
    rec = _Recorder()
    res = ex.run_all(specs, executor=rec, progress=False)
    order = [next(i for i, (_, cfg) in enumerate(specs) if cfg is c) for c in rec.order]
    assert order == [1, 4, 3, 0, 2]  # decreasing estimate; the tie (0, 2) in the order of the specs
    assert res.from_cache == 5
    ex.run_all(specs, executor=rec, progress=False)
    assert len(rec.order) == 5  # all cached now: nothing submitted


def test_at_most_at_once_runs_are_in_flight(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    lock, busy, peak = threading.Lock(), [0], [0]

    def counted(fn, *args):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.05)
        try:
            return fn(*args)
        finally:
            with lock:
                busy[0] -= 1

    class Counting(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, *args):
            return super().submit(counted, fn, *args)

    with Counting(4) as pool:
        ex._compute(pool, [cfg for _, cfg in ex.product(BASE, seed=[10, 11, 12, 13, 14])], {"disable": True},
                    "runs", at_once=2)
    assert peak[0] == 2 and len(list(tmp_path.glob("run-*.npz"))) == 5
