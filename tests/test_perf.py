"""The speed-ups keep the numbers: channels_last, no-copy versions, O(1) bookkeeping, the
benchmark's FLOP counts, concurrent notebooks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stalenb as sn
from stalenb import experiments
from stalenb.repro import bench, reproduce
from stalenb.sim.gradients import FlatModule, NeuralNet
from stalenb.sim.schedule import Schedule
from stalenb.sim.server import Server
from stalenb.sim.timing import ShiftedExponential, Timing

from helpers import notebook


def test_server_step_into_a_buffer_is_the_in_place_step_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    x0, d = torch.randn(1000, generator=g), torch.randn(1000, generator=g)
    a, b = Server(x0, lr=0.3, momentum=0.9), Server(x0, lr=0.3, momentum=0.9)
    for _ in range(3):
        old = b.x
        kept = old.clone()
        a.step(d)
        b.step(d, out=torch.empty_like(x0))
        assert torch.equal(a.x, b.x) and torch.equal(old, kept)  # x_t left as it was
    assert a.version == b.version == 3


def test_async_timing_oldest_needed_is_the_oldest_version_a_later_push_reads():
    c = sn.Config(protocol="async", workers=64, staleness=None, steps=900, batch_size=8,
                  timing=Timing(slowdown=ShiftedExponential(1.0)))
    sched = Schedule(c, 100, 100, np.random.default_rng(0))
    ups, oldest = [], []
    for u in sched:
        ups.append(u)
        oldest.append(sched.oldest_needed())
    versions = [u.pushes[0].version for u in ups]
    workers = [u.pushes[0].worker for u in ups]
    for t in range(0, 300, 7):  # min over the workers of the version of their next push
        nxt = {}
        for w, v in zip(workers[t + 1 :], versions[t + 1 :]):
            nxt.setdefault(w, v)
        assert len(nxt) == 64 and oldest[t] == min(nxt.values()), t
    assert max(t - o for t, o in enumerate(oldest)) > 32  # staleness large enough to matter


@pytest.fixture(scope="module")
def lenet():
    return NeuralNet("lenet", 0, None, 256, 64)


def test_flat_module_binds_views_and_keeps_conv_weights_channels_last(lenet):
    flat = lenet.flat
    convs = [p for p in flat.params if p.dim() == 4]
    assert len(convs) == 2 and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    x = lenet.x0 + 1.0
    flat.bind(x)
    lo, hi = x.data_ptr(), x.data_ptr() + 4 * x.numel()
    dense = [p for p in flat.params if p.dim() < 4]
    assert all(lo <= p.data_ptr() < hi for p in dense + convs[:1])  # views of x: no copy
    net = sn.models.build("lenet")
    torch.nn.utils.vector_to_parameters(x, net.parameters())
    for mine, ref in zip(flat.params, net.parameters()):
        assert torch.equal(mine.detach(), ref.detach())  # same values, whatever the layout


def test_fast_evaluation_matches_the_plain_module_to_float_rounding(lenet):
    x = lenet.x0 + 0.01 * torch.randn(lenet.dim, generator=torch.Generator().manual_seed(1))
    got = lenet.evaluate(x)
    with torch.no_grad():
        z = lenet.logits(x, lenet.X_test)
    assert got["test_loss"] == pytest.approx(float(F.cross_entropy(z, lenet.y_test)), rel=1e-5)
    assert got["test_acc"] == float((z.argmax(1) == lenet.y_test).float().mean())
    _, g = lenet.loss_grad_buffer(x, torch.arange(16))  # training still works after inference mode
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_flat_module_without_channels_last_gives_the_same_gradient(lenet):
    idx = torch.arange(32)
    plain = FlatModule(sn.models.build("lenet"), channels_last=False)
    _, g_ref = plain.loss_grad(lenet.x0, lenet.X[idx], lenet.y[idx])
    g_ref = g_ref.clone()
    _, g = lenet.loss_grad_buffer(lenet.x0, idx)
    assert torch.allclose(g, g_ref, atol=1e-6, rtol=1e-4)  # summation order only


def test_counted_flops_of_the_mlp_step_match_the_hand_count():
    # forward 2·Σ in·out per sample; backward: weight gradients (the same again) + input gradients
    # of every layer but the first (its input needs none); ReLU and the loss are not counted
    layers = [(784, 800), (800, 500), (500, 10)]
    fwd = 2 * sum(i * o for i, o in layers)
    per_sample = fwd + fwd + 2 * sum(i * o for i, o in layers[1:])
    assert bench.step_flops("mlp", 4) == 4 * per_sample
    assert bench.count_flops(lambda: torch.mm(torch.ones(3, 5), torch.ones(5, 7))) == 2 * 3 * 5 * 7


def test_bench_extra_rows_have_targets_and_verdicts(tmp_path):
    out = tmp_path / "bench.json"
    rc = bench.main(["--quick", "--threads", "1", "--repeats", "1", "--out", str(out),
                     "--cases", "async-lenet", "async-lenet-roofline", "import-stalenb"])
    assert rc == 0
    doc = json.loads(out.read_text())
    rows = {r["case"]: r for r in doc["cases"]}
    assert set(rows) == {"async-lenet", "async-lenet-roofline", "import-stalenb"}
    assert doc["attainable"]["gflops"] > 0
    for r in rows.values():  # every row measured, with a target and a verdict on it
        assert r["ratio"] > 0 and r["target"] > 0 and isinstance(r["met"], bool), r


def test_max_jobs_keeps_the_grid_in_this_process(monkeypatch, tmp_path):
    def no_pool(*a, **k):
        raise AssertionError("a pool was started")

    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    monkeypatch.setenv("STALENB_MAX_JOBS", "1")
    monkeypatch.setattr(experiments, "pool", no_pool)
    base = sn.Config(protocol="async", staleness=sn.Uniform(1), train_size=128, eval_size=16, steps=2,
                     eval_every=2, batch_size=8)
    res = experiments.run_all(experiments.product(base, seed=[0, 1]), jobs=2, progress=False)
    assert len(res) == 2


def test_concurrent_notebooks_report_in_reading_order_and_run_past_a_failure(tmp_path):
    src, out = tmp_path / "nb", tmp_path / "build" / "notebooks"
    src.mkdir()
    for name, code in (("00_ok.ipynb", "import time; time.sleep(2)"), ("01_fails.ipynb", "assert False, 'broken'"),
                       ("02_ok.ipynb", "y = 1")):
        notebook(src, name, code)
    with pytest.raises(reproduce.ReproduceFailures, match="01_fails.ipynb failed in cell 1.*broken") as err:
        reproduce.reproduce("paper", folder=src, out_dir=out, timeout=120, verbose=False, jobs=2)
    assert list(err.value.times) == ["00_ok.ipynb", "02_ok.ipynb"]  # reading order, 02 ran after the failure
    times = json.loads((out.parent / "reproduce-times.json").read_text())
    assert list(times["seconds"]) == ["00_ok.ipynb", "02_ok.ipynb"]
