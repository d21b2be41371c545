"""The simulator against references: torch.optim.SGD, hand-computed delayed trajectories."""

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import pytest

import stalenb as sn
from stalenb import cache, data, models
from stalenb.sim.gradients import Quadratic

from helpers import small


def trajectory(config, problem=None):
    xs = []
    run = sn.run(config, problem, cache=False, progress=False, callback=lambda t, x: xs.append(x.clone()))
    return run, xs


def torch_sgd(cfg, momentum=0.0):
    """The plain PyTorch loop on the engine's mini-batches: flat parameters after every step."""
    X, y = data.mnist_tensors(None, train=True, download=True)
    model = models.build(cfg.model, cfg.seed)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=momentum)
    stream = data.BatchStream(cfg.train_size, cfg.seed)
    out = []
    for _ in range(cfg.steps):
        idx = stream.next(cfg.batch_size)
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
        out.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return out


def test_async_tau0_one_worker_equals_torch_sgd_step_for_step():
    cfg = small(protocol="async", workers=1, staleness=sn.Constant(0), lr=0.05, batch_size=32, steps=12)
    _, xs = trajectory(cfg)
    for t, flat in enumerate(torch_sgd(cfg)):
        assert torch.allclose(xs[t], flat, atol=1e-6, rtol=1e-5), f"step {t}"


def test_momentum_equals_torch_sgd_momentum():
    cfg = small(protocol="async", staleness=sn.Constant(0), lr=0.02, momentum=0.9, batch_size=16, steps=8)
    _, xs = trajectory(cfg)
    assert torch.allclose(xs[-1], torch_sgd(cfg, momentum=0.9)[-1], atol=1e-5, rtol=1e-4)


def test_k_equals_n_equals_sync():
    base = small(protocol="sync", workers=4, batch_size=32, steps=10, lr=0.05)
    ref = sn.run(base, cache=False, progress=False).history
    for late in ("drop", "reuse"):
        other = sn.run(base.replace(protocol="k-of-n", k=4, late=late), cache=False, progress=False).history
        pd.testing.assert_frame_equal(ref, other)


def test_step_t_uses_model_from_t_minus_tau():
    # f = ½‖x‖²: the gradient is the model it was computed at, so x_{t+1} − x_t = −lr · x_{t−τ_t}
    prob = Quadratic(a=np.ones(3), x0=np.array([1.0, -2.0, 0.5]))
    cfg = sn.Config(protocol="async", workers=3, staleness=sn.Uniform(5), lr=0.1, steps=40, seed=2)
    run, xs = trajectory(cfg, prob)
    xs = [prob.x0] + xs
    taus = run.updates["staleness"].to_numpy()
    assert taus.max() > 0 and taus[0] == 0
    for t, tau in enumerate(taus):
        assert torch.allclose(xs[t + 1] - xs[t], -0.1 * xs[t - tau], atol=1e-12)


def test_hand_computed_delayed_trajectory_constant_tau():
    # x_{t+1} = x_t − α x_{t−τ_t}, τ_t = min(2, t), 1-D, a = 1, α = 0.5, x_0 = 1:
    # x1 = 1 − 0.5·x0 = 0.5;  x2 = 0.5 − 0.5·x0 = 0;  x3 = 0 − 0.5·x0 = −0.5;
    # x4 = −0.5 − 0.5·x1 = −0.75;  x5 = −0.75 − 0.5·x2 = −0.75
    prob = Quadratic(a=[1.0], x0=[1.0])
    cfg = sn.Config(protocol="async", staleness=sn.Constant(2), lr=0.5, steps=5)
    _, xs = trajectory(cfg, prob)
    assert np.allclose([float(x) for x in xs], [0.5, 0.0, -0.5, -0.75, -0.75])


