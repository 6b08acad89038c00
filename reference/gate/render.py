"""The gate's report for people: the terminal table, the findings, Markdown, regression files.

An err/tol figure is a measurement, or -- when the cheap floor of the tolerance, or the
spread of fewer than four perturbed runs, decided and the full one was never computed -- an
upper bound, shown `<= 0.98`
and never coloured as a warning: the true ratio against the full tolerance is smaller.
The Markdown summary shows each finding's program as a Mermaid graph (GitHub renders it),
its first wrong node marked, beside the message and the pasteable test."""
from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from reference.runstate.session import max_is_bound

STATUS = {"pass": "[green]pass[/]", "thin": "[yellow]thin[/]", "fail": "[bold red]FAIL[/]"}


BOUND_NOTE = ("`<= x`: an upper bound, the error against a lower bound of the tolerance (its floor, or the "
              "spread of fewer than four perturbed torch runs: the full tolerance was not needed)")


def worst(row: dict) -> float:
    """The row's largest error in units of its tolerance, torch or finite differences."""
    return max(row["max_err_torch"], row["max_err_fd"])


def worst_is_bound(row: dict) -> bool:
    """Is the row's worst figure an upper bound rather than a measurement?"""
    t, f = row["max_err_torch"], row["max_err_fd"]
    tb, fb = row.get("max_err_torch_bound", False), row.get("max_err_fd_bound", False)
    return max_is_bound(t, tb, f, fb)


def figure(ratio: float, bound: bool) -> str:
    """An err/tol figure as text: `0.42`, or `<= 0.98` for an upper bound."""
    return f"<= {ratio:.3g}" if bound else f"{ratio:.3g}"


def _shade(ratio: float) -> str:
    """Colour of a measured error/tolerance ratio: green well inside, yellow near the bound, red over."""
    return "green" if ratio <= 0.25 else "yellow" if ratio <= 1 else "bold red"


def shaded(ratio: float, bound: bool) -> str:
    """A figure with its colour: a bound is never a warning (dim), a measurement by `_shade`."""
    return f"[dim]{figure(ratio, bound)}[/]" if bound else f"[{_shade(ratio)}]{figure(ratio, bound)}[/]"


def reached(row: dict) -> str:
    conds = row["conditions"]
    return f"{sum(n > 0 for n in conds.values())}/{len(conds)}" if conds else "-"


def pairs(row: dict) -> str:
    """'reached/feasible' pairs of conditions ('-' for a row with fewer than two conditions)."""
    p = row.get("pairs")
    return f"{p['reached']}/{p['feasible']}" if p else "-"


def pair_share(rows: list) -> str:
    """The run's feasible pairs of conditions reached together in one use, all rows."""
    got = sum(r["pairs"]["reached"] for r in rows if r.get("pairs"))
    total = sum(r["pairs"]["feasible"] for r in rows if r.get("pairs"))
    return f"{got} of {total} feasible ({100 * got / max(total, 1):.1f}%)"


def table(rows: list) -> Table:
    t = Table(title="pygrad reference suite: per-row results (errors in units of the tolerance; <= 1 passes; "
                    "conditions reached / declared; feasible pairs of conditions reached together / feasible)",
              title_justify="left", caption=BOUND_NOTE.replace("`", ""), caption_justify="left")
    for col, just in (("row", "left"), ("examples", "right"), ("max err/tol vs torch", "right"),
                      ("max err/tol vs FD", "right"), ("worst", "right"), ("conditions", "right"), ("pairs", "right"),
                      ("status", "left")):
        t.add_column(col, justify=just)
    for row in rows:
        fd = escape(figure(row["max_err_fd"], row.get("max_err_fd_bound", False))) \
            if row.get("fd_ran", row["max_err_fd"] > 0) else "-"
        t.add_row(escape(row["op"]), str(row["examples"]),
                  escape(figure(row["max_err_torch"], row.get("max_err_torch_bound", False))), fd,
                  shaded(worst(row), worst_is_bound(row)), reached(row), pairs(row), STATUS[row["status"]])
    return t


def thin_lines(rows: list) -> list:
    """'row: condition, condition' for every row with unreached conditions."""
    return [f"{r['op']}: {', '.join(c for c, n in r['conditions'].items() if n == 0)}"
            for r in rows if r["status"] == "thin"]


