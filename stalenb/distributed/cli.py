"""The command line of ``python -m stalenb.distributed``, built from :class:`stalenb.Config`'s fields.

Every ``Config`` field is an option named after it (``lag_weights`` → ``--lag-weights``), with the
field's type, its default (``Config()``'s value) and, for string fields, the allowed values of
:data:`stalenb.config.CHOICES` — so the command line cannot drift from ``Config``. Special forms:

- booleans: ``--error-feedback`` / ``--no-error-feedback``;
- optional numbers and paths: the word ``none`` gives ``None`` (``--eval-size none``);
- ``--lag-weights 1 0.5 0.25``: one number per lag;
- model objects as a kind and its numbers, in the dataclass's field order:
  ``--staleness none | constant TAU | uniform TAU_MAX | geometric P TAU_MAX`` and, for the
  ``timing`` field, ``--slowdown none | shifted-exponential MEAN | log-normal SIGMA | straggler P FACTOR``
  next to ``--per-sample``, ``--latency``, ``--bandwidth`` (the other :class:`stalenb.Timing` fields).

:func:`to_argv` writes a ``Config`` as such arguments and :func:`config_from` reads them back;
:func:`stalenb.distributed.launch` starts its ranks with them.

Example:
    >>> import stalenb as sn
    >>> cfg = sn.Config(protocol="k-of-n", workers=4, k=2, late="reuse", lag_weights=(1.0, 0.5))
    >>> config_from(parser().parse_args(to_argv(cfg)), 4) == cfg
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing

from ..sim import staleness as _staleness
from ..sim import timing as _timing
from ..sim.config import CHOICES, Config

MODEL_KINDS = {"staleness": _staleness.MODELS, "slowdown": _timing.SLOWDOWNS}
NONE = "none"  # the word for None (and for NoSlowdown)
LOCAL = {  # options of the run, not of the Config: (argparse keywords)
    "factors": dict(type=float, nargs="+", default=None, help="fixed slowdown per worker (>= 1)"),
    "timeout": dict(type=float, default=60.0, help="seconds of silence before the run is ended"),
    "addr": dict(default="127.0.0.1", help="local launch: address rank 0 listens on"),
    "threads": dict(type=int, default=1, help="torch threads per process"),
    "out": dict(default=None, help="folder for history.csv and updates.csv"),
}


def kind_name(cls: type) -> str:
    """``ShiftedExponential`` → ``shifted-exponential``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()


def _kinds(family: str) -> dict[str, type | None]:
    out = {kind_name(cls): cls for cls in MODEL_KINDS[family]}
    out[NONE] = _timing.NoSlowdown if family == "slowdown" else None
    return out


def parse_model(family: str, tokens) -> object:
    """A model object (or None) from ``[kind, number, ...]``; numbers fill the fields in order."""
    kinds = _kinds(family)
    kind, *values = tokens
    if kind not in kinds:
        raise argparse.ArgumentTypeError(f"--{family} must start with one of {', '.join(kinds)}, got {kind!r}")
    cls = kinds[kind]
    if cls is None:
        return None
    fields, hints = dataclasses.fields(cls), typing.get_type_hints(cls)
    if len(values) > len(fields):
        raise argparse.ArgumentTypeError(f"--{family} {kind} takes at most {len(fields)} numbers, got {values}")
    return cls(**{f.name: hints[f.name](v) for f, v in zip(fields, values)})


def format_model(value) -> list[str]:
    """The tokens :func:`parse_model` reads back into ``value``."""
    if value is None:
        return [NONE]
    return [kind_name(type(value))] + [repr(getattr(value, f.name)) for f in dataclasses.fields(value)]


def _optional(kind):
    def convert(text: str):
        return None if text.lower() == NONE else kind(text)
    convert.__name__ = kind.__name__
    return convert


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _fields():
    """``(name, type hint, default)`` of the command line's fields: Config's, with ``timing`` expanded."""
    defaults, hints = Config(), typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name == "timing":
            t_hints = typing.get_type_hints(_timing.Timing)
            for tf in dataclasses.fields(_timing.Timing):
                yield tf.name, t_hints[tf.name], getattr(defaults.timing, tf.name)
        else:
            yield f.name, hints[f.name], getattr(defaults, f.name)


def parser() -> argparse.ArgumentParser:
    """The argument parser: one option per Config field (``timing`` as its own fields) + :data:`LOCAL`."""
    p = argparse.ArgumentParser(prog="python -m stalenb.distributed",
                                description="A parameter server and workers on torch.distributed.")
    for name, hint, default in _fields():
        opt, args = _option(name), typing.get_args(hint)
        if name in MODEL_KINDS:
            p.add_argument(opt, nargs="+", default=format_model(default), metavar="KIND [NUMBER ...]",
                           help=f"one of {', '.join(_kinds(name))}, then its numbers")
        elif name in CHOICES:
            p.add_argument(opt, default=default, choices=CHOICES[name])
        elif hint is bool:
            p.add_argument(opt, default=default, action=argparse.BooleanOptionalAction)
        elif hint is tuple:
            p.add_argument(opt, type=float, nargs="+", default=list(default), metavar="NUMBER")
        elif type(None) in args:
            p.add_argument(opt, type=_optional(args[0]), default=default, help="a value or 'none'")
        else:
            p.add_argument(opt, type=hint, default=default)
    p.set_defaults(workers=None)  # local launch: required; torchrun: WORLD_SIZE - 1
    for name, kw in LOCAL.items():
        p.add_argument(_option(name), **kw)
    return p


def config_from(args: argparse.Namespace, workers: int) -> Config:
    """The ``Config`` of parsed ``args`` with ``workers`` workers (``ValueError`` on bad values)."""
    values = {}
    for name, hint, _ in _fields():
        value = getattr(args, name)
        if name in MODEL_KINDS:
            value = parse_model(name, value)
        elif hint is tuple:
            value = tuple(value)
        values[name] = value
    timing = _timing.Timing(**{f.name: values.pop(f.name) for f in dataclasses.fields(_timing.Timing)})
    return Config(**{**values, "workers": workers, "timing": timing})


def to_argv(config: Config) -> list[str]:
    """Arguments that :func:`parser` + :func:`config_from` read back into ``config`` exactly."""
    flat = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    flat |= {f.name: getattr(config.timing, f.name) for f in dataclasses.fields(config.timing)}
    argv = []
    for name, hint, _ in _fields():
        value, opt = flat[name], _option(name)
        if name in MODEL_KINDS:
            argv += [opt, *format_model(value)]
        elif hint is bool:
            argv.append(opt if value else "--no-" + opt[2:])
        elif hint is tuple:
            argv += [opt, *map(repr, value)]
        else:
            argv += [opt, NONE if value is None else (value if isinstance(value, str) else repr(value))]
    return argv
