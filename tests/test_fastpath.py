"""The engine's fast path against its plain reference path, and the pieces the fast path uses."""

import json

import numpy as np
import pytest
import torch

import stalenb as sn
from stalenb import compress
from stalenb.repro import bench
from stalenb.sim.gradients import FlatModule, NeuralNet, Quadratic
from stalenb.sim.objectives import NonconvexLogistic
from stalenb.sim.timing import ShiftedExponential, Timing

TINY = dict(train_size=256, eval_size=16, eval_every=2, steps=4, lr=0.05)
TOPK_EF = dict(compressor="topk", density=0.01, error_feedback=True)
SLOW = Timing(slowdown=ShiftedExponential(1.0))

PROTOCOLS = {
    "sync": dict(protocol="sync", workers=4, batch_size=16),
    "async-synthetic": dict(protocol="async", workers=4, staleness=sn.Uniform(3), batch_size=8),
    "async-timing": dict(protocol="async", workers=4, batch_size=8, timing=SLOW),
    "k-of-n-drop": dict(protocol="k-of-n", workers=4, k=2, late="drop", batch_size=16, timing=SLOW),
    "k-of-n-reuse": dict(protocol="k-of-n", workers=4, k=2, late="reuse", batch_size=16, timing=SLOW,
                         lag_weights=(0.5, 0.25)),
}
EXTRAS = {
    "dc-asgd": dict(protocol="async", workers=4, staleness=sn.Uniform(3), batch_size=16, rule="dc-asgd",
                    dc_lambda=2.0),
    "staleness-aware": dict(protocol="async", workers=4, staleness=sn.Uniform(3), batch_size=16,
                            rule="staleness-aware"),
    "momentum-k-of-n": dict(protocol="k-of-n", workers=4, k=3, late="reuse", batch_size=16, momentum=0.9,
                            timing=SLOW),
    "randomk-ef": dict(protocol="k-of-n", workers=4, k=2, late="reuse", batch_size=16, timing=SLOW,
                       compressor="randomk", density=0.05, error_feedback=True),
    "topk-layer": dict(protocol="async", workers=2, staleness=sn.Uniform(2), batch_size=8, compressor="topk",
                       density=0.05, granularity="layer"),
    # the late-gradient policies of the time-optimal literature, alone and composed
    # k > workers: a fast worker sends several gradients to one update (3 × 8 samples: a union of 32
    # LeNet samples rounds ~1e-5 away from four separate batches, in k-of-n as well)
    "rennala": dict(protocol="rennala", workers=2, k=3, batch_size=8, timing=SLOW),
    "rennala-cancel": dict(protocol="rennala", workers=3, k=2, batch_size=8, timing=SLOW, cancel_stale=True),
    "ringmaster-cancel+topk-ef": dict(protocol="ringmaster", workers=4, max_delay=2, batch_size=8, timing=SLOW,
                                      cancel_stale=True, **TOPK_EF),
    "gradient-table": dict(protocol="gradient-table", workers=3, batch_size=8, timing=SLOW),
    "gradient-table+dc-asgd": dict(protocol="gradient-table", workers=3, batch_size=8, timing=SLOW, rule="dc-asgd",
                                   dc_lambda=2.0, momentum=0.5),
    "delay-adaptive": dict(protocol="async", workers=2, staleness=sn.Uniform(6), batch_size=8,
                           rule="delay-adaptive"),
    "poly-staleness": dict(protocol="k-of-n", workers=4, k=2, late="reuse", batch_size=16, timing=SLOW,
                           rule="poly-staleness", poly_exponent=1.5),
}
# Plain Ringmaster (stale jobs finish, then are discarded) runs on the smooth problem only: on LeNet its
# step 2 reads x_1, where the two paths differ by 1.5e-8 (float32 rounding) and a max-pool / ReLU kink
# turns that into a 1.4e-3 difference in the same batch's gradient (measured), so the iterates part.
SMOOTH = {"ringmaster": dict(protocol="ringmaster", workers=4, max_delay=2, batch_size=8, timing=SLOW),
          **{name: EXTRAS[name] for name in ("rennala", "rennala-cancel", "ringmaster-cancel+topk-ef",
                                             "gradient-table", "gradient-table+dc-asgd", "delay-adaptive")}}
CASES = {**PROTOCOLS, **{f"{k}+topk-ef": {**v, **TOPK_EF} for k, v in PROTOCOLS.items()}, **EXTRAS}


