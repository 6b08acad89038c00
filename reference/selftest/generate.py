"""Mutants derived mechanically from pygrad's gradient code (`--mutants --generated`).

Generated at run time from the current source, never from a stored list of positions:
`generate(root)` parses pygrad's files, finds the gradient code (`SCOPE`) and applies every
operator (`OPERATORS`) at every place it fits, one change per mutant.

Scope:
- every closure named `backward` in `pygrad/ops/*.py` and `pygrad/function.py`, and the
  helpers that only gradient code calls (found from the source: `unbroadcast`, `_expand`,
  conv's col2im scatter, pygrad.function's gradient checks, ...);
- the engine: `Tensor._add_grad`, the walk, `create_graph`, `backward`, the `grad` property;
- the optimizers: matching, accumulation, twin sync and every `_update` (`optims.py`);
- `Module`'s batched copy (`__call__`, `__deepcopy__`, `_deepcopy`).

Each mutant replaces one AST node by another; its text is the node's source span and the
unparsed new node (in parentheses where precedence needs them), and the mutated file must
parse to exactly the original AST with that one node replaced (`check`). Ids are stable:
they hash the function, the operator and the ASTs of the old and new node (and which
occurrence of that triple it is), not line numbers, so an edit elsewhere keeps them.
"""
from __future__ import annotations

import ast
import copy
import fnmatch
import hashlib
from pathlib import Path

from reference.selftest.mutants import ROOT, GeneratedMutant

ARITHMETIC = "arithmetic swap"        # a + b -> a - b, a * b -> a / b, a ** b -> a * b, a @ b -> a * b
DROPPED = "dropped term"              # a + b -> a, a + b -> b, a * b -> a, tuple(...) + tuple(...) -> tuple(...)
SIGN_REMOVED = "sign removed"         # -g -> g
SIGN_ADDED = "sign added"             # _add_grad(g) -> _add_grad(-g), return g -> return -g
CONSTANT = "constant"                 # 0 <-> 1, n -> n + 1, 0.5 -> 2.0, True <-> False
AXIS = "axis"                         # axis=E -> axis=0, axis=-1, no axis
KEEPDIMS = "keepdims"                 # keepdims=True <-> False, keepdims -> not keepdims
TRANSPOSE = "transpose removed"       # x.T, x.swapaxes(...), x.transpose(...), np.transpose(x, ...) -> x
REDUCTION = "sum/mean swap"           # x.sum(...) <-> x.mean(...)
COMPARISON = "comparison flip"        # < <=, > >=, == !=, is / is not, in / not in
NEGATION = "negation removed"         # not c -> c
ACCUMULATION = "accumulation"         # x += e -> x = e
ORDER = "order"                       # reversed(xs) -> xs
STATEMENT = "statement removed"       # a._add_grad(g), seen.add(x), t._grad = None, self.state[i] = v -> pass
OPERATORS = (ARITHMETIC, DROPPED, SIGN_REMOVED, SIGN_ADDED, CONSTANT, AXIS, KEEPDIMS, TRANSPOSE, REDUCTION,
             COMPARISON, NEGATION, ACCUMULATION, ORDER, STATEMENT)

RULE_FILES = ("pygrad/ops/*.py", "pygrad/function.py")
"""Files whose `backward` closures (and the helpers only they call) are gradient code."""
NAMED = {
    "pygrad/tensor.py": ("Tensor._add_grad", "Tensor._walk", "Tensor.create_graph", "Tensor.backward", "Tensor.grad"),
    "pygrad/optims.py": ("*.zero_grad", "*.step", "*.step_single", "*._gradients", "*._apply", "*._update",
                         "*._update_in_place"),
    "pygrad/module.py": ("Module.__call__", "Module.__deepcopy__", "_deepcopy"),
}
"""Gradient code elsewhere, by qualified name (`*` any class)."""

SWAPS = {ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Div,), ast.Div: (ast.Mult,),
         ast.Pow: (ast.Mult,), ast.MatMult: (ast.Mult,)}
DROPS_LEFT = (ast.Add, ast.Mult)      # a + b -> b as well as -> a
FLIPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
TRANSPOSING = ("swapaxes", "transpose", "moveaxis")
_ATOMIC = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.List, ast.Tuple, ast.Dict, ast.Set)
_BINDING = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Attribute, ast.Subscript, ast.Await, ast.Starred,
            ast.IfExp)


class GeneratorError(RuntimeError):
    """A generated mutant does not parse back to the intended AST (a bug of the generator)."""


