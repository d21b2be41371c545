"""The claims ledger: one record per claim a notebook tests, with a three-valued verdict.

A notebook creates one :class:`Ledger` and calls :meth:`Ledger.record` once per claim it tests
(:meth:`Ledger.record_difference` for a paired comparison of two arms, from
:func:`stalenb.stats.paired_difference`; the statistics behind the intervals are in :mod:`stalenb.stats`);
every call rewrites the notebook's ledger file (``build/claims/<profile>/<NN>.json``) atomically.
``python -m stalenb.repro.reproduce`` merges the files of the notebooks it ran into
``figures/claims.json`` (quick profile: ``build/quick/figures/claims.json``) with :func:`collect`,
and regenerates the README's results table from it with :func:`readme_table` — no verdict or
number in the README is typed by hand.

Verdicts (:func:`verdict`) are three-valued and follow from the interval alone:

- ``"holds"`` — the whole interval ``[ci_low, ci_high]`` lies strictly on the claim's side of the
  threshold (``better="above"``: above it; ``better="below"``: below it);
- ``"fails"`` — the whole interval lies strictly on the wrong side;
- ``"inconclusive"`` — the interval touches or straddles the threshold, or is not finite.

An exact, deterministic check (a bound over 6,400 designs, an iterate sequence) records its value
as a degenerate interval ``ci_low == ci_high == statistic``.

Every record has a ``role`` (:data:`ROLES`):

- ``"claim"`` — it tests one sentence of a source, quoted in ``quote``, **in the direction the sentence
  states**: ``holds`` means the data agree with the sentence. Its ``answer`` (:data:`ANSWERS`) is the
  sentence's fate in the source's terms — ``"supports"`` (holds), ``"refutes"`` (fails) or
  ``"undecided"`` (inconclusive) — and an undecided claim says in ``decide`` what would decide it
  (by default, from its interval: how many seeds at the observed spread, :func:`to_decide`).
- ``"check"`` — a setup, sanity, exact or derived check (an identity, the simulator against a real
  run, a hypothesis that is met): it stays in the ledger and the report, with its verdict, but is not
  counted as an answer to a source; its ``answer`` is ``None``.

Example:
    >>> verdict(0.01, 0.03, threshold=0.0)
    'holds'
    >>> verdict(-0.175, 0.092, threshold=0.0)
    'inconclusive'
    >>> verdict(-0.61, -0.35, threshold=-0.25, better="below")
    'holds'
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from . import paths
from .files import atomic_write

VERDICTS = ("holds", "fails", "inconclusive")
DIRECTIONS = ("above", "below")
ROLES = ("claim", "check")
ANSWERS = ("supports", "refutes", "undecided")
#: A claim's answer from its verdict (a claim is tested in the direction its sentence states).
ANSWER_OF = dict(zip(VERDICTS, ANSWERS))
#: Fields every record carries, in the order the ledger file lists them.
FIELDS = ("id", "notebook", "role", "source", "quote", "test", "statistic", "ci_low", "ci_high", "threshold",
          "margin", "better", "verdict", "answer", "decide", "figures", "runs", "seeds", "profile")
#: Significant digits kept for floats in the ledger (stable files: float noise below this is dropped).
DIGITS = 6
ID = re.compile(r"^\d\d\.[A-Za-z0-9_.=+-]+$")
README_START, README_END = "<!-- claims:start -->", "<!-- claims:end -->"


def verdict(ci_low: float, ci_high: float, threshold: float, better: str = "above") -> str:
    """``"holds"`` / ``"fails"`` / ``"inconclusive"`` for an interval against a threshold.

    An end that is ``None`` or infinite is unbounded on its side (a one-sided bound, e.g. from a
    censored time, can decide); a NaN end or a non-finite threshold is inconclusive.

    Example:
        >>> verdict(3.0, float("inf"), threshold=2.0), verdict(None, None, threshold=0.0)
        ('holds', 'inconclusive')
    """
    if better not in DIRECTIONS:
        raise ValueError(f"better must be one of {DIRECTIONS}, got {better!r}")
    if threshold is None or not math.isfinite(float(threshold)):
        return "inconclusive"
    low = -math.inf if ci_low is None else float(ci_low)
    high = math.inf if ci_high is None else float(ci_high)
    t = float(threshold)
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if low > high:
        raise ValueError(f"ci_low must be <= ci_high, got [{low}, {high}]")
    if better == "above":
        return "holds" if low > t else "fails" if high < t else "inconclusive"
    return "holds" if high < t else "fails" if low > t else "inconclusive"


#: How an interval becomes a verdict: against one ``threshold`` (:func:`verdict`), or with a smallest
#: effect of interest δ = ``margin`` (:mod:`stalenb.decisions`): ``"improves"`` holds when the gain's
#: interval lies above the threshold and fails when it lies below threshold + δ; ``"equivalent"`` holds
#: when the (90 %) interval lies inside threshold ± δ and fails when it lies wholly outside.
RULES = ("threshold", "improves", "equivalent")


def ruling(ci_low, ci_high, threshold, better: str = "above", rule: str = "threshold", margin=None) -> str:
    """The verdict of an interval under ``rule`` (:data:`RULES`); ``better="below"`` mirrors a gain
    measured as a decrease.

    Example:
        >>> ruling(0.002, 0.008, 0.0, rule="improves", margin=0.01)   # real but below δ
        'fails'
        >>> ruling(-0.02, 0.01, 0.0, rule="equivalent", margin=0.05)
        'holds'
    """
    if rule == "threshold":
        return verdict(ci_low, ci_high, threshold, better)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if better not in DIRECTIONS:
        raise ValueError(f"better must be one of {DIRECTIONS}, got {better!r}")
    if any(v is None or not math.isfinite(float(v)) for v in (threshold, margin)):
        raise ValueError(f"rule {rule!r} needs a finite threshold and margin (δ), got {threshold!r}, {margin!r}")
    from . import decisions

    low = -math.inf if ci_low is None else float(ci_low) - float(threshold)
    high = math.inf if ci_high is None else float(ci_high) - float(threshold)
    if better == "below":
        low, high = -high, -low
    decide = decisions.improves if rule == "improves" else decisions.equivalent
    return dict(zip(ANSWERS, VERDICTS))[decide(low, high, delta=float(margin))]


def to_decide(ci_low, ci_high, threshold, seeds=None) -> str:
    """What would decide an undecided claim, from its interval alone.

    With a finite interval of half-width ``h`` around its centre ``m`` and ``seeds`` = n, an interval
    that shrinks like 1/√n excludes the threshold ``t`` once n' ≥ n·(h/|m − t|)² (at the observed
    spread and centre; a power analysis with a smallest effect of interest is the notebook's job).
    """
    values = [ci_low, ci_high, threshold]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return "a finite interval (the statistic or its interval is not finite)"
    low, high, t = (float(v) for v in values)
    mid, half = (low + high) / 2, (high - low) / 2
    gap = abs(mid - t)
    if gap == 0:
        return (f"the interval is centred on the threshold {t:.4g}: no number of runs decides it at the observed "
                "centre; only a smallest effect of interest (an equivalence margin) can")
    factor = (half / gap) ** 2
    if seeds:
        return (f"≈{math.ceil(seeds * factor - 1e-9)} seeds at the observed centre and spread (interval half-width "
                f"{half:.3g} with {seeds} seeds must shrink below the distance {gap:.3g} to the threshold)")
    return f"an interval {factor:.3g}× fewer wide (half-width {half:.3g} must shrink below {gap:.3g})"


def profile() -> str:
    """``"quick"`` when the quick profile is on, else ``"paper"``."""
    return "quick" if paths.quick() else "paper"


def ledger_dir(profile_name: str | None = None) -> Path:
    """Where the notebooks write their ledger files for a profile (``build/claims/<profile>``)."""
    return paths.build_dir() / "claims" / (profile_name or profile())


def _clean(value):
    """JSON-safe, stable values: floats rounded to :data:`DIGITS` significant digits, NaN → None."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) or hasattr(value, "item"):  # numpy scalars too
        v = value.item() if hasattr(value, "item") else value
        if isinstance(v, bool) or isinstance(v, int):
            return v
        v = float(v)
        return None if not math.isfinite(v) else float(f"{v:.{DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    raise TypeError(f"ledger values must be numbers, strings, lists or dicts, got {type(value).__name__}")


class Ledger:
    """The claims one notebook tests; each :meth:`record` rewrites the notebook's ledger file.

    Args:
        notebook: the notebook's number prefix (``"05"``); every record id starts with it.
        source: default ``source`` of the records (which seed document, which version).
    """

    def __init__(self, notebook: str, source: str | None = None):
        if not re.fullmatch(r"\d\d", str(notebook)):
            raise ValueError(f"notebook must be a two-digit prefix like '05', got {notebook!r}")
        self.notebook, self.source = str(notebook), source
        self.records: dict[str, dict] = {}
        self.path = ledger_dir() / f"{self.notebook}.json"

    def record(self, id: str, *, role: str, quote: str, test: str, statistic: float, ci_low: float | None = None,
               ci_high: float | None = None, threshold: float, better: str = "above",
               margin: float | None = None, figures=(), runs: int | None = None, seeds: int | None = None,
               source: str | None = None, decide: str | None = None, rule: str = "threshold", **extra) -> dict:
        """Record one claim or check and return the record (with its :func:`verdict` and answer).

        Args:
            id: ``"<NN>.<claim>[.<condition>]"``, e.g. ``"05.v1.vs-vanilla.tau16"``; unique per notebook.
            role: ``"claim"`` (tests a source's sentence in the direction it states) or ``"check"``
                (setup, sanity, exact or derived check; not counted as an answer to a source).
            quote: for a claim, the sentence in the source's words; for a check, the statement checked.
            test: what was measured, in one sentence.
            statistic: the measured value (a mean difference, a slope, a bound's largest violation).
            ci_low, ci_high: its 95 % interval (default: the statistic itself — an exact check).
            threshold: the value the claim must clear; with ``margin`` it is usually ``-margin``.
            better: ``"above"`` if the claim holds for values above the threshold, else ``"below"``.
            figures: figure names (without extension) that show the claim.
            runs, seeds: how many runs and seeds the statistic rests on.
            decide: for a claim that comes out undecided, what would decide it (default:
                :func:`to_decide` from the interval and ``seeds``); ignored otherwise.
            rule: ``"threshold"`` (default), ``"improves"`` or ``"equivalent"`` with ``margin`` = δ
                (:func:`ruling`); recorded in the record when not the default.
            **extra: notebook-specific numbers (e.g. ``lr_tuned``, ``lambda_min_path``).
        """
        if not isinstance(id, str) or not ID.match(id) or not id.startswith(self.notebook + "."):
            raise ValueError(f"id must look like '{self.notebook}.<claim>[.<condition>]' (letters, digits, "
                             f"'._=+-'), got {id!r}")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        clash = sorted(set(extra) & set(FIELDS))
        if clash:
            raise ValueError(f"extra field(s) {clash} shadow the standard fields {FIELDS}")
        ci_low = statistic if ci_low is None else ci_low
        ci_high = statistic if ci_high is None else ci_high
        decision = ruling(ci_low, ci_high, threshold, better, rule, margin)
        answer = ANSWER_OF[decision] if role == "claim" else None
        if answer == "undecided":
            decide = decide or to_decide(ci_low, ci_high, threshold, seeds)
        else:
            decide = None
        rec = {"id": id, "notebook": self.notebook, "role": role, "source": source or self.source, "quote": quote,
               "test": test, "statistic": statistic, "ci_low": ci_low, "ci_high": ci_high,
               "threshold": threshold, "margin": margin, "better": better, "verdict": decision, "answer": answer,
               "decide": decide, "figures": list(figures), "runs": runs, "seeds": seeds, "profile": profile(),
               **dict(sorted(extra.items()))}
        if rule != "threshold":
            rec["rule"] = rule
        if rec["source"] is None:
            raise ValueError("source is required (per record or as the Ledger's default)")
        self.records[id] = _clean(rec)
        self.save()
        return self.records[id]

    def record_difference(self, id: str, diff: dict, *, quote: str, test: str, threshold: float,
                          better: str = "above", **extra) -> dict:
        """Record a paired comparison: ``diff`` is a :func:`stalenb.stats.paired_difference` result
        (or its :func:`stalenb.stats.as_ratio`), whose ``diff``, ``ci_low`` and ``ci_high`` become the
        statistic and its interval, and whose ``n`` pairs give ``seeds = n`` and ``runs = 2 n`` (one
        run per arm and seed). ``**extra`` goes to :meth:`record` (``margin``, ``figures``, …).
        """
        missing = sorted({"diff", "ci_low", "ci_high", "n"} - set(diff))
        if missing:
            raise ValueError(f"diff must be a paired difference (stalenb.stats.paired_difference); lacks {missing}")
        clash = sorted({"statistic", "ci_low", "ci_high", "runs", "seeds"} & set(extra))
        if clash:
            raise ValueError(f"{clash} come from the paired difference; do not pass them")
        n = int(diff["n"])
        return self.record(id, quote=quote, test=test, statistic=diff["diff"], ci_low=diff["ci_low"],
                           ci_high=diff["ci_high"], threshold=threshold, better=better, runs=2 * n, seeds=n,
                           **extra)

    def save(self) -> Path:
        """Write this notebook's records (sorted by id) atomically."""
        write(self.path, list(self.records.values()))
        return self.path

    def frame(self):
        """The records as a DataFrame (id, role, statistic, interval, threshold, verdict, answer)."""
        import pandas as pd

        cols = ["id", "role", "statistic", "ci_low", "ci_high", "threshold", "better", "verdict", "answer"]
        return pd.DataFrame([{col: r[col] for col in cols} for r in self.records.values()], columns=cols)


def validate(records) -> list[dict]:
    """Raise ``ValueError`` naming every record whose role, answer or verdict is inconsistent: a role
    outside :data:`ROLES`, a claim whose answer is not :data:`ANSWER_OF` its verdict (or whose verdict is
    not :func:`verdict` of its interval), an undecided claim without ``decide``, a check with an answer.
    Returns the records unchanged."""
    problems = []
    for r in records:
        rid, role = r.get("id"), r.get("role")
        if role not in ROLES:
            problems.append(f"{rid}: role must be one of {ROLES}, got {role!r}")
            continue
        decision = ruling(r["ci_low"], r["ci_high"], r["threshold"], r["better"], r.get("rule", "threshold"),
                          r.get("margin"))
        if r.get("verdict") != decision:
            problems.append(f"{rid}: verdict {r.get('verdict')!r} but its interval gives {decision!r}")
        if role == "claim" and r.get("answer") != ANSWER_OF[decision]:
            problems.append(f"{rid}: a claim whose verdict is {decision!r} must answer {ANSWER_OF[decision]!r}, "
                            f"got {r.get('answer')!r}")
        if role == "claim" and r.get("answer") == "undecided" and not r.get("decide"):
            problems.append(f"{rid}: an undecided claim must say what would decide it (decide)")
        if role == "check" and r.get("answer") is not None:
            problems.append(f"{rid}: a check has no answer, got {r.get('answer')!r}")
    if problems:
        raise ValueError("inconsistent ledger records:\n  " + "\n  ".join(problems))
    return records


def write(path, records) -> None:
    """Write ``records`` sorted by id, with stable formatting, atomically."""
    records = sorted((_clean(r) for r in records), key=lambda r: r["id"])
    with atomic_write(path) as fh:
        fh.write(json.dumps(records, indent=1, ensure_ascii=False) + "\n")


def load(path=None) -> list[dict]:
    """The records of a ledger file (default: ``figures/claims.json``); ``[]`` if it is absent."""
    path = paths.figures_dir("paper") / "claims.json" if path is None else Path(path)
    if not path.is_file():
        return []
    return json.loads(path.read_text())


def collect(notebooks, profile_name: str, target=None) -> Path:
    """Replace the records of ``notebooks`` (number prefixes) in the profile's ``claims.json`` by
    those their last run wrote (checked with :func:`validate`); records of notebooks not run are kept.
    Returns the file's path."""
    target = paths.figures_dir(profile_name) / "claims.json" if target is None else Path(target)
    numbers = {str(n) for n in notebooks}
    kept = [r for r in load(target) if r["notebook"] not in numbers]
    fresh = []
    for n in sorted(numbers):
        fresh += load(ledger_dir(profile_name) / f"{n}.json")
    write(target, kept + validate(fresh))
    return target


def fmt(x) -> str:
    """A ledger number as the README table and the report show it."""
    if x is None:
        return "–"
    if isinstance(x, float) and (abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3)):
        return f"{x:.2e}"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def headline(records) -> str:
    """One sentence: the source claims by answer, then the checks by verdict."""
    claims_ = [r for r in records if r.get("role") == "claim"]
    checks = [r for r in records if r.get("role") == "check"]
    answers = ", ".join(f"{sum(r['answer'] == a for r in claims_)} {a}" for a in ANSWERS)
    verdicts = ", ".join(f"{sum(r['verdict'] == v for r in checks)} {v}" for v in VERDICTS)
    return f"{len(claims_)} source claims tested: {answers}. {len(checks)} checks: {verdicts}."


