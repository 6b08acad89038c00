"""`python -m reference` / `pygrad-check`: the correctness gate.

Runs the suite (`reference/suite`, shipped in the package) through pytest-xdist: first the
deterministic coverage pass of every row, in full, then random properties for what is left of
`--budget` (or `--examples` per test); prints each finding as it arrives, then the per-row
table, every finding with its first wrong node and a ready-to-paste regression test (also
written under `--out`), and optionally JSON and Markdown reports. `merge` combines shard
reports. This process imports neither torch nor pygrad: the workers do.

Exit status: 0 no failures; 1 findings (or, with --require-coverage, an unreached
condition); 2 a usage error, an internal error of the suite, or an interrupted run (a crash
of the tool itself is never 1).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from reference.gate import render, report
from reference.runstate import session
from reference.runstate.streams import Stream

GRACE = 14.0            # seconds past the budget after which a run is cut (its coverage pass done)
COVERAGE_CAP = 180.0    # ... and past which even an unfinished coverage pass is cut


class UsageError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pygrad-check",
        description="Check pygrad's values and gradients against PyTorch and finite differences: a "
                    "deterministic coverage pass, then random programs for a time budget. "
                    "`pygrad-check merge REPORT.json ...` combines shard reports.")
    p.add_argument("--budget", type=float, default=60.0, metavar="SECONDS",
                   help="wall-clock budget of the run (default 60); the coverage pass always runs in full")
    p.add_argument("--examples", type=int, default=None, metavar="N",
                   help="instead of a time budget, N random examples per property test: the same seed and "
                        "code give the same report (apart from timings) on any machine")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of every example (default: random, printed); the same seed replays the same examples")
    p.add_argument("-n", "--workers", type=int, default=os.cpu_count() or 1, metavar="WORKERS",
                   help="pytest-xdist worker processes (default: CPU count)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the JSON report here")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                   help="also write the table and findings (or the mutant kill table) as Markdown, e.g. to "
                        "\"$GITHUB_STEP_SUMMARY\"")
    p.add_argument("--out", type=Path, default=Path("reference-failures"), metavar="DIR",
                   help="directory for the findings' regression tests (default reference-failures/)")
    p.add_argument("--profile", choices=("dev", "ci", "thorough"), default="ci", help="hypothesis profile (default ci)")
    p.add_argument("--only", nargs="+", default=None, metavar="OP",
                   help="check only these ops or rows (module, optim:<name>, layer:<class>, loss:<class>, engine)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run shard I of N (1-based): 1/N of the coverage samples and random examples of its own "
                        "seed; combine the N reports with `pygrad-check merge`")
    p.add_argument("--require-coverage", action="store_true",
                   help="a condition no example reached is a failure (exit 1)")
    p.add_argument("--example-timeout", type=float, default=session.DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"how long one example may run before it is a finding (default {session.DEFAULT_TIMEOUT:g})")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first finding")
    p.add_argument("--list", action="store_true",
                   help="list the registry's ops, the report's rows and their conditions, the properties, and exit")
    p.add_argument("--mutants", nargs="*", default=None, metavar="NAME",
                   help="self-test: run the whole gate, as CI would, on each mutant of the catalogue (all, or the "
                        "named ones), --budget seconds each; exit 0 only if every one is killed")
    p.add_argument("--ci-subset", action="store_true", help="with --mutants: (also) the small subset sized for CI")
    p.add_argument("--generated", action="store_true",
                   help="with --mutants [ID ...]: mutants derived from pygrad's gradient code instead of the catalogue "
                        "(crash-only ones set aside, equivalent ones listed); see docs/selftest-generated.md")
    p.add_argument("--sample", type=int, default=None, metavar="K",
                   help="with --generated: run a seeded random sample (--seed) of K live mutants")
    p.add_argument("--equivalence-budget", type=float, default=180.0, metavar="SECONDS",
                   help="with --generated: budget of the focused thorough run that decides whether a mutant nothing "
                        "else saw is equivalent (default 180)")
    p.add_argument("--together", action="store_true",
                   help="with --mutants NAME ...: apply them all to one copy and run the gate once; each must be "
                        "reported by a reproducer that fails with that mutant alone")
    p.add_argument("--focused", action="store_true",
                   help="with --mutants: run each mutant with --only its own rows (a tuned setting, not the "
                        "headline: the unfocused run is how CI meets a bug)")
    return p


def merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pygrad-check merge",
                                description="Combine the JSON reports of the shards of one run into one table, "
                                            "one verdict and one exit status.")
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    p.add_argument("--json", type=Path, default=None, metavar="PATH")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH")
    p.add_argument("--out", type=Path, default=Path("reference-failures"), metavar="DIR")
    return p


# ---------------------------------------------------------------------------- validation
def check_writable(path: Path | None, what: str, directory: bool = False) -> None:
    """A usage error unless `path` can be written: a file whose directory exists and is
    writable, or a directory that exists (writable) or can be created in one that does."""
    if path is None:
        return
    p = Path(path)
    if directory:
        if p.exists():
            if not p.is_dir() or not os.access(p, os.W_OK):
                raise UsageError(f"{what} {p}: not a writable directory")
            return
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"{what} {p}: cannot create it ({parent} is not a writable directory)")
        return
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise UsageError(f"{what} {p}: is a directory, not a file")
    if not parent.is_dir():
        raise UsageError(f"{what} {p}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"{what} {p}: not writable")


def parse_shard(text: str | None) -> tuple:
    if text is None:
        return 1, 1
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard must be I/N with 1 <= I <= N, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def validate(args) -> None:
    if args.budget <= 0:
        raise UsageError(f"--budget must be positive, got {args.budget}")
    if args.examples is not None and args.examples < 1:
        raise UsageError(f"--examples must be at least 1, got {args.examples}")
    if args.workers < 1:
        raise UsageError(f"-n must be at least 1, got {args.workers}")
    if args.example_timeout <= 0:
        raise UsageError(f"--example-timeout must be positive, got {args.example_timeout}")
    parse_shard(args.shard)
    if args.only:
        from reference.registry import LOSS_OPS, OPS, rows
        unknown = sorted(set(args.only) - set(OPS) - set(LOSS_OPS) - set(rows()))
        if unknown:
            raise UsageError(f"--only: unknown op(s) or row(s) {', '.join(unknown)}; known: "
                             f"{', '.join(list(OPS) + rows())}")
    if (args.mutants is not None or args.ci_subset or args.focused or args.together or args.generated
            or args.sample is not None):
        from reference.selftest import catalogue
        if args.mutants is None:
            raise UsageError("--ci-subset, --focused, --together, --generated and --sample go with --mutants")
        if args.generated:
            if args.ci_subset or args.together:
                raise UsageError("--generated does not go with --ci-subset or --together")
            if args.sample is not None and args.sample < 1:
                raise UsageError(f"--sample must be at least 1, got {args.sample}")
            if args.equivalence_budget <= 0:
                raise UsageError(f"--equivalence-budget must be positive, got {args.equivalence_budget}")
            check_writable(args.json, "--json")
            check_writable(args.markdown, "--markdown")
            return
        if args.together and len(args.mutants) < 2:
            raise UsageError("--together needs two or more mutants named")
        if args.sample is not None:
            raise UsageError("--sample goes with --mutants --generated")
        bad = sorted(set(args.mutants) - set(catalogue.BY_NAME))
        if bad:
            raise UsageError(f"--mutants: unknown mutant(s) {', '.join(bad)}")
    check_writable(args.json, "--json")
    check_writable(args.markdown, "--markdown")
    check_writable(args.out, "--out", directory=True)


# ---------------------------------------------------------------------------- main
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    try:
        if argv[:1] == ["merge"]:
            args = merge_parser().parse_args(argv[1:])
        else:
            args = parser().parse_args(argv)
    except SystemExit as e:  # argparse: 0 for --help, 2 for a usage error
        return int(e.code or 0)
    try:
        if argv[:1] == ["merge"]:
            return run_merge(args, console)
        validate(args)
        if args.list:
            from reference.gate.listing import print_listing
            print_listing(console)
            return 0
        if args.mutants is not None and args.generated:
            from reference.selftest.generated import run as run_generated
            return run_generated(args, console)
        if args.mutants is not None:
            from reference.selftest.run import run as run_mutants
            return run_mutants(args, console)
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


def suite_dir() -> Path:
    import reference.suite
    return Path(reference.suite.__file__).resolve().parent


# pytest plugins of a gate run, by entry-point name; nothing else is loaded (see gate_environment)
PLUGINS = ("xdist", "hypothesispytest", "timeout", "reference.gate.hooks")


def pytest_command(workers: int) -> list:
    """pytest over the shipped suite. The seed goes by environment (see session.hypothesis_seed),
    not `--hypothesis-seed`: that option would have xdist's controller import hypothesis, which
    it never uses, before it starts the workers."""
    suite = suite_dir()
    plugins = [arg for name in PLUGINS for arg in ("-p", name)]
    return [sys.executable, "-m", "pytest", str(suite), "-c", str(suite / "gate.ini"), "--rootdir", str(suite),
            *plugins, "-n", str(workers), "-q", "--no-header", "-W", "ignore::DeprecationWarning"]


def gate_environment() -> dict:
    """The environment of the gate's pytest: this one, except what would make the run depend
    on the machine's pytest set-up: the other pytest plugins installed (pytest-randomly would
    reorder and reseed, others add start-up and exit time), PYTEST_ADDOPTS, and the identity
    of an xdist worker the gate may have been started from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_") and k != "PYTEST_ADDOPTS"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args, console: Console) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    shard = parse_shard(args.shard)
    only = list(dict.fromkeys(args.only or ()))
    start = time.time()
    budget = args.budget
    console.print(f"pygrad-check: seed {seed}, " + (f"{args.examples} examples per test" if args.examples else
                  f"budget {budget:g} s") + f", {args.workers} worker(s), profile {args.profile}"
                  + (f", shard {shard[0]}/{shard[1]}" if shard != (1, 1) else "")
                  + (f", only {' '.join(only)}" if only else ""))
    with tempfile.TemporaryDirectory(prefix="pygrad-check-") as tmp:
        env = gate_environment()
        env.update({session.ENV_DIR: tmp, session.ENV_START: repr(start), session.ENV_SEED: str(seed),
                    session.ENV_ONLY: ",".join(only), session.ENV_SHARD: f"{shard[0]}/{shard[1]}",
                    session.ENV_TIMEOUT: repr(args.example_timeout), session.ENV_EXAMPLES: str(args.examples or ""),
                    "PYGRAD_CHECK_TEST_TIMEOUT": repr(budget + 3 * args.example_timeout + 60),
                    "HYPOTHESIS_PROFILE": args.profile, "PYTHONHASHSEED": "0"})
        env[session.ENV_DEADLINE] = repr(start + budget - min(3.0, 0.1 * budget))
        log_path = Path(tmp) / "pytest.log"
        previous = signal.signal(signal.SIGTERM, _interrupt)
        interrupted, cut = False, False
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(pytest_command(args.workers), cwd=tmp, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            stream = Stream(Path(tmp))
            try:
                cut = _follow(proc, stream, start, budget if not args.examples else None, args.exitfirst, console)
            except KeyboardInterrupt:
                interrupted = True
                console.print("[bold red]interrupted[/]: writing the report of what ran so far")
            finally:
                signal.signal(signal.SIGTERM, previous)
                if proc.poll() is None:
                    _stop(proc)
        stream.poll()
        pytest_log = log_path.read_text(encoding="utf-8", errors="replace")
    return finish(args, console, stream.records, seed, shard, time.time() - start, proc.returncode,
                  interrupted, cut, pytest_log)


def _stop(proc: subprocess.Popen) -> None:
    """Stop pytest and its workers (their process group): SIGTERM, then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _follow(proc, stream: Stream, start: float, budget: float | None, exitfirst: bool, console: Console) -> bool:
    """Show progress and print findings as they arrive, until pytest exits. Returns True
    when the run was cut: at the first finding with --exitfirst, or GRACE seconds past the
    budget once the coverage pass is done (COVERAGE_CAP past it at the latest)."""
    examples, done, total, n_cov, cov_done, failing = 0, 0, 0, 0, 0, 0
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("budget" if budget else "examples", total=budget or 1, status="starting workers")
        while True:
            finished = proc.poll() is not None
            for r in stream.poll():
                kind = r.get("kind")
                if kind == "collected":
                    total = max(total, r["tests"])
                    n_cov = max(n_cov, r.get("coverage_tests", 0))
                elif kind == "tick":
                    examples += r["examples"]
                elif kind == "test":
                    done += 1
                    cov_done += r.get("kind_of_test") == "coverage"
                elif kind == "finding":
                    failing += 1
                    progress.console.print(render.finding_line(r), style="bold red", markup=False, highlight=False)
                    if exitfirst:
                        return True
            now = time.time() - start
            progress.update(task, completed=min(budget, now) if budget else 0,
                            status=f"{examples} examples, {done}/{total or '?'} tests "
                                   f"(coverage {cov_done}/{n_cov or '?'}), {failing} finding(s)")
            if finished:
                return False
            if budget is not None and now > budget + GRACE and (cov_done >= n_cov or now > budget + COVERAGE_CAP):
                return True
            time.sleep(0.2)


def finish(args, console, records, seed, shard, elapsed, returncode, interrupted, cut, pytest_log) -> int:
    collected = next((r for r in records if r.get("kind") == "collected"), {})
    table = collected.get("rows", [])
    summary = report.summarize(records, [row for row, _ in table], dict(table), collected.get("feasible_pairs"),
                               collected.get("infeasible_pairs"))
    crashed = not (interrupted or cut) and (returncode not in (0, 1) or (returncode == 1 and not summary.findings
                                                                        and not summary.internal))
    coverage_tests = max((r.get("coverage_tests", 0) for r in records if r.get("kind") == "collected"), default=0)
    coverage_done = sum(r.get("kind_of_test") == "coverage" for r in records if r.get("kind") == "test")
    if not interrupted and not summary.findings and (not summary.tests or coverage_done < coverage_tests):
        # nothing may pass unseen: a run whose coverage pass did not complete is no verdict
        crashed = True
        console.print(f"[bold red]the coverage pass did not complete[/] ({coverage_done}/{coverage_tests} rows)")
    status, verdict = report.verdict(summary, crashed, interrupted, args.require_coverage)
    wide = console if console.is_terminal else Console(width=170, file=console.file)
    wide.print(render.table(summary.rows))
    console.print(f"pairs of conditions reached together in one use: {render.pair_share(summary.rows)}",
                  highlight=False)
    for row, (a, b) in summary.infeasible_reached:
        console.print(f"[yellow]declared infeasible, yet reached in one use[/] (the registry's declaration is wrong): "
                      f"{escape(row)}: {escape(a)} + {escape(b)}", highlight=False)
    thin = render.thin_lines(summary.rows)
    if thin:
        console.print("[yellow]conditions no example reached[/] (the row reads thin):", highlight=False)
        for line in thin:
            console.print(f"  {line}", highlight=False, markup=False)
    paths = render.regression_files(summary.findings, args.out)
    render.print_findings(console, summary.findings, summary.internal, paths)
    if crashed:
        console.print(f"[bold red]pytest exited with status {returncode}[/]; its output ends with:")
        console.print("\n".join(pytest_log.splitlines()[-40:]), markup=False, highlight=False)
    run = {"seed": seed, "budget_s": args.budget, "workers": args.workers, "elapsed_s": elapsed,
           "profile": args.profile, "shard": list(shard), "examples_per_test": args.examples,
           "interrupted": interrupted, "cut": cut, "crashed": crashed, "require_coverage": args.require_coverage,
           "exit_status": status, "verdict": verdict}
    doc = report.document(summary, run)
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    if args.markdown is not None:
        render.write_text(args.markdown, render.markdown(doc, f"{verdict} (exit {status})", args.profile))
    console.print(f"{summary.examples} examples in {summary.tests} tests ({summary.invalid} invalid, "
                  f"{summary.set_aside} set aside), {elapsed:.1f} s; replay with --seed {seed}"
                  + (f" --shard {shard[0]}/{shard[1]}" if shard != (1, 1) else ""), highlight=False)
    console.print(f"[bold {'red' if status else 'green'}]{verdict}[/]" + (f": exit status {status}" if status else ""))
    return status


# the fields of the report's contract (DESIGN.md) that a merge reads
REPORT_FIELDS = frozenset({"seed", "budget_s", "workers", "elapsed_s", "ops", "failures"})


def run_merge(args, console: Console) -> int:
    for p in args.reports:
        if not p.is_file():
            raise UsageError(f"merge: {p} is not a file")
    check_writable(args.json, "--json")
    check_writable(args.markdown, "--markdown")
    check_writable(args.out, "--out", directory=True)
    docs = []
    for p in args.reports:
        try:
            docs.append(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as e:
            raise UsageError(f"merge: {p} is not a JSON report of pygrad-check ({e})") from e
        missing = REPORT_FIELDS - set(docs[-1]) if isinstance(docs[-1], dict) else REPORT_FIELDS
        if missing:
            raise UsageError(f"merge: {p} is not a report of pygrad-check (no {', '.join(sorted(missing))})")
    try:
        merged = report.merge(docs)
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"merge: {e}") from e
    status, verdict = report.merged_status(merged)
    merged.update({"exit_status": status, "verdict": verdict})
    rows = [dict(r, fd_ran=r["max_err_fd"] > 0) for r in merged["ops"]]
    (console if console.is_terminal else Console(width=170, file=console.file)).print(render.table(rows))
    for f in merged["failures"]:
        console.print(render.finding_line({**f, "row": f["op"], "t": f.get("found_at_s") or 0}), markup=False,
                      highlight=False)
    render.regression_files(merged["failures"], args.out)
    if args.json is not None:
        args.json.write_text(json.dumps(merged, indent=2), encoding="utf-8")
    if args.markdown is not None:
        render.write_text(args.markdown, render.markdown(merged, f"{verdict} (exit {status})"))
    console.print(f"merged {len(docs)} shard report(s): {merged['examples']} examples; "
                  f"[bold {'red' if status else 'green'}]{verdict}[/]")
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
