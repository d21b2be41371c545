"""The command line of ``python -m stalenb.distributed``, built from :class:`stalenb.Config`'s fields.

Every ``Config`` field is an option named after it (``lag_weights`` → ``--lag-weights``), with the
field's type, its default (``Config()``'s value) and, for string fields, the allowed values of
:data:`stalenb.config.CHOICES` — so the command line cannot drift from ``Config``. Special forms:

- booleans: ``--error-feedback`` / ``--no-error-feedback``;
- optional numbers and paths: the word ``none`` gives ``None`` (``--eval-size none``);
- ``--lag-weights 1 0.5 0.25``: one number per lag;
- ``--help`` shows each option's meaning (from the ``Attributes`` of ``Config`` / ``Timing``), its
  allowed values and its default;
- a bad value (an argument of the wrong type, or a ``Config`` check that fails: ``--workers -1``)
  is one usage line and one error line naming the option and what it allows, exit status 2
  (:func:`checked_config`), never a traceback.
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
import inspect
import re
import typing

from ..sim import staleness as _staleness
from ..sim import timing as _timing
from ..sim.config import CHOICES, Config
from .launcher import REAL_PROTOCOLS

MODEL_KINDS = {"staleness": _staleness.MODELS, "slowdown": _timing.SLOWDOWNS}
NONE = "none"  # the word for None (and for NoSlowdown)
PROG = "python -m stalenb.distributed"
USAGE = f"{PROG} --workers N [--OPTION VALUE ...]   (or under torchrun; --help lists every option)"


def _number(kind, minimum: float, strict: bool, what: str):
    """An argparse type: ``kind`` (int / float) ``>`` (``strict``) or ``>=`` ``minimum``."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    convert.__name__ = what
    return convert


