"""Exact reference iterates from the public reference code: ``python tools/reference_traces.py
--k-git DIR --v-git DIR --out tests/data/reference_traces.json``.

What it does. It extracts two public repositories from their git snapshots with ``git archive``
into a temporary directory, imports their asynchronous-SGD classes from there, unchanged, and
runs them noise-free on the tridiagonal worst-case quadratic of ``docs/reference_methods.md`` §6.1
(L = 1, A = 1/4·tridiag(-1, 2, -1), b = (-1/4, 0, ..., 0), x0 = √d·e1, float64) with fixed worker
times τ_i. For every server update k = 1..N it records the master clock at the moment x_k is
produced and x_k itself. The JSON it writes therefore holds numbers produced by the reference
code, not code: neither repository has a licence, so nothing of theirs is copied into this project;
the snapshot is only read at run time.

- K: ``k3nfalt/optimal-decentralized-optimization`` at 253d2d40366eed42f173a4aaaea7e6e66f6503be
  (package ``code/distributed_optimization_library``).
- V: ``vectozavr/ringmaster-lmo`` at c2ebc8acd4575cdec1374159926fe1419bb47170 (package ``src``).

``--k-git``/``--v-git`` take a bare git directory (or a folder holding one, e.g. the mirror's
``.../repo``).

Problem and workers. The gradient oracle is K's ``StochasticTridiagonalQuadraticFunction`` built
from K's ``create_worst_case(d, 1)`` with ``type_noise="add"`` and ``noise=0`` (it adds
``0·normal()``, so it returns the exact gradient A·x − b; V's HEAD has no function module, and the
same class in V's history, 90da87d ``code/experiments/function.py``, is character-identical). All
n nodes share one function object, as in both repositories' scripts. V classes run on V's
``RandomDelayedAsynchronousTransport(nodes, τ, lambda i: 0.0)``, K classes on K's
``MethodDelayedAsynchronousTransport(nodes, τ)``: job finish = start + τ_i.

How a server update is detected (``step()`` means different things per class):
- V ``RingmasterASGD``, V ``AsynchronousSGD`` (plain and ``delay_adaptive``): one ``step()`` is
  one arrival, which is always one update; checked through the class's update counter ``_iter``.
- V ``RennalaSGD``: one ``step()`` is one round = one update (``_iter`` += 1); the time is the
  master clock after the call, i.e. the B-th arrival of the round.
- V ``IAASGD``: ``step()`` does n updates (plus the table warm-up in the first call), so it is
  called with ``max_events=1``: each call then performs exactly one update (the first call also
  runs the warm-up, which makes no update), and ``get_time()`` after the call is the time of the
  arrival that made it. The script checks that this splitting changes nothing by also running
  ``step()`` with its default n events and comparing every n-th iterate bit for bit. IAASGD
  updates x in place, so every iterate is copied.
- K ``AsynchronousMiniBatchSGD`` (Rennala): one ``step()`` is one arrival; an update happened
  when its update counter ``_iter`` increased.
- K ``AsynchronousSGD``: one ``step()`` is one arrival and ``_iter`` counts arrivals, not
  updates; the class rebinds ``self._point`` only when it applies the gradient (a discarded
  arrival leaves the same array object), so an update is detected by ``get_point()`` returning a
  new object.

Imports. The reference packages import torch, torchvision, matplotlib and sklearn at module
level for code paths not run here. By default these four are replaced by inert stub modules (any
use of a stub object other than attribute access, calling or subclassing raises), which keeps
the run to numpy/scipy and independent of what is installed. ``--real-imports`` stubs only those
that are not installed; both give identical numbers.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import numpy as np

K_REPO = "k3nfalt/optimal-decentralized-optimization"
V_REPO = "vectozavr/ringmaster-lmo"
K_COMMIT = "253d2d40366eed42f173a4aaaea7e6e66f6503be"
V_COMMIT = "c2ebc8acd4575cdec1374159926fe1419bb47170"
K_PACKAGE_DIR = "code/distributed_optimization_library"  # imported as distributed_optimization_library
V_PACKAGE_DIR = "src"  # imported as src
STUBBED = ("torch", "torchvision", "matplotlib", "sklearn")

GAMMA = 0.1
CONFIGS = {
    "B": {"d": 3, "n": 4, "tau": [1.0, 1.375, 2.125, 3.625], "updates": 12},
    "C": {"d": 10, "n": 7, "tau": np.sqrt(np.arange(1, 8, dtype=np.float64)).tolist(), "updates": 40},
}


# ---------------------------------------------------------------------------------------------
# Snapshot extraction and imports
# ---------------------------------------------------------------------------------------------

def find_git_dir(path: str) -> str:
    """Return the bare git directory at ``path`` or directly inside it (e.g. ``path/repo``)."""
    for cand in [Path(path)] + sorted(p for p in Path(path).iterdir() if p.is_dir()):
        ok = subprocess.run(["git", f"--git-dir={cand}", "rev-parse", "--git-dir"],
                            capture_output=True).returncode == 0
        if ok and (cand / "objects").is_dir():
            return str(cand)
    raise SystemExit(f"no git directory found at or inside {path}")


def extract(git_dir: str, commit: str, subdir: str, dest: Path) -> None:
    """``git archive COMMIT SUBDIR`` from ``git_dir``, unpacked under ``dest``."""
    tar = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "--format=tar", commit, subdir],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        try:
            tf.extractall(dest, filter="data")
        except TypeError:  # Python without extraction filters
            tf.extractall(dest)


class _StubMeta(type):
    """Class-level attribute access on a stub class yields another stub class."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub


