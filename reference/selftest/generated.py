"""`pygrad-check --mutants --generated`: the whole gate on mutants derived from pygrad's source.

1. `generate` derives every mutant of the current gradient code; `--mutants ID ...` keeps
   the named ones.
2. `classify` probes each without the gate: crash-only ones are set aside (not run, not
   counted); the rest are live.
3. A seeded permutation of the live ones (`--seed`) is walked, and each is run as the
   catalogue's are (`run.run_mutant`: the whole gate, unfocused, `--exitfirst`), until
   `--sample K` of them are counted (all, without `--sample`).
4. A silent mutant (probes and unit tests saw nothing) that the gate did not kill gets a
   long focused run: `--only` its rows, `--profile thorough`, `--equivalence-budget`
   seconds. If that finds nothing too it is equivalent: listed, not counted, and the walk
   takes the next one. If it finds it, it is a live survivor of the unfocused gate.
"""
from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reference.selftest import probes
from reference.selftest.classify import CRASH_ONLY, SILENT, classify_all
from reference.selftest.generate import generate
from reference.selftest.mutants import ROOT, apply, env
from reference.selftest.run import classify as classify_run, gate_command, run_mutant

OPTIM_ROWS = ("optim:SGD", "optim:SGD_Momentum", "optim:RMSProp", "optim:Adam")


def fallback_rows(mutant) -> tuple:
    """Rows for a mutant no probe case runs: by the file and function it changes."""
    if mutant.file == "pygrad/tensor.py":
        return ("engine",)
    if mutant.file == "pygrad/module.py":
        return ("module",)
    if mutant.file == "pygrad/optims.py":
        cls = mutant.function.split(".")[0]
        return (f"optim:{cls}",) if f"optim:{cls}" in OPTIM_ROWS else OPTIM_ROWS
    return ()


def sample_order(names: list, seed: int) -> list:
    """The seeded permutation the sample is taken from (the first K counted)."""
    order = sorted(names)
    random.Random(seed).shuffle(order)
    return order


def focused_run(mutant, rows: tuple, budget: float, seed: int, workers: int, root: Path = ROOT,
                keep: Path | None = None) -> tuple:
    """(status, first failure) of a long focused gate run: --only rows, thorough profile. The
    regression tests it writes are kept in `keep`/<mutant> (so a kill can be replayed)."""
    copy = apply(mutant, root)
    try:
        report = copy / "focused.json"
        cmd = gate_command(budget, seed, workers, "thorough", report, copy / "found", list(rows))
        try:
            proc = subprocess.run(cmd, cwd=copy, env=env(copy), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT, timeout=budget + 300)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
        doc = json.loads(report.read_text()) if report.is_file() else None
        status, first, _ = classify_run(code, doc)
        if keep is not None and (copy / "found").is_dir():
            shutil.copytree(copy / "found", keep / mutant.name, dirs_exist_ok=True)
        return status, first
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def entry(m, verdict, result=None, **extra) -> dict:
    """One mutant's JSON entry: the contract's fields, then what the probes and gate saw."""
    r = asdict(result) if result else {}
    return {"name": m.name, "killed": bool(r.get("killed")), "first_failure_s": r.get("first_failure_s"),
            "test": r.get("test"), "check": r.get("check"), "location": m.location, "operator": m.operator,
            "function": m.function, "original": m.original, "replacement": m.replacement,
            "status": r.get("status", verdict.kind), "row": r.get("row"), "wall_s": r.get("wall_s"),
            "why": r.get("why", ""), "probe": verdict.kind, "probe_evidence": verdict.evidence,
            "unit_tests": verdict.unit, "rows": list(verdict.rows), **extra}