# ---------------------------------------------------------------------------- scope
def _functions(tree: ast.Module):
    """(qualified name, node) of every function, method and nested function of `tree`."""
    stack = [("", n) for n in tree.body]
    while stack:
        prefix, node = stack.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield name, node
            stack.extend((name + ".", child) for child in node.body)
        elif isinstance(node, (ast.If, ast.With, ast.Try)):
            stack.extend((prefix, child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))


def _names_in(nodes) -> set:
    """Names and attribute names read anywhere in `nodes`."""
    out = set()
    for top in nodes:
        for n in ast.walk(top):
            if isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.Attribute):
                out.add(n.attr)
    return out


def _rule_scope(trees: dict) -> dict:
    """{file: [(qualname, node)]}: the `backward` closures of the rule files and, to a fixed
    point, every function, method or class of theirs that only gradient code refers to (a
    class brings its methods)."""
    defs = {}         # (file, qualname) -> node: module-level functions, classes and methods
    for file, tree in trees.items():
        for top in tree.body:
            if isinstance(top, (ast.FunctionDef, ast.ClassDef)):
                defs[(file, top.name)] = top
                if isinstance(top, ast.ClassDef):
                    for item in top.body:
                        if isinstance(item, ast.FunctionDef):
                            defs[(file, f"{top.name}.{item.name}")] = item
    # keyed by node too: one function may define two closures of one name (pow's two rules)
    gradient = {(file, q, id(n)): n for file, tree in trees.items() for q, n in _functions(tree)
                if q.endswith(".backward") or q == "backward"}
    changed = True
    while changed:
        changed = False
        inside = _names_in(gradient.values())
        for (file, q), node in defs.items():
            key = (file, q, id(node))
            if key in gradient or node.name not in inside:
                continue
            skip = {id(n) for n in gradient.values()} | {id(node)}
            if node.name not in _names_outside(trees.values(), skip):
                gradient[key] = node
                if isinstance(node, ast.ClassDef):
                    gradient.update({(file, f"{node.name}.{m.name}", id(m)): m for m in node.body
                                     if isinstance(m, ast.FunctionDef)})
                changed = True
    scope = {}
    for (file, q, _), node in gradient.items():
        if not isinstance(node, ast.ClassDef):
            scope.setdefault(file, []).append((q, node))
    return scope


def _names_outside(trees, skip: set) -> set:
    """Names and attribute names read in `trees` outside the subtrees whose ids are in
    `skip` (a definition's own name is a field, not a read: it never counts)."""
    out = set()
    for tree in trees:
        stack = [tree]
        while stack:
            node = stack.pop()
            if id(node) in skip:
                continue
            if isinstance(node, ast.Name):
                out.add(node.id)
            elif isinstance(node, ast.Attribute):
                out.add(node.attr)
            stack.extend(ast.iter_child_nodes(node))
    return out


def scope(root: Path | str = ROOT) -> dict:
    """{file: [(qualified name, function node)]} of the gradient code under `root`, with the
    parsed trees: ({...}, {file: (text, tree)})."""
    root = Path(root)
    sources = {}
    for pattern in RULE_FILES + tuple(NAMED):
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            sources[rel] = (text, ast.parse(text, rel))
    rule = {f: t for f, (_, t) in sources.items() if any(fnmatch.fnmatch(f, p) for p in RULE_FILES)}
    chosen = _rule_scope(rule)
    for file, patterns in NAMED.items():
        if file in sources:
            chosen[file] = [(q, n) for q, n in _functions(sources[file][1])
                            if any(fnmatch.fnmatch(q, p) for p in patterns)]
    return chosen, sources


# ---------------------------------------------------------------------------- operators
def _neg(e: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.USub(), operand=e)