class _Stub(metaclass=_StubMeta):
    """Stand-in for anything taken from a stubbed module: can be called, subclassed and have
    attributes read; arithmetic or any other use raises, so a stub cannot leak into a number."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Stub()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub


class _StubModule(types.ModuleType):
    """A stub module: every public attribute is :class:`_Stub`."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Meta-path finder that serves ``name`` and all its submodules as :class:`_StubModule`."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def install_stubs(real_imports: bool) -> list[str]:
    """Stub the heavy unused imports (all of :data:`STUBBED`, or only the missing ones)."""
    names = [m for m in STUBBED
             if not real_imports or importlib.util.find_spec(m) is None]
    if names:
        sys.meta_path.insert(0, _StubFinder(names))
    os.environ.setdefault("MPLBACKEND", "Agg")
    return names


def load_reference(k_git: str, v_git: str, tmp: Path, real_imports: bool):
    """Extract both snapshots under ``tmp`` and return their modules as a namespace."""
    extract(k_git, K_COMMIT, K_PACKAGE_DIR, tmp / "K")
    extract(v_git, V_COMMIT, V_PACKAGE_DIR, tmp / "V")
    stubbed = install_stubs(real_imports)
    sys.path[:0] = [str(tmp / "K" / "code"), str(tmp / "V")]
    import importlib
    ns = types.SimpleNamespace(
        k_alg=importlib.import_module("distributed_optimization_library.asynchronous.algorithm"),
        k_tr=importlib.import_module("distributed_optimization_library.asynchronous.asynchronous_transport"),
        k_fun=importlib.import_module("distributed_optimization_library.function"),
        k_sig=importlib.import_module("distributed_optimization_library.signature"),
        v_alg=importlib.import_module("src.asynchronous.algorithm"),
        v_tr=importlib.import_module("src.asynchronous.asynchronous_transport"),
        v_sig=importlib.import_module("src.signature"),
        stubbed=stubbed,
    )
    for mod in vars(ns).values():
        if isinstance(mod, types.ModuleType):
            assert str(tmp) in mod.__file__, f"{mod.__name__} not imported from the snapshot"
    return ns


# ---------------------------------------------------------------------------------------------
# Problem, transports and masters
# ---------------------------------------------------------------------------------------------

def make_function(ref, d: int):
    """K's noise-free worst-case quadratic (L = 1): ``type_noise="add"``, ``noise=0``."""
    main_diag, side_diag, b = ref.k_fun.create_worst_case(d, 1)
    return ref.k_fun.StochasticTridiagonalQuadraticFunction(main_diag, side_diag, b, seed=0, noise=0.0,
                                                            type_noise="add")


def start_point(d: int) -> np.ndarray:
    """x0 = √d·e1 in float64, as in V's quadratic scripts."""
    x0 = np.zeros(d)
    x0[0] = np.sqrt(d)
    return x0


def v_transport(ref, func, tau):
    """V ``RandomDelayedAsynchronousTransport`` with zero time noise: finish = start + τ_i."""
    nodes = [ref.v_sig.Signature(ref.v_alg.StochasticGradientNodeAlgorithm, func) for _ in tau]
    return ref.v_tr.RandomDelayedAsynchronousTransport(nodes, list(tau), lambda i: 0.0)


def k_transport(ref, func, tau):
    """K ``MethodDelayedAsynchronousTransport``: finish = start + 1.0·τ_i."""
    nodes = [ref.k_sig.Signature(ref.k_alg.StochasticGradientNodeAlgorithm, func) for _ in tau]
    return ref.k_tr.MethodDelayedAsynchronousTransport(nodes, list(tau))


def method_table():
    """name -> (repository, class name, constructor params, update detector, step kwargs)."""
    def counter(master, before):
        return master._iter - before[0]

    def rebound(master, before):
        return int(master.get_point() is not before[1])

    return {
        "v_ringmaster_R2": ("V", "RingmasterASGD", {"max_delay": 2, "gamma": GAMMA}, counter, {}),
        "v_ringmaster_R3": ("V", "RingmasterASGD", {"max_delay": 3, "gamma": GAMMA}, counter, {}),
        "v_rennala_B2": ("V", "RennalaSGD", {"batch_size": 2, "gamma": GAMMA}, counter, {}),
        "v_rennala_B5": ("V", "RennalaSGD", {"batch_size": 5, "gamma": GAMMA}, counter, {}),
        "k_rennala_B2": ("K", "AsynchronousMiniBatchSGD", {"batch_size": 2, "gamma": GAMMA}, counter, {}),
        "k_rennala_B5": ("K", "AsynchronousMiniBatchSGD", {"batch_size": 5, "gamma": GAMMA}, counter, {}),
        "v_asgd": ("V", "AsynchronousSGD", {"gamma": GAMMA}, counter, {}),
        "v_asgd_delay_adaptive": ("V", "AsynchronousSGD", {"gamma": GAMMA, "delay_adaptive": True}, counter, {}),
        "k_asgd": ("K", "AsynchronousSGD", {"gamma": GAMMA}, rebound, {}),
        "v_iaasgd": ("V", "IAASGD", {"gamma": GAMMA}, counter, {"max_events": 1}),
    }


