"""Server update rules, applied per received gradient (``docs/research.md`` §3).

Each rule maps a received gradient g (computed at the model copy x_read the worker used, with
staleness δ = server updates since that read) to a direction; the server sums the directions of one
update and steps with its learning rate γ (and momentum, if any):

- ``sgd``: d = g  (vanilla asynchronous SGD; Dean et al. 2012, Lian et al. 2015);
- ``staleness-aware``: d = g / max(1, δ)  (Zhang, Gupta, Lian & Liu, IJCAI 2016);
- ``dc-asgd``: d = g + λ · g ⊙ g ⊙ (x_t − x_read)  (Zheng et al., ICML 2017; MXNet ``DCASGD``);
- ``delay-adaptive``: d = g · n / max(n, δ), i.e. the step γ·n/max(n, δ) for n workers
  (Mishchenko, Bach, Even & Woodworth, NeurIPS 2022; Koloskova, Stich & Jaggi, NeurIPS 2022;
  ``delay_adaptive=True`` in the Ringmaster authors' ``AsynchronousSGD``);
- ``poly-staleness``: d = g · (1 + δ)^(−a) with a = ``Config.poly_exponent`` (FLSim's
  ``PolynomialStalenessWeight``; Xie, Koyejo & Gupta 2019, "Asynchronous federated optimization").

**Your own rule** (the extension point; the built-ins use it too): subclass :class:`Rule`, give it a
``name`` and a :meth:`Rule.direction`, set ``linear = True`` when the direction is a number times g
(the fast path then computes several gradients of one model version in one pass), and call
:func:`register`. ``Config(rule=name)`` then runs it in both engine paths and in the real driver;
its cached runs are keyed on its source (:mod:`stalenb.sim.registry`)::

    class Halved(stalenb.rules.Rule):
        name, linear = "halved", True
        def direction(self, g, lag, *, x_now, x_read, config):
            return 0.5 * g

    stalenb.rules.register(Halved())
"""

from __future__ import annotations

import torch

from .registry import Registry


class Rule:
    """A server rule: the direction one received gradient contributes to an update.

    Attributes:
        name: what ``Config(rule=...)`` calls it.
        linear: the direction is c(δ, config) · g (a number times g): several gradients read at the
            same model version may then be summed before the rule is applied. ``False`` (the safe
            default) gives the rule each gradient on its own.
    """

    name: str = ""
    linear: bool = False

    def direction(self, g: torch.Tensor, lag: int, *, x_now: torch.Tensor | None, x_read: torch.Tensor | None,
                  config) -> torch.Tensor:
        """The direction for gradient ``g`` of staleness ``lag`` read at ``x_read`` (the server holds
        ``x_now``); ``config`` is the run's :class:`stalenb.Config` (its fields are the rule's
        parameters). Return a new tensor or ``g`` itself; never change ``g`` in place."""
        raise NotImplementedError


class SGD(Rule):
    """d = g."""

    name, linear = "sgd", True

    def direction(self, g, lag, *, x_now, x_read, config):
        return g


class StalenessAware(Rule):
    """d = g / max(1, δ) (Zhang et al. 2016)."""

    name, linear = "staleness-aware", True

    def direction(self, g, lag, *, x_now, x_read, config):
        return g / max(1, int(lag)) if lag > 1 else g


class DelayCompensated(Rule):
    """d = g + λ · g ⊙ g ⊙ (x_t − x_read) with λ = ``config.dc_lambda`` (Zheng et al. 2017)."""

    name = "dc-asgd"

    def direction(self, g, lag, *, x_now, x_read, config):
        lam = config.dc_lambda
        if lam == 0 or x_read is None:
            return g
        d = torch.mul(g, lam)  # ((λ·g)·g)·(x_t − x_read) + g, in place: the arithmetic of the
        d.mul_(g)  # plain expression g + λ * g * g * (x_t − x_read), bit for bit, with two temporaries
        d.mul_(torch.sub(x_now, x_read))  # instead of five (a sizeable share of an MLP update)
        return d.add_(g)


class DelayAdaptive(Rule):
    """d = g · n / max(n, δ) with n = ``config.workers`` (Mishchenko et al. 2022; Koloskova et al. 2022)."""

    name, linear = "delay-adaptive", True

    def direction(self, g, lag, *, x_now, x_read, config):
        n = config.workers
        return g * (n / lag) if lag > n else g


class PolyStaleness(Rule):
    """d = g · (1 + δ)^(−a) with a = ``config.poly_exponent`` (FLSim ``PolynomialStalenessWeight``)."""

    name, linear = "poly-staleness", True

    def direction(self, g, lag, *, x_now, x_read, config):
        a = config.poly_exponent
        return g * (1.0 + lag) ** (-a) if lag > 0 and a else g


#: Every rule by name: the built-ins first, then the user's (:func:`register`).
RULES = Registry("rule")


def register(rule: Rule, *, replace: bool = False, source: str | None = None) -> Rule:
    """Make ``rule`` (a :class:`Rule` instance with a ``name``) available as ``Config(rule=rule.name)``
    (``source``: see :meth:`stalenb.sim.registry.Registry.register`)."""
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be an instance of stalenb.rules.Rule, got {rule!r}")
    return RULES.register(rule.name, rule, replace=replace, source=source)


for _rule in (SGD(), StalenessAware(), DelayCompensated(), DelayAdaptive(), PolyStaleness()):
    RULES.register(_rule.name, _rule, builtin=True)


def direction(rule: str, g: torch.Tensor, lag: int, x_now=None, x_read=None, config=None) -> torch.Tensor:
    """The direction one gradient contributes under the rule named ``rule``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}; got {rule!r}")
    return RULES[rule].direction(g, lag, x_now=x_now, x_read=x_read, config=config)