def _number(r) -> str:
    interval = "" if r["ci_low"] == r["ci_high"] == r["statistic"] else f" [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
    side = ">" if r["better"] == "above" else "<"
    rule = r.get("rule", "threshold")
    if rule == "improves":  # holds above the threshold, fails below threshold + δ
        negligible = r["threshold"] + (r["margin"] if side == ">" else -r["margin"])
        bar = f"{side} {fmt(r['threshold'])}; fails {'<' if side == '>' else '>'} {fmt(negligible)}"
    elif rule == "equivalent":
        bar = f"inside ±{fmt(r['margin'])} (90 %)"
    else:
        bar = f"{side} {fmt(r['threshold'])}"
    return f"{fmt(r['statistic'])}{interval} | {bar}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


#: The two sources, by how a record's ``source`` starts (the README's summary groups claims by them).
SOURCES = {"CS744 poster": "The poster (“Benefits of staleness and asynchrony”, CS744 2017)",
           "Candela et al. 2019": "Paper 1 (Candela et al. 2019, sparsification as a remedy for staleness)"}


def _source_name(source: str) -> str:
    return next((name for prefix, name in SOURCES.items() if str(source).startswith(prefix)), str(source))


def _key_record(group):
    """The record a summary line quotes: the across-levels one if any, else the first."""
    return next((r for r in group if "all-levels" in r["id"]), group[0])