@pytest.fixture(scope="module")
def lenet():
    return NeuralNet("lenet", 0, None, TINY["train_size"], TINY["eval_size"])


def trajectory(config, problem, path):
    xs = []
    r = sn.run(config, problem, cache=False, progress=False, path=path,
               callback=lambda t, x: xs.append(x.clone()))
    return r, xs


@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_gives_the_reference_iterates(name, lenet):
    cfg = sn.Config(**{**TINY, **CASES[name]})
    ref, xs_ref = trajectory(cfg, lenet, "reference")
    fast, xs_fast = trajectory(cfg, lenet, "fast")
    assert len(xs_ref) == len(xs_fast) == cfg.steps
    for t, (a, b) in enumerate(zip(xs_ref, xs_fast)):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), f"{name}: step {t}, max diff {(a - b).abs().max()}"
    assert not torch.equal(xs_ref[-1], lenet.x0)  # it moved
    assert ref.updates.equals(fast.updates)  # same schedule, same staleness record
    cols = ["step", "samples", "gradients", "dropped", "bytes_sent", "staleness_mean", "staleness_max"]
    assert ref.history[cols].equals(fast.history[cols])
    np.testing.assert_allclose(ref.history["train_loss"], fast.history["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(ref.history["batch_loss"], fast.history["batch_loss"], rtol=1e-4)


def test_the_cases_cover_stale_and_late_gradients(lenet):
    # the equivalence above means something only if versions older than the current one are read
    for name in ("async-synthetic", "async-timing", "k-of-n-reuse"):
        r = sn.run(sn.Config(**{**TINY, **CASES[name]}), lenet, cache=False, progress=False)
        assert r.updates["staleness"].max() > 0, name


@pytest.mark.parametrize("name", list(SMOOTH))
def test_policies_give_the_reference_iterates_on_a_smooth_problem(name):
    # float64 and smooth: the two paths agree to rounding, whatever the batches (which matter here)
    problem = NonconvexLogistic(n=256, d=20, seed=1)
    cfg = sn.Config(**{**TINY, "steps": 30, "lr": 0.2, **SMOOTH[name]})
    ref, xs_ref = trajectory(cfg, problem, "reference")
    fast, xs_fast = trajectory(cfg, problem, "fast")
    assert len(xs_ref) == len(xs_fast) == cfg.steps
    assert all(torch.allclose(a, b, atol=1e-12, rtol=1e-10) for a, b in zip(xs_ref, xs_fast)), name
    assert ref.updates.equals(fast.updates)
    assert (~ref.updates["applied"]).any() or name.startswith(("gradient-table", "delay-adaptive")), \
        "a late-gradient policy that never discards was not exercised"


def test_quadratic_through_both_paths_is_identical():
    prob = Quadratic(a=np.linspace(0.5, 2.0, 5))
    cfg = sn.Config(protocol="k-of-n", workers=4, k=2, late="reuse", timing=SLOW, batch_size=8, lr=0.1,
                  steps=30, lag_weights=(0.5,))
    _, a = trajectory(cfg, prob, "reference")
    _, b = trajectory(cfg, prob, "fast")
    assert all(torch.allclose(u, v, atol=1e-12) for u, v in zip(a, b))


@pytest.mark.parametrize("model", sn.models.MODELS)
def test_flat_buffer_gradient_equals_torch_func_gradient(model):
    net = NeuralNet(model, 0, None, 64, 16)
    x = net.x0 + 0.01 * torch.randn(net.dim, generator=torch.Generator().manual_seed(0))
    idx = torch.arange(24)
    loss_ref, g_ref = net.loss_grad(x, idx)
    loss, g = net.loss_grad_buffer(x, idx)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    assert torch.allclose(g, g_ref, atol=1e-6, rtol=1e-4)
    # the buffer is reused, the gradients land in it in place (fully connected layers write there
    # from their backward, the others are copied in): every entry is overwritten by the next call
    ptr = g.data_ptr()
    g.fill_(float("nan"))
    _, g2 = net.loss_grad_buffer(net.x0, idx[:8])
    _, g2_ref = net.loss_grad(net.x0, idx[:8])
    assert g2.data_ptr() == ptr and torch.allclose(g2, g2_ref, atol=1e-6, rtol=1e-4)
    assert not any(p.grad is not None for p in net.flat.params if p.dim() == 2)  # no copy left behind


@pytest.mark.parametrize("seed,batch", [(0, 32), (1, 7), (2, 1)])
def test_closed_form_mlp_gradient_is_autograds_to_the_bit(seed, batch):
    # the MLP skips autograd (gradients._LinearStack); it must call the same kernels in the same order
    net = NeuralNet("mlp", 0, None, 64, 16)
    auto = FlatModule(sn.models.build("mlp", 0), closed_form=False)
    assert net.flat.stack is not None and auto.stack is None
    gen = torch.Generator().manual_seed(seed)
    x = net.x0 + 0.05 * torch.randn(net.dim, generator=gen)
    idx = torch.randperm(64, generator=gen)[:batch]
    loss, g = net.flat.loss_grad(x, net.X[idx], net.y[idx])
    loss_auto, g_auto = auto.loss_grad(x, net.X[idx], net.y[idx])
    assert loss == loss_auto and torch.equal(g, g_auto)
    assert (g == 0).any() and not (g == 0).all()  # dead ReLU units exercised, gradient not trivial


def test_closed_form_covers_only_fully_connected_stacks():
    Seq, Lin, ReLU = torch.nn.Sequential, torch.nn.Linear, torch.nn.ReLU
    stack = FlatModule(Seq(torch.nn.Flatten(), Lin(4, 3), ReLU(), Lin(3, 2))).stack
    assert [(layer.relu, tuple(layer.w_shape), layer.b_offset) for layer in stack.layers] == [(True, (3, 4), 12),
                                                                                              (False, (2, 3), 21)]
    assert FlatModule(Seq(Lin(4, 3), Lin(3, 2))).stack is not None  # no activation between: fine
    for module in (Seq(Lin(4, 3), ReLU()),  # ends in ReLU
                   Seq(ReLU(), Lin(4, 3)),  # starts with one
                   Seq(Lin(4, 3, bias=False), Lin(3, 2)),  # no bias
                   Seq(Lin(4, 3), torch.nn.Tanh(), Lin(3, 2)),  # another activation
                   sn.models.build("lenet", 0)):  # convolutions
        assert FlatModule(module).stack is None, module


def test_mlp_fast_path_gives_the_reference_iterates():
    mlp = NeuralNet("mlp", 0, None, TINY["train_size"], TINY["eval_size"])
    cfg = sn.Config(**{**TINY, **PROTOCOLS["k-of-n-reuse"]}, model="mlp")
    (_, xs_ref), (_, xs_fast) = trajectory(cfg, mlp, "reference"), trajectory(cfg, mlp, "fast")
    assert len(xs_ref) == len(xs_fast) == cfg.steps
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-5) for a, b in zip(xs_ref, xs_fast))


