"""Decision rules that can fail, fixed before the runs (issue 22; ``docs/preregistration.md``).

A claim's answer comes from a confidence interval of the effect θ (method − baseline, paired on
seeds) and a **smallest effect of interest** δ > 0, named with its reason before any data:

- :func:`improves` — "A improves over B": *supports* when the lower end clears 0; *refutes* when the
  upper end lies below δ (any gain is smaller than the smallest that matters — with enough seeds a
  true effect of 0 is refuted, which a threshold of 0 alone can never do); otherwise *undecided*.
  A refutation takes precedence when the interval lies in (0, δ): a real but negligible gain.
- :func:`noninferior` — "does not harm" read as non-inferiority: *supports* when the lower end lies
  above −δ, *refutes* when the upper end lies below −δ.
- :func:`equivalent` — "negligible effect" read as equivalence, the two one-sided
  tests (Schuirmann 1987): *supports* when the 90 % interval lies inside (−δ, δ), *refutes* when it
  lies wholly outside, otherwise *undecided*.
- :func:`holm` — Holm's (1979) step-down adjustment of p-values across levels (the "refutes" side of
  an "at every level" claim; its "supports" side is an intersection–union test, which needs none:
  :func:`stalenb.stats.intersection_union`).
- :func:`seeds_for_power` — the number of paired seeds for a given power at δ from a pilot's paired
  standard deviation (exact, with the noncentral t distribution); :func:`seeds_for_equivalence`,
  the same for TOST at a true difference of 0.
- :class:`Looks` — a two-stage (group-sequential) design with its looks fixed in advance: Pocock's
  repeated confidence intervals (:func:`pocock_level`) keep the coverage over all looks, so a
  comparison decided at the first look stops there and the rest get the second stage's seeds.
- :func:`holm_answers`, :func:`holm_intervals` — Holm across a family of such answers (06's cells of
  one primary endpoint), with the *Holm decision intervals* a ledger can read; :func:`follow_up`, the
  fresh seeds and core-hours an undecided answer asks for.
- :func:`every_level` — "improves at every level" (intersection–union; Holm on the refuting side).
- :func:`valid_arm` — the validity gate: an arm with a diverged run, or below a sanity accuracy,
  gets no accuracy verdict (its divergence is a finding of its own).

Example:
    >>> improves(0.004, 0.021, delta=0.01), improves(-0.003, 0.006, delta=0.01)
    ('supports', 'refutes')
    >>> equivalent(-0.004, 0.006, delta=0.01)
    'supports'
    >>> seeds_for_power(sd=0.02, delta=0.01)
    34
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ANSWERS = ("supports", "refutes", "undecided")


def _interval(low, high, delta) -> tuple[float, float, float]:
    low, high, delta = float(low), float(high), float(delta)
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a finite number > 0 (the smallest effect of interest), got {delta!r}")
    if math.isfinite(low) and math.isfinite(high) and low > high:
        raise ValueError(f"need low <= high, got [{low}, {high}]")
    return low, high, delta


def improves(low: float, high: float, *, delta: float) -> str:
    """The answer to "improves" from an interval [low, high] of the gain (see the module doc).

    Example:
        >>> improves(0.002, 0.008, delta=0.01)   # significant but below δ: negligible
        'refutes'
    """
    low, high, delta = _interval(low, high, delta)
    if math.isfinite(high) and high < delta:
        return "refutes"
    if math.isfinite(low) and low > 0:
        return "supports"
    return "undecided"


def equivalent(low: float, high: float, *, delta: float) -> str:
    """The answer to "negligible" / "does not harm" from the 90 % interval [low, high] (TOST)."""
    low, high, delta = _interval(low, high, delta)
    if low >= delta or high <= -delta:  # wholly outside, also with an infinite far end
        return "refutes"
    if -delta < low and high < delta:
        return "supports"
    return "undecided"


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (reject where adjusted < α; family-wise error ≤ α).

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or not len(p) or np.any((p < 0) | (p > 1) | ~np.isfinite(p)):
        raise ValueError(f"pvalues must be a non-empty list of numbers in [0, 1], got {pvalues!r}")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]).clip(max=1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def power_paired(n: int, *, sd: float, delta: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs to detect a mean difference ``delta``
    when the paired differences have standard deviation ``sd`` (noncentral t, exact)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 pairs, got {n!r}")
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = delta / sd * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(*, sd: float, delta: float, alpha: float = 0.05, power: float = 0.8,
                    cap: int = 100_000) -> int:
    """Smallest number of paired seeds whose two-sided paired t-test at level ``alpha`` has ``power``
    at an effect of ``delta``, given a paired standard deviation ``sd`` (from a pilot). The same n
    makes the 95 % interval's upper end fall below δ with that probability when the true effect is
    0, which is what :func:`improves` needs to refute.

    Example (Cohen's d = δ/sd = 0.5 and 0.2: the textbook 34 and 199 pairs):
        >>> seeds_for_power(sd=1.0, delta=0.5), seeds_for_power(sd=1.0, delta=0.2)
        (34, 199)
    """
    for name, value in (("sd", sd), ("delta", delta)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha!r}, power={power!r}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, int(math.floor((z * sd / delta) ** 2)))  # the normal approximation, from below
    while power_paired(n, sd=sd, delta=delta, alpha=alpha) < power:
        n += 1
        if n > cap:
            raise ValueError(f"more than cap={cap} seeds needed (sd={sd}, delta={delta})")
    return n


def power_equivalence(n: int, *, sd: float, delta: float, alpha: float = 0.05) -> float:
    """Power of TOST at level ``alpha`` (the 1 − 2α interval inside (−δ, δ)) with ``n`` paired seeds
    when the true difference is 0 and the paired SD is ``sd``: exact, integrating over the sample SD
    s (χ² with n − 1 degrees of freedom) the normal probability that |mean| < δ − t·s/√n."""
    from scipy import integrate

    if n < 2:
        raise ValueError(f"n must be >= 2 pairs, got {n!r}")
    df, t = n - 1, stats.t.ppf(1 - alpha, n - 1)

    def given(u):  # u = (n − 1)·s²/σ²
        room = delta - t * sd * math.sqrt(u / df) / math.sqrt(n)
        return max(0.0, 2 * stats.norm.cdf(room * math.sqrt(n) / sd) - 1) * stats.chi2.pdf(u, df)

    top = df * (delta * math.sqrt(n) / (t * sd)) ** 2  # beyond it the interval cannot fit inside
    return float(integrate.quad(given, 0, top, limit=200)[0])


def seeds_for_equivalence(*, sd: float, delta: float, alpha: float = 0.05, power: float = 0.8,
                          cap: int = 100_000) -> int:
    """Smallest number of paired seeds for which TOST (:func:`equivalent` on the 90 % interval) supports
    "negligible" with ``power`` when the true difference is 0 — more than :func:`seeds_for_power`
    asks at the same σ and δ (about (z₀.₉₅ + z₀.₉₀)² against (z₀.₉₇₅ + z₀.₈₀)²).

    Example:
        >>> seeds_for_equivalence(sd=1.0, delta=0.5) > seeds_for_power(sd=1.0, delta=0.5)
        True
    """
    for name, value in (("sd", sd), ("delta", delta)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(1 - (1 - power) / 2)
    n = max(2, int(math.floor((z * sd / delta) ** 2)) - 2)
    while power_equivalence(n, sd=sd, delta=delta, alpha=alpha) < power:
        n += 1
        if n > cap:
            raise ValueError(f"more than cap={cap} seeds needed (sd={sd}, delta={delta})")
    return n


def pocock_level(fractions=(0.5, 1.0), alpha: float = 0.05) -> float:
    """The nominal two-sided level of each look of Pocock's (1977) group-sequential test with looks at
    the information ``fractions`` (cumulative, the last 1): the constant c with
    P(|Z_k| < c for every look k) = 1 − ``alpha`` for the Brownian-motion statistics Z_k of the looks,
    corr(Z_i, Z_j) = √(t_i / t_j); returns 2·(1 − Φ(c)). An interval of coverage 1 − (this level) at
    every look is a *repeated confidence interval* (Jennison & Turnbull 1989): all of them cover the
    true effect with probability ≥ 1 − ``alpha``, so decisions taken from any look keep that error rate.

    Example (Jennison & Turnbull 2000, Table 2.1: C_P(2, 0.05) = 2.178, C_P(2, 0.10) = 1.875):
        >>> round(pocock_level((0.5, 1.0), 0.05), 3), round(pocock_level((0.5, 1.0), 0.10), 3)
        (0.029, 0.061)
    """
    from scipy import optimize

    t = np.asarray(fractions, dtype=float)
    if t.ndim != 1 or not len(t) or np.any(np.diff(t) <= 0) or t[0] <= 0 or not math.isclose(t[-1], 1.0):
        raise ValueError(f"fractions must increase to 1 (e.g. (0.5, 1.0)), got {fractions!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if len(t) == 1:
        return float(alpha)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    mvn = stats.multivariate_normal(mean=np.zeros(len(t)), cov=cov, seed=0)

    def excess(c):  # P(some |Z_k| >= c) − α
        return 1 - mvn.cdf(np.full(len(t), c), lower_limit=np.full(len(t), -c)) - alpha

    c = optimize.brentq(excess, stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(1 - alpha / (2 * len(t))) + 0.1,
                        xtol=1e-6)
    return float(2 * stats.norm.sf(c))


def noninferior(low: float, high: float, *, delta: float) -> str:
    """"Does not harm" read as non-inferiority with margin δ: *supports* when the interval's lower end
    lies above −δ, *refutes* when its upper end lies below −δ (a loss larger than what matters).

    Example:
        >>> noninferior(-0.004, 0.03, delta=0.01), noninferior(-0.05, -0.02, delta=0.01)
        ('supports', 'refutes')
    """
    low, high, delta = _interval(low, high, delta)
    if math.isfinite(high) and high < -delta:
        return "refutes"
    if math.isfinite(low) and low > -delta:
        return "supports"
    return "undecided"


#: Rule name -> the function that turns an interval into an answer.
DECIDE = {"improves": improves, "equivalent": equivalent, "noninferior": noninferior}


class Looks:
    """A group-sequential design fixed before the runs: cumulative ``seeds`` per arm at each look
    (default 10, then 20) and the error ``alpha`` of each comparison over its looks.

    At every look each comparison gets a Pocock repeated confidence interval (:func:`pocock_level` at
    the looks' fractions): two-sided coverage 1 − α' for "improves" and "noninferior" (each side then
    errs with at most α/2 over the looks), 1 − 2α' for the equivalence (TOST) reading, α' the nominal
    level of 2·α there; t quantiles at the look's seeds. A comparison decided at a look stops; the
    rest go on to the next. After the last, an undecided comparison states the seeds per arm a
    fresh fixed-size follow-up would need to decide at its observed centre and paired SD
    (:func:`follow_up`).

    Example:
        >>> looks = Looks((10, 20))
        >>> round(looks.coverage("improves"), 3), round(looks.coverage("equivalent"), 3)
        (0.971, 0.939)
    """

    RULES = tuple(DECIDE)

    def __init__(self, seeds=(10, 20), alpha: float = 0.05):
        seeds = tuple(int(s) for s in seeds)
        if not seeds or seeds[0] < 2 or any(b <= a for a, b in zip(seeds, seeds[1:])):
            raise ValueError(f"seeds must be increasing cumulative seed counts, the first >= 2, got {seeds!r}")
        self.seeds, self.alpha = seeds, float(alpha)
        self.fractions = tuple(s / seeds[-1] for s in seeds)

    def nominal(self, rule: str, alpha: float | None = None) -> float:
        """The one-sided level each side of ``rule`` is tested at, per look (at family error ``alpha``)."""
        if rule not in self.RULES:
            raise ValueError(f"rule must be one of {self.RULES}, got {rule!r}")
        a = self.alpha if alpha is None else alpha
        return pocock_level(self.fractions, 2 * a if rule == "equivalent" else a) / 2

    def coverage(self, rule: str) -> float:
        """Two-sided coverage of each look's interval under ``rule``."""
        return 1 - 2 * self.nominal(rule)

    def half_widths(self, sd: float, rule: str = "improves", alpha: float | None = None) -> list[float]:
        """Half-width of each look's interval for paired differences of standard deviation ``sd``
        (t quantile at the look's seeds, as :meth:`answer` computes it): what the design can resolve,
        before any run (at family error ``alpha``; a Holm family's first level is α/m)."""
        q = self.nominal(rule, alpha)
        return [float(stats.t.isf(q, k - 1) * sd / math.sqrt(k)) for k in self.seeds]

    def answer(self, diffs, *, rule: str, delta: float) -> dict:
        """The answer from the paired differences ``diffs`` seen so far (their count must be a look's).

        Returns ``answer``, ``statistic`` (mean), ``ci_low``, ``ci_high``, ``coverage``, ``sd``,
        ``seeds``, ``look`` (1-based), ``final`` (a decision, or the last look), ``rule``, ``delta``,
        ``nominal``, ``looks`` and, for an undecided final answer, :func:`follow_up`'s ``seeds_needed``
        (at the observed centre and SD; None when no number of seeds would decide) and ``seeds_design``.
        """
        d = np.asarray(diffs, dtype=float)
        if d.ndim != 1 or not np.all(np.isfinite(d)):
            raise ValueError("diffs must be one finite paired difference per seed")
        if len(d) not in self.seeds:
            raise ValueError(f"{len(d)} paired differences is not a look of this design {self.seeds}")
        from .stats import ci95

        cover = self.coverage(rule)
        mean, half, sd, n = ci95(d, cover)
        low, high = mean - half, mean + half
        ans = DECIDE[rule](low, high, delta=delta)
        look = self.seeds.index(n) + 1
        out = {"answer": ans, "statistic": mean, "ci_low": low, "ci_high": high, "coverage": cover, "sd": sd,
               "seeds": n, "look": look, "final": ans != "undecided" or look == len(self.seeds), "rule": rule,
               "delta": float(delta), "nominal": self.nominal(rule), "looks": self}
        if ans == "undecided" and out["final"]:
            out.update({k: v for k, v in follow_up(out, 2, 0.0, self.alpha).items()
                        if k in ("seeds_needed", "seeds_design")})
        return out


def _one_sided(r: dict | None, side: str) -> float:
    """A result's one-sided paired t p-value: "supports" tests θ ≤ 0, "refutes" θ ≥ δ (as
    :func:`holm_answers`); 1 for no result (a gated cell)."""
    if r is None:
        return 1.0
    se, shift = r["sd"] / math.sqrt(r["seeds"]), (0.0 if side == "supports" else r["delta"])
    if not se > 0:  # identical differences: the sign decides
        return 0.0 if (r["statistic"] > shift if side == "supports" else r["statistic"] < shift) else 1.0
    t = (r["statistic"] - shift) / se
    return float(stats.t.sf(t, r["seeds"] - 1) if side == "supports" else stats.t.cdf(t, r["seeds"] - 1))


def _holm_levels(p, looks) -> np.ndarray:
    """Holm's step-down over one side's p-values ``p`` with Pocock levels (:meth:`Looks.nominal` at
    family error α/(m − i) at step i): the one-sided level spent on each hypothesis — its own step's
    level when rejected, else the level of the step where the step-down stopped (so a rejected
    hypothesis has p below its level and no other has)."""
    m, order = len(p), np.argsort(p, kind="stable")
    levels = np.empty(m)
    for i, j in enumerate(order):
        level = looks.nominal("improves", looks.alpha / (m - i))
        if p[j] >= level:  # the step-down stops here: this and every later one at this level
            levels[order[i:]] = level
            break
        levels[j] = level
    return levels


def agree(low: float, high: float, delta: float, rejected: tuple[bool, bool]) -> tuple[float, float, bool]:
    """Holm decision interval ends that read as the p-values decided: ``rejected`` = (θ ≤ 0 rejected,
    θ ≥ δ rejected). The ends are t bounds at the very levels the p-values were compared with, so they
    agree except on a floating-point tie (an end within rounding of 0 or δ); there the end is moved to
    the nearest float on the side the p-value decided. Returns ``(low, high, moved)``.

    Example:
        >>> agree(-1e-18, 0.5, 0.01, (True, False))[0] > 0
        True
    """
    new_low = (low if low > 0 else float(np.nextafter(0.0, 1.0))) if rejected[0] else min(low, 0.0)
    new_high = (high if high < delta else float(np.nextafter(delta, 0.0))) if rejected[1] else max(high, delta)
    return new_low, new_high, bool(new_low != low or new_high != high)


def holm_intervals(results) -> list[dict | None]:
    """Holm across a family of "improves" results (:meth:`Looks.answer` of one design,
    each at the look where it stopped; ``None`` for a cell without an answer — the validity gate, or a
    rule fixed in advance — counted with p-values 1 so that the family keeps its size), with **Holm
    decision intervals** the ledger's rule reads (not simultaneous confidence intervals).

    Each side is stepped down as :func:`holm_answers` does, and the answer is decided
    from the p-values. A cell's lower end is the one-sided t bound at the level Holm spent on its
    "supports" side (:func:`_holm_levels`: its own step's level when rejected, else the level where the
    step-down stopped, as in the compatible intervals of Strassburger & Bretz 2008), its upper end the
    bound at the level spent on its "refutes" side; so the lower end clears 0 exactly when Holm rejects
    θ ≤ 0 and the upper end lies below δ exactly when Holm rejects θ ≥ δ, and
    :func:`improves` of the interval is the Holm answer (on a floating-point tie
    :func:`agree` moves the end by one float to the p-value's side; ``tie`` says so). Returns per result
    ``{"ci_low", "ci_high", "answer", "level_low", "level_high", "tie"}``.
    """
    results = list(results)
    live = [r for r in results if r is not None]
    if not live:
        return [None] * len(results)
    looks = live[0]["looks"]
    p = {side: np.array([_one_sided(r, side) for r in results]) for side in ("supports", "refutes")}
    levels = {side: _holm_levels(p[side], looks) for side in p}
    out = []
    for i, r in enumerate(results):
        if r is None:
            out.append(None)
            continue
        se, mean = r["sd"] / math.sqrt(r["seeds"]), r["statistic"]
        lv = (levels["supports"][i], levels["refutes"][i])
        q = [stats.t.isf(x, r["seeds"] - 1) if se > 0 else 0.0 for x in lv]
        rej = tuple(bool(p[side][i] < levels[side][i]) for side in ("supports", "refutes"))
        low, high, tie = agree(mean - q[0] * se, mean + q[1] * se, r["delta"], rej)
        ans = "refutes" if rej[1] else "supports" if rej[0] else "undecided"
        out.append({"ci_low": low, "ci_high": high, "answer": ans, "level_low": lv[0], "level_high": lv[1],
                    "tie": tie})
    return out


def distance_to_decision(mean: float, *, rule: str, delta: float) -> float:
    """How far an interval's centre ``mean`` lies from the boundary its ends would cross first as the
    interval shrinks around it: under "improves" the larger of mean − 0 (supports) and δ − mean
    (refutes) among the positive ones; under "noninferior" |mean + δ|; under "equivalent"
    | δ − |mean| |. Zero when the centre sits on the boundary (no number of seeds decides).

    Example:
        >>> round(distance_to_decision(0.004, rule="improves", delta=0.01), 6)  # refutes first: high < δ
        0.006
        >>> round(distance_to_decision(0.0128, rule="equivalent", delta=0.01), 6)  # a gain just past δ
        0.0028
    """
    if rule == "improves":
        return max([d for d in (mean, delta - mean) if d > 0], default=0.0)
    if rule == "noninferior":
        return abs(mean + delta)
    if rule == "equivalent":
        return abs(delta - abs(mean))
    raise ValueError(f"rule must be one of {tuple(DECIDE)}, got {rule!r}")


def seeds_to_decide(mean: float, sd: float, *, rule: str, delta: float, alpha: float = 0.05,
                    power: float = 0.8) -> int | None:
    """Paired seeds with which a fixed-size design at level ``alpha`` (TOST: its 1 − 2α interval) would
    decide with probability ``power`` if the true effect and paired SD were the observed ``mean`` and
    ``sd``: :func:`seeds_for_power` at the :func:`distance_to_decision`. None when no number of seeds
    would (the centre on a boundary, or more than 100,000)."""
    d = round(distance_to_decision(mean, rule=rule, delta=delta), 12)
    if not (d > 0 and sd > 0):
        return None if not d > 0 else 2
    try:
        return seeds_for_power(sd=sd, delta=d, alpha=2 * alpha if rule == "equivalent" else alpha, power=power)
    except ValueError:
        return None


def follow_up(result: dict, arms: int, seconds_per_run: float, alpha: float = 0.05, rerun: str | None = None) -> dict:
    """What an undecided result asks for: ``seeds_needed``, the fresh paired seeds of a fixed-size
    follow-up that would decide it at its observed centre and paired SD (:func:`seeds_to_decide` at level
    ``alpha``; None when none would), ``seeds_design``, those of a design with 80 % power at δ when the
    true effect is 0 (:func:`seeds_for_power`, or :func:`seeds_for_equivalence` under "equivalent"),
    ``core_hours`` of the ``seeds_needed`` new runs only (``arms`` runs per seed at ``seconds_per_run``
    each, one thread) and ``decide``, the sentence a ledger record carries (``rerun``: a command with
    ``{n}`` for the seeds). A primary cell under Holm passes ``alpha`` / m."""
    sd, rule, mean = float(result.get("sd") or 0.0), result.get("rule", "improves"), float(result["statistic"])
    need = seeds_to_decide(mean, sd, rule=rule, delta=result["delta"], alpha=alpha)
    design = seeds_for_equivalence if rule == "equivalent" else seeds_for_power
    plan = design(sd=sd, delta=result["delta"], alpha=alpha) if sd > 0 else int(result["seeds"])
    hours = None if need is None else round(need * arms * seconds_per_run / 3600, 2)
    about = f"observed centre {mean:+.4g} and paired SD {sd:.4g} after {result['seeds']} seeds"
    if need is None:
        text = f"no fixed number of fresh seeds decides it: the {about} put the centre on a boundary of the rule"
    else:
        text = (f"needs ≈{need} fresh paired seeds to decide at the {about} (80 % power, α = {alpha:.3g}; "
                f"≈{hours} core-hours at {seconds_per_run:g} s per run)" + (f"; `{rerun.format(n=need)}` runs them"
                                                                         if rerun else ""))
    return {"seeds_needed": need, "seeds_design": int(plan), "follow_up_alpha": float(alpha), "core_hours": hours,
            "decide": text + f"; a design powered at δ = {result['delta']:.4g} for a true 0 needs {plan}"}


def holm_answers(results) -> list[str]:
    """Holm's step-down across a family of "improves" answers (:meth:`Looks.answer` results of one
    design, each at the look where it stopped; ``None`` for a gated member, which keeps the family's
    size): each side — "supports" (θ ≤ 0 rejected) and "refutes" (θ ≥ δ rejected) — is stepped down
    separately, sorted by one-sided p-value, the i-th of m rejected while its p lies below the Pocock
    one-sided level recomputed at family error α/(m − i + 1) (not the per-look level divided, which is
    slightly lenient). Refutation takes precedence, as in :func:`improves`. With one result this
    returns its own answer; a gated member answers "undecided".
    """
    results = list(results)
    if not results or any(r is not None and r.get("rule") != "improves" for r in results):
        raise ValueError("results must be a non-empty list of Looks.answer(...) results under rule 'improves'")
    return [h["answer"] if h else "undecided" for h in holm_intervals(results)]


def every_level(results) -> dict:
    """"Improves at every level" from per-level :meth:`Looks.answer` results (rule "improves"):
    intersection–union for *supports* (Berger 1982: every level's lower end above 0, each at its own
    coverage, so ``ci_low`` is the smallest lower end) and Holm for *refutes* (some level's upper end
    below δ: Holm rejects any of m hypotheses exactly when the smallest p-value passes its first step,
    the Pocock level at α/m, so ``ci_high`` is the smallest upper end at that level). ``statistic`` is
    the smallest per-level mean; ``answer`` follows from :func:`improves` on [ci_low, ci_high].
    """
    results = list(results)
    if not results or any(r.get("rule") != "improves" for r in results):
        raise ValueError("results must be a non-empty list of Looks.answer(...) results under rule 'improves'")
    m = len(results)
    level = results[0]["looks"].nominal("improves", results[0]["looks"].alpha / m)
    highs = [r["statistic"] + stats.t.isf(level, r["seeds"] - 1) * r["sd"] / math.sqrt(r["seeds"]) for r in results]
    low, high = min(r["ci_low"] for r in results), min(highs)
    delta = results[0]["delta"]
    return {"statistic": min(r["statistic"] for r in results), "ci_low": low, "ci_high": high,
            "answer": improves(low, high, delta=delta), "delta": delta, "levels": m}


def valid_arm(final_accuracy, diverged, *, sanity: float) -> bool:
    """The validity gate: True when no run of the arm diverged and every run ends at or above the
    ``sanity`` accuracy (e.g. twice chance); otherwise the arm gets no accuracy verdict."""
    acc = np.asarray(final_accuracy, dtype=float)
    div = np.asarray(diverged, dtype=bool)
    if acc.shape != div.shape or not acc.size:
        raise ValueError("need one final accuracy and one diverged flag per run (at least one run)")
    return bool(not div.any() and np.all(np.isfinite(acc)) and np.all(acc >= sanity))


__all__ = ["ANSWERS", "improves", "equivalent", "noninferior", "DECIDE", "holm", "power_paired", "seeds_for_power",
           "power_equivalence", "seeds_for_equivalence", "pocock_level", "Looks", "holm_answers", "holm_intervals",
           "agree", "follow_up", "distance_to_decision", "seeds_to_decide", "every_level", "valid_arm"]
