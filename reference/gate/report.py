"""The gate's report as data: rows, findings, verdict, the JSON document, and merging shards.

`summarize` turns the workers' records into one row per report row -- examples, the worst
error against torch and against finite differences (in units of the tolerance; flagged
`max_err_torch_bound` / `max_err_fd_bound` when the figure is an upper bound, taken against
a lower bound of the tolerance because the full one was not needed, not a measurement), the
conditions reached and how often, the feasible pairs of conditions reached together in one
use (`pairs`, and the `unreached_pairs`), and a status: `fail` (a finding is blamed on it),
`thin` (some condition was never reached) or `pass` -- and the distinct findings (one per
signature, the earliest). `document` is the JSON report (the contract's fields, plus
coverage and timing fields); `merge` combines shard reports into one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from reference.runstate.session import max_is_bound


@dataclass
class Summary:
    rows: list                  # JSON "ops" entries
    findings: list              # distinct finding records, earliest first
    internal: list              # internal errors of the suite
    examples: int = 0
    tests: int = 0
    invalid: int = 0
    set_aside: int = 0
    infeasible_reached: list = field(default_factory=list)   # [row, [a, b]]: a declaration proven wrong

    @property
    def thin(self) -> list:
        return [r["op"] for r in self.rows if r["status"] == "thin"]

    @property
    def first_failure_s(self) -> float | None:
        return min((f["t"] for f in self.findings), default=None)


def key(finding: dict) -> tuple:
    """A finding's signature (`reference.findings`): row, check, what, conditions."""
    return (finding["row"], finding["check"], finding.get("what") or finding["row"],
            tuple(sorted(finding.get("signature", ()))))


def status_of(row: dict, failed: set) -> str:
    if row["op"] in failed:
        return "fail"
    return "thin" if any(n == 0 for n in row["conditions"].values()) else "pass"


def pair_fields(feasible: list, reached) -> dict:
    """The row's JSON fields of pairs: `pairs` {"reached", "feasible"} and `unreached_pairs`
    (the feasible pairs -- [a, b] in the row's condition order -- no use reached; `reached`:
    pairs as sorted tuples)."""
    missing = [list(p) for p in feasible if tuple(sorted(p)) not in reached]
    return {"pairs": {"reached": len(feasible) - len(missing), "feasible": len(feasible)}, "unreached_pairs": missing}


def summarize(records: list, rows: list, conditions: dict, feasible: dict | None = None,
              infeasible: dict | None = None) -> Summary:
    """`rows`: the report's rows in order; `conditions`: row -> its condition names;
    `feasible`: row -> its feasible pairs (rows with two conditions or more); `infeasible`:
    row -> its declared infeasible pairs (one that an example reached is listed)."""
    feasible, infeasible = feasible or {}, infeasible or {}
    stats = {r: {"examples": 0, "torch": 0.0, "fd": None, "conds": dict.fromkeys(conditions.get(r, ()), 0),
                 "torch_bound": False, "fd_bound": False, "pairs": set()} for r in rows}
    findings, internal = {}, []
    s = Summary([], [], [])
    for r in records:
        kind = r.get("kind")
        if kind == "test":
            s.tests += 1
            s.examples += r["examples"]
            s.invalid += r.get("invalid", 0)
            s.set_aside += r.get("set_aside", 0)
            for row, (n, t, f, conds) in r["rows"].items():
                if row not in stats:
                    continue
                st = stats[row]
                tb, fb = r.get("bounds", {}).get(row, (False, False))
                st["examples"] += n
                st["torch_bound"] = max_is_bound(st["torch"], st["torch_bound"], t, tb)
                st["torch"] = max(st["torch"], t)
                if f is not None:
                    st["fd_bound"] = fb if st["fd"] is None else max_is_bound(st["fd"], st["fd_bound"], f, fb)
                    st["fd"] = f if st["fd"] is None else max(st["fd"], f)
                for c, k in conds.items():
                    if c in st["conds"]:
                        st["conds"][c] += k
            for row, pairs in r.get("pairs", {}).items():
                if row in stats:
                    stats[row]["pairs"].update(tuple(sorted(p)) for p in pairs)
        elif kind == "finding":
            k = key(r)
            if k not in findings or r["t"] < findings[k]["t"]:
                findings[k] = r
        elif kind == "internal":
            internal.append(r)
    failed = {f["row"] for f in findings.values()}
    for row in rows:
        st = stats[row]
        entry = {"op": row, "examples": st["examples"], "max_err_torch": float(st["torch"]),
                 "max_err_fd": float(st["fd"]) if st["fd"] is not None else 0.0, "status": "",
                 "conditions": st["conds"], "max_err_torch_bound": bool(st["torch_bound"]),
                 "max_err_fd_bound": bool(st["fd_bound"]), "fd_ran": st["fd"] is not None}
        if row in feasible:
            entry.update(pair_fields(feasible[row], st["pairs"]))
        s.infeasible_reached += [[row, list(p)] for p in infeasible.get(row, ()) if tuple(sorted(p)) in st["pairs"]]
        entry["status"] = status_of(entry, failed)
        s.rows.append(entry)
    s.findings = sorted(findings.values(), key=lambda f: f["t"])
    s.internal = internal
    return s


def verdict(summary: Summary, crashed: bool, interrupted: bool, require_coverage: bool) -> tuple:
    """(exit status, text): 2 for an internal error, a crash of the run or an interruption
    (never 1 for a failure of the tool itself), 1 for findings (or, with
    --require-coverage, an unreached condition), 0 otherwise."""
    if interrupted:
        return 2, "interrupted"
    if summary.internal or crashed:
        return 2, "internal error"
    if summary.findings:
        return 1, f"{len(summary.findings)} finding(s)"
    if require_coverage and summary.thin:
        return 1, f"{len(summary.thin)} row(s) with unreached conditions"
    return 0, "no failures"


