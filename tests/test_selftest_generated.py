"""reference.selftest's generated mutants: the generator covers every operator kind in
pygrad's real gradient code, each mutant changes exactly one place, ids are stable, the
sample is seeded, probes agree with torch on the real pygrad and see a real bug, the
classification rules, the JSON entries, and the self-test's modules import only downward."""
from __future__ import annotations

import ast
import json
import shutil
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from reference.selftest import classify, generate, generated, probes
from reference.selftest.mutants import GeneratedMutant, StaleMutant, apply
from reference.selftest.probes import Outcome
from tests._gate import REPO, gate


@pytest.fixture(scope="module")
def mutants():
    return generate.generate(REPO)


@pytest.fixture
def own_pygrad():
    """`probes.load_pygrad` imports pygrad afresh; afterwards the very modules imported before
    are put back, so the other tests of this process keep patching the pygrad they use."""
    before = {k: v for k, v in sys.modules.items() if k == "pygrad" or k.startswith("pygrad.")}
    yield
    for name in [k for k in sys.modules if k == "pygrad" or k.startswith("pygrad.")]:
        del sys.modules[name]
    sys.modules.update(before)


# ---------------------------------------------------------------------------- the generator
def test_every_operator_kind_is_found_in_pygrads_gradient_code(mutants):
    kinds = {m.operator for m in mutants}
    assert kinds == set(generate.OPERATORS), set(generate.OPERATORS) - kinds
    assert len(mutants) >= 300


def test_scope_is_the_gradient_code_and_not_the_forward(mutants):
    functions = {(m.file, m.function) for m in mutants}
    for file, fn in [("pygrad/ops/_core.py", "unbroadcast"), ("pygrad/ops/reduction.py", "_expand"),
                     ("pygrad/ops/arithmetic.py", "sub.backward"), ("pygrad/ops/linalg.py", "matmul.backward"),
                     ("pygrad/ops/nn.py", "_ConvLayout.scatter"), ("pygrad/function.py", "Function.__call__.backward"),
                     ("pygrad/tensor.py", "Tensor._add_grad"), ("pygrad/tensor.py", "Tensor._walk"),
                     ("pygrad/tensor.py", "Tensor.backward"), ("pygrad/optims.py", "Adam._update"),
                     ("pygrad/optims.py", "Optimizer._apply"), ("pygrad/module.py", "Module.__call__")]:
        assert (file, fn) in functions, (file, fn)
    names = {fn for _, fn in functions}
    for forward in ("operand", "normalize_axes", "sub", "matmul", "_mm", "softmax", "_check_conv", "Tensor.__init__",
                    "_check_number", "SGD.__init__"):
        assert forward not in names, forward
    # every op module's backward closures are in scope
    closures = {fn for fn in names if fn.endswith(".backward")}
    for op in ("add", "sub", "mul", "div", "pow", "neg", "relu", "tanh", "sigmoid", "exp", "log", "matmul", "sum",
               "mean", "std", "reshape", "transpose", "_T", "getitem", "mask_idcs", "softmax", "softmax_log",
               "conv2D"):
        assert f"{op}.backward" in closures, op


def test_each_mutant_changes_exactly_its_span_and_the_ast(mutants):
    texts = {}
    for m in mutants:
        text = texts.setdefault(m.file, (REPO / m.file).read_text())
        new = m.patched(text)
        lines = text.splitlines(keepends=True)
        start = sum(len(t) for t in lines[:m.line - 1]) + m.col
        end = sum(len(t) for t in lines[:m.end_line - 1]) + m.end_col
        assert text[start:end] == m.original
        assert new[:start] == text[:start] and new[start + len(m.replacement):] == text[end:]
        assert ast.dump(ast.parse(new)) != ast.dump(ast.parse(text)), m.name


def test_a_generated_mutant_that_does_not_parse_to_its_change_is_a_generator_error():
    text = "def f(a, b, c):\n    def backward(g):\n        return c - a * b\n    return backward\n"
    tree = ast.parse(text)
    binop = tree.body[0].body[0].body[0].value.right           # a * b
    wrong = GeneratedMutant("x", "f.py", "f.backward", generate.ARITHMETIC, 3, 19, 3, 24, 3, 3, "a * b", "a + b")
    new = ast.BinOp(left=binop.left, op=ast.Add(), right=binop.right)
    with pytest.raises(generate.GeneratorError):                 # unparenthesised: c - a + b regroups
        generate.check(wrong, text, tree, 0, tree.body[0].body[0].body[0].value, binop, new)
    right = GeneratedMutant("x", "f.py", "f.backward", generate.ARITHMETIC, 3, 19, 3, 24, 3, 3, "a * b", "(a + b)")
    generate.check(right, text, tree, 0, tree.body[0].body[0].body[0].value, binop, new)