def finding_line(f: dict) -> str:
    """One line per finding, printed as it arrives."""
    first = f["message"].splitlines()[0]
    first = first if len(first) <= 160 else first[:157] + "..."
    return f"FOUND [{f['check']}] {f['row']} at {f['t']:.1f} s in {f['test']}: {first}"


def print_findings(console: Console, findings: list, internal: list, paths: dict) -> None:
    for f in findings:
        console.rule(f"[bold red]{f['check']} check[/] in {escape(f['test'])} (row {escape(f['row'])})")
        console.print(f["message"], markup=False, highlight=False)
        console.print(f"what went wrong: {f.get('what') or f['row']}; first wrong node: {f.get('where', '')}",
                      markup=False, highlight=False)
        if f.get("reproducer"):
            console.print(Syntax(f["reproducer"], "python", word_wrap=True))
        if paths.get(id(f)):
            console.print(f"regression test written: {paths[id(f)]}", highlight=False)
    for i in internal:
        console.rule(f"[bold red]internal error of the reference suite[/] in {escape(i['test'])}")
        console.print(i["message"], markup=False, highlight=False)


def regression_files(findings: list, out_dir: Path) -> dict:
    """Write each finding's reproducer as `<out_dir>/<its test name>.py`: id(finding) -> path."""
    paths = {}
    for k, f in enumerate(findings):
        code = f.get("reproducer")
        if not code:
            continue
        m = re.search(r"^def (test_\w+)\(", code, re.M)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{m.group(1) if m else f'test_regression_{k}'}.py"
        path.write_text(code, encoding="utf-8")
        paths[id(f)] = path
    return paths


def markdown(doc: dict, verdict: str, profile: str = "") -> str:
    """The run's verdict, per-row table and findings as GitHub-flavoured Markdown (a CI job
    summary)."""
    lines = [f"## pygrad-check: **{verdict}**", "",
             f"{doc.get('examples', 0)} examples, {doc['elapsed_s']:.1f} s, seed {doc['seed']} (replay with "
             f"`pygrad-check --seed {doc['seed']}`), {doc['workers']} worker(s)"
             + (f", profile `{profile}`" if profile else "") + ". Errors are in units of each example's "
             f"tolerance (<= 1 passes; {BOUND_NOTE}); conditions: bug-prone conditions reached / declared; "
             f"pairs: feasible pairs of conditions reached together in one use / feasible ({pair_share(doc['ops'])}).",
             "",
             "| row | examples | max err/tol vs torch | max err/tol vs FD | worst | conditions | pairs | status |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in doc["ops"]:
        status = {"pass": "pass", "thin": "*thin*", "fail": "**FAIL**"}[row["status"]]
        torch_ = figure(row["max_err_torch"], row.get("max_err_torch_bound", False))
        fd = figure(row["max_err_fd"], row.get("max_err_fd_bound", False))
        lines.append(f"| `{row['op']}` | {row['examples']} | {torch_} | {fd} | "
                     f"{figure(worst(row), worst_is_bound(row))} | {reached(row)} | {pairs(row)} | {status} |")
    thin = thin_lines(doc["ops"])
    if thin:
        lines += ["", "Unreached conditions:", ""] + [f"- {escape_md(t)}" for t in thin]
    if doc.get("infeasible_reached"):
        lines += ["", "Pairs declared infeasible, yet reached in one use (the registry's declaration is wrong):", ""]
        lines += [f"- `{row}`: {escape_md(a)} + {escape_md(b)}" for row, (a, b) in doc["infeasible_reached"]]
    for f in doc["failures"]:
        lines += ["", f"### `{f['check']}` check in `{f['test']}` (row `{f['op']}`)", "",
                  f"What went wrong: {escape_md(f.get('what') or f['op'])}"
                  + (f"; conditions: {escape_md(', '.join(f['signature']))}" if f.get("signature") else "") + ".",
                  "", "```text", f["message"].rstrip(), "```"]
        if f.get("graph"):
            lines += ["", "The program, its first wrong node in red:", "", "```mermaid", f["graph"].rstrip(), "```"]
        if f.get("reproducer"):
            lines += ["", "<details><summary>regression test</summary>", "", "```python", f["reproducer"].rstrip(),
                      "```", "", "</details>"]
    for m in doc.get("internal_errors", []):
        lines += ["", "### internal error of the reference suite", "", "```text", m.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def escape_md(text: str) -> str:
    return text.replace("|", "\\|")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
