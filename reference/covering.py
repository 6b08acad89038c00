"""Covering arrays of conditions: coverage drafts that reach every feasible pair of a row's
conditions in one use, built greedily in the spirit of AETG and PICT.

A row kind (`reference.pairs`) gives the builder its conditions (`Condition`s with a maker
and a group), its base drafts (the row's coverage samples, the plain one first),
`build(draft) -> case` (raises `Infeasible` for a draft no case can be made of),
`reached(case)` -- the conditions the case's use of the row reaches, judged by the
predicates on the built case, never by the maker's word -- and `valid(case)` (the oracle can
judge it). Drafts are any frozen dataclasses; the builder is generic over them.

The construction. The pairs the base drafts already reach are covered (the coverage pass
runs them). While a feasible pair (a, b) is not: from a few base drafts -- those reaching a
or b, then the plain one -- the makers of a and b are applied in both orders; of the drafts
that reach both, the one covering the most uncovered pairs is extended greedily with further
conditions, a maker kept only if every condition chosen so far still holds and it covers
more; the first valid candidate is taken. A pair no candidate reaches is reported, never
dropped silently. No randomness: the orders are the row's condition order, so the result is
a function of the registry.

Why not allpairspy: it enumerates rows of independent factor levels and filters them, while
our conditions are predicates of a built case whose makers interact (a side's shape form
changes the output's, a dtype maker keeps the shapes) and whose validity only the case can
tell; greedy construction with every draft judged on its case fits that directly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from reference.registry import Infeasible, pairs_of

CANDIDATE_BASES = 3     # base drafts tried per side of a pair (besides the plain one)


@dataclass(frozen=True)
class Built:
    """A draft, the case built from it, and the conditions that case's use of the row reaches;
    `recipe`: how the draft was made -- (index of its base draft, then the conditions whose
    makers were applied, in order), so `Builder.replay` makes it again without a search."""

    draft: object
    case: object = field(compare=False)
    reached: frozenset
    recipe: tuple = field(default=(), compare=False)


@dataclass
class Cover:
    """`samples`: the drafts made for the pairs, each covering pairs none before it did (the
    most first); `bases`: the base drafts that could be built ([] when the samples were
    replayed from their recipes); `unreached`: feasible pairs no candidate reached (a maker
    cannot make them, or every draft reaching them was invalid)."""

    samples: list
    bases: list
    unreached: list


_PLAIN = (str, int, float, bool, type(None), slice, type(Ellipsis))


def stable_repr(obj) -> str:
    """A text that names `obj` the same way in every process (no addresses, no hash order):
    dataclasses by their fields, callables by their qualified name, arrays by their values."""
    if isinstance(obj, _PLAIN):
        return repr(obj)
    if isinstance(obj, (list, tuple)):
        return ("[%s]" if isinstance(obj, list) else "(%s)") % ", ".join(stable_repr(x) for x in obj)
    if isinstance(obj, dict):
        items = sorted((stable_repr(k), stable_repr(v)) for k, v in obj.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(obj, np.ndarray):
        return f"array({obj.tolist()!r}, {obj.dtype})"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        inner = ", ".join(f"{f.name}={stable_repr(getattr(obj, f.name))}" for f in dataclasses.fields(obj))
        return f"{type(obj).__name__}({inner})"
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"{getattr(obj, '__module__', '')}.{obj.__qualname__}"
    return repr(obj)


class Builder:
    """The covering construction for one row kind (see the module docstring)."""

    def __init__(self, kind, feasible):
        self.kind = kind
        self.order = {c.name: i for i, c in enumerate(kind.conditions)}
        self.makers = {c.name: c.make for c in kind.conditions}
        self.feasible = set(feasible)
        self._memo: dict = {}
        self._keys: dict = {}
        self._recipes: dict = {}    # draft key -> its recipe (the first way found)

    def key(self, draft) -> str:
        """The draft's `stable_repr`, remembered per draft object (held, so its id stays its own)."""
        held = self._keys.get(id(draft))
        if held is None or held[0] is not draft:
            held = self._keys[id(draft)] = (draft, stable_repr(draft))
        return held[1]

    def judge(self, draft, recipe: tuple = ()) -> Built | None:
        """The draft built and judged (None: no case can be made of it). Memoized; the
        draft's recipe is the first one given for it."""
        key = self.key(draft)
        recipe = self._recipes.setdefault(key, recipe)
        if key not in self._memo:
            try:
                case = self.kind.build(draft)
                self._memo[key] = Built(draft, case, frozenset(self.kind.reached(case)), recipe)
            except Infeasible:
                self._memo[key] = None
        return self._memo[key]

    def make(self, draft, name: str, recipe: tuple) -> tuple:
        """(draft, recipe) made by condition `name`'s maker; Infeasible if it has none or the
        maker cannot."""
        if self.makers.get(name) is None:
            raise Infeasible(f"{name!r} has no maker")
        return self.makers[name](draft), recipe + (name,)

    def apply(self, draft, name: str, recipe: tuple = ()) -> tuple:
        """(draft, recipe) made to reach condition `name` (unchanged if it does)."""
        built = self.judge(draft, recipe)
        if built is not None and name in built.reached:
            return draft, recipe
        return self.make(draft, name, recipe)

    def meet(self, base, first: str, second: str, recipe: tuple = ()) -> Built | None:
        """Draft `base` (made by `recipe`) made to reach `first`, then `second`: the result if
        it reaches both."""
        try:
            draft, recipe = self.apply(base, first, recipe)
            built = self.judge(*self.apply(draft, second, recipe))
        except Infeasible:
            return None
        return built if built is not None and {first, second} <= built.reached else None

    def replay(self, recipes) -> list:
        """The drafts of `recipes` (`Built.recipe`) made again and judged, without a search;
        None in place of one that no longer builds."""
        bases = self.kind.bases()
        out = []
        for index, *names in recipes:
            try:
                draft, recipe = bases[index], (index,)
                for name in names:
                    draft, recipe = self.make(draft, name, recipe)
                out.append(self.judge(draft, recipe))
            except (Infeasible, IndexError):
                out.append(None)
        return out

    def pairs(self, reached) -> set:
        return pairs_of(reached, self.order) & self.feasible

    # ------------------------------------------------------------------ the construction
    def cover(self) -> Cover:
        bases = [b for b in (self.judge(d, (i,)) for i, d in enumerate(self.kind.bases())) if b is not None]
        covered = set().union(*(self.pairs(b.reached) for b in bases))
        uncovered = [p for p in sorted(self.feasible, key=self._rank) if p not in covered]
        todo = set(uncovered)
        samples, unreached = [], []
        if not bases:
            return Cover([], [], uncovered)
        while uncovered:
            pair = uncovered[0]
            chosen = self._sample_for(pair, bases, todo)
            if chosen is None:
                unreached.append(pair)
                done = {pair}
            else:
                samples.append(chosen)
                done = self.pairs(chosen.reached)
            todo -= done
            uncovered = [p for p in uncovered if p in todo]
        return Cover(samples, bases, unreached)

    def _rank(self, pair) -> tuple:
        return tuple(self.order[n] for n in pair)

    def _sample_for(self, pair, bases, todo) -> Built | None:
        a, b = pair
        gain = lambda built: len(self.pairs(built.reached) & todo)  # noqa: E731
        candidates = self._candidates(pair, bases, near=True) or self._candidates(pair, bases, near=False)
        candidates.sort(key=gain, reverse=True)
        for cand in candidates:
            grown = self._extend(cand, {a, b}, todo, gain)
            for option in [grown] + [cand] * (grown is not cand):
                if self.kind.valid(option.case):
                    return option
        return None

    def _candidates(self, pair, bases, near: bool) -> list:
        """Drafts reaching both conditions of `pair`: from the bases reaching one of them and
        the plain one (`near`), or from every base."""
        a, b = pair
        if near:
            starts = ([(x, b, a) for x in bases if a in x.reached][:CANDIDATE_BASES]
                      + [(x, a, b) for x in bases if b in x.reached][:CANDIDATE_BASES]
                      + [(bases[0], a, b), (bases[0], b, a)])
        else:
            starts = [(x, first, second) for x in bases for first, second in ((a, b), (b, a))]
        out = {}
        for base, first, second in starts:
            built = self.meet(base.draft, first, second, base.recipe)
            if built is not None:
                out.setdefault(self.key(built.draft), built)
                if not near:
                    break      # the long way round: the first will do
        return list(out.values())

    def _extend(self, built: Built, chosen: set, todo: set, gain) -> Built:
        """`built` with more conditions, greedily: each kept only if every chosen condition
        still holds and more uncovered pairs are covered."""
        def promise(name):
            return sum((name, r) in todo or (r, name) in todo for r in built.reached)
        for name in sorted(self.order, key=lambda n: (-promise(n), self.order[n])):
            if name in built.reached or self.makers.get(name) is None or not promise(name):
                continue
            if any(tuple(sorted((name, c), key=self.order.__getitem__)) not in self.feasible for c in chosen):
                continue
            try:
                grown = self.judge(*self.make(built.draft, name, built.recipe))
            except Infeasible:
                continue
            if grown is not None and chosen | {name} <= grown.reached and gain(grown) > gain(built):
                built, chosen = grown, chosen | {name}
        return built


def cover(kind, feasible) -> Cover:
    """The covering drafts of a row kind for its feasible pairs (see the module docstring)."""
    return Builder(kind, feasible).cover()
