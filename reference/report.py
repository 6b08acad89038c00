"""The gate's report: reads the workers' statistics streams and renders the per-op table,
the failures, the regression files and the JSON document.

Each pytest process of a gate run appends JSON lines to its own file in the run's
temporary directory (see `reference.session`); this module only reads them, after or
while the run goes on (a partially written last line is ignored until it is complete).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table



@dataclass
class Stream:
    """Incremental reader of every worker's JSON-lines file in a directory."""
    directory: Path
    offsets: dict = field(default_factory=dict)
    records: list = field(default_factory=list)

    def poll(self) -> list:
        new = []
        for path in sorted(self.directory.glob("*.jsonl")):
            with open(path, encoding="utf-8") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            complete = data[:data.rfind("\n") + 1]
            self.offsets[path] = self.offsets.get(path, 0) + len(complete.encode("utf-8"))
            for line in complete.splitlines():
                if line.strip():
                    new.append(json.loads(line))
        self.records.extend(new)
        return new


@dataclass
class Summary:
    rows: list          # JSON "ops" entries
    failures: list      # JSON "failures" entries (plus "internal")
    examples: int
    features: dict
    tests: int
    fd_ran: set         # ops with at least one finite-difference comparison


def summarize(records: list, ops: list) -> Summary:
    stats = {op: [0, 0.0, None] for op in ops}
    failures, features, examples, tests = [], {}, 0, 0
    for r in records:
        if r.get("kind") != "test":
            continue
        tests += 1
        examples += r["examples"]
        for k, v in r["features"].items():
            features[k] = features.get(k, 0) + v
        for op, (n, t, f) in r["per_op"].items():
            if op not in stats:
                continue
            row = stats[op]
            row[0] += n
            row[1] = max(row[1], t)
            if f is not None:
                row[2] = f if row[2] is None else max(row[2], f)
        failures.extend(r["failures"])
    failed_ops = {f["op"] for f in failures}
    rows = [{"op": op, "examples": n, "max_err_torch": float(t),
             "max_err_fd": float(f) if f is not None else 0.0,
             "status": "fail" if op in failed_ops else "pass"}
            for op, (n, t, f) in stats.items()]
    fd_ran = {op for op, (n, t, f) in stats.items() if f is not None}
    return Summary(rows, failures, examples, features, tests, fd_ran)


def worst(row: dict, fd_ran: bool) -> float:
    """The row's largest error in units of its tolerance, torch or finite differences."""
    return max(row["max_err_torch"], row["max_err_fd"] if fd_ran else 0.0)


def _shade(ratio: float) -> str:
    """Colour of an error/tolerance ratio: green well inside, yellow near the bound, red over."""
    return "green" if ratio <= 0.25 else "yellow" if ratio <= 1 else "bold red"


def table(summary: Summary) -> Table:
    t = Table(title="pygrad reference suite: per-op results (errors in units of the tolerance; "
                    "<= 1 passes)", title_justify="left")
    t.add_column("op")
    t.add_column("examples", justify="right")
    t.add_column("max err/tol vs torch", justify="right")
    t.add_column("max err/tol vs FD", justify="right")
    t.add_column("worst", justify="right")
    t.add_column("status")
    for row in summary.rows:
        fd_ran = row["op"] in summary.fd_ran
        w = worst(row, fd_ran)
        status = "[green]pass[/]" if row["status"] == "pass" else "[bold red]FAIL[/]"
        if row["status"] == "pass" and row["examples"] == 0:
            status = "[yellow]pass (no examples)[/]"
        t.add_row(row["op"], str(row["examples"]), f"{row['max_err_torch']:.3g}",
                  f"{row['max_err_fd']:.3g}" if fd_ran else "-", f"[{_shade(w)}]{w:.3g}[/]", status)
    return t


def markdown(summary: Summary, verdict: str, seed: int, elapsed: float, workers: int,
             profile: str) -> str:
    """The run's verdict, per-op table and failures as GitHub-flavoured Markdown (a CI job
    summary)."""
    lines = [f"## pygrad-check: **{verdict}**", "",
             f"{summary.examples} examples in {summary.tests} tests, {elapsed:.1f} s, seed {seed} "
             f"(replay with `pygrad-check --seed {seed}`), {workers} worker(s), profile `{profile}`. "
             "Errors are in units of each example's tolerance (<= 1 passes).", "",
             "| op | examples | max err/tol vs torch | max err/tol vs FD | worst | status |",
             "|---|---:|---:|---:|---:|---|"]
    for row in summary.rows:
        fd_ran = row["op"] in summary.fd_ran
        fd = f"{row['max_err_fd']:.3g}" if fd_ran else "-"
        status = "pass" if row["status"] == "pass" else "**FAIL**"
        lines.append(f"| `{row['op']}` | {row['examples']} | {row['max_err_torch']:.3g} | {fd} | "
                     f"{worst(row, fd_ran):.3g} | {status} |")
    for f in summary.failures:
        kind = "internal error" if f.get("internal") else f"`{f['check']}` check"
        lines += ["", f"### {kind} in `{f['test']}`" + (f" (op `{f['op']}`)" if f["op"] else ""), "",
                  "```text", f["message"].rstrip(), "```"]
        if f.get("reproducer"):
            lines += ["", "<details><summary>regression test</summary>", "", "```python",
                      f["reproducer"].rstrip(), "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    """Write `text` to `path`, replacing it (a CI job summary file starts empty per step)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def regression_files(failures: list, out_dir: Path) -> list:
    """Write each failure's reproducer as `<out_dir>/<test name>.py`; returns the paths."""
    paths = []
    for f in failures:
        code = f.get("reproducer")
        if not code:
            continue
        m = re.search(r"^def (test_\w+)\(", code, re.M)
        name = m.group(1) if m else f"test_regression_{len(paths)}"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.py"
        path.write_text(code, encoding="utf-8")
        if path not in paths:
            paths.append(path)
    return paths


def print_failures(console: Console, failures: list, paths: list) -> None:
    for f in failures:
        kind = "internal error" if f.get("internal") else f"{f['check']} check"
        console.rule(f"[bold red]{kind}[/] in {f['test']}" + (f" (op {f['op']})" if f["op"] else ""))
        console.print(f["message"], markup=False, highlight=False)
        if f.get("reproducer"):
            console.print(Syntax(f["reproducer"], "python", word_wrap=True))
    if paths:
        console.print(f"regression tests written: {', '.join(str(p) for p in paths)}")


def document(seed: int, budget: float, workers: int, elapsed: float, summary: Summary) -> dict:
    """The JSON report, exactly the interface's schema."""
    return {"seed": int(seed), "budget_s": float(budget), "workers": int(workers),
            "elapsed_s": float(elapsed), "ops": summary.rows,
            "failures": [{"test": f["test"], "op": f["op"], "check": f["check"],
                          "message": f["message"], "reproducer": f["reproducer"]}
                         for f in summary.failures]}

