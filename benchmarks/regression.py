"""`python -m benchmarks compare [BASE] [NEW]`: did pygrad get slower than at a git ref?

Each workload of the report (and conv2D at the sizes of `data.CONV_SIZES`) is timed in two
fresh interpreters, one importing pygrad as it is in BASE (exported with `git archive` into
a temporary directory put first on the import path), one importing NEW (default: the working
tree), rounds interleaved as in the main table (`benchmarks.runner`); the benchmark code
itself is the working tree's for both. Per round, the ratio NEW / BASE; a workload "got
slower beyond the noise" when the median ratio is at least `factor` (default 1.10) *and*
NEW was slower in so many rounds that a one-sided sign test rejects "as often faster as
slower" at level `alpha` (default 0.01): a median alone can be one lucky burst of another
process, a consistent direction alone can be a 1% change nobody should chase.

BASE defaults to the pygrad before its latest change: the last commit that changed
`pygrad/` when the working tree's `pygrad/` has uncommitted changes, else that commit's
parent. The exit status is 1 when something got slower, else 0 (2 for usage errors).
"""
from __future__ import annotations

import argparse
import io
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks import data
from benchmarks.core import NotAvailable
from benchmarks.runner import REPO, Contender, interleaved, round_ratios, same_results, start, stop

FACTOR = 1.10
ALPHA = 0.01
CONTESTS = ("elementwise_chain", "mlp_step", "conv2d", "softmax", "module_mlp_step")


def cases() -> dict[str, tuple[str, dict]]:
    """{case name: (workload, params)}: every contest, and conv2D at every size."""
    out = {name: (name, {}) for name in CONTESTS}
    for size, shape in data.CONV_SIZES.items():
        if shape != data.CONV:
            out[f"conv2d:{size}"] = ("conv2d", shape)
    return out


