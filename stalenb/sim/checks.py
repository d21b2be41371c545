"""Input validation, one set of rules for every public object and function.

Used by :class:`stalenb.Config`, :mod:`stalenb.staleness`, :mod:`stalenb.timing` and
:mod:`stalenb.theory`. The rules:

- a wrong *type* raises ``TypeError``, a value of the right type out of range raises
  ``ValueError``; both with one line naming the parameter, what is allowed and what was given
  (``"workers must be an integer >= 1, got 0"``);
- numpy scalars are accepted wherever Python numbers are (``numbers.Integral`` /
  ``numbers.Real``); ``bool`` is never taken for a number;
- each check returns the value as a plain Python object: a numpy integer becomes ``int``, a numpy
  float ``float`` (Python ints and floats come back unchanged), so ``Config(steps=np.int64(10))``
  equals ``Config(steps=10)`` and serialises the same. Frozen dataclasses store the returned
  values with :func:`assign`.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

#: Field metadata (``dataclasses.field(metadata=OMIT_DEFAULT)``) for a field added after runs were
#: cached: ``Config.to_dict()`` — the cache key — leaves it out while it holds its default, so every
#: configuration that existed before the field keeps its key.
OMIT_DEFAULT = {"omit_default": True}


def plain(value):
    """A number as the Python number of the same kind (numpy scalars → ``int`` / ``float``)."""
    if type(value) in (int, float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def integer(name: str, value, minimum: int | None = None, maximum: int | None = None, note: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in [minimum, maximum] (bounds optional).

    ``note`` is said in parentheses after the allowed range (why the bound is there).

    Example:
        >>> integer("steps", np.int64(10), minimum=1)
        10
        >>> integer("workers", 2.5, minimum=1)
        Traceback (most recent call last):
        ...
        TypeError: workers must be an integer >= 1, got 2.5
    """
    allowed = "an integer" + _range(None, minimum, None, maximum)
    allowed += f" ({note})" if note else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def real(name: str, value, *, gt=None, ge=None, lt=None, le=None, finite: bool = True, what: str = "number",
         note: str = ""):
    """``value`` (:func:`plain`) if it is a real number (not a bool) within the given bounds.

    Args:
        name: the parameter, as the caller knows it.
        gt, ge, lt, le: bounds (> , >=, <, <=); at most one lower and one upper.
        finite: reject ``inf`` and ``nan`` (``nan`` always fails a bound).
        what: the noun in the message (``"number"``, ``"probability"``).
        note: said in parentheses after the allowed range (``"bytes/s; inf allowed"``).

    Example:
        >>> real("density", 0.5, gt=0, le=1)
        0.5
        >>> real("density", 0.0, gt=0, le=1)
        Traceback (most recent call last):
        ...
        ValueError: density must be a number in (0, 1], got 0.0
    """
    allowed = f"a {'finite ' if finite and lt is None and le is None else ''}{what}{_range(gt, ge, lt, le)}"
    allowed += f" ({note})" if note else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    ok = (math.isfinite(value) or not finite) and (gt is None or value > gt) and (ge is None or value >= ge)
    ok = ok and (lt is None or value < lt) and (le is None or value <= le)
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return plain(value)


def _range(gt, ge, lt, le) -> str:
    low, high = (gt, "(") if gt is not None else (ge, "["), (lt, ")") if lt is not None else (le, "]")
    if low[0] is not None and high[0] is not None:
        return f" in {low[1]}{low[0]}, {high[0]}{high[1]}"
    if low[0] is not None:
        return f" {'>' if gt is not None else '>='} {low[0]}"
    if high[0] is not None:
        return f" {'<' if lt is not None else '<='} {high[0]}"
    return ""


def boolean(name: str, value) -> bool:
    """``value`` as a ``bool`` if it is ``True`` or ``False`` (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(name: str, value, allowed):
    """``value`` if it equals one of ``allowed`` (returned as that entry: a plain ``str``).

    Anything else, whatever its type, is a ``ValueError``: the message lists every allowed value.
    """
    for option in allowed:
        if isinstance(value, type(option)) and value == option:
            return option
    raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def instance(name: str, value, allowed: tuple, optional: bool = False):
    """``value`` if it is an instance of one of the classes ``allowed`` (or ``None`` when ``optional``)."""
    if (value is None and optional) or isinstance(value, allowed):
        return value
    modules = {cls.__module__.replace(".sim.", ".") for cls in allowed}
    names = " / ".join(cls.__name__ for cls in allowed)
    names = f"{modules.pop()}.{names}" if len(modules) == 1 else names
    raise TypeError(f"{name} must be {'None or ' if optional else ''}one of {names}, got {value!r}")


def path(name: str, value, optional: bool = False) -> str | None:
    """``value`` as a ``str`` if it is a path (``str`` or ``os.PathLike``), or ``None`` when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be {'None or ' if optional else ''}a path string, got {value!r}")
    return os.fspath(value)


def assign(obj, **values) -> None:
    """Store validated values on a frozen dataclass (from its ``__post_init__``)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)
