"""`python -m reference` / `pygrad-check`: the correctness gate.

Runs the fuzz suite (`fuzz/`) through pytest-xdist for a time budget, shows progress,
prints the per-op table and every failure with its first wrong node and a ready-to-paste
regression test (also written under `--out`), and optionally a JSON report.

Exit status: 0 no failures; 1 failures found; 2 usage or internal error (a crash of the
suite itself is never reported as 1).

`--mutants [NAME ...]` runs the self-test instead (`reference.selftest`): the gate on each
deliberately broken pygrad, which it must fail on; exit 0 only if every mutant is killed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from reference import listing, selftest, session
from reference.invariants import ROWS
from reference.registry import OPS
from reference.report import (Stream, document, markdown, print_failures, regression_files, summarize,
                              table, write_markdown)

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"


class UsageError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pygrad-check",
        description="Check pygrad's values and gradients against PyTorch and finite differences "
                    "on random programs, for a time budget.")
    p.add_argument("--budget", type=float, default=60.0, metavar="SECONDS",
                   help="wall-clock budget of the run (default 60)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of every example (default: random, printed); the same seed replays "
                        "the same examples")
    p.add_argument("-n", "--workers", type=int, default=os.cpu_count() or 1, metavar="WORKERS",
                   help="pytest-xdist worker processes (default: CPU count)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the JSON report here")
    p.add_argument("--profile", choices=("dev", "ci", "thorough"), default="ci",
                   help="hypothesis profile (default ci)")
    p.add_argument("--only", nargs="+", default=None, metavar="OP",
                   help="check only these registry ops (op tests, and programs built from them) "
                        f"or rows ({', '.join(ROWS)})")
    p.add_argument("--mutants", nargs="*", default=None, metavar="NAME",
                   help="self-test: run the gate on each mutant of reference.mutants (all, or the "
                        "named ones), --budget seconds each; exit 0 only if every one is killed")
    p.add_argument("--ci-subset", action="store_true",
                   help="with --mutants: (also) run the small diverse subset sized for CI")
    p.add_argument("--out", type=Path, default=Path("reference-failures"), metavar="DIR",
                   help="directory for the regression tests of failures (default reference-failures/)")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                   help="also write the table and failures (or the mutant kill table) as Markdown, "
                        "e.g. to \"$GITHUB_STEP_SUMMARY\"")
    p.add_argument("--list", action="store_true",
                   help="list the registry's ops and the properties checked, and exit")
    return p


def _validate(args) -> None:
    if args.budget <= 0:
        raise UsageError(f"--budget must be positive, got {args.budget}")
    if args.workers < 1:
        raise UsageError(f"-n must be at least 1, got {args.workers}")
    unknown = sorted(set(args.only or ()) - set(OPS) - set(ROWS))
    if unknown:
        raise UsageError(f"--only: unknown op(s) {', '.join(unknown)}; known: "
                         f"{', '.join(list(OPS) + list(ROWS))}")
    if selftest.unknown(args.mutants):
        raise UsageError(f"--mutants: unknown mutant(s) {', '.join(selftest.unknown(args.mutants))}")
    if args.ci_subset and args.mutants is None:
        raise UsageError("--ci-subset goes with --mutants")
    if not (FUZZ / "test_ops.py").is_file():
        raise UsageError(f"the fuzz suite is not next to the reference package ({FUZZ})")


def main(argv=None) -> int:
    console = Console()
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # argparse: 0 for --help, 2 for a usage error
        return int(e.code or 0)
    try:
        _validate(args)
        if args.list:
            console.print(listing.ops_table())
            console.print(listing.properties_table())
            return 0
        if args.mutants is not None:
            return selftest.run(args, console)
        return run(args, console)
    except UsageError as e:
        console.print(f"[bold red]usage error:[/] {e}")
        return 2
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        return 2
    except Exception as e:  # noqa: BLE001 - the tool itself crashed: 2, never 1
        console.print_exception()
        console.print(f"[bold red]internal error of pygrad-check:[/] {type(e).__name__}: {e}")
        return 2


def run(args, console: Console) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    only = list(dict.fromkeys(args.only or ()))
    ops = only or list(OPS) + list(ROWS)
    start = time.time()
    # Drawing stops a little before the budget: pytest must still finish and report.
    draw_until = start + args.budget - min(5.0, 0.1 * args.budget)
    console.print(f"pygrad-check: seed {seed}, budget {args.budget:g} s, {args.workers} worker(s), "
                  f"profile {args.profile}" + (f", only {' '.join(only)}" if only else ""))
    with tempfile.TemporaryDirectory(prefix="pygrad-check-") as tmp:
        env = dict(os.environ)
        env.update({session.ENV_DIR: tmp, session.ENV_DEADLINE: repr(draw_until),
                    session.ENV_SEED: str(seed), session.ENV_ONLY: ",".join(only),
                    "HYPOTHESIS_PROFILE": args.profile, "PYTHONHASHSEED": "0"})
        cmd = [sys.executable, "-m", "pytest", str(FUZZ), "-n", str(args.workers),
               f"--hypothesis-seed={seed}", "-q", "--no-header", "-p", "no:cacheprovider",
               "-W", "ignore::DeprecationWarning", "--rootdir", str(ROOT)]
        log_path = Path(tmp) / "pytest.log"
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            stream = _follow(proc, Path(tmp), args.budget, console)
        returncode = proc.returncode
        stream.poll()
        pytest_log = log_path.read_text(encoding="utf-8", errors="replace")
    elapsed = time.time() - start
    summary = summarize(stream.records, ops)
    console.print(table(summary))
    _coverage(console, summary)
    real = [f for f in summary.failures if not f.get("internal")]
    internal = [f for f in summary.failures if f.get("internal")]
    paths = regression_files(real, args.out)
    print_failures(console, summary.failures, paths)
    crashed = returncode not in (0, 1) or (returncode == 1 and not summary.failures)
    if crashed:
        console.print(f"[bold red]pytest exited with status {returncode}[/]; its output ends with:")
        console.print("\n".join(pytest_log.splitlines()[-40:]), markup=False, highlight=False)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document(seed, args.budget, args.workers, elapsed, summary),
                                        indent=2), encoding="utf-8")
    status = 2 if internal or crashed else 1 if real else 0
    verdict = {2: "internal error", 1: f"{len(real)} failure(s)", 0: "no failures"}[status]
    if args.markdown is not None:
        write_markdown(args.markdown, markdown(summary, f"{verdict} (exit {status})", seed, elapsed,
                                               args.workers, args.profile))
    console.print(f"{summary.examples} examples in {summary.tests} tests, {elapsed:.1f} s "
                  f"({summary.examples / max(elapsed, 1e-9):.0f} examples/s); replay with "
                  f"--seed {seed}")
    if status:
        console.print(f"[bold red]{verdict}[/]: exit status {status}")
    else:
        console.print(f"[bold green]{verdict}[/]")
    return status


def _follow(proc: subprocess.Popen, tmp: Path, budget: float, console: Console) -> Stream:
    """Show live progress from the workers' statistics until pytest exits."""
    stream = Stream(tmp)
    examples, done, total, failing = 0, 0, 0, 0
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("budget", total=budget, status="starting workers")
        t0 = time.time()
        while True:
            finished = proc.poll() is not None
            for r in stream.poll():
                kind = r.get("kind")
                if kind == "collected":
                    total = max(total, r["tests"])
                elif kind == "tick":
                    examples += r["examples"]
                elif kind == "test":
                    done += 1
                    failing += bool(r["failures"])
            progress.update(task, completed=min(budget, time.time() - t0),
                            status=f"{examples} examples, {done}/{total or '?'} tests, "
                                   f"{failing} failing")
            if finished:
                break
            time.sleep(0.25)
    return stream


def _coverage(console: Console, summary) -> None:
    if summary.features:
        items = ", ".join(f"{k} {v}" for k, v in sorted(summary.features.items()))
        console.print(f"conditions reached (examples): {items}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
