"""The late-gradient policies and server rules of the time-optimal literature, and the extension point.

Reference iterates: ``tests/data/reference_traces.json`` holds what the public reference code
(Tyurin & Richtárik's ``k3nfalt/optimal-decentralized-optimization`` and the Ringmaster authors'
``vectozavr/ringmaster-lmo``, run unchanged by ``tools/reference_traces.py``) computes on the
noise-free tridiagonal quadratic with fixed worker times; stalenb must produce the same iterates at
the same times.
"""

import json
import math
import warnings

import numpy as np
import pytest
import torch

import stalenb as sn
from stalenb import paths
from stalenb.distributed import launcher
from stalenb.sim import engine, schedule
from stalenb.sim.gradients import Quadratic, worst_case_quadratic
from stalenb.sim.timing import NoSlowdown, ShiftedExponential, Timing

TRACES = json.loads((paths.repo_root() / "tests" / "data" / "reference_traces.json").read_text())
# the reference classes by the stalenb settings that implement them
AS_CONFIG = {
    "v_ringmaster_R2": dict(protocol="ringmaster", max_delay=2, cancel_stale=True),
    "v_ringmaster_R3": dict(protocol="ringmaster", max_delay=3, cancel_stale=True),
    "v_rennala_B2": dict(protocol="rennala", k=2, cancel_stale=True),
    "v_rennala_B5": dict(protocol="rennala", k=5, cancel_stale=True),
    "k_rennala_B2": dict(protocol="rennala", k=2),
    "k_rennala_B5": dict(protocol="rennala", k=5),
    "v_asgd": dict(protocol="async"),
    "v_asgd_delay_adaptive": dict(protocol="async", rule="delay-adaptive"),
    "v_iaasgd": dict(protocol="gradient-table"),
}
# K's AsynchronousSGD discards a gradient when more than n *arrivals* happened since its read: no
# stalenb policy counts arrivals (Ringmaster counts updates), so it is not compared.
NOT_COMPARED = {"k_asgd"}
FREE = dict(per_sample=1.0, slowdown=NoSlowdown(), latency=0.0, bandwidth=math.inf)


def reference_run(case: dict, steps: int, **settings):
    """stalenb on the reference problem: job time τ_i exactly (1 sample × 1 s × factor τ_i), free links."""
    problem = worst_case_quadratic(case["d"], x0=torch.tensor(case["x0"], dtype=torch.float64))
    cfg = sn.Config(workers=case["n"], batch_size=1, lr=case["gamma"], steps=steps, eval_every=1,
                    timing=Timing(factors=tuple(case["tau"]), **FREE), **settings)
    xs = []
    run = sn.run(cfg, problem, cache=False, progress=False, callback=lambda t, x: xs.append(x.clone()))
    return run, xs


def test_every_reference_method_is_compared_or_says_why():
    for case in TRACES["cases"].values():
        assert set(case["methods"]) == set(AS_CONFIG) | NOT_COMPARED


