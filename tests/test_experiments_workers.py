"""``run_all`` with worker processes as a researcher meets it (issue 25, item 4): classes defined in a
notebook or a script (``__main__``) reach the workers, on loky's pool (``jobs``) and on an executor
that starts its workers with *spawn*; a script without a main guard runs once under ``jobs`` and,
under a spawn executor (which re-runs its top level in every worker), fails with one line naming
the cure instead of a screen of multiprocessing tracebacks.

The user's delay model ``Late`` returns 3 τ instead of τ, so the runs prove the workers executed the
notebook's / script's own code: the applied staleness reaches 3 (clipped to the step), where the
built-in ``Constant(1)`` would never exceed 1.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

import stalenb as sn
from stalenb import experiments as ex

SETUP = """\
import os
os.environ.setdefault("TQDM_DISABLE", "1")
from dataclasses import dataclass
import stalenb as sn
from stalenb import experiments as ex

BASE = sn.Config(model="mlp", batch_size=16, steps=6, eval_every=6, train_size=256, eval_size=64)
"""
LATE = """\
@dataclass(frozen=True)
class Late(sn.Constant):
    '''A user's delay model: three times the nominal delay.'''
    @property
    def tau_max(self):
        return 3 * self.tau

    def sample(self, rng):
        return 3 * self.tau