def document(summary: Summary, run: dict) -> dict:
    """The JSON report: the contract's fields (seed, budget_s, workers, elapsed_s, ops,
    failures) and this run's extra fields (`run`, e.g. profile, shard, interrupted)."""
    failures = [{"test": f["test"], "op": f["row"], "check": f["check"], "message": f["message"],
                 "reproducer": f.get("reproducer"), "conditions": f.get("conditions", []),
                 "what": f.get("what") or f["row"], "signature": f.get("signature", []), "graph": f.get("graph"),
                 "found_at_s": round(f["t"], 3), "shrunk": f.get("shrunk", False)}
                for f in summary.findings]
    rows = [{k: v for k, v in r.items() if k != "fd_ran"} for r in summary.rows]
    doc = {"seed": int(run["seed"]), "budget_s": float(run["budget_s"]), "workers": int(run["workers"]),
           "elapsed_s": float(run["elapsed_s"]), "ops": rows, "failures": failures}
    doc.update({k: v for k, v in run.items() if k not in doc})
    first = summary.first_failure_s
    doc.update({"examples": summary.examples, "tests": summary.tests,
                "first_failure_s": None if first is None else round(first, 3),
                "thin": summary.thin, "internal_errors": [i["message"] for i in summary.internal],
                "infeasible_reached": summary.infeasible_reached})
    return doc


def without_timings(doc: dict) -> dict:
    """The report with every timing field removed (what two runs of --examples N with the
    same seed and code must agree on)."""
    timing = {"elapsed_s", "first_failure_s", "found_at_s", "budget_s"}
    out = {k: v for k, v in doc.items() if k not in timing}
    out["failures"] = [{k: v for k, v in f.items() if k not in timing} for f in doc.get("failures", [])]
    return out


class MergeError(ValueError):
    """Shard reports that do not make one run."""


def merge(docs: list) -> dict:
    """One report from shard reports of one run (same seed; shards 1..N each exactly once)."""
    if not docs:
        raise MergeError("no reports to merge")
    seeds = {d["seed"] for d in docs}
    if len(seeds) != 1:
        raise MergeError(f"the reports come from different seeds: {sorted(seeds)}")
    shards = [tuple(d.get("shard", [1, 1])) for d in docs]
    n = {s[1] for s in shards}
    if len(n) != 1 or sorted(s[0] for s in shards) != list(range(1, n.pop() + 1)):
        raise MergeError(f"the reports must be shards 1..N of one run, each once; got {sorted(shards)}")
    rows: dict = {}
    for d in docs:
        for r in d["ops"]:
            m = rows.setdefault(r["op"], {"op": r["op"], "examples": 0, "max_err_torch": 0.0, "max_err_fd": 0.0,
                                         "status": "", "conditions": {}, "max_err_torch_bound": False,
                                         "max_err_fd_bound": False})
            m["examples"] += r["examples"]
            for side in ("torch", "fd"):
                new, flag = r[f"max_err_{side}"], r.get(f"max_err_{side}_bound", False)
                m[f"max_err_{side}_bound"] = max_is_bound(m[f"max_err_{side}"], m[f"max_err_{side}_bound"], new, flag)
                m[f"max_err_{side}"] = max(m[f"max_err_{side}"], new)
            for c, k in r.get("conditions", {}).items():
                m["conditions"][c] = m["conditions"].get(c, 0) + k
            if "unreached_pairs" in r:   # a pair counts if any shard reached it
                left = {tuple(p) for p in r["unreached_pairs"]}
                m["unreached_pairs"] = [p for p in m.get("unreached_pairs", r["unreached_pairs"]) if tuple(p) in left]
                m["pairs"] = {"feasible": r["pairs"]["feasible"],
                              "reached": r["pairs"]["feasible"] - len(m["unreached_pairs"])}
    failures, seen = [], set()
    for f in sorted((f for d in docs for f in d["failures"]), key=lambda f: f.get("found_at_s") or 0):
        k = (f["op"], f["check"], f.get("what") or f["op"], tuple(f.get("signature", ())))
        if k not in seen:
            seen.add(k)
            failures.append(f)
    failed = {f["op"] for f in failures}
    for r in rows.values():
        r["status"] = status_of(r, failed)
    out = {"seed": seeds.pop(), "budget_s": max(d["budget_s"] for d in docs),
           "workers": sum(d["workers"] for d in docs), "elapsed_s": max(d["elapsed_s"] for d in docs),
           "ops": list(rows.values()), "failures": failures, "merged_shards": len(docs),
           "examples": sum(d.get("examples", 0) for d in docs),
           "first_failure_s": min((f["found_at_s"] for f in failures), default=None),
           "thin": [r["op"] for r in rows.values() if r["status"] == "thin"],
           "internal_errors": [m for d in docs for m in d.get("internal_errors", [])],
           "infeasible_reached": _unique(x for d in docs for x in d.get("infeasible_reached", [])),
           "interrupted": any(d.get("interrupted") for d in docs), "crashed": any(d.get("crashed") for d in docs),
           "require_coverage": any(d.get("require_coverage") for d in docs)}
    return out


def _unique(items) -> list:
    out: list = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def merged_status(doc: dict) -> tuple:
    """(exit status, text) of a merged report, by the same rule as a single run's."""
    if doc.get("interrupted"):
        return 2, "a shard was interrupted"
    if doc.get("internal_errors") or doc.get("crashed"):
        return 2, "internal error"
    if doc["failures"]:
        return 1, f"{len(doc['failures'])} finding(s)"
    if doc.get("require_coverage") and doc["thin"]:
        return 1, f"{len(doc['thin'])} row(s) with unreached conditions"
    return 0, "no failures"