def run(args, console: Console) -> int:
    """The `--mutants --generated` mode of the gate's command line."""
    start = time.time()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    everything = generate(ROOT)
    chosen = [m for m in everything if not args.mutants or m.name in set(args.mutants)]
    unknown = sorted(set(args.mutants or ()) - {m.name for m in everything})
    if unknown:
        console.print(f"[bold red]usage error:[/] --mutants --generated: unknown id(s) {', '.join(unknown)} "
                      "(the ids of the current source are in a run's JSON)", highlight=False)
        return 2
    console.print(f"pygrad-check self-test, generated mutants: {len(everything)} from pygrad's gradient code"
                  + (f", {len(chosen)} named" if args.mutants else "") + f"; seed {seed}, budget {args.budget:g} s, "
                  f"{args.workers} worker(s), profile {args.profile}", highlight=False)
    table = probes.reach(0, ROOT)
    rows_of = {c.name: c.rows for c in probes.cases()}
    order = sample_order([m.name for m in chosen], seed)
    by_name = {m.name: m for m in chosen}
    want = args.sample if args.sample is not None else len(chosen)
    verdicts, results, equivalent, probed = {}, [], [], 0
    with tempfile.TemporaryDirectory(prefix="pygrad-selftest-gen-") as tmp:
        while len(results) < want and probed < len(order):
            # probe the permutation's next stretch: about as many as are still wanted (all without --sample)
            batch = [by_name[n] for n in order[probed:probed + max(4, int(1.3 * (want - len(results))))]]
            probed += len(batch)
            console.print(f"probing {len(batch)} mutant(s) without the gate (probe cases vs torch, then unit "
                          "tests) ...", highlight=False)
            verdicts.update(classify_all(batch, table, rows_of, args.workers, seed=0, root=ROOT))
            for m in batch:
                if len(results) >= want:
                    break
                v = verdicts[m.name]
                if v.kind == CRASH_ONLY:
                    continue
                outcome = _run_one(m, v, args, seed, len(results) + 1, want, Path(tmp) / "gate.log", console)
                (equivalent if "equivalent_because" in outcome else results).append(outcome)
                _write(args, start, seed, results, equivalent, verdicts, by_name, probed, len(chosen), False)
    return _write(args, start, seed, results, equivalent, verdicts, by_name, probed, len(chosen), True, console)


def _run_one(m, v, args, seed, k, want, log, console) -> dict:
    """Run the whole gate on one live mutant (and, for a silent survivor, the focused
    thorough run): its JSON entry, with `equivalent_because` when it is equivalent."""
    row = v.rows[0] if v.rows else ""
    console.print(f"[{k}/{want}] {m.name} ({m.location}: {m.original} -> {m.replacement}) ...", end=" ",
                  highlight=False, markup=False)
    r = run_mutant(_with_row(m, row), args.budget, seed, args.workers, args.profile, args.focused and bool(row),
                   log=log)
    extra = {}
    if not r.killed and r.status == "survived" and v.kind == SILENT:
        rows = v.rows or fallback_rows(m)
        keep = Path(args.json).parent / "focused-findings" if args.json else None
        status, first = focused_run(m, rows, args.equivalence_budget, seed, args.workers, keep=keep) if rows \
            else ("no row", None)
        extra["focused"] = {"rows": list(rows), "budget_s": args.equivalence_budget, "status": status,
                            "check": (first or {}).get("check"), "test": (first or {}).get("test")}
        if status == "survived":
            console.print("equivalent (probes, unit tests, unfocused and focused gate agree with torch)")
            return entry(m, v, r, **extra, equivalent_because=(
                f"{v.evidence}; unit tests: {v.unit}; unfocused gate ({args.budget:g} s) and focused gate "
                f"(--only {' '.join(rows)}, thorough, {args.equivalence_budget:g} s): no finding"))
    console.print(f"{r.status}" + (f" at {r.first_failure_s:.1f} s by {r.check} in {r.test}" if r.killed
                                   else f" ({r.why})" if r.why else "") + f"; {r.wall_s:.1f} s wall",
                  highlight=False, markup=False)
    return entry(m, v, r, **extra)


