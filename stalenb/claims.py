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
#: Fields every record carries, in the order the ledger file lists them.
FIELDS = ("id", "notebook", "source", "quote", "test", "statistic", "ci_low", "ci_high", "threshold",
          "margin", "better", "verdict", "figures", "runs", "seeds", "profile")
#: Significant digits kept for floats in the ledger (stable files: float noise below this is dropped).
DIGITS = 6
ID = re.compile(r"^\d\d\.[A-Za-z0-9_.=+-]+$")
README_START, README_END = "<!-- claims:start -->", "<!-- claims:end -->"


def verdict(ci_low: float, ci_high: float, threshold: float, better: str = "above") -> str:
    """``"holds"`` / ``"fails"`` / ``"inconclusive"`` for an interval against a threshold."""
    if better not in DIRECTIONS:
        raise ValueError(f"better must be one of {DIRECTIONS}, got {better!r}")
    values = [ci_low, ci_high, threshold]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return "inconclusive"
    low, high, t = (float(v) for v in values)
    if low > high:
        raise ValueError(f"ci_low must be <= ci_high, got [{low}, {high}]")
    if better == "above":
        return "holds" if low > t else "fails" if high < t else "inconclusive"
    return "holds" if high < t else "fails" if low > t else "inconclusive"


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

    def record(self, id: str, *, quote: str, test: str, statistic: float, ci_low: float | None = None,
               ci_high: float | None = None, threshold: float, better: str = "above",
               margin: float | None = None, figures=(), runs: int | None = None, seeds: int | None = None,
               source: str | None = None, **extra) -> dict:
        """Record one claim and return the record (with its :func:`verdict`).

        Args:
            id: ``"<NN>.<claim>[.<condition>]"``, e.g. ``"05.v1.vs-vanilla.tau16"``; unique per notebook.
            quote: the claim in the source's words.
            test: what was measured, in one sentence.
            statistic: the measured value (a mean difference, a slope, a bound's largest violation).
            ci_low, ci_high: its 95 % interval (default: the statistic itself — an exact check).
            threshold: the value the claim must clear; with ``margin`` it is usually ``-margin``.
            better: ``"above"`` if the claim holds for values above the threshold, else ``"below"``.
            figures: figure names (without extension) that show the claim.
            runs, seeds: how many runs and seeds the statistic rests on.
            **extra: notebook-specific numbers (e.g. ``lr_tuned``, ``lambda_min_path``).
        """
        if not isinstance(id, str) or not ID.match(id) or not id.startswith(self.notebook + "."):
            raise ValueError(f"id must look like '{self.notebook}.<claim>[.<condition>]' (letters, digits, "
                             f"'._=+-'), got {id!r}")
        clash = sorted(set(extra) & set(FIELDS))
        if clash:
            raise ValueError(f"extra field(s) {clash} shadow the standard fields {FIELDS}")
        ci_low = statistic if ci_low is None else ci_low
        ci_high = statistic if ci_high is None else ci_high
        rec = {"id": id, "notebook": self.notebook, "source": source or self.source, "quote": quote,
               "test": test, "statistic": statistic, "ci_low": ci_low, "ci_high": ci_high,
               "threshold": threshold, "margin": margin, "better": better,
               "verdict": verdict(ci_low, ci_high, threshold, better), "figures": list(figures),
               "runs": runs, "seeds": seeds, "profile": profile(), **dict(sorted(extra.items()))}
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
        """The records as a DataFrame (id, statistic, interval, threshold, verdict) for display."""
        import pandas as pd

        cols = ["id", "statistic", "ci_low", "ci_high", "threshold", "better", "verdict"]
        return pd.DataFrame([{col: r[col] for col in cols} for r in self.records.values()], columns=cols)


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
    those their last run wrote; records of notebooks not run are kept. Returns the file's path."""
    target = paths.figures_dir(profile_name) / "claims.json" if target is None else Path(target)
    numbers = {str(n) for n in notebooks}
    kept = [r for r in load(target) if r["notebook"] not in numbers]
    fresh = []
    for n in sorted(numbers):
        fresh += load(ledger_dir(profile_name) / f"{n}.json")
    write(target, kept + fresh)
    return target


def fmt(x) -> str:
    """A ledger number as the README table and the report show it."""
    if x is None:
        return "–"
    if isinstance(x, float) and (abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3)):
        return f"{x:.2e}"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def readme_table(records, figures_url: str = "figures") -> str:
    """The README's results section: per notebook, its first figure and a table of its claims."""
    lines = []
    by_nb: dict[str, list] = {}
    for r in sorted(records, key=lambda r: r["id"]):
        by_nb.setdefault(r["notebook"], []).append(r)
    counts = {v: sum(r["verdict"] == v for r in records) for v in VERDICTS}
    lines.append(f"{len(records)} claims tested: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    for nb, recs in by_nb.items():
        figs = [f for r in recs for f in r["figures"]]
        lines += ["", f"**Notebook {nb}**", ""]
        if figs:
            lines += [f'<img src="{figures_url}/{figs[0]}.png" alt="{figs[0]}" width="480">', ""]
        lines += ["| claim | test | statistic [95 % interval] | threshold | verdict |",
                  "| --- | --- | --- | --- | --- |"]
        for r in recs:
            interval = "" if r["ci_low"] == r["ci_high"] == r["statistic"] else \
                f" [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
            side = ">" if r["better"] == "above" else "<"
            test = r["test"].replace("|", "\\|")
            lines.append(f"| `{r['id']}` | {test} | {fmt(r['statistic'])}{interval} | "
                         f"{side} {fmt(r['threshold'])} | **{r['verdict']}** |")
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
