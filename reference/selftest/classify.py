"""What a generated mutant does, decided without the gate: live, crash-only, or silent.

Two probes, both independent of the gate's own sampling:
- the probe cases (`probes`) that run the mutated statement, on inputs of a NumPy RNG,
  against torch;
- pygrad's unit tests under tests/ for the mutated file (`UNIT_TESTS`), run in a mutated copy
  when the cases alone do not settle it.

Kinds (`Verdict.kind`):
- `live`: a probe saw a wrong value, or pygrad raised under some inputs and not others (the
  gate reports that as an `error` finding); it is run;
- `crash_only`: every case that runs the mutated statement raises, none sees a wrong value,
  and no unit test fails on a wrong value: a bug nobody can miss; not run, not counted;
- `silent`: cases run it and all agree with torch, and the unit tests pass: live until the
  gate and a long focused run on its rows also agree with torch (then it is equivalent,
  `generated.py`);
- `unreached`: no case runs it and the unit tests pass: run, never called equivalent (nothing
  showed it harmless).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from reference.selftest.mutants import ROOT, apply, env
from reference.selftest.probes import Outcome, Prober

LIVE, CRASH_ONLY, SILENT, UNREACHED = "live", "crash_only", "silent", "unreached"

UNIT_TESTS = {
    "pygrad/ops/nn.py": ("test_ops.py", "test_conv_chunks.py", "test_layers.py", "test_losses.py"),
    "pygrad/ops/": ("test_ops.py", "test_tensor.py", "test_custom_ops.py", "test_layers.py"),
    "pygrad/tensor.py": ("test_graph.py", "test_tensor.py", "test_aliasing.py"),
    "pygrad/optims.py": ("test_optims.py", "test_aliasing.py"),
    "pygrad/module.py": ("test_module.py",),
    "pygrad/function.py": ("test_custom_ops.py",),
}
"""pygrad's unit-test files that exercise each source file (the first matching prefix)."""
UNIT_TIMEOUT = 300.0


@dataclass
class Verdict:
    kind: str
    evidence: str = ""                        # what showed it (a case or test, and what it saw)
    rows: tuple = ()                          # report rows of the cases that run it (--focused, --only)
    cases: tuple = ()                         # the cases that run it
    outcomes: list = field(default_factory=list)
    unit: str = ""                            # the unit-test probe's summary, when it ran


def from_outcomes(outcomes: list) -> tuple:
    """(kind, evidence) from the probe cases' outcomes alone: live, crash (a crash-only
    suspect), silent or unreached."""
    if not outcomes:
        return UNREACHED, "no probe case runs the mutated statement"
    wrong = [o for o in outcomes if o.status == "wrong"]
    if wrong:
        return LIVE, f"probe '{wrong[0].case}': {wrong[0].detail}"
    errors = [o for o in outcomes if o.status == "error"]
    if errors and len(errors) == len(outcomes):
        return CRASH_ONLY, f"all {len(errors)} probe case(s) raise, e.g. '{errors[0].case}': {errors[0].detail}"
    if errors:
        fine = next(o.case for o in outcomes if o.status == "ok")
        return LIVE, f"probe '{errors[0].case}' raises ({errors[0].detail}) where '{fine}' does not"
    return SILENT, f"all {len(outcomes)} probe case(s) that run it agree with torch"


def with_unit_tests(kind: str, evidence: str, failures: list) -> tuple:
    """Refine a crash-only suspect, silent or unreached verdict with the unit tests'
    failures [(test, 'wrong' | 'error', message)]: a wrong value makes it live; an
    exception makes a silent or unreached one live (it raises somewhere)."""
    wrong = [f for f in failures if f[1] == "wrong"]
    if wrong:
        return LIVE, f"unit test {wrong[0][0]} fails: {wrong[0][2]}"[:400]
    if failures and kind in (SILENT, UNREACHED):
        return LIVE, f"unit test {failures[0][0]} raises: {failures[0][2]}"[:400]
    return kind, evidence


def unit_test_files(file: str) -> tuple:
    for prefix, files in UNIT_TESTS.items():
        if file == prefix or (prefix.endswith("/") and file.startswith(prefix)):
            return files
    return ()


