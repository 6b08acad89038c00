"""Pairs of conditions: the covering samples reach every feasible pair, the declared
infeasible pairs are really out of the makers' reach, and the gate counts what examples reach.

Per kind of row (ops, user functions and losses, layers, the Module, optimizers, the engine,
Tensor's helpers):
- every feasible pair of every row is reached, together in one use, by the row's coverage
  cases and pair cases -- judged on the cases the gate runs, by their per-use condition sets;
- no declared infeasible pair is reached by the makers, tried in both orders on every base
  draft (a declaration cannot hide a reachable pair);
- each of these two checks fails when it should: with a maker broken, pairs are left
  unreached; with a reachable pair declared infeasible, the declaration is caught.
"""
from __future__ import annotations

import dataclasses

import pytest

from reference import covering_cache
from reference.coverage import row_cases
from reference.covering import Builder, cover, stable_repr
from reference.gate import report
from reference.pairs import pair_cases, row_cover, row_kind
from reference.registry import LAYERS, LOSS_OPS, OPS, OPTIMIZERS, Condition, pairs_of, row_pairs

KINDS = {"ops": [s.row for s in list(OPS.values()) + list(LOSS_OPS.values())],
         "layers": [s.row for s in LAYERS.values()], "module": ["module"],
         "optimizers": [s.row for s in OPTIMIZERS.values()], "engine": ["engine"], "tensor": ["tensor"]}


@pytest.fixture(autouse=True, scope="module")
def _no_kept_coverings(tmp_path_factory):
    """The covering arrays are built here, not replayed from a cache another run kept."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(covering_cache.ENV_CACHE, str(tmp_path_factory.mktemp("coverings")))
        row_cover.cache_clear()
        yield
    row_cover.cache_clear()


def reached_pairs(row: str, cases) -> set:
    """The pairs of `row`'s conditions that the cases reach together in one use."""
    order = {name: i for i, name in enumerate(row_pairs(row).conditions)}
    return set().union(set(), *(pairs_of(s, order) for case in cases for r, s in case.condition_sets() if r == row))


def reachable_declared(kind, declared) -> list:
    """The declared pairs that some base draft, made to reach one condition and then the other
    (either order), reaches with both in a valid case."""
    builder = Builder(kind, ())
    return [pair for pair in declared if any(
        (built := builder.meet(base, first, second)) is not None and kind.valid(built.case)
        for base in kind.bases() for first, second in (pair, pair[::-1]))]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_feasible_pair_is_reached_by_the_coverage_and_pair_cases(kind):
    for row in KINDS[kind]:
        feasible = set(row_pairs(row).feasible)
        assert row_cover(row).unreached == [], (row, row_cover(row).unreached)
        missing = feasible - reached_pairs(row, row_cases(row) + pair_cases(row))
        assert not missing, (row, sorted(missing))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_declared_infeasible_pair_is_reachable_by_the_makers(kind):
    for row in KINDS[kind]:
        declared = row_pairs(row).infeasible
        assert reachable_declared(row_kind(row), declared) == [], row