def test_ids_are_unique_stable_and_survive_an_edit_elsewhere(mutants, tmp_path):
    assert len({m.name for m in mutants}) == len(mutants)
    again = generate.generate(REPO)
    assert [m.name for m in again] == [m.name for m in mutants]
    shutil.copytree(REPO / "pygrad", tmp_path / "pygrad", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "pygrad" / "ops" / "arithmetic.py"
    path.write_text("# a comment that moves every line down\n\n" + path.read_text())
    moved = {m.name: m for m in generate.generate(tmp_path)}
    assert set(moved) == {m.name for m in mutants}
    for m in mutants:
        shift = 2 if m.file == "pygrad/ops/arithmetic.py" else 0
        assert moved[m.name].line == m.line + shift


def test_a_stale_generated_mutant_raises(mutants):
    m = mutants[0]
    with pytest.raises(StaleMutant):
        m.patched("\n" + (REPO / m.file).read_text())


def test_apply_copies_the_project_with_the_mutated_file(mutants, tmp_path):
    m = next(m for m in mutants if m.operator == generate.SIGN_REMOVED)
    copy = apply(m, REPO, dest=tmp_path / "copy")
    assert (copy / m.file).read_text() == m.patched((REPO / m.file).read_text())
    assert (copy / "reference").is_dir() and not (copy / "tests").exists()


# ---------------------------------------------------------------------------- sampling
def test_sampling_is_seeded_and_reproducible(mutants):
    names = [m.name for m in mutants]
    a, b = generated.sample_order(names, 0), generated.sample_order(list(reversed(names)), 0)
    assert a == b and sorted(a) == sorted(names)
    assert generated.sample_order(names, 1) != a


# ---------------------------------------------------------------------------- classification
@pytest.mark.parametrize("statuses, kind", [
    ([], classify.UNREACHED),
    (["ok", "wrong", "error"], classify.LIVE),
    (["error", "error"], classify.CRASH_ONLY),
    (["ok", "error"], classify.LIVE),                 # raises only under some inputs: the gate's `error`
    (["ok", "ok"], classify.SILENT),
])
def test_from_outcomes(statuses, kind):
    got, evidence = classify.from_outcomes([Outcome(f"case{i}", s, "d") for i, s in enumerate(statuses)])
    assert got == kind and evidence


@pytest.mark.parametrize("kind, failures, expected", [
    (classify.CRASH_ONLY, [("t", "error", "ValueError")], classify.CRASH_ONLY),
    (classify.CRASH_ONLY, [("t", "error", "ValueError"), ("u", "wrong", "assert 1 == 2")], classify.LIVE),
    (classify.SILENT, [], classify.SILENT),
    (classify.SILENT, [("t", "error", "TypeError")], classify.LIVE),
    (classify.UNREACHED, [("t", "wrong", "assert")], classify.LIVE),
    (classify.UNREACHED, [], classify.UNREACHED),
])
def test_unit_tests_refine_a_verdict(kind, failures, expected):
    assert classify.with_unit_tests(kind, "probes", failures)[0] == expected


def test_cases_for_reads_every_line_of_the_statement():
    m = GeneratedMutant("x", "pygrad/a.py", "f", generate.CONSTANT, 5, 0, 5, 1, 4, 6, "0", "1")
    table = {("pygrad/a.py", 4): ["A"], ("pygrad/a.py", 6): ["B", "A"], ("pygrad/a.py", 7): ["C"],
             ("pygrad/b.py", 5): ["D"]}
    assert classify.cases_for(m, table) == ["A", "B"]


def test_unit_test_files_cover_every_file_in_scope(mutants):
    for file in {m.file for m in mutants}:
        files = classify.unit_test_files(file)
        assert files and all((REPO / "tests" / f).is_file() for f in files), file


# ---------------------------------------------------------------------------- probes
def test_probe_cases_agree_with_torch_on_the_real_pygrad_and_name_known_rows(own_pygrad):
    import torch
    from reference.registry import rows
    pg = probes.load_pygrad(REPO)
    known = set(rows())
    for case in probes.cases():
        assert set(case.rows) <= known, case.name
        outcome = probes.run_case(case, pg, torch, seed=1)
        assert outcome.status == "ok", (case.name, outcome.detail)


def test_probes_see_a_wrong_gradient_and_a_crash(mutants, tmp_path, own_pygrad):
    import torch
    by_case = {c.name: c for c in probes.cases()}
    wrong = next(m for m in mutants if m.function == "sub.backward" and m.operator == generate.SIGN_REMOVED)
    crash = next(m for m in mutants if m.function == "_T.backward" and m.replacement == "0")   # swapaxes(0, -2)
    for m, case, status in ((wrong, "sub tensors", "wrong"), (crash, "T", "wrong")):
        copy = apply(m, REPO, dest=tmp_path / m.name)
        pg = probes.load_pygrad(copy)
        assert probes.run_case(by_case[case], pg, torch, seed=0).status == status, m.name


# ---------------------------------------------------------------------------- reports
def _args(tmp_path, **kw):
    return Namespace(json=tmp_path / "g.json", markdown=tmp_path / "g.md", budget=20.0, workers=2, focused=False,
                     sample=kw.get("sample", 3))


def test_json_entries_and_counts_follow_the_contract(mutants, tmp_path):
    live, silent, crash = mutants[0], mutants[1], mutants[2]
    verdicts = {live.name: classify.Verdict(classify.LIVE, "probe 'x': wrong", ("add",)),
                silent.name: classify.Verdict(classify.SILENT, "all agree", ("sub",), unit="0 failure(s)"),
                crash.name: classify.Verdict(classify.CRASH_ONLY, "all raise")}
    from reference.selftest.run import Result
    killed = Result(live.name, True, 3.5, "test_ops.py::test_op[add]", "grad", "add", "killed", "", "add", 9.0)
    entries = [generated.entry(live, verdicts[live.name], killed)]
    equivalent = [generated.entry(silent, verdicts[silent.name], None, equivalent_because="nothing saw it")]
    by_name = {m.name: m for m in mutants}
    status = generated._write(_args(tmp_path), 0.0, 7, entries, equivalent, verdicts, by_name, 3, len(mutants), True)
    assert status == 0
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["generated"]["live"] == 1 and doc["generated"]["equivalent"] == 1 and doc["generated"]["crash_only"] == 1
    assert doc["generated"]["total"] == len(mutants) and doc["generated"]["probed"] == 3
    [e] = doc["mutants"]
    assert {"name", "killed", "first_failure_s", "test", "check", "location", "operator"} <= set(e)
    assert e["killed"] is True and e["location"] == live.location and e["operator"] == live.operator
    assert doc["killed"] == doc["total"] == 1 and doc["median_first_failure_s"] == 3.5
    [q] = doc["equivalent"]
    assert q["location"] == silent.location and q["original"] == silent.original and q["equivalent_because"]
    md = (tmp_path / "g.md").read_text()
    assert md.startswith("## pygrad-check self-test, generated mutants: 1/1 killed")
    assert "Equivalent mutants" in md and silent.location in md


def test_cli_refuses_generated_options_out_of_place(tmp_path):
    r = gate(["--sample", "3"], cwd=tmp_path)
    assert r.returncode == 2 and "--generated" in r.output
    r = gate(["--mutants", "--generated", "--sample", "0"], cwd=tmp_path)
    assert r.returncode == 2 and "--sample" in r.output
    r = gate(["--mutants", "--generated", "--ci-subset"], cwd=tmp_path)
    assert r.returncode == 2


# ---------------------------------------------------------------------------- layers
LAYERS = ["mutants", "catalogue", "generate", "probe_base", "probe_ops", "probe_state", "probes", "classify", "run",
          "generated"]


def test_selftest_modules_import_only_downward():
    """No cycle: a module of reference/selftest imports (at top level or inside functions)
    only the ones before it in LAYERS."""
    base = REPO / "reference" / "selftest"
    assert sorted(p.stem for p in base.glob("*.py") if p.stem != "__init__") == sorted(LAYERS)
    for i, name in enumerate(LAYERS):
        tree = ast.parse((base / f"{name}.py").read_text())
        for node in ast.walk(tree):
            mods = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for mod in mods:
                if mod.startswith("reference.selftest"):
                    target = mod.split(".")[2] if mod.count(".") >= 2 else None
                    names = [a.name for a in node.names] if target is None else [target]
                    for t in names:
                        assert t in LAYERS[:i + 1], f"{name} imports {t}"   # itself: the worker entry


def test_a_probe_whose_own_code_chokes_on_pygrads_result_calls_it_wrong_and_the_worker_lives():
    from reference.selftest.probe_base import Case, side

    def run(pg, torch, rng):
        with side():
            weights = []            # as a mutant that lost the model's weights would give
        return [weights[0]]         # the probe's torch side indexes them
    outcome = probes.run_case(Case("lost weights", (), run), None, None, 0)
    assert outcome.status == "wrong" and "IndexError" in outcome.detail
