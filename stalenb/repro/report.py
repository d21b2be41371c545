"""The executed notebooks as a static HTML site, with an index of every claim: ``make report``.

``python -m stalenb.repro.report`` converts the executed copies that ``make reproduce`` leaves in
``build/notebooks/`` with nbconvert (JupyterLab template, figures embedded) into
``build/report/NN_name.html`` and writes ``build/report/index.html``: the ledger's records
(:mod:`stalenb.claims`) — the source claims with their answers first, then the checks with their
verdicts — each with its numbers and a link to the notebook cell that shows it — the cell whose output names the claim's id (the ledger table every notebook displays),
else the cell that records it, else the top of the notebook.

The site is self-contained (no server, no external assets beyond what nbconvert's template
inlines) and is checked in a real browser by ``tests/test_browser.py``.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path

from .. import claims, paths
from ..files import atomic_write

COLOURS = {"holds": "#1b7837", "fails": "#b2182b", "inconclusive": "#8c6d1f",
           "supports": "#1b7837", "refutes": "#b2182b", "undecided": "#8c6d1f"}


def _cell_texts(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if isinstance(out.get("text"), str) else "".join(out.get("text", [])))
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(mime, "")
            parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def anchors(nb, ids) -> dict[str, str]:
    """``{claim id: cell id}``: the first cell whose output names the claim, else the first cell
    that calls ``.record(``, else the first cell."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    recording = next((cell for cell in code if ".record(" in cell.source), nb.cells[0] if nb.cells else None)
    out = {}
    for cid in ids:
        hit = next((cell for cell in code if cid in _cell_texts(cell)), recording)
        if hit is not None and hit.get("id"):
            out[cid] = hit["id"]
    return out


def errors(nb) -> list[str]:
    """The error outputs of an executed notebook (``ename: evalue``)."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for cell in nb.cells if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _fmt(x) -> str:
    return html.escape(claims.fmt(x))


def build(executed=None, out=None, ledger=None) -> Path:
    """Write the site; return the path of ``index.html``.

    Args:
        executed: folder of executed notebooks (default ``build/notebooks``).
        out: output folder (default ``build/report``).
        ledger: claim records (default: the ``claims.json`` of the profile the executed copies
            were run with, read from ``build/reproduce-times.json``; paper if unknown).
    """
    import nbformat
    from nbconvert import HTMLExporter

    executed = paths.build_dir() / "notebooks" if executed is None else Path(executed)
    out = paths.build_dir() / "report" if out is None else Path(out)
    notebooks = sorted(executed.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no executed notebooks in {executed}: run `make reproduce` first")
    if ledger is None:
        times = executed.parent / "reproduce-times.json"
        profile = json.loads(times.read_text()).get("profile", "paper") if times.is_file() else "paper"
        ledger = claims.load(paths.figures_dir(profile) / "claims.json")
    exporter = HTMLExporter(template_name="lab")
    pages, links, broken = [], {}, {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        number = path.name[:2]
        ids = [r["id"] for r in ledger if r["notebook"] == number]
        for cid, cell in anchors(nb, ids).items():
            links[cid] = f"{path.stem}.html#cell-id={cell}"
        broken[path.stem] = errors(nb)
        body, _ = exporter.from_notebook_node(nb)
        with atomic_write(out / f"{path.stem}.html") as fh:
            fh.write(body)
        pages.append(path.stem)
    index = out / "index.html"
    with atomic_write(index) as fh:
        fh.write(_index(pages, ledger, links, broken))
    return index


def _rows(records, links, word) -> str:
    rows = []
    for r in sorted(records, key=lambda r: r["id"]):
        link = links.get(r["id"])
        name = html.escape(r["id"])
        cell = f'<a href="{html.escape(link)}">{name}</a>' if link else name
        interval = "" if r["ci_low"] == r["ci_high"] else f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        side = "&gt;" if r["better"] == "above" else "&lt;"
        what = html.escape(r["test"]) + (f"<br><i>“{html.escape(r['quote'])}”</i>" if word == "answer" else "")
        ruling = r.get(word) or r["verdict"]
        decide = f"<br>needs {html.escape(r['decide'])}" if r.get("decide") else ""
        rows.append(
            f'<tr class="claim {r.get("role")}"><td>{cell}</td><td>{what}</td>'
            f"<td>{_fmt(r['statistic'])}{interval}</td><td>{side} {_fmt(r['threshold'])}</td>"
            f'<td class="verdict" style="color:{COLOURS.get(ruling, "#000")}"><b>{ruling}</b>{decide}</td></tr>')
    return "\n".join(rows)


def _index(pages, ledger, links, broken) -> str:
    source_claims = [r for r in ledger if r.get("role") != "check"]
    checks = [r for r in ledger if r.get("role") == "check"]
    nb_items = "".join(
        f'<li><a href="{p}.html">{html.escape(p)}</a>'
        + (f' — <span class="error">{len(broken[p])} error output(s)</span>' if broken[p] else "") + "</li>"
        for p in pages)
    head = ("<tr><th>record</th><th>test</th><th>statistic [95 % interval]</th><th>threshold</th>"
            "<th>{}</th></tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stalenb — claims and notebooks</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.35em;text-align:left;
vertical-align:top;font-size:.92em}}.error{{color:#b2182b}}</style></head>
<body><h1>stalenb — every claim tested, and where</h1>
<p>{html.escape(claims.headline(ledger))} A claim is tested in the direction its sentence states: it
<b>supports</b> the sentence when the 95 % interval clears the threshold on the sentence's side,
<b>refutes</b> it when the interval lies wholly on the other side, and is <b>undecided</b> otherwise.</p>
<h2>Source claims</h2>
<table><thead>{head.format("answer")}</thead><tbody>
{_rows(source_claims, links, "answer")}
</tbody></table>
<h2>Checks (setup, exact and derived)</h2>
<table><thead>{head.format("verdict")}</thead><tbody>
{_rows(checks, links, "verdict")}
</tbody></table>
<h2>Notebooks</h2><ul>{nb_items}</ul>
</body></html>
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stalenb.repro.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--executed", type=Path, help="folder of executed notebooks (default build/notebooks)")
    parser.add_argument("--out", type=Path, help="output folder (default build/report)")
    args = parser.parse_args(argv)
    try:
        index = build(args.executed, args.out)
    except FileNotFoundError as exc:
        print(f"stalenb.repro.report: {exc}", file=sys.stderr)
        return 1
    print(f"report: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
