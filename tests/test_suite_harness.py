"""The harness and the gate's worker side, in-process: signatures, every distinct bug in one
run, time shares, the per-example limit, and the report's statuses."""
import json
import time

import numpy as np
import pytest

from pygrad import Tensor
from reference import coverage, harness
from reference.findings import explains, signature
from reference.gate import report
from reference.generators.programs import op_cases
from reference.registry import OPS, row_conditions, rows
from reference.runstate import session
from reference.runstate.streams import Stream


@pytest.fixture
def gate(tmp_path, monkeypatch):
    """Gate mode in this process: streams under tmp_path, a fixed number of examples."""
    monkeypatch.setenv(session.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(session.ENV_EXAMPLES, "150")
    monkeypatch.setenv(session.ENV_TIMEOUT, "5")
    for attr, value in (("writer", None), ("current", None), ("stream", None), ("known", []), ("fatal", set()),
                        ("tests", {}), ("inflight", None)):
        monkeypatch.setattr(session.S, attr, value)
    yield tmp_path
    session.S.writer = None


def _records(directory) -> list:
    s = Stream(directory)
    s.poll()
    return s.records


def _two_bugs_in_add(monkeypatch):
    """add sends a wrong gradient to a 1-element right operand, and (separately) to a left
    operand that broadcasting gives leading dims."""
    original = Tensor.__add__

    def add(a, b):
        out = original(a, b)
        right = out._backward

        def rule(g):
            right(g)
            if isinstance(b, Tensor) and b.ndim and b.size == 1 and out.size > 1:
                b._add_grad(np.ones(b.shape, dtype=b.dtype))
            if isinstance(a, Tensor) and 0 < a.ndim < out.ndim:
                a._add_grad(np.ones(a.shape, dtype=a.dtype))
        out._backward = rule
        return out
    monkeypatch.setattr(Tensor, "__add__", add)


def test_signatures_tell_bugs_apart_and_explain_their_supersets():
    base = signature("add", "grad", "add", set())
    assert base == ("add", "grad", "add", frozenset())
    one = signature("add", "grad", "add", {"right 1-element", "float32"})
    other = signature("add", "grad", "add", {"left gains leading dims"})
    assert explains(base, one) and not explains(one, other) and not explains(other, one)
    assert explains(one, signature("add", "grad", "add", {"right 1-element", "float32", "right 0-D"}))
    assert not explains(one, signature("add", "value", "add", {"right 1-element", "float32"}))
    # what went wrong tells apart two failures of one row and check kind: an engine error
    # without conditions does not explain a RecursionError of the deep graph
    engine = signature("engine", "error", "TypeError in backward", set())
    deep = signature("engine", "error", "RecursionError in the backward pass of a deep graph",
                     {"deep graph (10 000 ops)"})
    assert not explains(engine, deep) and explains(engine, signature("engine", "error", "TypeError in backward",
                                                                     {"fan-out"}))


def test_coverage_pass_reports_each_distinct_bug_once(gate, monkeypatch):
    _two_bugs_in_add(monkeypatch)
    session.begin("cov[add]", "coverage")
    with pytest.raises(harness.FindingsRecorded):
        harness.run_samples(coverage.row_cases("add"), "cov[add]")
    session.end("failed")
    found = [r for r in _records(gate) if r["kind"] == "finding"]
    sigs = [set(r["signature"]) for r in found]
    assert len(found) == 2, sigs
    assert any("right 1-element" in s for s in sigs) and any("left gains leading dims" in s for s in sigs)
    assert all(r["reproducer"] and "def test_" in r["reproducer"] for r in found)


def test_random_property_keeps_searching_after_a_finding(gate, monkeypatch):
    monkeypatch.setenv(session.ENV_EXAMPLES, "300")
    _two_bugs_in_add(monkeypatch)
    session.begin("prop[add]", "random")
    with pytest.raises(harness.FindingsRecorded):
        harness.run_property(op_cases(OPS["add"], "torch"), "prop[add]")
    session.end("failed")
    found = [r for r in _records(gate) if r["kind"] == "finding"]
    assert len(found) >= 2, [r["signature"] for r in found]
    assert all(r["shrunk"] for r in found)
    sigs = [frozenset(r["signature"]) for r in found]
    assert len(set(sigs)) == len(sigs)


def test_correct_pygrad_passes_a_row_and_records_its_conditions(gate):
    session.begin("cov[matmul]", "coverage")
    harness.run_samples(coverage.row_cases("matmul"), "cov[matmul]")
    session.end("passed")
    test = next(r for r in _records(gate) if r["kind"] == "test")
    n, worst, fd, conds = test["rows"]["matmul"]
    assert n >= 10 and worst <= 1 and fd is not None and fd <= 1
    assert set(row_conditions("matmul")) <= set(conds)


def test_a_hang_is_a_finding_that_names_its_node_and_sets_the_row_aside(gate, monkeypatch):
    monkeypatch.setenv(session.ENV_TIMEOUT, "1")
    original = Tensor.tanh

    def slow(self):
        if self.size >= 5:
            time.sleep(30)
        return original(self)
    monkeypatch.setattr(Tensor, "tanh", slow)
    session.begin("cov[tanh]", "coverage")
    start = time.time()
    with pytest.raises(harness.FindingsRecorded):
        harness.run_samples(coverage.row_cases("tanh"), "cov[tanh]")
    assert time.time() - start < 10
    found = [r for r in _records(gate) if r["kind"] == "finding"]
    assert len(found) == 1 and found[0]["check"] == "error" and found[0]["row"] == "tanh"
    assert "did not return within 1 s" in found[0]["message"] and "tanh()" in found[0]["where"]
    assert "tanh" in session.fatal_rows()


def test_time_limit_interrupts_a_python_loop():
    with pytest.raises(harness.ExampleTimeout):
        with harness.time_limit(0.2):
            while True:
                pass


def test_shares_follow_weights_and_never_exceed_the_time_left():
    weights = {"a": 1.0, "b": 3.0}
    assert session.share(10, 2, weights, {"a", "b"}, "a") == pytest.approx(5.0)
    assert session.share(10, 2, weights, {"a", "b"}, "b") == pytest.approx(10.0)
    assert session.share(0, 2, weights, {"a"}, "a") == 0.0
    needy = session.weight(["x"], {"x": {"c1": 0, "c2": 0}}, {"x": 0.01})
    covered = session.weight(["x"], {"x": {"c1": 9, "c2": 9}}, {"x": 0.01})
    costly = session.weight(["x"], {"x": {"c1": 0, "c2": 0}}, {"x": 0.1})
    assert needy > covered and needy > costly


def test_report_statuses_fail_thin_pass():
    table = {"add": ["c1", "c2"], "mul": ["c1"], "sub": ["c1"]}
    records = [{"kind": "test", "examples": 3, "rows": {"add": [2, 0.1, None, {"c1": 2}], "mul": [1, 0.5, 0.2, {"c1": 1}],
                                                        "sub": [1, 0.0, None, {"c1": 1}]}},
               {"kind": "finding", "row": "sub", "check": "grad", "signature": [], "t": 1.0, "test": "t",
                "message": "m"}]
    s = report.summarize(records, list(table), table)
    status = {r["op"]: r["status"] for r in s.rows}
    assert status == {"add": "thin", "mul": "pass", "sub": "fail"}
    assert report.verdict(s, False, False, False)[0] == 1
    clean = report.summarize(records[:1], list(table), table)
    assert report.verdict(clean, False, False, False)[0] == 0
    assert report.verdict(clean, False, False, True)[0] == 1      # --require-coverage: add is thin
    assert report.verdict(clean, True, False, False)[0] == 2      # a crashed run is never 1
    assert report.verdict(clean, False, True, False)[0] == 2      # nor an interrupted one


def test_every_row_has_conditions():
    assert all(row_conditions(row) for row in rows())
    assert json.dumps([row_conditions(r) for r in rows()])
