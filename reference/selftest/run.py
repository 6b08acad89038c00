"""The gate's self-test: it must fail on every deliberately broken pygrad, as CI would meet it.

`pygrad-check --mutants [NAME ...] --budget B` applies each mutant of the catalogue (all, or
the named ones) to a fresh copy of the project and runs the whole gate there in a subprocess
-- `python -m reference --budget B --seed S -n W --exitfirst --json ...`, no `--only`: the
gate is not told where the bug is -- and reads its exit status and JSON report:

- killed: exit 1 with a finding; the time to the first failure is the report's
  `first_failure_s` (from the gate's start: its start-up is included), with the test and the
  check kind that caught it;
- survived: exit 0 (a hole in the gate);
- error: exit 2, a crash, a timeout or a missing report (not killed).

`--exitfirst` only ends the run at its first finding (nothing before it changes). `--focused`
adds `--only <the mutant's row>`: a tuned setting, labelled as such, never the headline.
`--together` applies the named mutants to one copy and runs the gate once: each must be
reported by a finding whose reproducer fails with that mutant alone.
Prints the kill table and rate; exit 0 only if every mutant is killed, 1 otherwise, 2 for an
error of the self-test itself.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reference.selftest.catalogue import BY_NAME, MUTANTS
from reference.selftest.mutants import ROOT, Mutant, apply, env, patched_source

# A diverse handful sized for CI: an exact kink, a non-last softmax axis, outC > 1, a
# reset_grad regression, a Module leaking into its weights, optimizer state from step 3,
# CCELoss's mask, a 1-element operand, mixed dtypes.
CI_SUBSET = ("relu_derivative_at_zero", "softmax_jacobian_last_axis_only", "conv_input_grad_averaged_over_outC",
             "reset_grad_intermediates_kept", "module_call_leaks_into_originals", "momentum_buffer_stores_gradient",
             "cce_mask_drops_first_end_row", "one_element_operand_gets_no_gradient", "pow_log_in_base_dtype")


@dataclass
class Result:
    name: str
    killed: bool
    first_failure_s: float | None   # seconds from the gate's start to its first finding
    test: str | None                # the test that caught it
    check: str | None               # its check kind
    row: str | None                 # the row it was blamed on
    status: str                     # killed | survived | error
    expected_check: str
    expected_row: str
    wall_s: float                   # the whole gate run, start-up and report included
    why: str = ""                   # for an error: what went wrong


def gate_command(budget: float, seed: int, workers: int, profile: str, report: Path, out: Path, only=None,
                 exitfirst: bool = True) -> list:
    cmd = [sys.executable, "-m", "reference", "--budget", repr(float(budget)), "--seed", str(seed), "-n", str(workers),
           "--profile", profile, "--json", str(report), "--out", str(out)]
    return cmd + ["--exitfirst"] * exitfirst + (["--only", *only] if only else [])


def classify(returncode: int | None, doc: dict | None) -> tuple:
    """(status, first failure or None, why) of one gate run on a mutant."""
    failures = (doc or {}).get("failures") or []
    first = min(failures, key=lambda f: f.get("found_at_s") or 0) if failures else None
    if returncode == 1 and first is not None:
        return "killed", first, ""
    if returncode == 0 and doc is not None and not failures:
        return "survived", None, ""
    if returncode is None:
        return "error", first, "the gate did not finish in time"
    if doc is None:
        return "error", first, f"the gate exited {returncode} without a JSON report"
    if returncode == 1:
        return "error", first, "the gate exited 1 without reporting a finding"
    return "error", first, f"the gate exited {returncode}: " + "; ".join(doc.get("internal_errors", []))[:300]


def run_mutant(mutant: Mutant, budget: float, seed: int, workers: int, profile: str = "ci", focused: bool = False,
               root: Path = ROOT, log: Path | None = None) -> Result:
    """Apply `mutant` to a copy of the project at `root`, run the gate there, classify."""
    start = time.time()
    copy = apply(mutant, root)
    try:
        report, out = copy / "selftest-report.json", copy / "selftest-failures"
        cmd = gate_command(budget, seed, workers, profile, report, out, [mutant.row] if focused else None)
        with open(log or os.devnull, "w", encoding="utf-8") as sink:
            proc = subprocess.Popen(cmd, cwd=copy, env=env(copy), stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                returncode = proc.wait(timeout=budget + 180)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)   # the gate we started, and its workers
                proc.wait()
                returncode = None
        doc = None
        if report.is_file():
            try:
                doc = json.loads(report.read_text(encoding="utf-8"))
            except ValueError:
                doc = None
        status, first, why = classify(returncode, doc)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    first = first or {}
    return Result(mutant.name, status == "killed", first.get("found_at_s"), first.get("test"), first.get("check"),
                  first.get("op"), status, mutant.catches, mutant.row, time.time() - start, why)


def selection(names, ci_subset: bool) -> list:
    """The mutants to run, in catalogue order; all of them when none is named."""
    wanted = set(names or ()) | (set(CI_SUBSET) if ci_subset else set())
    return [m for m in MUTANTS if m.name in wanted] if wanted else list(MUTANTS)


def _first(r: Result) -> str:
    return f"{r.first_failure_s:.1f}" if r.first_failure_s is not None else "-"


def table(results: list) -> Table:
    t = Table(title="pygrad reference suite: mutant self-test (the whole gate, unfocused, per mutant)",
              title_justify="left")
    for col, just in (("mutant", "left"), ("expected", "left"), ("result", "left"), ("first failure (s)", "right"),
                      ("caught by", "left"), ("wall (s)", "right")):
        t.add_column(col, justify=just, overflow="fold")
    style = {"killed": "[green]killed[/]", "survived": "[bold red]SURVIVED[/]", "error": "[bold red]ERROR[/]"}
    for r in results:
        caught = f"{r.check} in {r.test}" if r.test else (r.why or "-")
        t.add_row(r.name, f"{r.expected_check} / {r.expected_row}", style[r.status], _first(r), escape(caught),
                  f"{r.wall_s:.1f}")
    return t


def stats(results: list) -> dict:
    times = [r.first_failure_s for r in results if r.killed and r.first_failure_s is not None]
    return {"killed": sum(r.killed for r in results), "total": len(results),
            "median_first_failure_s": statistics.median(times) if times else None,
            "worst_first_failure_s": max(times) if times else None}


def markdown(results: list, seed: int, budget: float, elapsed: float, focused: bool) -> str:
    """The kill table as Markdown: each mutant's file and bug, the row and check expected to
    catch it, and what the unfocused gate did."""
    s = stats(results)
    mode = "focused (`--only` each mutant's row: a tuned setting)" if focused else "unfocused (the whole gate, as CI runs it)"
    lines = [f"## pygrad-check self-test: {s['killed']}/{s['total']} mutants killed", "",
             f"{mode}; budget {budget:g} s per mutant, seed {seed}, {elapsed:.0f} s in all. Time to first failure "
             f"from the gate's start: median {s['median_first_failure_s'] or 0:.1f} s, worst "
             f"{s['worst_first_failure_s'] or 0:.1f} s.", "",
             "| mutant | file | what it breaks | expected | result | first failure (s) | caught by |",
             "|---|---|---|---|---|---:|---|"]
    for r in results:
        m = BY_NAME[r.name]
        result = "killed" if r.status == "killed" else f"**{r.status.upper()}**"
        what = " ".join(m.description.split()).replace("|", "\\|")
        caught = f"`{r.check}` in `{r.test.split('/')[-1]}`" if r.test else (r.why or "-")
        lines.append(f"| `{r.name}` | `{m.file.removeprefix('pygrad/')}` | {what} | `{r.expected_check}` / "
                     f"`{r.expected_row}` | {result} | {_first(r)} | {caught} |")
    return "\n".join(lines) + "\n"


def run_together(mutants: list, args, seed: int, console: Console) -> int:
    """Apply every named mutant to one copy, run the whole gate once (no --exitfirst), and
    check each finding's reproducer against copies with each mutant alone: every bug must be
    reported by a reproducer that fails with that bug alone. Exit 0 only if so."""
    copy = apply(mutants[0])
    alone = {}
    neutral = Path(tempfile.mkdtemp(prefix="pygrad-together-"))   # reproducers outside every copy
    try:
        for m in mutants[1:]:
            path = copy / m.file
            path.write_text(patched_source(m, path.read_text()))
        report = copy / "together.json"
        cmd = gate_command(args.budget, seed, args.workers, args.profile, report, copy / "found", exitfirst=False)
        start = time.time()
        subprocess.run(cmd, cwd=copy, env=env(copy), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                       timeout=args.budget + 240)
        wall = time.time() - start
        failures = json.loads(report.read_text())["failures"] if report.is_file() else []
        console.print(f"{len(failures)} finding(s) in one run of {wall:.1f} s (budget {args.budget:g} s)")
        caught = {m.name: [] for m in mutants}
        for k, f in enumerate(failures):
            test_file = neutral / f"test_repro_{k}.py"
            test_file.write_text(f.get("reproducer") or "")
            fails_with = []
            for m in mutants:
                if m.name not in alone:
                    alone[m.name] = apply(m)
                r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                                    str(neutral), str(test_file)], cwd=neutral, env=env(alone[m.name]),
                                   capture_output=True, timeout=300)
                if r.returncode == 1:
                    fails_with.append(m.name)
                    caught[m.name].append(k)
            console.print(f"  [{f['check']}] {f['op']} at {f['found_at_s']:.1f} s: reproducer fails with "
                          f"{', '.join(fails_with) or 'no single mutant'}", highlight=False, markup=False)
    finally:
        for path in [copy, neutral, *alone.values()]:
            shutil.rmtree(path, ignore_errors=True)
    missed = [name for name, ks in caught.items() if not ks]
    if missed:
        console.print(f"[bold red]not reported alone:[/] {', '.join(missed)}")
        return 1
    console.print("[bold green]every mutant reported by a reproducer that fails with it alone[/]")
    return 0


def run(args, console: Console) -> int:
    """The `--mutants` mode of the gate's command line."""
    chosen = selection(args.mutants, args.ci_subset)
    for m in chosen:   # a stale catalogue is the self-test's own error: fail before running
        patched_source(m, (ROOT / m.file).read_text())
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    if args.together:
        console.print(f"pygrad-check self-test: {len(chosen)} mutants applied together, the whole gate once, "
                      f"budget {args.budget:g} s, seed {seed}")
        return run_together(chosen, args, seed, console)
    console.print(f"pygrad-check self-test: {len(chosen)} mutant(s), the whole gate on each "
                  f"({'focused: --only its row' if args.focused else 'unfocused'}), budget {args.budget:g} s, "
                  f"seed {seed}, {args.workers} worker(s), profile {args.profile}")
    start, results = time.time(), []
    with tempfile.TemporaryDirectory(prefix="pygrad-selftest-") as tmp:
        for k, m in enumerate(chosen):
            console.print(f"[{k + 1}/{len(chosen)}] {m.name} ...", end=" ", highlight=False)
            log = Path(tmp) / f"{m.name}.log"
            r = run_mutant(m, args.budget, seed, args.workers, args.profile, args.focused, log=log)
            results.append(r)
            console.print(f"{r.status}" + (f" at {r.first_failure_s:.1f} s by {r.check} in {r.test}" if r.killed
                                           else f" ({r.why})" if r.why else "") + f"; {r.wall_s:.1f} s wall",
                          highlight=False, markup=False)
            if r.status == "error":
                console.print("\n".join(log.read_text(errors="replace").splitlines()[-25:]), markup=False,
                              highlight=False)
    elapsed = time.time() - start
    (console if console.is_terminal else Console(width=170, file=console.file)).print(table(results))
    s = stats(results)
    console.print(f"kill rate: {s['killed']}/{s['total']}; time to first failure: median "
                  f"{s['median_first_failure_s'] or 0:.1f} s, worst {s['worst_first_failure_s'] or 0:.1f} s; "
                  f"{elapsed:.0f} s in all; replay with --seed {seed}", highlight=False)
    if args.json is not None:
        args.json.write_text(json.dumps({"seed": int(seed), "budget_s": float(args.budget), "workers": int(args.workers),
                                         "focused": bool(args.focused), "elapsed_s": elapsed, **s,
                                         "mutants": [asdict(r) for r in results]}, indent=2), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(markdown(results, seed, args.budget, elapsed, args.focused), encoding="utf-8")
    if s["killed"] == len(results):
        console.print("[bold green]every mutant killed[/]")
        return 0
    console.print(f"[bold red]{len(results) - s['killed']} mutant(s) not killed[/]: exit status 1")
    return 1