def test_the_figures_of_pairs():
    """Every row declares its pairs; over all rows the coverage cases alone reach fewer than half
    of the feasible pairs, and no declared infeasible pair."""
    rows = [row for rows in KINDS.values() for row in rows]
    total = sum(row_pairs(row).total for row in rows)
    feasible = sum(len(row_pairs(row).feasible) for row in rows)
    by_coverage = sum(len(reached_pairs(row, row_cases(row)) & set(row_pairs(row).feasible)) for row in rows)
    wrong = [row for row in rows if reached_pairs(row, row_cases(row)) & set(row_pairs(row).infeasible)]
    n = sum(len(row_pairs(row).conditions) for row in rows)
    assert total == sum(len(row_pairs(r).conditions) * (len(row_pairs(r).conditions) - 1) // 2 for r in rows)
    assert n > 0 and 0 < by_coverage < feasible / 2 < total / 2 and wrong == []


# ---------------------------------------------------------------------------- kept on disk
@pytest.mark.parametrize("row", ["add", "getitem", "layer:AddNorm", "optim:Adam", "tensor"])
def test_a_covering_replayed_from_its_recipes_is_the_one_built(row):
    kind = row_kind(row)
    built = cover(kind, row_pairs(row).feasible).samples
    replayed = Builder(kind, row_pairs(row).feasible).replay([b.recipe for b in built])
    assert built and [stable_repr(b.draft) for b in replayed] == [stable_repr(b.draft) for b in built]
    assert [b.reached for b in replayed] == [b.reached for b in built]


def test_row_cover_keeps_its_recipes_and_rebuilds_a_stale_file(tmp_path, monkeypatch):
    monkeypatch.setenv(covering_cache.ENV_CACHE, str(tmp_path))
    row_cover.cache_clear()
    first = row_cover("rmatmul")
    kept = covering_cache.load("rmatmul")
    assert kept["samples"] == [list(b.recipe) for b in first.samples] and kept["unreached"] == []
    row_cover.cache_clear()
    assert [stable_repr(b.draft) for b in row_cover("rmatmul").samples] == [stable_repr(b.draft) for b in first.samples]
    covering_cache.store("rmatmul", [[10 ** 6, "float32"]], [])      # a recipe that no longer builds
    row_cover.cache_clear()
    again = row_cover("rmatmul")
    assert [stable_repr(b.draft) for b in again.samples] == [stable_repr(b.draft) for b in first.samples]
    assert covering_cache.load("rmatmul")["samples"] == kept["samples"]
    row_cover.cache_clear()


# ---------------------------------------------------------------------------- the checks can fail
@dataclasses.dataclass(frozen=True)
class Altered:
    """A row kind with one condition's maker replaced, from its plain draft alone (the other
    base drafts reach every condition once, and the other makers would make up for it)."""

    kind: object
    name: str
    make: object

    @property
    def conditions(self):
        return tuple(dataclasses.replace(c, make=self.make) if c.name == self.name else c
                     for c in self.kind.conditions)

    def bases(self):
        return self.kind.bases()[:1]

    def __getattr__(self, attr):
        return getattr(self.kind, attr)


def _unreached_with(row: str, name: str, make) -> set:
    return set(cover(Altered(row_kind(row), name, make), row_pairs(row).feasible).unreached)


@pytest.mark.parametrize("row, name, broken", [
    ("add", "left 0-D", lambda sample: sample),       # a maker that makes nothing
    ("matmul", "left 1-D", None)])                    # no maker at all
def test_a_broken_maker_leaves_pairs_unreached(row, name, broken):
    working = next(c.make for c in row_kind(row).conditions if c.name == name)
    lost = _unreached_with(row, name, broken) - _unreached_with(row, name, working)
    assert lost and all(name in pair for pair in lost), lost


def test_a_reachable_pair_declared_infeasible_is_caught():
    kind = row_kind("add")
    assert ("float32", "left 0-D") in row_pairs("add").feasible
    assert reachable_declared(kind, [("float32", "left 0-D"), ("left 0-D", "right 0-D")]) == [("float32", "left 0-D")]


# ---------------------------------------------------------------------------- counting
def test_the_report_counts_pairs_reached_in_one_use_and_merges_shards():
    feasible = {"add": [["float32", "left 0-D"], ["float32", "operand used twice"], ["left 0-D", "right a plain array"]]}
    conditions = {"add": ["float32", "left 0-D", "operand used twice", "right a plain array"]}

    def test_record(pairs):
        return {"kind": "test", "examples": 1, "rows": {"add": [1, 0.1, None, {}]}, "pairs": {"add": pairs}}
    s = report.summarize([test_record([["float32", "left 0-D"]]), test_record([["left 0-D", "float32"]])], ["add"],
                         conditions, feasible, {"add": [["left 0-D", "operand used twice"]]})
    row = s.rows[0]
    assert s.infeasible_reached == []
    assert row["pairs"] == {"reached": 1, "feasible": 3}
    assert row["unreached_pairs"] == [["float32", "operand used twice"], ["left 0-D", "right a plain array"]]
    other = report.summarize([test_record([["left 0-D", "right a plain array"], ["left 0-D", "operand used twice"]])],
                             ["add"], conditions, feasible, {"add": [["left 0-D", "operand used twice"]]})
    assert other.infeasible_reached == [["add", ["left 0-D", "operand used twice"]]]   # a wrong declaration shows

    def doc(summary, i):
        return {"seed": 1, "budget_s": 1.0, "workers": 1, "elapsed_s": 1.0, "shard": [i, 2], "failures": [],
                "ops": [{k: v for k, v in r.items() if k != "fd_ran"} for r in summary.rows]}
    merged = report.merge([doc(s, 1), doc(other, 2)])["ops"][0]
    assert merged["pairs"] == {"reached": 2, "feasible": 3}
    assert merged["unreached_pairs"] == [["float32", "operand used twice"]]


def test_a_case_reports_one_condition_set_per_use():
    """A Module case: the Module's calls, each layer, each call's loss -- the union per row is
    `conditions()`; pairs come only from inside one set."""
    case = row_cases("module")[2]          # batch sizes (1, 3, 2), a call without model_reset
    sets = case.condition_sets()
    assert [r for r, _ in sets][:4] == ["module", "layer:Linear", "layer:ReLU", "layer:Linear"]
    assert case.conditions()["module"] == set(sets[0][1]) >= {"batch size 1", "batch size changes"}
    unions = {}
    for r, s in sets:
        unions.setdefault(r, set()).update(s)
    assert unions == case.conditions()
    assert all(isinstance(c, Condition) and c.make is not None for c in row_kind("module").conditions)


def test_list_shows_the_pairs_of_every_row_and_the_reasons_of_the_infeasible_ones():
    from reference.gate import listing
    from reference.registry import rows
    counts = listing.pairs_table().columns
    shown = {row: [c._cells[i] for c in counts[1:]] for i, row in enumerate(counts[0]._cells)}
    for row in rows():
        p = row_pairs(row)
        assert shown[row] == [str(len(p.conditions)), str(len(p.feasible)), str(len(p.same_group)),
                              str(len(p.infeasible))], row
    reasons = listing.infeasible_table().columns
    listed = set(zip(reasons[0]._cells, reasons[1]._cells, reasons[2]._cells))
    assert listed == {(row, f"{a} + {b}", why) for row in rows() for (a, b), why in row_pairs(row).infeasible.items()}