def _number(node):
    """The value of a numeric literal, `-literal` included, or None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _number(node.operand)
        return None if v is None else -v
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _new_number(v):
    if isinstance(v, float) and 0 < abs(v) < 1:
        return 1 / v                      # 0.5 -> 2.0
    if v in (0, 1):
        return type(v)(1 - v)             # 0 <-> 1
    return v + 1


def _literal(v) -> ast.expr:
    return _neg(ast.Constant(-v)) if v < 0 else ast.Constant(v)


def _call_with(call: ast.Call, **changes) -> ast.Call:
    new = copy.copy(call)
    for k, v in changes.items():
        setattr(new, k, v)
    return new


def mutations(node: ast.AST, parent: ast.AST):
    """(operator, new node) for every mutation of `node` (which sits in `parent`)."""
    if isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
        for op in SWAPS[type(node.op)]:
            yield ARITHMETIC, ast.BinOp(left=node.left, op=op(), right=node.right)
        yield DROPPED, node.left
        if isinstance(node.op, DROPS_LEFT):
            yield DROPPED, node.right
    elif isinstance(node, ast.AugAssign) and type(node.op) in SWAPS:
        for op in SWAPS[type(node.op)]:
            yield ARITHMETIC, ast.AugAssign(target=node.target, op=op(), value=node.value)
        yield ACCUMULATION, ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)
    elif _number(node) is not None and not (isinstance(parent, ast.UnaryOp) and _number(parent) is not None):
        yield CONSTANT, _literal(_new_number(_number(node)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield SIGN_REMOVED, node.operand
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield NEGATION, node.operand
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        kind = KEEPDIMS if isinstance(parent, ast.keyword) and parent.arg == "keepdims" else CONSTANT
        yield kind, ast.Constant(not node.value)
    elif isinstance(node, ast.Name) and node.id == "keepdims" and isinstance(node.ctx, ast.Load) and not (
            isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not)):
        yield KEEPDIMS, ast.UnaryOp(op=ast.Not(), operand=node)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIPS:
        yield COMPARISON, ast.Compare(left=node.left, ops=[FLIPS[type(node.ops[0])]()], comparators=node.comparators)
    elif isinstance(node, ast.Attribute) and node.attr == "T" and isinstance(node.ctx, ast.Load):
        yield TRANSPOSE, node.value
    elif isinstance(node, ast.Call):
        yield from _call_mutations(node)
    if _is_effect(node):
        yield STATEMENT, ast.Pass()


def _is_effect(node: ast.AST) -> bool:
    """A statement that only has an effect: a call whose value is dropped, or a write to an
    attribute or an item (state: a gradient, a buffer, the walk's bookkeeping)."""
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Call)
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in targets)
    return False


def _call_mutations(node: ast.Call):
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr in TRANSPOSING:
            np_call = isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy")
            if np_call and node.args:
                yield TRANSPOSE, node.args[0]
            elif not np_call:
                yield TRANSPOSE, func.value
        if func.attr in ("sum", "mean"):
            other = "mean" if func.attr == "sum" else "sum"
            yield REDUCTION, _call_with(node, func=ast.Attribute(value=func.value, attr=other, ctx=ast.Load()))
        if func.attr == "_add_grad" and len(node.args) == 1:
            yield SIGN_ADDED, _call_with(node, args=[_neg(node.args[0])])
    elif isinstance(func, ast.Name) and func.id == "reversed" and len(node.args) == 1:
        yield ORDER, node.args[0]
    for i, kw in enumerate(node.keywords):
        if kw.arg != "axis":
            continue
        for v in (0, -1):
            if _number(kw.value) != v:
                kws = list(node.keywords)
                kws[i] = ast.keyword(arg="axis", value=_literal(v))
                yield AXIS, _call_with(node, keywords=kws)
        yield AXIS, _call_with(node, keywords=node.keywords[:i] + node.keywords[i + 1:])


def _return_mutation(stmt: ast.Return):
    v = stmt.value
    if v is None or isinstance(v, (ast.Constant, ast.Tuple, ast.List, ast.Dict)) or _number(v) is not None:
        return None
    return SIGN_ADDED, ast.Return(value=_neg(v))


# ---------------------------------------------------------------------------- walking
def _candidates(fn: ast.AST):
    """(node, parent, statement) for every node of a function's body that may be mutated:
    not docstrings, f-strings, raise/assert statements (messages, not gradients)."""
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    stack = [(stmt, fn, stmt) for stmt in reversed(body)]
    while stack:
        node, parent, stmt = stack.pop()
        if isinstance(node, (ast.Raise, ast.Assert, ast.JoinedStr)):
            continue
        yield node, parent, stmt
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            children = node.body
        else:
            children = list(ast.iter_child_nodes(node))
        for child in reversed(children):
            if isinstance(child, (ast.expr_context, ast.operator, ast.cmpop, ast.unaryop, ast.boolop)):
                continue
            stack.append((child, node, child if isinstance(child, ast.stmt) else stmt))


def _char_col(lines: list, line: int, col: int) -> int:
    return len(lines[line - 1].encode("utf-8")[:col].decode("utf-8"))


def _replacement_text(new: ast.AST, node: ast.AST, parent: ast.AST) -> str:
    """The new node's text, in parentheses where it replaces an operand of something that
    binds tighter than it may."""
    text = ast.unparse(new)
    if isinstance(new, ast.stmt):
        return text
    atomic = isinstance(new, _ATOMIC) or (isinstance(new, ast.Constant) and _number(new) is None) or (
        isinstance(new, ast.Constant) and new.value >= 0)
    binding = isinstance(parent, _BINDING) or (isinstance(parent, ast.Call) and parent.func is node)
    return f"({text})" if binding and not atomic else text


