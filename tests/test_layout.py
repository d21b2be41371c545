"""The package layout the cache key relies on: the simulator's numbers come from ``stalenb/sim/`` only."""

import ast
import importlib

import stalenb as sn
from stalenb import cache

#: Top-level modules the simulator may use: plumbing that never changes a number.
PLUMBING = {"paths", "cache", "files"}


def _relative_imports(path):
    """(level, module, names) of every relative import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            yield node.level, node.module, [a.name for a in node.names]


def test_the_simulator_imports_nothing_outside_its_folder_but_plumbing():
    sim = cache.PACKAGE / cache.SIMULATOR
    for path in sorted(sim.glob("*.py")):
        for level, module, names in _relative_imports(path):
            if level == 1:
                continue  # inside stalenb/sim
            assert level == 2, (path.name, level, module)
            top = [module.split(".")[0]] if module else names
            outside = set(top) - PLUMBING - {"sim"}
            assert not outside, f"stalenb/sim/{path.name} imports {sorted(outside)}: its edits would not reach the cache key"


def test_the_short_names_are_the_simulators_modules():
    for name in sn.SIMULATOR:
        assert importlib.import_module(f"stalenb.{name}") is importlib.import_module(f"stalenb.sim.{name}"), name
    from stalenb.timing import Timing

    assert Timing is sn.Timing is sn.sim.timing.Timing


def test_the_package_is_cut_into_concern_folders():
    folders = {p.name for p in cache.PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == {"sim", "distributed", "repro"}
    assert not any((cache.PACKAGE / f"{name}.py").exists() for name in sn.SIMULATOR)  # no second copy
