"""The gate's self-test: it must fail on every deliberately broken pygrad.

`pygrad-check --mutants [NAME ...] --budget B` applies each mutant of `reference.mutants`
(all of them, or the named ones) to a fresh copy of the project and runs the ordinary gate
there in a subprocess -- `python -m reference --budget B --seed S -n W --json ...` with the
copy as working directory, so the mutated pygrad is the one imported -- and reads its exit
status and JSON report:

- killed: exit 1 with at least one failure in the report;
- survived: exit 0 (a hole in the gate: a strategy must learn to reach the condition the
  bug hides behind -- the mutant does not go);
- error: exit 2, a crash, a timeout or a missing report (counted as not killed).

To die within a small budget, each mutant runs the gate restricted with `--only` to the
rows its bug lives in (`FOCUS`: the op whose rule it breaks, `module`, an optimizer's row,
or for engine bugs a couple of common ops so that the program and engine tests run). The
checks are the gate's ordinary ones; nothing here knows what a mutant breaks. `--only`
given with `--mutants` replaces the focus of every mutant.

Prints a kill table (mutant, expected check kind, killed?, check kinds seen, first failure,
seconds) and the kill rate; exit 0 only if every mutant is killed, 1 otherwise, 2 for an
error of the self-test itself (a stale mutant, a usage error).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reference.mutants import BY_NAME, MUTANTS, ROOT, Mutant, apply, env, patched_source
from reference.report import write_markdown

ENGINE = ("add", "mul")     # the program and engine tests run on programs of these ops

# Mutant -> the gate's `--only` selection it runs under.
FOCUS = {
    "unbroadcast_size1_not_summed": ("add", "mul"),
    "unbroadcast_mean_not_sum": ("add", "mul"),
    "sub_second_operand_sign": ("sub", "rsub"),
    "mul_copy_paste": ("mul",),
    "div_second_operand": ("div", "rdiv"),
    "neg_sign": ("neg",),
    "pow_tensor_exponent_scale": ("pow_tensor",),
    "pow_square_fast_path": ("pow",),
    "rpow_log_of_exponent": ("rpow", "pow_tensor"),
    "matmul_shared_b_transposed": ("matmul",),
    "transpose_perm_not_inverted": ("transpose",),
    "T_backward_reshape": ("T",),
    "getitem_add_at_lost": ("getitem",),
    "mask_idcs_grad_not_zeroed": ("mask_idcs",),
    "mean_tuple_axis_count": ("mean",),
    "std_missing_one_over_n": ("std",),
    "relu_derivative_at_zero": ("relu",),
    "sigmoid_derivative_y": ("sigmoid",),
    "tanh_derivative": ("tanh",),
    "softmax_jacobian_last_axis_only": ("softmax",),
    "log_softmax_missing_sum": ("softmax_log",),
    "conv_input_grad_averaged_over_outC": ("conv2D",),
    "conv_kernel_grad_flipped": ("conv2D",),
    "bce_grad_fused_sigmoid": ("module",),
    "linear_repeats_W_over_batch": ("module",),
    "fanout_overwrite": ENGINE,
    "reset_grad_root_accumulated": ENGINE,
    "reset_grad_intermediates_kept": ENGINE,
    "create_graph_right_to_left": ENGINE,
    "module_call_leaks_into_originals": ("module",),
    "optim_match_by_position": ("optim:SGD", "optim:Adam"),
    "momentum_first_step_dampened": ("optim:SGD_Momentum",),
    "rmsprop_eps_inside_sqrt": ("optim:RMSProp",),
    "adam_missing_bias_correction2": ("optim:Adam",),
}

# A diverse handful that fits CI (about 3 minutes on 2 cores at --budget 20): an exact kink,
# a non-last softmax axis, outC > 1, an engine invariant, a Module, an optimizer, structure.
CI_SUBSET = ("relu_derivative_at_zero", "softmax_jacobian_last_axis_only",
             "conv_input_grad_averaged_over_outC", "reset_grad_intermediates_kept",
             "module_call_leaks_into_originals", "adam_missing_bias_correction2")


@dataclass
class Result:
    mutant: str
    catches: str            # the check kind expected to catch it
    status: str             # killed | survived | error
    checks: list            # check kinds of the failures found
    first_failure: str      # first line of the first failure's message (or why it is an error)
    seconds: float
    examples: int = 0       # examples the gate ran


def gate_command(budget: float, seed: int, workers: int, profile: str, report: Path, out: Path,
                 only=None) -> list:
    cmd = [sys.executable, "-m", "reference", "--budget", repr(float(budget)), "--seed", str(seed),
           "-n", str(workers), "--profile", profile, "--json", str(report), "--out", str(out)]
    return cmd + (["--only", *only] if only else [])


def classify(returncode: int | None, doc: dict | None) -> tuple:
    """(status, check kinds, first failure) of one gate run on a mutant."""
    failures = (doc or {}).get("failures") or []
    checks = sorted({f["check"] for f in failures})
    first = failures[0]["message"].splitlines()[0] if failures else ""
    if returncode == 1 and failures:
        return "killed", checks, first
    if returncode == 0 and doc is not None and not failures:
        return "survived", checks, ""
    if returncode is None:
        why = "the gate did not finish in time"
    elif doc is None:
        why = f"the gate exited {returncode} without a JSON report"
    elif returncode == 1:
        why = "the gate exited 1 without reporting a failure"
    else:
        why = f"the gate exited {returncode}" + (f": {first}" if first else "")
    return "error", checks, why


def run_mutant(mutant: Mutant, budget: float, seed: int, workers: int, profile: str = "ci",
               only=None, root: Path = ROOT, log: Path | None = None) -> Result:
    """Apply `mutant` to a copy of the project at `root`, run the gate there, classify."""
    start = time.time()
    copy = apply(mutant, root)
    try:
        report, out = copy / "selftest-report.json", copy / "selftest-failures"
        cmd = gate_command(budget, seed, workers, profile, report, out, only)
        timeout = 3 * budget + 120   # the gate ends near its budget; shrinking may add a little
        with open(log or os.devnull, "w", encoding="utf-8") as sink:
            proc = subprocess.Popen(cmd, cwd=copy, env=env(copy), stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                returncode = proc.wait(timeout=timeout)
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
        status, checks, first = classify(returncode, doc)
        examples = sum(int(row.get("examples", 0)) for row in (doc or {}).get("ops", []))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return Result(mutant.name, mutant.catches, status, checks, first, time.time() - start, examples)


def selection(names, ci_subset: bool) -> list:
    """The mutants to run, in catalogue order; all of them when none is named."""
    wanted = set(names or ()) | (set(CI_SUBSET) if ci_subset else set())
    return [m for m in MUTANTS if m.name in wanted] if wanted else list(MUTANTS)


def unknown(names) -> list:
    return sorted(set(names or ()) - set(BY_NAME))


def table(results: list) -> Table:
    t = Table(title="pygrad reference suite: mutant self-test", title_justify="left")
    for col, just in (("mutant", "left"), ("expected check", "left"), ("killed?", "left"),
                      ("check kinds seen", "left"), ("first failure", "left"), ("examples", "right"),
                      ("seconds", "right")):
        t.add_column(col, justify=just, overflow="fold")
    style = {"killed": "[green]killed[/]", "survived": "[bold red]SURVIVED[/]", "error": "[bold red]ERROR[/]"}
    for r in results:
        first = r.first_failure if len(r.first_failure) <= 72 else r.first_failure[:69] + "..."
        t.add_row(r.mutant, r.catches, style[r.status], ", ".join(r.checks) or "-", escape(first),
                  str(r.examples), f"{r.seconds:.1f}")
    return t


def markdown(results: list, seed: int, budget: float, elapsed: float) -> str:
    """The kill table as Markdown: each mutant's file and bug, the check expected to catch it,
    and what the gate did."""
    killed = sum(r.status == "killed" for r in results)
    lines = [f"## pygrad-check self-test: {killed}/{len(results)} mutants killed", "",
             f"Budget {budget:g} s per mutant, seed {seed}, {elapsed:.0f} s in all.", "",
             "| mutant | file | what it breaks | expected check | result | check kinds seen | examples | seconds |",
             "|---|---|---|---|---|---|---:|---:|"]
    for r in results:
        m = BY_NAME[r.mutant]
        result = "killed" if r.status == "killed" else f"**{r.status.upper()}**"
        what = " ".join(m.description.split()).replace("|", "\\|")
        lines.append(f"| `{r.mutant}` | `{m.file.removeprefix('pygrad/')}` | {what} | `{r.catches}` | {result} | "
                     f"{', '.join(r.checks) or '-'} | {r.examples} | {r.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def run(args, console: Console) -> int:
    """The `--mutants` mode of the gate's command line."""
    chosen = selection(args.mutants, args.ci_subset)
    for m in chosen:   # a stale catalogue is the self-test's own error: fail before running
        patched_source(m, (ROOT / m.file).read_text())
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    console.print(f"pygrad-check self-test: {len(chosen)} mutant(s), budget {args.budget:g} s each, "
                  f"seed {seed}, {args.workers} worker(s), profile {args.profile}")
    start, results = time.time(), []
    with tempfile.TemporaryDirectory(prefix="pygrad-selftest-") as tmp:
        for k, m in enumerate(chosen):
            only = args.only or FOCUS.get(m.name)
            console.print(f"[{k + 1}/{len(chosen)}] {m.name} (--only {' '.join(only) if only else 'all'}) ...",
                          end=" ", highlight=False)
            log = Path(tmp) / f"{m.name}.log"
            r = run_mutant(m, args.budget, seed, args.workers, args.profile, only, log=log)
            results.append(r)
            console.print(f"{r.status} ({', '.join(r.checks) or '-'}) after {r.examples} examples, "
                          f"{r.seconds:.1f} s", highlight=False)
            if r.status == "error":
                console.print("\n".join(log.read_text(errors="replace").splitlines()[-25:]),
                              markup=False, highlight=False)
    killed = sum(r.status == "killed" for r in results)
    # a log (not a terminal) gets the whole table rather than 80 columns of wrapped cells
    (console if console.is_terminal else Console(width=170, file=console.file)).print(table(results))
    rate = killed / len(results) if results else 1.0
    console.print(f"kill rate: {killed}/{len(results)} ({100 * rate:.0f}%), "
                  f"{time.time() - start:.0f} s; replay with --seed {seed}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "seed": int(seed), "budget_s": float(args.budget), "workers": int(args.workers),
            "elapsed_s": float(time.time() - start), "kill_rate": rate,
            "mutants": [asdict(r) for r in results]}, indent=2), encoding="utf-8")
    if args.markdown is not None:
        write_markdown(args.markdown, markdown(results, seed, args.budget, time.time() - start))
    if killed == len(results):
        console.print("[bold green]every mutant killed[/]")
        return 0
    console.print(f"[bold red]{len(results) - killed} mutant(s) not killed[/]: exit status 1")
    return 1