@pytest.mark.parametrize("method", sorted(AS_CONFIG))
@pytest.mark.parametrize("name", sorted(TRACES["cases"]))
def test_iterates_and_times_equal_the_reference_code(name, method):
    case = TRACES["cases"][name]
    ref = case["methods"][method]
    run, xs = reference_run(case, len(ref["times"]), **AS_CONFIG[method])
    times = run.history["sim_time"].to_numpy()[1:]
    np.testing.assert_allclose(times, ref["times"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch.stack(xs).numpy(), np.array(ref["iterates"]), rtol=0, atol=1e-12)


def test_the_reference_cases_tell_the_policies_apart():
    # the comparison above means something only if the policies produce different trajectories
    case = TRACES["cases"]["C"]
    finals = {m: tuple(np.round(v["iterates"][-1], 9)) for m, v in case["methods"].items()}
    times = {m: v["times"][-1] for m, v in case["methods"].items()}
    assert len(set(finals.values())) >= 7 and len(set(times.values())) >= 6


# -- hand-computed trajectories -------------------------------------------------------------
def hand_config(**settings):
    # gradient = x (a = 1, x* = 0): each step's arithmetic is visible; τ = (1, 3): w1 thrice as fast
    timing = Timing(factors=(1.0, 3.0), **FREE)
    return sn.Config(workers=2, batch_size=1, lr=0.5, eval_every=1, timing=timing, **settings)


def hand_run(**settings):
    xs = []
    run = sn.run(hand_config(**settings), Quadratic(a=[1.0], x0=[1.0]), cache=False, progress=False,
                 callback=lambda t, x: xs.append(float(x)))
    return run, xs


def test_plain_ringmaster_finishes_a_stale_job_and_discards_it():
    # w1 (τ=1) pushes at t = 1, 2, 3 (reading x0, x1, x2); w2 (τ=3) read x0 and arrives at t = 3 after
    # the updates at 1 and 2 and after w1's arrival at 3 (ties go to the lower worker): delay 3 >= R = 2,
    # discarded; w2 restarts on x3 at t = 3. x_{t+1} = x_t − ½ x_t = x_t / 2 on w1's fresh gradients.
    run, xs = hand_run(protocol="ringmaster", max_delay=2, steps=4)
    assert xs == [0.5, 0.25, 0.125, 0.0625]
    dropped = run.updates[~run.updates["applied"]]
    assert dropped[["worker", "version", "staleness"]].values.tolist() == [[1, 0, 3]]
    assert run.history["sim_time"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_ringmaster_with_a_large_bound_is_asynchronous_sgd():
    a, xa = hand_run(protocol="ringmaster", max_delay=100, steps=6)
    b, xb = hand_run(protocol="async", steps=6)
    assert xa == xb and a.updates.equals(b.updates)
    # at t = 3 w1's gradient of x2 comes first (tie, lower index): x3 = 0.125; then w2's gradient of
    # x0 (delay 3) is applied in full: x4 = x3 − ½ x0 = −0.375
    assert xa[2:4] == [0.125, -0.375]


def test_rennala_waits_for_b_fresh_gradients_from_whoever_is_fast():
    # B = 2: w1 delivers both gradients of x0 (t = 1, 2): x1 = x0 − ½ (x0 + x0)/2 = 0.5 at t = 2;
    # w2's gradient of x0 arrives at t = 3, stale: discarded; w1 delivers x1's two at t = 3, 4.
    run, xs = hand_run(protocol="rennala", k=2, steps=2)
    assert xs == [0.5, 0.25]
    assert run.history["sim_time"].tolist() == [0.0, 2.0, 4.0]
    assert run.updates[~run.updates["applied"]][["worker", "version"]].values.tolist() == [[1, 0]]


def test_gradient_table_steps_on_the_mean_of_every_workers_latest_gradient():
    # events (ties go to the lower worker):
    #   t=1, 2, 3: w1 (x0 each time, no update yet); t=3: w2 (x0) → table {w1: x0, w2: x0} full, no update
    #   t=4 w1(x0) → x1 = x0 − ½·(x0 + x0)/2 = 0.5
    #   t=5 w1(x1) → table {w1: x1, w2: x0} → x2 = 0.5 − ½·(0.5 + 1)/2 = 0.125
    #   t=6 w1(x2) → x3 = 0.125 − ½·(0.125 + 1)/2 = −0.15625
    #   t=6 w2(x0) (restarted at t = 3, still on x0) → x4 = −0.15625 − ½·(0.125 + 1)/2 = −0.4375
    run, xs = hand_run(protocol="gradient-table", steps=4)
    assert xs == [0.5, 0.125, -0.15625, -0.4375]
    assert run.history["sim_time"].tolist() == [0.0, 4.0, 5.0, 6.0, 6.0]


@pytest.mark.parametrize("rule,expected", [("delay-adaptive", 4 / 6), ("poly-staleness", 7 ** -0.5)])
def test_reweighting_rules_scale_a_stale_gradient(rule, expected):
    g = torch.ones(3)
    cfg = sn.Config(workers=4, rule=rule)
    d = sn.rules.direction(rule, g, 6, config=cfg)
    assert torch.allclose(d, expected * g)
    assert torch.equal(sn.rules.direction(rule, g, 0, config=cfg), g)  # a fresh one is untouched
    assert torch.equal(sn.rules.direction("delay-adaptive", g, 4, config=cfg), g)  # δ <= n: full step


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("settings,words", [
    (dict(protocol="async", max_delay=3), "max_delay applies only to protocol 'ringmaster'"),
    (dict(protocol="k-of-n", cancel_stale=True), "cancel_stale applies only to protocol 'rennala' or 'ringmaster'"),
    (dict(protocol="k-of-n", workers=2, k=3, batch_size=4), "k must satisfy 1 <= k <= workers"),
    (dict(protocol="ringmaster", max_delay=0), "max_delay must be an integer >= 1"),
    (dict(rule="poly-staleness", poly_exponent=-1.0), "poly_exponent must be a finite number >= 0"),
    (dict(protocol="hogwild"), "protocol must be one of 'sync', 'async', 'k-of-n', 'rennala', 'ringmaster'"),
])
def test_bad_policy_settings_name_the_parameter(settings, words):
    with pytest.raises(ValueError, match=words):
        sn.Config(**settings)


def test_rennala_batch_may_exceed_the_workers():
    assert sn.Config(protocol="rennala", workers=2, k=5).k_eff == 5


def test_runs_stop_at_a_target_loss_or_a_time_limit():
    # gradient = x, lr ½, one worker of time 1: x_t = 2^−t, f = x²/2 = 2^−(2t+1), update t at time t + 1
    base = dict(protocol="async", workers=1, batch_size=1, lr=0.5, steps=50, eval_every=2,
                timing=Timing(factors=(1.0,), **FREE))
    prob = Quadratic(a=[1.0], x0=[1.0])
    by_loss = sn.run(sn.Config(**base, stop_loss=2.0 ** -9), prob, cache=False, progress=False).history
    assert by_loss["step"].tolist() == [0, 2, 4] and by_loss["train_loss"].iloc[-1] == 2.0 ** -9
    by_time = sn.run(sn.Config(**base, time_limit=6.5), prob, cache=False, progress=False).history
    assert by_time["step"].tolist() == [0, 2, 4, 6, 7] and by_time["sim_time"].iloc[-1] == 7.0
    assert not by_time["diverged"].any()


def test_the_real_driver_refuses_simulator_only_protocols():
    for protocol in ("rennala", "ringmaster", "gradient-table"):
        with pytest.raises(ValueError, match="protocol must be one of 'sync', 'async', 'k-of-n' for real runs"):
            launcher.check(sn.Config(protocol=protocol, workers=2, timing=Timing()))
    with pytest.raises(ValueError, match="time_limit must be None for real runs"):
        launcher.check(sn.Config(time_limit=5.0))


# -- the extension point -----------------------------------------------------------------------
class Halved(sn.rules.Rule):
    name, linear = "test-halved", True

    def direction(self, g, lag, *, x_now, x_read, config):
        return 0.5 * g


@pytest.fixture
def halved():
    rule = sn.rules.register(Halved())
    yield rule
    sn.rules.RULES.unregister(rule.name)


def test_a_registered_rule_runs_in_both_paths_and_halves_the_step(halved):
    prob = Quadratic(a=[1.0], x0=[1.0])
    cfg = sn.Config(protocol="async", staleness=sn.Constant(0), lr=0.5, steps=3, eval_every=1, rule=halved.name)
    for path in ("reference", "fast"):
        xs = []
        sn.run(cfg, prob, cache=False, progress=False, path=path, callback=lambda t, x: xs.append(float(x)))
        assert xs == [0.75, 0.5625, 0.421875], path  # x ← x − ½·½·x
    assert halved.name in sn.config.CHOICES["rule"]


def test_a_registered_protocol_runs_and_is_listed():
    def every_other(s):
        """Asynchronous SGD that applies only the gradients of even-numbered workers."""
        jobs, t, dropped = schedule.Jobs(s), 0, []
        for w in range(s.cfg.workers):
            jobs.start(w, 0.0, 0)
        while t < s.cfg.steps:
            push, arrive = jobs.next()
            if push.worker % 2:
                dropped.append(push)
                jobs.start(push.worker, arrive, t)
                continue
            jobs.start(push.worker, arrive, t + 1)
            yield schedule.Update(t, arrive, [push], dropped)
            dropped, t = [], t + 1

    schedule.register("test-even", schedule.Protocol(every_other))
    try:
        cfg = sn.Config(protocol="test-even", workers=4, steps=12, timing=Timing(slowdown=ShiftedExponential(1.0)))
        run = sn.run(cfg, Quadratic(a=np.ones(3)), cache=False, progress=False)
        applied = run.updates[run.updates["applied"]]
        assert len(applied) == 12 and set(applied["worker"]) == {0, 2}
        assert set(run.updates[~run.updates["applied"]]["worker"]) == {1, 3}
    finally:
        sn.schedule.PROTOCOLS.unregister("test-even")


def test_a_registered_rule_is_part_of_the_cache_key(halved, tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    cfg = sn.Config(protocol="async", staleness=sn.Constant(1), rule=halved.name, steps=2, eval_every=1,
                    train_size=64, eval_size=8)
    first = sn.run(cfg, progress=False)
    assert not first.from_cache and sn.run(cfg, progress=False).from_cache

    class Halved2(sn.rules.Rule):  # the user edits the rule: same name, other code
        name, linear = halved.name, True

        def direction(self, g, lag, *, x_now, x_read, config):
            return 0.25 * g

    sn.rules.register(Halved2(), replace=True)
    edited = sn.run(cfg, progress=False)
    assert not edited.from_cache
    assert not np.allclose(edited.history["train_loss"], first.history["train_loss"])


def test_a_rule_without_readable_source_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))
    scope = {"Rule": sn.rules.Rule}
    exec("class Typed(Rule):\n    name, linear = 'test-typed', True\n"
         "    def direction(self, g, lag, *, x_now, x_read, config):\n        return g\n", scope)
    sn.rules.register(scope["Typed"]())
    try:
        cfg = sn.Config(protocol="async", staleness=sn.Constant(0), rule="test-typed", steps=1,
                        train_size=64, eval_size=8)
        with pytest.warns(UserWarning, match="not cached: the source of rule 'test-typed' cannot be read"):
            sn.run(cfg, progress=False)
        with warnings.catch_warnings(record=True):
            assert not sn.run(cfg, progress=False).from_cache
    finally:
        sn.rules.RULES.unregister("test-typed")


def test_builtins_cannot_be_replaced_or_removed():
    with pytest.raises(ValueError, match="built in"):
        sn.rules.register(Halved.__new__(type("X", (Halved,), {"name": "sgd"})), replace=True)
    with pytest.raises(ValueError, match="built in"):
        sn.schedule.PROTOCOLS.unregister("async")


@pytest.mark.parametrize("settings", [dict(protocol="async"), dict(protocol="gradient-table"),
                                      dict(protocol="ringmaster", max_delay=50), dict(protocol="rennala", k=20)])
def test_snapshots_held_never_outnumber_the_jobs_in_flight(settings, monkeypatch):
    # 300 workers of times √i: the slowest job spans ~570 updates, but only the versions that jobs in
    # flight read are held (issue 24: memory bounded by the jobs in flight, not by the staleness)
    held = []
    keep = engine._Versions.keep
    monkeypatch.setattr(engine._Versions, "keep", lambda self, v, x: (keep(self, v, x), held.append(len(self.slots))))
    cfg = sn.Config(workers=300, batch_size=1, steps=3000, lr=1e-4,
                    timing=Timing(factors=sn.timing.sqrt_factors(300), **FREE), **settings)
    run = sn.run(cfg, Quadratic(a=np.ones(4)), cache=False, progress=False)
    if settings["protocol"] in ("async", "gradient-table"):
        assert run.updates["staleness"].max() > 300  # the staleness does exceed the workers ...
    assert 0 < max(held) <= 300  # ... the snapshots held do not


def test_the_scale_benchmark_row_compares_10000_workers_with_4():
    from stalenb.repro import bench

    row = bench.quadratic_scale_row(2, 3, quick=True)
    assert row["case"] == "quadratic-10000-workers" and row["target"] == 2.0 and row["ratio"] > 0


def test_a_pinned_source_keys_an_entry_received_by_value():
    registry = sn.sim.registry.Registry("rule")
    registry.register("mine", Halved(), source="the parent's source")
    assert registry.source("mine") == "the parent's source"
    registry.register("mine", Halved(), replace=True)  # re-registered without a pin: read from the class
    assert "class Halved" in registry.source("mine") and registry.source("mine") != "the parent's source"
    assert sn.rules.RULES.source("sgd") == ""  # built-ins: keyed by the simulator's own hash