def test_staleness_aware_divides_by_max_one_tau():
    prob = Quadratic(a=[1.0], x0=[1.0])
    cfg = sn.Config(protocol="async", staleness=sn.Constant(3), lr=0.3, steps=6, rule="staleness-aware")
    run, xs = trajectory(cfg, prob)
    xs = [prob.x0] + xs
    for t, tau in enumerate(run.updates["staleness"]):
        assert torch.allclose(xs[t + 1] - xs[t], -0.3 / max(1, tau) * xs[t - tau])


def test_dc_asgd_lambda_zero_equals_plain_and_lambda_changes_it():
    cfg = small(protocol="async", staleness=sn.Uniform(4), lr=0.05, steps=8)
    plain = trajectory(cfg)[1][-1]
    dc0 = trajectory(cfg.replace(rule="dc-asgd", dc_lambda=0.0))[1][-1]
    dc = trajectory(cfg.replace(rule="dc-asgd", dc_lambda=4.0))[1][-1]
    assert torch.allclose(plain, dc0, atol=1e-6)
    assert not torch.allclose(plain, dc, atol=1e-6)


def test_dc_asgd_compensates_by_hand():
    # d = g + λ g⊙g⊙(x_t − x_read); on f = ½x², g = x_read
    prob = Quadratic(a=[1.0], x0=[2.0])
    cfg = sn.Config(protocol="async", staleness=sn.Constant(1), lr=0.5, steps=2, rule="dc-asgd", dc_lambda=0.1)
    _, xs = trajectory(cfg, prob)
    x1 = 2.0 - 0.5 * 2.0  # step 0 reads x0 (clipped), no delay
    g = 2.0  # step 1 reads x0
    x2 = x1 - 0.5 * (g + 0.1 * g * g * (x1 - 2.0))
    assert np.allclose([float(xs[0]), float(xs[1])], [x1, x2])


def test_same_seed_same_frame_and_other_seed_differs():
    cfg = small(protocol="k-of-n", workers=4, k=2, late="reuse", batch_size=32, steps=10,
              compressor="randomk", density=0.05, error_feedback=True)
    a = sn.run(cfg, cache=False, progress=False)
    b = sn.run(cfg, cache=False, progress=False)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.updates, b.updates)
    other = sn.run(cfg.replace(seed=1), cache=False, progress=False)
    assert not a.history["train_loss"].equals(other.history["train_loss"])


def test_cache_hit_identical_and_truncated_file_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    cfg = small(protocol="async", staleness=sn.Uniform(3), steps=6)
    first = sn.run(cfg, progress=False)
    assert not first.from_cache
    hit = sn.run(cfg, progress=False)
    assert hit.from_cache
    pd.testing.assert_frame_equal(first.history, hit.history)
    pd.testing.assert_frame_equal(first.updates, hit.updates)
    path = cache.path_for(cache.key(cfg))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])  # a killed writer / corrupted file
    again = sn.run(cfg, progress=False)
    assert not again.from_cache
    pd.testing.assert_frame_equal(first.history, again.history)
    assert sn.run(cfg, progress=False).from_cache
    assert not list(tmp_path.glob(".tmp-*"))  # no half-written files left


def test_huge_lr_stops_flagged_without_exception():
    cfg = small(protocol="async", staleness=sn.Constant(0), lr=1e4, steps=50, eval_every=10)
    h = sn.simulate(cfg, cache=False, progress=False)
    assert h["diverged"].iloc[-1] and not h["diverged"].iloc[:-1].any()
    assert h["step"].iloc[-1] < cfg.steps
    assert np.isfinite(h[["train_loss", "test_loss"]].iloc[:-1].to_numpy()).all()


def test_history_columns_and_ranges():
    cfg = small(protocol="k-of-n", workers=4, k=3, late="drop", batch_size=32, steps=10,
              compressor="topk", density=0.01)
    run = sn.run(cfg, cache=False, progress=False)
    h = run.history
    for col in ("step", "sim_time", "samples", "train_loss", "test_loss", "test_acc",
                "staleness_mean", "staleness_max", "bytes_sent", "diverged"):
        assert col in h.columns
    assert list(h["step"]) == [0, 5, 10]
    assert h["test_acc"].between(0, 1).all()
    assert h["sim_time"].is_monotonic_increasing
    d = 431_080
    assert h["bytes_sent"].iloc[-1] == 10 * 3 * 8 * int(np.ceil(0.01 * d))
    assert h["samples"].iloc[-1] == 10 * 3 * 8
    assert (run.updates["applied"].sum(), (~run.updates["applied"]).sum()) == (30, 10)