"""
# Staleness applied at steps 0..5 by Late(1) (3, clipped to the step) and by Constant(1).
LATE_STALENESS = [0, 1, 2, 3, 3, 3]
CONSTANT_STALENESS = [0, 1, 1, 1, 1, 1]


def _env(tmp_path) -> dict:
    return {**os.environ, "STALENB_CACHE": str(tmp_path / "cache"), "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}


# -- what travels by value -----------------------------------------------------------------------
def test_only_configs_holding_a_local_class_travel_by_value():
    @dataclass(frozen=True)
    class Local(sn.Constant):
        def sample(self, rng):
            return 3 * self.tau

    plain = sn.Config(staleness=sn.Constant(2))
    local = sn.Config(staleness=Local(2))
    assert ex._ship(plain) is plain  # importable classes: the config itself (plain pickle finds them)
    shipped = ex._ship(local)
    assert isinstance(shipped, ex._ByValue)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(local)  # what a plain executor would have tried
    back, plugins = pickle.loads(pickle.dumps(shipped)).load()  # plain pickle on the way, as a worker gets it
    assert plugins == ()
    assert type(back.staleness).__name__ == "Local" and back.staleness.tau == 2
    assert back.staleness.sample(None) == 6  # the class's own code came along
    assert back.replace(staleness=sn.Constant(2)) == plain


def test_a_config_a_worker_cannot_rebuild_fails_in_one_line():
    bad = ex._ByValue(sn.Config())
    bad.blob = b"cno_such_module\nLate\n."  # a class in a module the worker cannot import
    with pytest.raises(RuntimeError, match="could not rebuild the run's Config") as err:
        bad.load()
    assert "\n" not in str(err.value) and err.value.__cause__ is None and err.value.__suppress_context__


def test_run_all_runs_a_users_rule_in_worker_processes_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_CACHE", str(tmp_path))

    class Tripled(sn.rules.Rule):  # local: travels by value, and its source comes along for the key
        name, linear = "test-tripled", True

        def direction(self, g, lag, *, x_now, x_read, config):
            return 3.0 * g

    sn.rules.register(Tripled())
    try:
        base = sn.Config(protocol="async", staleness=sn.Constant(1), steps=3, eval_every=3, train_size=128,
                         eval_size=16, model="mlp", rule="test-tripled")
        specs = ex.product(base, seed=[0, 1])
        first = ex.run_all(specs, jobs=2, progress=False)
        assert first.from_cache == 2  # computed by the workers, read back from the cache under the same key
        here = sn.run(base.replace(seed=1), progress=False)
        assert here.from_cache and here.history.equals(first.runs[1].history)
        alone = sn.run(base.replace(seed=1, rule="sgd"), cache=False, progress=False)
        assert not here.history["train_loss"].equals(alone.history["train_loss"])  # the rule did act
    finally:
        sn.rules.RULES.unregister("test-tripled")


# -- a notebook ------------------------------------------------------------------------------------
NOTEBOOK_CELLS = [
    SETUP + "import concurrent.futures as cf, multiprocessing as mp\n"
            "spawned = cf.ProcessPoolExecutor(2, mp_context=mp.get_context('spawn'))",
    LATE,  # defined after the spawn pool exists (its workers never saw it)
    "late = ex.product(BASE, tau={'late': {'staleness': Late(1)}, 'const': {'staleness': sn.Constant(1)}},"
    " seed=[0, 1])\n"
    "pooled = ex.run_all(late, jobs=2, progress=False)\n"
    "os.environ['STALENB_CACHE'] += '-spawn'\n"
    "on_spawn = ex.run_all(late, executor=spawned, progress=False)\n"
    "spawned.shutdown(); ex.close_pool()",
    "import json\n"
    "print(json.dumps({name: {'cached': r.from_cache, 'staleness': {k: g.staleness.tolist() for k, g in "
    "r.updates[r.updates.seed == 0].groupby('tau')}} for name, r in [('pool', pooled), ('spawn', on_spawn)]}))",
]


@pytest.mark.slow
def test_run_all_in_a_notebook_runs_classes_defined_in_the_notebook(tmp_path):
    """Executed in a real Jupyter kernel (nbclient), as a person runs the cells."""
    import json

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    old = dict(os.environ)
    os.environ.update(_env(tmp_path))  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    out = json.loads(nb.cells[-1].outputs[0]["text"])
    for name in ("pool", "spawn"):
        assert out[name]["cached"] == 4, f"{name}: every run computed by a worker and read back"
        assert out[name]["staleness"] == {"late": LATE_STALENESS, "const": CONSTANT_STALENESS}, name
    assert len(list((tmp_path / "cache").glob("run-*.npz"))) == 4
    assert len(list((tmp_path / "cache-spawn").glob("run-*.npz"))) == 4


# -- a script ------------------------------------------------------------------------------------------
def _script(tmp_path, run_call: str, guard: bool = False) -> subprocess.CompletedProcess:
    body = (LATE + "specs = ex.product(BASE, tau={'late': {'staleness': Late(1)}}, seed=[0, 1])\n"
            + run_call + "\n"
            "print('STALENESS', res.updates[res.updates.seed == 0].staleness.tolist(), res.from_cache)\n")
    if guard:
        body = "if __name__ == '__main__':\n" + textwrap.indent(body, "    ")
    script = tmp_path / "experiment.py"
    script.write_text(SETUP + "print('TOP LEVEL', flush=True)\n" + body)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_an_unguarded_script_runs_its_top_level_once_with_jobs(tmp_path):
    done = _script(tmp_path, "res = ex.run_all(specs, jobs=2, progress=False)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("TOP LEVEL") == 1  # loky's workers never import the script
    assert f"STALENESS {LATE_STALENESS} 2" in done.stdout  # both runs computed by workers, with Late's code


SPAWN = ("import concurrent.futures as cf, multiprocessing as mp\n"
         "with cf.ProcessPoolExecutor(2, mp_context=mp.get_context('spawn')) as pool:\n"
         "    res = ex.run_all(specs, executor=pool, progress=False)")


@pytest.mark.slow
def test_an_unguarded_script_under_a_spawn_executor_fails_in_one_line_naming_the_guard(tmp_path):
    done = _script(tmp_path, SPAWN)
    assert done.returncode == 1 and "STALENESS" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: a worker process of the executor died")
    assert 'if __name__ == "__main__":' in last and "run_all(jobs=n)" in last
    # each worker stopped with the one line, not multiprocessing's bootstrapping screen
    assert "re-ran the script's top level" in done.stderr
    assert "An attempt has been made to start a new process" not in done.stderr
    assert done.stderr.count("Traceback") == 1  # this process's own, ending in the one line


@pytest.mark.slow
def test_a_guarded_script_runs_its_classes_on_a_spawn_executor(tmp_path):
    done = _script(tmp_path, SPAWN, guard=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"STALENESS {LATE_STALENESS} 2" in done.stdout
