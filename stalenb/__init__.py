"""stalenb — stale gradients in distributed SGD: simulate, run for real, check the claims.

Public API (docs/design.md §S3):

- :class:`Config`, :func:`simulate` (→ DataFrame), :func:`run` (→ :class:`Run` with the
  per-gradient staleness record);
- :mod:`stalenb.staleness` (``Constant``, ``Uniform``, ``Geometric``, ``Trace``: replayed delays; loaders in :mod:`stalenb.traces`), :mod:`stalenb.timing`;
- :mod:`stalenb.data` (``mnist``), :mod:`stalenb.models` (``lenet``, ``mlp``);
- :mod:`stalenb.theory` (the poster's theorems as functions).

The package has one folder per concern:

- ``stalenb/sim/`` — the simulator: everything a simulated run's numbers depend on (config,
  staleness, timing, schedule, compress, rules, server, gradients, models, data, objectives,
  engine, history). Its modules are also importable under their short names (``stalenb.data``,
  ``stalenb.timing``, …: the names of the design's public API), which are the same module objects;
- ``stalenb/distributed/`` — the real driver on torch.distributed;
- ``stalenb/repro/`` — the machinery behind the make targets (notebook runner, report, benchmark);
- top level — what the notebooks use: theory, rates, speedup, experiments, backup, tuning, claims
  and stats, plotting, widgets, and the results cache, paths and atomic files.
"""

__version__ = "0.1.0"

import sys as _sys

from . import claims, paths, rates, theory  # noqa: E402, F401
from .sim import (  # noqa: E402, F401
    compress, config, data, engine, gradients, history, models, objectives, rules, schedule, server, staleness,
    timing,
)
from .sim.config import Config  # noqa: E402
from .sim.engine import Run, run, simulate  # noqa: E402
from .sim.gradients import NeuralNet, Quadratic  # noqa: E402
from .sim.server import Server  # noqa: E402
from .sim.staleness import Constant, Geometric, Trace, Uniform  # noqa: E402
from .sim.timing import Timing  # noqa: E402

#: The simulator's modules under their short, public names: ``import stalenb.timing`` and
#: ``from stalenb.data import mnist`` give the very modules of ``stalenb/sim/``.
SIMULATOR = ("compress", "config", "data", "engine", "gradients", "history", "models", "objectives", "rules",
             "schedule", "server", "staleness", "timing")
for _name in SIMULATOR:
    _sys.modules[f"{__name__}.{_name}"] = _sys.modules[f"{__name__}.sim.{_name}"]

__all__ = [
    "Config", "Run", "run", "simulate", "Server", "NeuralNet", "Quadratic", "Timing",
    "Constant", "Uniform", "Geometric", "Trace", "backup", "claims", "compress", "data", "experiments", "models",
    "objectives", "paths", "plotting", "rates", "rules", "speedup", "staleness", "stats", "theory", "timing", "tuning",
    "widgets",
    "__version__",
]


# Loaded on first attribute access: they pull in seaborn, ipywidgets or scipy.stats (seconds at
# import, and every torch.distributed rank imports stalenb). Any other submodule (``sn.tuning``,
# ``sn.distributed``, ...) loads the same way.
LAZY = ("backup", "experiments", "plotting", "speedup", "stats", "widgets")


def __getattr__(name):
    """``sn.plotting``, ``sn.widgets``, ``sn.experiments``, ``sn.speedup`` … load on first use."""
    import importlib
    import importlib.util

    if name in LAZY or (not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stalenb' has no attribute {name!r}")