def _write(args, start, seed, entries, equivalent, verdicts, by_name, probed, total, complete, console=None) -> int:
    """Write the JSON and Markdown reports (after every mutant, so a long run that is stopped
    leaves what it found); at the end also print the table and verdict, and return the exit
    status."""
    elapsed = time.time() - start
    s = stats(entries)
    kinds = [v.kind for v in verdicts.values()]
    crash = [by_name[n] for n, v in verdicts.items() if v.kind == CRASH_ONLY]
    counts = {"live": probed - len(crash) - len(equivalent), "equivalent": len(equivalent), "crash_only": len(crash),
              "probed": probed, "total": total, "silent": kinds.count(SILENT), "unreached": kinds.count("unreached"),
              "run": len(entries), "sample": args.sample}
    doc = {"seed": int(seed), "budget_s": float(args.budget), "workers": int(args.workers), "focused": bool(args.focused),
           "elapsed_s": elapsed, "complete": complete, **s, "generated": counts, "mutants": entries,
           "equivalent": equivalent,
           "crash_only": [{"name": m.name, "location": m.location, "operator": m.operator, "original": m.original,
                           "replacement": m.replacement, "evidence": verdicts[m.name].evidence,
                           "unit_tests": verdicts[m.name].unit} for m in crash]}
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(markdown(doc), encoding="utf-8")
    if console is None:
        return 0
    (console if console.is_terminal else Console(width=200, file=console.file)).print(_table(entries))
    console.print(f"kill rate: {s['killed']}/{s['total']} live generated mutants run; time to first failure: median "
                  f"{s['median_first_failure_s'] or 0:.1f} s, worst {s['worst_first_failure_s'] or 0:.1f} s; "
                  f"{len(equivalent)} equivalent, {len(crash)} crash-only set aside, of {probed} probed; "
                  f"{elapsed:.0f} s in all; replay with --seed {seed}", highlight=False)
    if s["killed"] == s["total"]:
        console.print("[bold green]every live generated mutant run was killed[/]")
        return 0
    console.print(f"[bold red]{s['total'] - s['killed']} generated mutant(s) not killed[/]: exit status 1")
    return 1


def _with_row(m, row):
    from dataclasses import replace
    return replace(m, row=row)


def stats(entries: list) -> dict:
    times = [e["first_failure_s"] for e in entries if e["killed"] and e["first_failure_s"] is not None]
    return {"killed": sum(e["killed"] for e in entries), "total": len(entries),
            "median_first_failure_s": statistics.median(times) if times else None,
            "worst_first_failure_s": max(times) if times else None}


def _table(entries: list) -> Table:
    t = Table(title="pygrad self-test: generated mutants (the whole gate, unfocused, per mutant)", title_justify="left")
    for col in ("mutant", "location", "change", "probe", "result", "first failure (s)", "caught by"):
        t.add_column(col, overflow="fold")
    for e in entries:
        caught = f"{e['check']} in {e['test']}" if e["test"] else (e["why"] or "-")
        t.add_row(e["name"], e["location"], escape(f"{e['original']} -> {e['replacement']}"), e["probe"],
                  e["status"], f"{e['first_failure_s']:.1f}" if e["first_failure_s"] is not None else "-",
                  escape(caught))
    return t


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(doc: dict) -> str:
    """The kill table of generated mutants, the survivors, and the equivalent ones with why."""
    g, s = doc["generated"], doc
    lines = [f"## pygrad-check self-test, generated mutants: {s['killed']}/{s['total']} killed", "",
             f"{g['total']} mutants generated from pygrad's gradient code; {g['probed']} probed (a seeded "
             f"permutation, up to the sample's last): {g['live']} live, {g['equivalent']} equivalent (found among "
             f"those run), {g['crash_only']} crash-only (set aside). "
             + (f"A seeded sample of {g['sample']} live ones (seed {s['seed']}) was run" if g["sample"] is not None
                else "Every live one was run")
             + f", each through the whole gate, unfocused, budget {s['budget_s']:g} s, {s['workers']} workers. "
             f"Time to first failure from the gate's start: median {s['median_first_failure_s'] or 0:.1f} s, worst "
             f"{s['worst_first_failure_s'] or 0:.1f} s.", "",
             "| mutant | location | operator | change | probes | result | first failure (s) | caught by |",
             "|---|---|---|---|---|---|---:|---|"]
    for e in doc["mutants"]:
        result = "killed" if e["killed"] else f"**{e['status'].upper()}**"
        caught = f"`{e['check']}` in `{e['test'].split('/')[-1]}`" if e["test"] else _cell(e["why"] or "-")
        first = f"{e['first_failure_s']:.1f}" if e["first_failure_s"] is not None else "-"
        lines.append(f"| `{e['name']}` | `{e['location']}` | {e['operator']} | `{_cell(e['original'])}` -> "
                     f"`{_cell(e['replacement'])}` | {e['probe']} | {result} | {first} | {caught} |")
    if doc["equivalent"]:
        lines += ["", "### Equivalent mutants (not counted; check them)", "",
                  "| mutant | location | operator | change | why believed equivalent |", "|---|---|---|---|---|"]
        for e in doc["equivalent"]:
            lines.append(f"| `{e['name']}` | `{e['location']}` | {e['operator']} | `{_cell(e['original'])}` -> "
                         f"`{_cell(e['replacement'])}` | {_cell(e['equivalent_because'])} |")
    return "\n".join(lines) + "\n"