def _swapped_dump(top: ast.AST, parent: ast.AST, node: ast.AST, new: ast.AST) -> str:
    """ast.dump of `top` with `node` (a child of `parent`) replaced by `new`; `top` is left
    as it was."""
    for field, value in ast.iter_fields(parent):
        if value is node:
            setattr(parent, field, new)
            try:
                return ast.dump(top)
            finally:
                setattr(parent, field, node)
        if isinstance(value, list) and any(v is node for v in value):
            i = next(i for i, v in enumerate(value) if v is node)
            value[i] = new
            try:
                return ast.dump(top)
            finally:
                value[i] = node
    raise GeneratorError("node not found in its parent")


def check(mutant: GeneratedMutant, text: str, tree: ast.Module, top: int, parent: ast.AST, node: ast.AST,
          new: ast.AST) -> None:
    """The mutated text parses to `tree` with exactly `node` replaced by `new`: the top-level
    statement `top` that holds it is that, and no statement was added or lost (the text
    outside the span is unchanged); and the change is a change. GeneratorError otherwise."""
    mutated = ast.parse(mutant.patched(text)).body
    expected = _swapped_dump(tree.body[top], parent, node, new)
    got = ast.dump(mutated[top]) if len(mutated) == len(tree.body) else None
    if got != expected or got == ast.dump(tree.body[top]):
        raise GeneratorError(f"generated mutant {mutant.name} at {mutant.location} does not parse to its change: "
                             f"{mutant.original!r} -> {mutant.replacement!r}")


def _slug(operator: str) -> str:
    return operator.replace("/", "-").replace(" ", "-")


def generate(root: Path | str = ROOT, checked: bool = True) -> list:
    """Every mutant of the gradient code under `root`, in file and source order. With
    `checked`, each is verified to parse to its intended AST (GeneratorError if not)."""
    chosen, sources = scope(root)
    out, seen_spans = [], set()
    for file in sorted(chosen):
        text, tree = sources[file]
        lines = text.splitlines(keepends=True)
        top_of = {id(n): i for i, stmt in enumerate(tree.body) for n in ast.walk(stmt)}
        seen_ids: dict = {}
        done = set()
        for qualname, fn in chosen[file]:
            for node, parent, stmt in _candidates(fn):
                if id(node) in done:
                    continue
                done.add(id(node))
                found = list(mutations(node, parent))
                if isinstance(node, ast.Return):
                    found += [m for m in [_return_mutation(node)] if m]
                for operator, new in found:
                    m = _mutant(file, qualname, operator, node, parent, stmt, new, lines, seen_ids)
                    span = (m.file, m.line, m.col, m.end_line, m.end_col, m.replacement)
                    if span in seen_spans:
                        continue
                    seen_spans.add(span)
                    if checked:
                        check(m, text, tree, top_of[id(node)], parent, node, new)
                    out.append(m)
    return out


def _mutant(file, qualname, operator, node, parent, stmt, new, lines, seen_ids) -> GeneratedMutant:
    key = f"{file}|{qualname}|{operator}|{ast.dump(node)}|{ast.dump(new)}"
    k = seen_ids[key] = seen_ids.get(key, -1) + 1
    digest = hashlib.sha1(f"{key}|{k}".encode()).hexdigest()[:6]
    name = f"{Path(file).stem}.{qualname}.{_slug(operator)}.{digest}"
    line, end_line = node.lineno, node.end_lineno
    col, end_col = _char_col(lines, line, node.col_offset), _char_col(lines, end_line, node.end_col_offset)
    original = "".join(lines[line - 1:end_line])
    original = original[col:len(original) - len(lines[end_line - 1]) + end_col]
    return GeneratedMutant(name, file, qualname, operator, line, col, end_line, end_col, stmt.lineno,
                           _header_end(stmt), original, _replacement_text(new, node, parent))


def _header_end(stmt: ast.stmt) -> int:
    """The last line of a simple statement, or of a compound statement's header."""
    header = [getattr(stmt, f) for f in ("test", "iter", "target", "items", "context_expr") if getattr(stmt, f, None)]
    if isinstance(stmt, (ast.If, ast.While, ast.For, ast.With, ast.Try)) or hasattr(stmt, "body"):
        nodes = [n for h in header for n in (h if isinstance(h, list) else [h])]
        return max((getattr(n, "end_lineno", None) or stmt.lineno for n in nodes), default=stmt.lineno)
    return stmt.end_lineno