def summary(records, figures_url: str = "figures") -> str:
    """One paragraph per source: its claims by answer, then one line per quoted sentence — the quote,
    the answers over the conditions it was tested in, a key number with its interval, the figure."""
    claims_ = [r for r in sorted(records, key=lambda r: r["id"]) if r.get("role") == "claim"]
    by_source: dict[str, dict] = {}
    for r in claims_:
        by_source.setdefault(_source_name(r["source"]), {}).setdefault((r["notebook"], r["quote"]), []).append(r)
    lines = []
    for name, quotes in by_source.items():
        recs = [r for group in quotes.values() for r in group]
        counts = ", ".join(f"{sum(r['answer'] == a for r in recs)} {a}" for a in ANSWERS)
        lines += [f"**{name}** — {len(recs)} claims tested: {counts}.", ""]
        for (nb, quote), group in quotes.items():
            tally = ", ".join(f"{a} {n}" for a in ANSWERS if (n := sum(r["answer"] == a for r in group)))
            key = _key_record(group)
            fig = next((f for r in group for f in r["figures"]), None)
            link = f" ([figure]({figures_url}/{fig}.png))" if fig else ""
            lines.append(f"- “{quote}” (notebook {nb}): **{tally}** of {len(group)}; e.g. `{key['id']}`: "
                         f"{_number(key).replace(' | ', ' vs ')} → {key['answer']}{link}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def readme_table(records, figures_url: str = "figures") -> str:
    """The README's results section: the headline count, then per notebook each quoted source
    sentence with the answer of every condition it was tested in (the number, its interval, what
    would decide it if undecided) and the notebook's first figure; the checks follow in one table."""
    records = sorted(records, key=lambda r: r["id"])
    lines = [f"**{headline(records)}** A claim is tested in the direction its sentence states: "
             "*supports* when the 95 % interval clears the threshold on the sentence's side, *refutes* when it "
             "lies wholly on the other side, *undecided* otherwise (with what would decide it). Where a record "
             "names a smallest effect of interest δ, an *improves* claim is also refuted when its interval lies "
             "below δ, and a *does not harm* claim is an equivalence test: its 90 % interval inside ±δ supports, "
             "wholly outside refutes.", "",
             summary(records, figures_url), "", "<details><summary>Every claim and check, condition by condition"
             "</summary>", ""]
    by_nb: dict[str, list] = {}
    for r in records:
        if r.get("role") == "claim":
            by_nb.setdefault(r["notebook"], []).append(r)
    for nb, recs in by_nb.items():
        figs = [f for r in recs for f in r["figures"]]
        lines += ["", f"**Notebook {nb}**", ""]
        if figs:
            lines += [f'<img src="{figures_url}/{figs[0]}.png" alt="{figs[0]}" width="480">', ""]
        by_quote: dict[tuple, list] = {}
        for r in recs:
            by_quote.setdefault((r["source"], r["quote"]), []).append(r)
        for (source, quote), group in by_quote.items():
            lines += [f"> “{quote}” — {source}", "",
                      "| condition | test | statistic [95 % interval] | threshold | answer |",
                      "| --- | --- | --- | --- | --- |"]
            for r in group:
                answer = f"**{r['answer']}**" + (f" — needs {_cell(r['decide'])}" if r.get("decide") else "")
                lines.append(f"| `{r['id']}` | {_cell(r['test'])} | {_number(r)} | {answer} |")
            lines.append("")
        if lines[-1] == "":
            lines.pop()
    checks = [r for r in records if r.get("role") == "check"]
    if checks:
        lines += ["", "**Checks** (setup, exact and derived: not answers to a source)", "",
                  "| check | what is checked | value | threshold | verdict |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{r['id']}` | {_cell(r['test'])} | {_number(r)} | {r['verdict']} |" for r in checks]
    lines += ["", "</details>"]
    return "\n".join(lines)


def update_readme(readme, records) -> bool:
    """Replace the text between the README's claims markers by :func:`readme_table`; True if changed."""
    readme = Path(readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no '{README_START}' … '{README_END}' block")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{readme_table(records)}\n{README_END}{tail}"
    if new != text:
        with atomic_write(readme) as fh:
            fh.write(new)
    return new != text


def readme_block(readme) -> str:
    """The text currently between the README's claims markers."""
    text = Path(readme).read_text()
    return text.split(README_START, 1)[1].split(README_END, 1)[0].strip("\n")