# ----------------------------------------------------------------- git
def git(*args: str, repo: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def default_base(repo: Path = REPO, package: str = "pygrad") -> tuple[str, str]:
    """(commit, why): the package before its latest change, see the module's docstring."""
    last = git("log", "-1", "--format=%H", "--", package, repo=repo)
    if not last:
        raise ValueError(f"no commit changed {package}/")
    if git("status", "--porcelain", "--", package, repo=repo):
        return last, f"the last commit that changed {package}/ ({last[:10]}); the working tree changes it"
    parents = git("log", "-1", "--format=%P", last, repo=repo).split()
    if not parents:
        raise ValueError(f"{last[:10]}, the only commit that changed {package}/, has no parent")
    return parents[0], (f"the parent of {last[:10]}, the last commit that changed {package}/ "
                        "(the working tree's is that commit's)")


def export(ref: str, dest: Path, repo: Path = REPO, package: str = "pygrad") -> Path:
    """Write `package` as it is at `ref` under `dest` (no checkout); returns `dest`."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}", repo=repo)
    done = subprocess.run(["git", "archive", "--format=tar", commit, package], cwd=repo,
                          capture_output=True)
    if done.returncode != 0:
        raise ValueError(f"git archive {ref} {package}: {done.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Pythons before the extraction filters; git's own archive
            tar.extractall(dest)
    return dest


# ----------------------------------------------------------------- statistics
def sign_test_p(slower: int, rounds: int) -> float:
    """One-sided sign test: P(at least `slower` of `rounds` fair coin flips come up slower)."""
    return sum(math.comb(rounds, k) for k in range(slower, rounds + 1)) / 2 ** rounds


def verdict(new_s: list[float], base_s: list[float], factor: float = FACTOR, alpha: float = ALPHA) -> dict:
    """Paired rounds -> {"ratio": median NEW/BASE, "min", "max", "slower_rounds", "rounds",
    "p_slower", "p_faster", "verdict": "slower" | "faster" | "same"}."""
    spread = round_ratios(new_s, base_s)
    ratios = [a / b for a, b in zip(new_s, base_s)]
    n = len(ratios)
    slower, faster = sum(r > 1 for r in ratios), sum(r < 1 for r in ratios)
    p_slower, p_faster = sign_test_p(slower, n), sign_test_p(faster, n)
    if spread["median"] >= factor and p_slower <= alpha:
        word = "slower"
    elif spread["median"] <= 1 / factor and p_faster <= alpha:
        word = "faster"
    else:
        word = "same"
    return {"ratio": spread["median"], "min": spread["min"], "max": spread["max"],
            "slower_rounds": slower, "rounds": n, "p_slower": p_slower, "p_faster": p_faster,
            "verdict": word}


def slower_names(results: dict[str, dict]) -> list[str]:
    return [name for name, r in results.items() if r.get("verdict") == "slower"]


# ----------------------------------------------------------------- measuring
def measure(workload: str, params: dict, base_path: str, new_path: str | None, repeat: int,
            threads: int | None, quick: bool, factor: float, alpha: float, cpu_time: bool = False) -> dict:
    contenders = {"base": Contender("pygrad", workload, params, base_path),
                  "new": Contender("pygrad", workload, params, new_path)}
    children, _ = start(contenders, threads)
    try:
        if "new" not in children:
            raise NotAvailable("the new pygrad could not build this step")
        same = same_results(children, "base")["new"]
        timed = interleaved(children, repeat, quick)
        paths = {name: child.info.get("pygrad") for name, child in children.items()}
    finally:
        stop(children)
    key = "cpu_s" if cpu_time else "samples_s"
    out = verdict(timed["new"][key], timed["base"][key], factor, alpha)
    median = {name: sorted(t[key])[len(t[key]) // 2] for name, t in timed.items()}
    out.update(base_s=median["base"], new_s=median["new"], measured="CPU time" if cpu_time else "wall time",
               base_faults=timed["base"]["faults"], new_faults=timed["new"]["faults"],
               same_result=same, pygrad=paths, timing=timed)
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks compare",
        description="Time pygrad at BASE against NEW (default: the working tree) on every workload, "
                    "each in its own fresh interpreter, rounds interleaved, and name what got slower "
                    "beyond the noise. Exit 1 when something did.")
    p.add_argument("base", nargs="?", help="git ref of the pygrad to compare against (default: the "
                   "pygrad before its latest change)")
    p.add_argument("new", nargs="?", help="git ref of the new pygrad (default: the working tree)")
    p.add_argument("--repeat", type=int, default=15, metavar="N", help="interleaved rounds (default 15)")
    p.add_argument("--only", nargs="+", choices=sorted(cases()), metavar="CASE",
                   help=f"compare only these ({', '.join(cases())})")
    p.add_argument("--threads", type=int, metavar="N", help="BLAS threads (default: NumPy's default)")
    p.add_argument("--factor", type=float, default=FACTOR,
                   help=f"a median ratio at least this counts as slower (default {FACTOR})")
    p.add_argument("--alpha", type=float, default=ALPHA,
                   help=f"level of the one-sided sign test over the rounds (default {ALPHA})")
    p.add_argument("--cpu-time", action="store_true",
                   help="judge by each interpreter's CPU time instead of wall time: with --threads 1, "
                        "what a busy machine disturbs least (waiting for a core is not counted)")
    p.add_argument("--quick", action="store_true", help="one call each, no verdict worth reading (a smoke test)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    p.add_argument("--markdown", type=Path, metavar="PATH", help="also write the table as Markdown")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.factor < 1:
        p.error("--factor must be at least 1")
    return args


def main(argv: list[str], console) -> int:
    import json

    from benchmarks.report import compare_markdown, compare_table

    args = parse_args(argv)
    try:
        base, why = (args.base, "given") if args.base else default_base()
        base_commit = git("rev-parse", "--verify", f"{base}^{{commit}}")
        new_commit = git("rev-parse", "--verify", f"{args.new}^{{commit}}") if args.new else None
    except ValueError as exc:
        console.print(f"usage error: {exc}")
        return 2
    chosen = {name: case for name, case in cases().items() if not args.only or name in args.only}
    if args.cpu_time and args.threads != 1:
        console.print("[yellow]--cpu-time without --threads 1: CPU time adds up every thread, including "
                      "BLAS threads spinning while they wait[/]")
    console.print(f"BASE {base} = {base_commit[:10]} ({why}); NEW "
                  f"{args.new + ' = ' + new_commit[:10] if new_commit else 'the working tree'}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="pygrad-compare-") as tmp:
        base_path = str(export(base_commit, Path(tmp) / "base"))
        new_path = str(export(new_commit, Path(tmp) / "new")) if new_commit else None
        for name, (workload, params) in chosen.items():
            with console.status(f"{name} …"):
                try:
                    results[name] = measure(workload, params, base_path, new_path, args.repeat,
                                            args.threads, args.quick, args.factor, args.alpha, args.cpu_time)
                except NotAvailable as exc:
                    results[name] = {"verdict": "not available", "reason": str(exc)}
    slower = slower_names(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"base": base_commit, "new": new_commit, "factor": args.factor,
                                         "measured": "CPU time" if args.cpu_time else "wall time",
                                         "alpha": args.alpha, "repeat": args.repeat, "command": sys.orig_argv,
                                         "slower": slower, "results": results}, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(compare_markdown(results, f"{base} ({base_commit[:10]})",
                                                  args.new or "working tree"))
    console.print(compare_table(results, base, args.new or "working tree", args.factor, args.alpha,
                                "CPU time" if args.cpu_time else "wall time"))
    console.print(f"[red]slower beyond the noise: {', '.join(slower)}[/]" if slower
                  else "nothing got slower beyond the noise")
    return 1 if slower else 0
