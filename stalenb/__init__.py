"""stalenb — stale gradients in distributed SGD: simulate, run for real, check the claims.

Public API (docs/design.md §S3):

- :class:`Config`, :func:`simulate` (→ DataFrame), :func:`run` (→ :class:`Run` with the
  per-gradient staleness record);
- :mod:`stalenb.staleness` (``Constant``, ``Uniform``, ``Geometric``), :mod:`stalenb.timing`;
- :mod:`stalenb.data` (``mnist``), :mod:`stalenb.models` (``lenet``, ``mlp``);
- :mod:`stalenb.theory` (the poster's theorems as functions).
"""

__version__ = "0.1.0"

from . import claims, compress, data, models, objectives, paths, rates, rules, staleness, theory, timing  # noqa: E402
from .config import Config  # noqa: E402
from .engine import Run, run, simulate  # noqa: E402
from .gradients import NeuralNet, Quadratic  # noqa: E402
from .server import Server  # noqa: E402
from .staleness import Constant, Geometric, Uniform  # noqa: E402
from .timing import Timing  # noqa: E402

__all__ = [
    "Config", "Run", "run", "simulate", "Server", "NeuralNet", "Quadratic", "Timing",
    "Constant", "Uniform", "Geometric", "claims", "compress", "data", "experiments", "models", "objectives",
    "paths", "plotting", "rates", "report", "rules", "speedup", "staleness", "theory", "timing", "tuning",
    "widgets",
    "__version__",
]


# Loaded on first attribute access: they pull in seaborn, ipywidgets or scipy.stats (seconds at
# import, and every torch.distributed rank imports stalenb). Any other submodule (``sn.tuning``,
# ``sn.reproduce``, ...) loads the same way.
LAZY = ("experiments", "plotting", "speedup", "widgets")


def __getattr__(name):
    """``sn.plotting``, ``sn.widgets``, ``sn.experiments``, ``sn.speedup`` … load on first use."""
    import importlib
    import importlib.util

    if name in LAZY or (not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stalenb' has no attribute {name!r}")