@pytest.mark.parametrize("d,density", [(431_080, 0.01), (100_000, 0.001), (50_000, 0.2), (40_000, 0.5)])
def test_prefiltered_topk_keeps_the_same_entries_as_torch_topk(d, density):
    gen = torch.Generator().manual_seed(d)
    v = torch.randn(d, generator=gen) * torch.rand(d, generator=gen) ** 3  # heavy-tailed
    k = compress.kept(d, density)
    ours = compress.topk_indices(v, k)
    ref = torch.topk(v.abs(), k).indices
    assert ours.numel() == k
    assert torch.equal(ours.sort().values, ref.sort().values)


def test_topk_with_mostly_zero_entries_falls_back_exactly():
    v = torch.zeros(200_000)
    v[::1000] = torch.arange(1.0, 201.0)
    idx = compress.topk_indices(v, 150)
    assert idx.numel() == 150 and (v[idx] > 50).all()  # the 150 largest: 51 … 200
    sparse = torch.zeros(200_000)
    sparse[:10] = 1.0
    assert set(compress.topk_indices(sparse, 10).tolist()) == set(range(10))


def test_path_is_validated_and_shares_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    cfg = sn.Config(**{**TINY, **PROTOCOLS["async-synthetic"], "steps": 2})
    with pytest.raises(ValueError, match="path"):
        sn.run(cfg, path="slow")
    first = sn.run(cfg, progress=False, path="fast")
    again = sn.run(cfg, progress=False, path="reference")
    assert again.from_cache and again.history.equals(first.history)


def test_bench_quick_writes_the_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--quick", "--cases", "async-lenet", "--repeats", "1", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "async-lenet" in text and "target" in text
    rows = json.loads(out.read_text())["cases"]
    assert [r["case"] for r in rows] == ["async-lenet"]
    for r in rows:
        assert r["ratio"] > 0 and r["engine_ms"] > 0 and r["plain_ms"] > 0
        assert isinstance(r["met"], bool)
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(SystemExit):
        bench.main(["--cases", "no-such-case"])
