"""The gate's report for people: the terminal table, the findings, Markdown, regression files."""
from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

STATUS = {"pass": "[green]pass[/]", "thin": "[yellow]thin[/]", "fail": "[bold red]FAIL[/]"}


def worst(row: dict) -> float:
    """The row's largest error in units of its tolerance, torch or finite differences."""
    return max(row["max_err_torch"], row["max_err_fd"])


def _shade(ratio: float) -> str:
    """Colour of an error/tolerance ratio: green well inside, yellow near the bound, red over."""
    return "green" if ratio <= 0.25 else "yellow" if ratio <= 1 else "bold red"


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
              title_justify="left")
    for col, just in (("row", "left"), ("examples", "right"), ("max err/tol vs torch", "right"),
                      ("max err/tol vs FD", "right"), ("worst", "right"), ("conditions", "right"), ("pairs", "right"),
                      ("status", "left")):
        t.add_column(col, justify=just)
    for row in rows:
        w = worst(row)
        fd = f"{row['max_err_fd']:.3g}" if row.get("fd_ran", row["max_err_fd"] > 0) else "-"
        t.add_row(escape(row["op"]), str(row["examples"]), f"{row['max_err_torch']:.3g}", fd,
                  f"[{_shade(w)}]{w:.3g}[/]", reached(row), pairs(row), STATUS[row["status"]])
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
        console.print(f"first wrong node: {f.get('where', '')}", markup=False, highlight=False)
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
             "tolerance (<= 1 passes); conditions: bug-prone conditions reached / declared; pairs: feasible "
             f"pairs of conditions reached together in one use / feasible ({pair_share(doc['ops'])}).", "",
             "| row | examples | max err/tol vs torch | max err/tol vs FD | worst | conditions | pairs | status |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in doc["ops"]:
        status = {"pass": "pass", "thin": "*thin*", "fail": "**FAIL**"}[row["status"]]
        lines.append(f"| `{row['op']}` | {row['examples']} | {row['max_err_torch']:.3g} | {row['max_err_fd']:.3g} | "
                     f"{worst(row):.3g} | {reached(row)} | {pairs(row)} | {status} |")
    thin = thin_lines(doc["ops"])
    if thin:
        lines += ["", "Unreached conditions:", ""] + [f"- {escape_md(t)}" for t in thin]
    if doc.get("infeasible_reached"):
        lines += ["", "Pairs declared infeasible, yet reached in one use (the registry's declaration is wrong):", ""]
        lines += [f"- `{row}`: {escape_md(a)} + {escape_md(b)}" for row, (a, b) in doc["infeasible_reached"]]
    for f in doc["failures"]:
        lines += ["", f"### `{f['check']}` check in `{f['test']}` (row `{f['op']}`)", "", "```text",
                  f["message"].rstrip(), "```"]
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
