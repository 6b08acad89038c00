"""`python -m benchmarks`: run every workload, print the table, write the JSON;
`python -m benchmarks compare [BASE] [NEW]`: the regression check (`benchmarks.regression`).

NumPy must not be imported before `main` has cleaned the BLAS environment, so every
NumPy-using module is imported inside `main`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"
DEFAULT_SCALING_JSON = Path(__file__).resolve().parent / "results-scaling.json"
DEFAULT_PLOT = Path(__file__).resolve().parent / "scaling.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks.catalogue import ORDER

    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time pygrad against the NumPy limit, PyTorch and autograd (float64, each framework "
                    "in its own fresh interpreter, same thread count) and check each workload against "
                    "its goal. Never fails on a missed goal. `python -m benchmarks compare --help`: the "
                    "regression check against a git ref.",
        epilog="python -m benchmarks compare [BASE] [NEW]: time pygrad at BASE against NEW (default: "
               "the working tree) and name what got slower")
    p.add_argument("--quick", action="store_true",
                   help="run every workload once with tiny repeat counts (a smoke test for CI; "
                        "the numbers mean nothing)")
    p.add_argument("--json", type=Path, metavar="PATH",
                   help=f"where to write the results (default: {DEFAULT_JSON.name}, with --scaling "
                        f"{DEFAULT_SCALING_JSON.name}, in this package's folder)")
    p.add_argument("--markdown", type=Path, metavar="PATH",
                   help="also write the table as Markdown (as docs/benchmarks.md shows it)")
    p.add_argument("--scaling", action="store_true",
                   help="instead of the table, time the MLP step over batch sizes 1-1024, the chain "
                        "over lengths 12-100 000 and conv2D over input sizes in every framework, with "
                        "peak memory; writes a plot")
    p.add_argument("--plot", type=Path, default=DEFAULT_PLOT, metavar="PATH",
                   help=f"where --scaling draws its log-log plot (default: {DEFAULT_PLOT.name} in this "
                        "package's folder)")
    p.add_argument("--repeat", type=int, default=7, metavar="N",
                   help="interleaved rounds (one sample per framework each); times are the best "
                        "sample, ratios the median of the rounds' ratios (default 7)")
    p.add_argument("--only", nargs="+", choices=ORDER, metavar="WORKLOAD",
                   help=f"run only these workloads ({', '.join(ORDER)})")
    p.add_argument("--threads", type=int, metavar="N",
                   help="BLAS threads for NumPy and torch threads (default: what NumPy's BLAS uses)")
    p.add_argument("--check-budget", type=float, default=20.0, metavar="SECONDS",
                   help="budget of each `python -m reference` run in the scaling row "
                        "(default 20; --quick uses 3)")
    p.add_argument("--memory-steps", type=int, default=100, metavar="N",
                   help="training steps of the memory row (default 100)")
    p.add_argument("--keep-blas-env", action="store_true",
                   help="do not re-run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    p.add_argument("--profile", choices=ORDER[:5], metavar="WORKLOAD",
                   help="instead of the table, cProfile pygrad's step of one workload (in an "
                        "interpreter without torch)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.json is None:
        args.json = DEFAULT_SCALING_JSON if args.scaling else DEFAULT_JSON
    return args


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 170))
    return console


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    compare = bool(argv) and argv[0] == "compare"
    args = None if compare else parse_args(argv)
    from benchmarks.environment import reexec_without_blas_vars
    if not (args and args.keep_blas_env):
        reexec_without_blas_vars()
    if compare:
        from benchmarks.regression import main as compare_main
        return compare_main(argv[1:], _console())

    from benchmarks.catalogue import workloads
    from benchmarks.core import Config, run
    from benchmarks.environment import load_now, machine_info
    from benchmarks.report import markdown, print_report, write_json

    console = _console()
    if args.profile:
        from benchmarks.profiling import profile
        profile(args.profile, console, repeat=args.repeat, threads=args.threads)
        return 0
    machine = machine_info(args.threads)
    machine["busy_cores_at_start"] = load_now()
    if args.scaling:
        return run_scaling(args, console, machine)
    config = Config(quick=args.quick, repeat=1 if args.quick else args.repeat,
                    check_budget=args.check_budget, memory_steps=args.memory_steps,
                    threads=args.threads)
    busy = machine["busy_cores_at_start"]
    if busy is not None and busy >= 0.5:
        console.print(f"[yellow]the machine is busy ({busy:.1f} cores in use before the run started): "
                      "timings will be noisy; interleaved rounds only partly make up for it[/]")
    rows = []
    for workload in workloads():
        if args.only and workload.id not in args.only:
            continue
        with console.status(f"[bold]{workload.title}[/] …"):
            rows.append(run(workload, config))
    print_report(console, rows, machine)
    if args.quick:
        console.print("[yellow]--quick: every step ran once, unwarmed; the times and results above "
                      "are a smoke test, not measurements[/]")
    settings = {"quick": args.quick, "repeat": config.repeat, "check_budget_s": args.check_budget,
                "memory_steps": args.memory_steps, "command": sys.orig_argv}
    write_json(args.json, rows, machine, settings)
    console.print(f"results written to {args.json}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(rows, machine, settings))
        console.print(f"Markdown table written to {args.markdown}")
    return 1 if any(row.status == "error" for row in rows) else 0


def run_scaling(args, console, machine: dict) -> int:
    from benchmarks import scaling
    from benchmarks.report import write_json

    with console.status("scaling …") as status:
        sweeps = scaling.run(args.quick, 1 if args.quick else min(args.repeat, 5), args.threads,
                             status=lambda text: status.update(text))
    scaling.print_tables(console, sweeps)
    caption = (f"{machine['cpu_model']}, {machine['numpy_blas_threads']} BLAS/torch threads, numpy "
               f"{machine['numpy']}, torch {machine['torch']}, autograd {machine.get('autograd')}; float64; "
               "best of N rounds, each framework in its own fresh interpreter")
    if scaling.plot(sweeps, args.plot, caption):
        console.print(f"plot written to {args.plot}")
    else:
        console.print("[yellow]matplotlib is not installed: no plot (pip install -e \".\\[bench]\")[/]")
    settings = {"quick": args.quick, "scaling": True, "command": sys.orig_argv}
    write_json(args.json, [], machine, settings, extra={"scaling": sweeps})
    console.print(f"results written to {args.json}")
    return 0