def test_validation_split_is_held_out_and_evaluated():
    """``validation=v`` trains on the first n − v digits and reports val_loss / val_acc on the last v."""
    from stalenb import gradients

    cfg = sn.Config(protocol="sync", batch_size=16, steps=4, eval_every=2, eval_size=200, model="mlp",
                  validation=500)
    p = gradients.from_config(cfg)
    full = gradients.from_config(cfg.replace(validation=0))
    assert p.n_train == full.n_train - 500 and len(p.y_val) == 500
    assert torch.equal(p.X_val, full.X[-500:]) and torch.equal(p.X, full.X[:-500])
    h = sn.simulate(cfg, cache=False, progress=False)
    assert h["val_acc"].between(0, 1).all() and h["val_loss"].notna().all()
    h0 = sn.simulate(cfg.replace(validation=0), cache=False, progress=False)
    assert h0["val_acc"].isna().all()
    with pytest.raises(ValueError, match="validation must be"):
        sn.Config(validation=-1)


def test_eval_splits_leave_out_splits_and_change_nothing_else():
    """``eval_splits`` computes only the named splits (the others NaN); the iterates, the other
    columns and the evaluated splits' values are those of a run that evaluates everything."""
    cfg = sn.Config(protocol="async", staleness=sn.Uniform(3), batch_size=16, steps=6, eval_every=2, eval_size=200,
                    model="mlp", validation=300)
    full = sn.simulate(cfg, cache=False, progress=False)
    for splits, gone in [(("test",), ["train_loss", "val_loss", "val_acc"]),
                         (("val",), ["train_loss", "test_loss", "test_acc"]),
                         (("train", "val"), ["test_loss", "test_acc"])]:
        part = sn.simulate(cfg.replace(eval_splits=splits), cache=False, progress=False)
        assert part[gone].isna().all().all(), splits
        kept = [c for c in full.columns if c not in gone]
        pd.testing.assert_frame_equal(part[kept], full[kept])
        assert full[gone].notna().all().all()


@pytest.mark.parametrize("splits, message", [
    (("test", "dev"), r"eval_splits entries must be one of 'train', 'test', 'val'; got 'dev'"),
    ((), r"eval_splits must be a non-empty tuple"),
    (["test"], r"eval_splits must be a non-empty tuple"),
    (("test", "test"), r"eval_splits must be a non-empty tuple of distinct names"),
])
def test_bad_eval_splits_name_the_parameter(splits, message):
    with pytest.raises(ValueError, match=message):
        sn.Config(eval_splits=splits)


def test_stop_loss_needs_the_train_split():
    with pytest.raises(ValueError, match=r"stop_loss reads train_loss: eval_splits must contain 'train'"):
        sn.Config(stop_loss=0.5, eval_splits=("test",))


def test_a_run_prints_in_a_few_lines_whatever_its_frames_hold():
    import pandas as pd

    full = sn.run(sn.Config(protocol="sync", workers=2, batch_size=8, steps=2, eval_every=1, train_size=64,
                            eval_size=8), progress=False, cache=False)
    text = repr(full)
    assert text.startswith("Run(protocol='sync'") and "test_acc" in text and "gradients" in text
    assert len(text.splitlines()) <= 3
    # hand-built runs lacking the usual columns print too (they used to raise)
    bare = repr(sn.Run(sn.Config(steps=2), pd.DataFrame({"step": [0, 2]}), pd.DataFrame()))
    assert "2 evaluations; last at step 2; 0 gradients" in bare
    assert "staleness mean 1.5" in repr(sn.Run(sn.Config(), pd.DataFrame(), pd.DataFrame({"staleness": [1, 2]})))