def unit_failures(mutant, root: Path = ROOT, first: bool = True) -> tuple:
    """Run the unit tests of the mutant's file in a mutated copy: ([(test, 'wrong' | 'error',
    message)], summary). `first`: stop at the first failure (any failure settles a silent
    mutant; a crash-only suspect runs them all, looking for a wrong value)."""
    files = unit_test_files(mutant.file)
    if not files:
        return [], "no unit tests mapped"
    copy = apply(mutant, root, extra=("tests",))
    try:
        report = copy / "unit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               *(["-x"] if first else []), "--junitxml", str(report), *[f"tests/{f}" for f in files]]
        try:
            subprocess.run(cmd, cwd=copy, env=env(copy), capture_output=True, timeout=UNIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            return [("(all)", "error", f"did not finish within {UNIT_TIMEOUT:g} s")], "timeout"
        if not report.is_file():
            return [("(collection)", "error", "pytest wrote no report")], "no report"
        failures = []
        for case in ET.parse(report).getroot().iter("testcase"):
            for bad in list(case.iter("failure")) + list(case.iter("error")):
                message = (bad.get("message") or "").strip()
                kind = "wrong" if message.startswith(("assert", "AssertionError", "Failed")) else "error"
                failures.append((f"{case.get('classname')}::{case.get('name')}", kind, message[:200]))
        return failures, f"{len(failures)} failure(s) in {', '.join(files)}"
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def cases_for(mutant, table: dict) -> list:
    """The probe cases that run any line of the mutant's statement (on unmutated code)."""
    names = set()
    for line in range(mutant.statement_line, mutant.statement_end + 1):
        names.update(table.get((mutant.file, line), ()))
    return sorted(names)


def classify_all(mutants: list, table: dict, rows_of: dict, workers: int, seed: int = 0, root: Path = ROOT,
                 progress=None) -> dict:
    """{mutant name: Verdict} for every mutant: probe cases in `workers` worker processes,
    then the unit tests where the cases do not settle it. `table` is `probes.reach(seed)`,
    `rows_of` {case name: rows}."""
    verdicts, pending = {}, list(mutants)
    prober = Prober(root=Path(root), seed=seed)
    running = {}
    texts = {}
    try:
        while pending or running:
            for slot in range(workers):
                if slot in running or not pending:
                    continue
                m = pending.pop(0)
                names = cases_for(m, table)
                if not names:
                    verdicts[m.name] = Verdict(UNREACHED, "no probe case runs the mutated statement")
                    continue
                if m.file not in texts:
                    texts[m.file] = (Path(root) / m.file).read_text(encoding="utf-8")
                prober.submit(slot, m.file, m.patched(texts[m.file]), names)
                running[slot] = (m, names, time.time())
            for slot, (m, names, started) in list(running.items()):
                outcomes = prober.poll(slot, started, names)
                if outcomes is None:
                    continue
                del running[slot]
                kind, evidence = from_outcomes(outcomes)
                seen = [o.case for o in outcomes if o.status != "ok"] or names
                rows = tuple(dict.fromkeys(r for n in seen for r in rows_of.get(n, ())))
                verdicts[m.name] = Verdict(kind, evidence, rows, tuple(names), outcomes)
                if progress:
                    progress(m, verdicts[m.name])
            time.sleep(0.01)
    finally:
        prober.close()
    unsettled = [m for m in mutants if verdicts[m.name].kind in (CRASH_ONLY, SILENT, UNREACHED)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for m, (failures, summary) in zip(unsettled, pool.map(
                lambda m: unit_failures(m, Path(root), verdicts[m.name].kind != CRASH_ONLY), unsettled)):
            v = verdicts[m.name]
            v.kind, v.evidence = with_unit_tests(v.kind, v.evidence, failures)
            v.unit = summary
    return verdicts


def outcome_counts(outcomes: list) -> dict:
    out = {}
    for o in outcomes:
        out[o.status] = out.get(o.status, 0) + 1
    return out


__all__ = ["LIVE", "CRASH_ONLY", "SILENT", "UNREACHED", "Verdict", "Outcome", "classify_all", "from_outcomes",
           "with_unit_tests", "unit_failures", "cases_for"]