LOCAL = {  # options of the run, not of the Config: (argparse keywords)
    "factors": dict(type=_number(float, 1, False, "a number >= 1"), nargs="+", default=None, metavar="FACTOR",
                    help="fixed slowdown per worker (one number >= 1 per worker)"),
    "timeout": dict(type=_number(float, 0, True, "a number of seconds > 0"), default=60.0,
                    help="seconds of silence before the run is ended"),
    "addr": dict(default="127.0.0.1", help="local launch: address rank 0 listens on"),
    "threads": dict(type=_number(int, 1, False, "an integer >= 1"), default=1, help="torch threads per process"),
    "out": dict(default=None, help="folder for history.csv and updates.csv (none: print the last row only)"),
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
    takes = f"--{family} {kind} takes {' '.join(f.name.upper() for f in fields) or 'no numbers'}"
    if len(values) > len(fields):
        raise argparse.ArgumentTypeError(f"{takes}, got {' '.join(values)}")
    try:
        numbers = {f.name: hints[f.name](v) for f, v in zip(fields, values)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{takes} (numbers), got {' '.join(values)}") from None
    try:
        return cls(**numbers)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{takes}: {exc}") from None


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


#: Config fields of simulated runs only (the real driver refuses them: :func:`launcher.check`): the
#: options of the simulator-only protocols and the early stops.
SIMULATOR_ONLY = ("max_delay", "cancel_stale", "stop_loss", "time_limit")


def _fields():
    """``(name, type hint, default)`` of the command line's fields: Config's, with ``timing`` expanded.
    ``timing.factors`` is not one of them: the run option ``--factors`` gives real workers their fixed
    slowdowns (they sleep), and ``launch`` keys the cached run by them."""
    defaults, hints = Config(), typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name in SIMULATOR_ONLY:
            continue
        if f.name == "timing":
            t_hints = typing.get_type_hints(_timing.Timing)
            for tf in dataclasses.fields(_timing.Timing):
                if tf.name != "factors":
                    yield tf.name, t_hints[tf.name], getattr(defaults.timing, tf.name)
        else:
            yield f.name, hints[f.name], getattr(defaults, f.name)


def field_help(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` section of ``cls``'s docstring (Google style:
    ``name: text`` lines, indented continuation lines), markup (double backquotes, roles) removed."""
    doc = inspect.getdoc(cls) or ""
    out, name, inside = {}, None, False
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break
        m = re.match(r"^ {4}(\w+): (.*)$", line)
        if m:
            name, out[m.group(1)] = m.group(1), m.group(2).strip()
        elif name and line.startswith("      "):
            out[name] += " " + line.strip()
    return {k: re.sub(r":\w+:`~?([^`]+)`", r"\1", v).replace("``", "") for k, v in out.items()}


def _shown(value) -> str:
    """A default as it is typed on the command line."""
    if value is None:
        return NONE
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return str(value)


def _help(text: str, default) -> str:
    """``text`` + the default, escaped for argparse's %-formatting."""
    return f"{text} (default: {_shown(default)})".replace("%", "%%")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage on errors (the full option list is what ``--help`` is for)."""

    def error(self, message: str):
        self.exit(2, f"usage: {USAGE}\n{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The argument parser: one option per Config field (``timing`` as its own fields) + :data:`LOCAL`;
    each with its meaning, allowed values and default in ``--help``."""
    p = Parser(prog=PROG, usage=USAGE, description="A parameter server and workers on torch.distributed. "
               "Options are stalenb.Config's fields; --workers N starts 1 + N local processes.")
    about = {**field_help(Config), **field_help(_timing.Timing)}
    about["workers"] = ("number of worker processes, an integer >= 1 (required without torchrun; under "
                        "torchrun it is WORLD_SIZE - 1)")
    for name, hint, default in _fields():
        opt, args, text = _option(name), typing.get_args(hint), about.get(name, name)
        if name in MODEL_KINDS:
            p.add_argument(opt, nargs="+", default=format_model(default), metavar=("KIND", "NUMBER"),
                           help=_help(f"{text} One of {', '.join(_kinds(name))}, then its numbers.",
                                      format_model(default)))
        elif name in CHOICES and hint is tuple:  # several of the allowed values (eval_splits)
            p.add_argument(opt, nargs="+", choices=tuple(CHOICES[name]), default=list(default), metavar="NAME",
                           help=_help(text, default))
        elif name in CHOICES:
            allowed = REAL_PROTOCOLS if name == "protocol" else tuple(CHOICES[name])
            p.add_argument(opt, default=default, choices=allowed, help=_help(text, default))
        elif hint is bool:  # help set after construction: some Pythons' BooleanOptionalAction append a default
            action = p.add_argument(opt, default=default, action=argparse.BooleanOptionalAction)
            action.help = _help(text, opt if default else "--no-" + opt[2:])
        elif hint is tuple:
            p.add_argument(opt, type=float, nargs="+", default=list(default), metavar="NUMBER",
                           help=_help(text, default))
        elif type(None) in args:
            p.add_argument(opt, type=_optional(args[0]), default=default,
                           help=_help(f"{text} A value or 'none'.", default))
        elif name == "workers":
            p.add_argument(opt, type=hint, default=None, metavar="N", help=about["workers"])
        else:
            p.add_argument(opt, type=hint, default=default, help=_help(text, default))
    for name, kw in LOCAL.items():
        p.add_argument(_option(name), **{**kw, "help": _help(kw["help"], kw["default"])})
    return p


def checked_config(p: argparse.ArgumentParser, args: argparse.Namespace, workers: int | None) -> Config:
    """:func:`config_from` for the command line: a bad value ends the program through ``p.error`` (the
    usage line, one error line naming the option — ``--workers must be an integer >= 1, got -1`` —
    exit status 2) instead of a traceback. ``workers=None``: the option is missing (a local launch)."""
    if workers is None:
        p.error("--workers N is required without torchrun (the number of worker processes, an integer >= 1)")
    try:
        config = config_from(args, workers)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        p.error(_as_option(str(exc)))
    if args.factors is not None and len(args.factors) != workers:
        p.error(f"--factors needs one number >= 1 per worker ({workers}), got {len(args.factors)}: "
                f"{' '.join(map(str, args.factors))}")
    return config


def _as_option(message: str) -> str:
    """A Config error message with its leading field name written as the option (``workers must …``
    → ``--workers must …``)."""
    names = {name for name, _, _ in _fields()}
    m = re.match(r"^(\w+)\b", message)
    if m and m.group(1) in names:
        return _option(m.group(1)) + message[m.end():]
    return message


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
    timing = _timing.Timing(**{f.name: values.pop(f.name) for f in dataclasses.fields(_timing.Timing)
                               if f.name in values})
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
            argv += [opt, *(v if isinstance(v, str) else repr(v) for v in value)]
        else:
            argv += [opt, NONE if value is None else (value if isinstance(value, str) else repr(value))]
    return argv
