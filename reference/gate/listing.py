"""`pygrad-check --list`: the registry's ops, the report's rows with their conditions and pairs
of conditions (feasible, of one group, declared infeasible -- those with their reasons), the
properties the gate checks (read from the suite's test functions), and pygrad's public
surface with the rows that exercise each callable and the names exempt as non-computations."""
from __future__ import annotations

import inspect
import string

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reference.registry import LOSS_OPS, OPS, row_conditions, row_pairs, rows, surface

_OPERANDS = ["x", "y"]
SUITE_MODULES = ("test_coverage", "test_pairs", "test_ops", "test_programs", "test_engine", "test_modules",
                 "test_optims")


def call_of(spec) -> str:
    """The op's pygrad call with placeholder names, e.g. ``x.sum(axis=axis, keepdims=keepdims)``."""
    fields = {f for _, f, _, _ in string.Formatter().parse(spec.code) if f and not f.isdigit()}
    named = {f: f for f in fields - {"args", "targs"}}
    args = {k: k for k in spec.posargs + spec.kwargs}
    return spec.render(_OPERANDS[:spec.arity], {**args, **named}, lambda key, value: value)


def properties() -> list:
    """(test id, checks, property) of every property test of the suite."""
    import importlib
    out = []
    for name in SUITE_MODULES:
        module = importlib.import_module(f"reference.suite.{name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fname.startswith("test_") and fn.__module__ == module.__name__:
                out.append((f"{name}.py::{fname}", getattr(fn, "pygrad_checks", ()), " ".join(fn.__doc__.split())))
    return out


def ops_table() -> Table:
    t = Table(title=f"registry: {len(OPS)} ops and {len(LOSS_OPS)} loss classes", title_justify="left")
    for col in ("entry", "pygrad call", "shape rule", "domain", "defaults", "samples", "notes"):
        t.add_column(col, overflow="fold")
    for name, spec in {**OPS, **LOSS_OPS}.items():
        try:
            domain = ", ".join(spec.domains({}))
        except KeyError:   # the domain depends on an argument without a default (pow's p)
            domain = "depends on the arguments"
        defaults = ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items())
        t.add_row(*map(escape, (name, call_of(spec), spec.rule.name, domain, defaults or "-",
                                str(len(spec.all_samples())), spec.notes or "-")))
    return t


def rows_table() -> Table:
    t = Table(title="report rows and the conditions each must reach (else it reads thin)", title_justify="left")
    t.add_column("row")
    t.add_column("conditions", overflow="fold")
    for row in rows():
        t.add_row(escape(row), escape(", ".join(row_conditions(row))))
    return t


def pairs_table() -> Table:
    """Each row's pairs of conditions: feasible, of one group, declared infeasible."""
    t = Table(title="pairs of each row's conditions: feasible (the covering samples reach each in one use), of one "
                    "group (exclusive levels of one factor: never a pair), declared infeasible", title_justify="left")
    for col, just in (("row", "left"), ("conditions", "right"), ("feasible", "right"), ("one group", "right"),
                      ("infeasible", "right")):
        t.add_column(col, justify=just)
    for row in rows():
        p = row_pairs(row)
        t.add_row(escape(row), str(len(p.conditions)), str(len(p.feasible)), str(len(p.same_group)),
                  str(len(p.infeasible)))
    return t


def infeasible_table() -> Table:
    """Every declared infeasible pair with its reason."""
    t = Table(title="pairs of conditions declared infeasible (they cannot hold in one use), with the reason",
              title_justify="left")
    for col in ("row", "pair", "why"):
        t.add_column(col, overflow="fold")
    for row in rows():
        for (a, b), why in row_pairs(row).infeasible.items():
            t.add_row(escape(row), escape(f"{a} + {b}"), escape(why))
    return t


def properties_table() -> Table:
    props = properties()
    t = Table(title=f"properties checked ({len(props)} property tests)", title_justify="left")
    for col in ("test", "check kinds", "property"):
        t.add_column(col, overflow="fold")
    for test, checks, what in props:
        t.add_row(*map(escape, (test, ", ".join(checks), what)))
    return t


def surface_table() -> Table:
    names = surface.public_surface()
    declared = surface.reached()
    exempt = [n for n in names if surface.not_a_computation(n)]
    missing = surface.unreached()
    t = Table(title=f"public surface of pygrad: {len(names)} names, {len(names) - len(exempt) - len(missing)} "
                    f"reached by rows, {len(exempt)} not computations, {len(missing)} unreached", title_justify="left")
    t.add_column("name")
    t.add_column("exercised by (rows), or why not", overflow="fold")
    for name in names:
        why = surface.not_a_computation(name)
        rows_ = ", ".join(sorted(declared.get(name, ()))) or "UNREACHED"
        t.add_row(escape(name), escape(f"not a computation: {why}" if why else rows_))
    return t


def print_listing(console: Console) -> None:
    for table in (ops_table(), rows_table(), pairs_table(), infeasible_table(), properties_table(),
                  surface_table()):
        console.print(table)
