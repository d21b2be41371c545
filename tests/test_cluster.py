"""Grids on an existing engine: ``run_all(executor=...)`` with a Dask cluster (issue 12, item 7).

A ``LocalCluster`` of two worker processes (one thread each) computes the runs missing from the
cache; the cached results must equal, bit for bit, those ``run_all(jobs=1)`` computes in this
process in a second, empty cache.
"""

import pandas as pd
import pytest

import stalenb as sn
from stalenb import experiments as ex

distributed = pytest.importorskip("distributed")

BASE = sn.Config(model="mlp", batch_size=16, steps=4, eval_every=2, train_size=256, eval_size=64,
                 staleness=sn.Uniform(2))
SPECS = ex.product(BASE, rule={"sgd": {}, "sa": {"rule": "staleness-aware"}}, seed=[0, 1])


@pytest.mark.slow
def test_dask_cluster_fills_the_cache_with_the_runs_of_jobs_1(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "cluster"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        on_cluster = ex.run_all(SPECS, executor=client.get_executor(), progress=False)
        seen = {w["id"] for w in client.scheduler_info()["workers"].values()}
        # the same cluster by address, as `STALENB_DASK=tcp://... make reproduce` uses it
        monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "by-address"))
        monkeypatch.setenv("STALENB_DASK", cluster.scheduler_address)
        by_address = ex.run_all(SPECS[:2], progress=False)
        monkeypatch.delenv("STALENB_DASK")
    assert by_address.from_cache == 2 and len(list((tmp_path / "by-address").glob("run-*.npz"))) == 2
    assert on_cluster.from_cache == len(SPECS) == 4  # all computed on the workers, read back here
    assert len(list((tmp_path / "cluster").glob("run-*.npz"))) == 4
    assert len(seen) == 2
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path / "local"))
    local = ex.run_all(SPECS, jobs=1, progress=False)
    assert local.from_cache == 0
    pd.testing.assert_frame_equal(on_cluster.history, local.history, check_exact=True)
    pd.testing.assert_frame_equal(on_cluster.updates, local.updates, check_exact=True)


def test_executor_must_submit():
    with pytest.raises(TypeError, match="submit"):
        ex.run_all(SPECS, executor=object(), progress=False)
