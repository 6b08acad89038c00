"""`pygrad-check --list`: the registry's ops and the properties the gate checks, as tables."""
from __future__ import annotations

import string

from rich.markup import escape
from rich.table import Table

from reference.invariants import ROWS
from reference.properties import PROPERTIES
from reference.registry import OPS, OpSpec

_OPERANDS = ["x", "y"]


def call_of(spec: OpSpec) -> str:
    """The op's pygrad call with placeholder names, e.g. ``x.sum(axis=axis, keepdims=keepdims)``."""
    fields = {f for _, f, _, _ in string.Formatter().parse(spec.code) if f and not f.isdigit()}
    named = {f: f for f in fields - {"args", "targs"}}
    args = {k: k for k in spec.posargs + spec.kwargs}
    return spec.render(_OPERANDS[:spec.arity], {**args, **named}, lambda key, value: value)


def ops_table() -> Table:
    t = Table(title=f"reference.registry.OPS: {len(OPS)} ops (each is a row of the gate's table)",
              title_justify="left")
    for col in ("op", "pygrad call", "shape rule", "domain", "defaults", "notes"):
        t.add_column(col, overflow="fold")
    for name, spec in OPS.items():
        try:
            domain = ", ".join(spec.domain(spec.defaults))
        except KeyError:   # the domain depends on an argument without a default (pow's p)
            domain = "depends on the arguments"
        kinks = {"zeros": "exact zeros at kinks", "rows": "constant rows (kinks)"}.get(spec.exact_kinks)
        notes = "; ".join(n for n in (spec.notes, kinks) if n)
        defaults = ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items())
        t.add_row(*map(escape, (name, call_of(spec), spec.shapes, domain, defaults or "-", notes or "-")))
    return t


def properties_table() -> Table:
    t = Table(title=f"properties checked ({len(PROPERTIES)} property tests in fuzz/; rows besides "
                    f"the ops: {', '.join(ROWS)})", title_justify="left")
    for col in ("test", "rows", "check kinds", "property"):
        t.add_column(col, overflow="fold")
    for p in PROPERTIES:
        t.add_row(*map(escape, (p.test, p.rows, ", ".join(p.checks), p.what)))
    return t