def build_master(ref, repo: str, cls_name: str, params: dict, d: int, tau):
    """A fresh master of ``cls_name`` on a fresh transport and function, started at a copy of x0
    (IAASGD mutates its start array in place)."""
    func = make_function(ref, d)
    if repo == "V":
        return getattr(ref.v_alg, cls_name)(v_transport(ref, func, tau), start_point(d), **params)
    return getattr(ref.k_alg, cls_name)(k_transport(ref, func, tau), start_point(d), **params)


def trace(master, updates: int, detector, step_kwargs: dict, max_calls: int = 100_000):
    """Call ``step(**step_kwargs)`` until ``updates`` server updates happened; return the master
    clock and a copy of the iterate at each update, and the number of ``step()`` calls."""
    times, iterates, calls = [], [], 0
    while len(times) < updates:
        if calls >= max_calls:
            raise RuntimeError("too many step() calls without enough updates")
        before = (master._iter, master.get_point())
        master.step(**step_kwargs)
        calls += 1
        made = detector(master, before)
        if made not in (0, 1):
            raise RuntimeError(f"step() made {made} updates; expected 0 or 1")
        if made:
            times.append(float(master.get_time()))
            iterates.append(np.array(master.get_point(), dtype=np.float64).tolist())
    return times, iterates, calls


def check_iaasgd_split(ref, d: int, tau, updates: int, iterates) -> None:
    """Check that ``step(max_events=1)`` reproduces the default ``step()`` (n updates per call)."""
    n = len(tau)
    master = build_master(ref, "V", "IAASGD", {"gamma": GAMMA}, d, tau)
    for call in range(updates // n):
        master.step()
        assert master._iter == (call + 1) * n
        got = np.array(master.get_point()).tolist()
        assert got == iterates[(call + 1) * n - 1], "IAASGD max_events=1 differs from step()"


def run_config(ref, name: str, cfg: dict) -> dict:
    """All methods of :func:`method_table` on one problem/timing configuration."""
    d, tau, updates = cfg["d"], cfg["tau"], cfg["updates"]
    out = {"d": d, "n": cfg["n"], "tau": list(tau), "gamma": GAMMA, "x0": start_point(d).tolist(),
           "updates": updates, "methods": {}}
    assert len(tau) == cfg["n"]
    for method, (repo, cls_name, params, detector, step_kwargs) in method_table().items():
        master = build_master(ref, repo, cls_name, params, d, tau)
        times, iterates, calls = trace(master, updates, detector, step_kwargs)
        if cls_name == "IAASGD":
            check_iaasgd_split(ref, d, tau, updates, iterates)
        out["methods"][method] = {
            "class": f"{repo}:{cls_name}",
            "params": dict(params),
            "step_calls": calls,
            "times": times,
            "iterates": iterates,
        }
    return out


def write_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k-git", required=True, help=f"bare git dir of {K_REPO}")
    parser.add_argument("--v-git", required=True, help=f"bare git dir of {V_REPO}")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--real-imports", action="store_true",
                        help="import torch/torchvision/matplotlib/sklearn when installed instead of stubbing")
    args = parser.parse_args()
    k_git, v_git = find_git_dir(args.k_git), find_git_dir(args.v_git)
    with tempfile.TemporaryDirectory(prefix="reference_traces_") as tmp:
        ref = load_reference(k_git, v_git, Path(tmp), args.real_imports)
        cases = {name: run_config(ref, name, cfg) for name, cfg in CONFIGS.items()}
    data = {
        "provenance": {
            "script": "tools/reference_traces.py",
            "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
            "K": {"repository": K_REPO, "commit": K_COMMIT, "package": K_PACKAGE_DIR},
            "V": {"repository": V_REPO, "commit": V_COMMIT, "package": V_PACKAGE_DIR},
            "function": "K function.StochasticTridiagonalQuadraticFunction(*create_worst_case(d, 1), "
                        "noise=0, type_noise='add'): exact gradient A x - b",
            "transports": "V: RandomDelayedAsynchronousTransport(nodes, tau, lambda i: 0.0); "
                          "K: MethodDelayedAsynchronousTransport(nodes, tau)",
            "times": "master clock (get_time()) when x_k is produced; iterates[k-1] = x_k, k = 1..updates",
            "stubbed_imports": ref.stubbed,
            "numpy": np.__version__,
            "scipy": sys.modules["scipy"].__version__,
        },
        "cases": cases,
    }
    write_atomic(args.out, data)
    print(f"wrote {args.out}: " + ", ".join(f"{c}: {len(v['methods'])} methods" for c, v in cases.items()))


if __name__ == "__main__":
    main()
