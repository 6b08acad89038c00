"""Mutants: deliberately wrong gradient rules (and Module, optimizer and engine bugs).

The reference suite must prove it can fail. Each `Mutant` is a source patch of the current
pygrad: an exact snippet `original` of `file` (it must occur there exactly once) and its
`replacement`. Every mutant is a bug someone could plausibly write, and each leaves forward
values unchanged where the real bug would, so only a gradient, structure or invariant check
can see it -- often only under a condition (a broadcast operand, a tuple axis, a non-last
softmax axis, outC > 1, repeated indices, an exact zero, a second backward pass, a later
optimizer step, a Module call). `catches` names the check kind of the gate's report expected
to catch it: `grad`, `fd`, `invariant`, `structure` or `value`.

`apply(mutant, root)` copies the project into a fresh directory and patches the one file
there. Run the gate from that directory (`python -m` puts the current directory first on
`sys.path`, ahead of the editable install, so the mutated pygrad is the one imported):

    path = apply(mutant, root)
    subprocess.run([sys.executable, "-m", "reference", ...], cwd=path, env=env(path))

A mutant whose snippet no longer occurs exactly once raises `StaleMutant`: after a refactor of
pygrad the catalogue must be updated, never silently skipped (a mutant that patches nothing
would "survive" and look like a hole in the gate, or worse, be dropped from the count).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHECKS = ("grad", "fd", "invariant", "structure", "value")

# What `apply` copies: everything the gate and the unit tests need, nothing else.
COPIED = ("pygrad", "reference", "fuzz", "tests", "conftest.py", "pyproject.toml")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "*.egg-info",
                                  "reference-failures")

ROOT = Path(__file__).resolve().parent.parent


class StaleMutant(ValueError):
    """The mutant's snippet does not occur exactly once in its file."""


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str            # relative to the project root
    original: str        # exact snippet of the current source, occurring exactly once
    replacement: str
    catches: str         # the check kind expected to catch it (CHECKS)
    description: str     # what breaks, and under which condition it shows

    def __post_init__(self):
        if self.catches not in CHECKS:
            raise ValueError(f"mutant {self.name}: catches must be one of {CHECKS}, got {self.catches!r}")
        if self.original == self.replacement:
            raise ValueError(f"mutant {self.name}: the replacement equals the original")


MUTANTS = (
    # ------------------------------------------------------------------ broadcasting
    Mutant(
        "unbroadcast_size1_not_summed", "pygrad/ops/_core.py",
        """        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
        if axes:
            g = g.sum(axis=axes)
        g = g.reshape(shape)
""",
        """        axes = tuple(range(lead))
        if axes:
            g = g.sum(axis=axes)
        g = g[tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)]
""",
        "grad",
        "unbroadcast sums the added leading dims but not the size-1 dims that were stretched: it "
        "keeps the first slice instead. Shows for an operand with a size-1 dim broadcast against a "
        "larger one (a (3, 1) + (3, 4)), e.g. a Linear bias under a Module with n > 1 rows."),
    Mutant(
        "unbroadcast_mean_not_sum", "pygrad/ops/_core.py",
        """        if axes:
            g = g.sum(axis=axes)
""",
        """        if axes:
            g = g.mean(axis=axes)
""",
        "grad",
        "broadcast dims are averaged instead of summed: every broadcast operand's gradient is "
        "divided by the broadcast factor. Shows only for broadcast operands."),
    # ------------------------------------------------------------------ arithmetic
    Mutant(
        "sub_second_operand_sign", "pygrad/ops/arithmetic.py",
        "            b._add_grad(unbroadcast(-g, bv))\n",
        "            b._add_grad(unbroadcast(g, bv))\n",
        "grad",
        "a - b sends +g to b instead of -g. Shows for a Tensor on the right of -, and for the "
        "reflected form (3 - x)."),
    Mutant(
        "mul_copy_paste", "pygrad/ops/arithmetic.py",
        "            b._add_grad(unbroadcast(g * av, bv))\n",
        "            b._add_grad(unbroadcast(g * bv, bv))\n",
        "grad",
        "a * b sends g * b (its own value) to b instead of g * a. Invisible when a == b (x * x)."),
    Mutant(
        "div_second_operand", "pygrad/ops/arithmetic.py",
        "            b._add_grad(unbroadcast(-g * av / (bv * bv), bv))\n",
        "            b._add_grad(unbroadcast(-g * av / bv, bv))\n",
        "grad",
        "d(a/b)/db = -a/b instead of -a/b**2. Shows for a Tensor denominator with |b| != 1 "
        "(and for the reflected 1 / x)."),
    Mutant(
        "neg_sign", "pygrad/ops/arithmetic.py",
        "        a._add_grad(-g)\n",
        "        a._add_grad(g)\n",
        "grad",
        "unary minus passes the gradient through unchanged."),
    Mutant(
        "pow_tensor_exponent_scale", "pygrad/ops/arithmetic.py",
        "                da = np.where(bv == 0, 0.0, bv * np.power(av, bv - 1))\n",
        "                da = np.where(bv == 0, 0.0, np.power(av, bv - 1))\n",
        "grad",
        "a ** b with a Tensor (or array) exponent forgets the factor b in d/da; the scalar-exponent "
        "path is right, so this shows only when the exponent is a Tensor with b != 1."),
    Mutant(
        "pow_square_fast_path", "pygrad/ops/arithmetic.py",
        "                    a._add_grad(unbroadcast(g * (2.0 * av), av))\n",
        "                    a._add_grad(unbroadcast(g * av, av))\n",
        "grad",
        "the special case x ** 2 drops the factor 2; every other scalar exponent is right. Shows "
        "only for the exponent exactly 2 (the squared-error losses use it)."),
    Mutant(
        "rpow_log_of_exponent", "pygrad/ops/arithmetic.py",
        "                db = np.where((av == 0) & (bv >= 0), 0.0, value * np.log(av, dtype=value.dtype))\n",
        "                db = np.where((av == 0) & (bv >= 0), 0.0, value * np.log(bv, dtype=value.dtype))\n",
        "grad",
        "d(a ** b)/db = a**b log(b) instead of log(a): the operands mixed up in the reflected "
        "form. Shows for a Tensor exponent (2 ** x, x ** y)."),
    # ------------------------------------------------------------------ matmul
    Mutant(
        "matmul_shared_b_transposed", "pygrad/ops/linalg.py",
        "                gb = (_rows(a2).T @ _rows(g)).reshape(b2.shape)\n",
        "                gb = (_rows(g).T @ _rows(a2)).reshape(b2.shape)\n",
        "grad",
        "the gradient of a right operand shared by the batch (a Linear's W) is computed transposed, "
        "then reshaped into b's shape (sizes agree, so nothing raises). Shows when b is 2-D or has "
        "size-1 batch dims and a has at least as many dims."),
    # ------------------------------------------------------------------ shape ops
    Mutant(
        "transpose_perm_not_inverted", "pygrad/ops/shape.py",
        "        x._add_grad(g.transpose(inverse))\n",
        "        x._add_grad(g.transpose(perm))\n",
        "grad",
        "transpose's backward applies the permutation again instead of its inverse. Shows only for "
        "permutations that are not their own inverse (a 3-cycle on 3+ axes)."),
    Mutant(
        "T_backward_reshape", "pygrad/ops/shape.py",
        "        x._add_grad(g.swapaxes(-1, -2))\n",
        "        x._add_grad(g.reshape(xv.shape))\n",
        "grad",
        ".T's backward reshapes the gradient into x's shape instead of swapping the axes back. "
        "Shows for non-square last two dims with 2+ entries each."),
    Mutant(
        "getitem_add_at_lost", "pygrad/ops/shape.py",
        "            np.add.at(gx, idx, g)\n",
        "            gx[idx] = g\n",
        "grad",
        "advanced indexing scatters its gradient by assignment: repeated indices keep one "
        "contribution instead of their sum. Shows only for advanced indices with repeats."),
    Mutant(
        "mask_idcs_grad_not_zeroed", "pygrad/ops/shape.py",
        "        gx[idcs] = 0\n",
        "",
        "grad",
        "mask_idcs lets the gradient through at the written positions (torch: 0). Shows for "
        "Dropout in training mode and any mask_idcs call with a nonzero cotangent there."),
    # ------------------------------------------------------------------ reductions
    Mutant(
        "mean_tuple_axis_count", "pygrad/ops/reduction.py",
        """    axes = normalize_axes(axis, xv.ndim, "mean", xv.shape)
    count = math.prod(xv.shape[a] for a in axes)
""",
        """    axes = normalize_axes(axis, xv.ndim, "mean", xv.shape)
    count = xv.shape[axes[-1]] if axes else 1
""",
        "grad",
        "mean's backward divides by the size of the last reduced axis only: right for one axis, "
        "wrong for a tuple of axes or axis=None over 2+ non-trivial dims."),
    Mutant(
        "std_missing_one_over_n", "pygrad/ops/reduction.py",
        "        scale = 2.0 / count if count else 0.0",
        "        scale = 2.0 if count else 0.0",
        "grad",
        "std's backward forgets the 1/N of the variance: gradient N times too large. Shows for "
        "any reduced size N > 1."),
    # ------------------------------------------------------------------ elementwise
    Mutant(
        "relu_derivative_at_zero", "pygrad/ops/elementwise.py",
        "        x._add_grad(g * (xv > 0))\n",
        "        x._add_grad(g * (xv >= 0))\n",
        "grad",
        "relu'(0) = 1 (torch: 0). Shows only at exact zeros, where finite differences cannot "
        "judge: the torch comparison must generate exact zeros on purpose."),
    Mutant(
        "sigmoid_derivative_y", "pygrad/ops/elementwise.py",
        "        x._add_grad(g * (y * (1 - y)))\n",
        "        x._add_grad(g * y)\n",
        "grad",
        "sigmoid's derivative taken as y instead of y (1 - y)."),
    Mutant(
        "tanh_derivative", "pygrad/ops/elementwise.py",
        "        x._add_grad(g * (1 - y * y))\n",
        "        x._add_grad(g * (1 - y))\n",
        "grad",
        "tanh's derivative taken as 1 - y instead of 1 - y**2; right at y = 0 and y = 1 only."),
    # ------------------------------------------------------------------ nn ops
    Mutant(
        "softmax_jacobian_last_axis_only", "pygrad/ops/nn.py",
        "        gx = g - np.expand_dims(np.vecdot(g, y, axis=ax), ax)\n",
        "        gx = g - np.expand_dims(np.vecdot(g, y, axis=-1), -1)\n",
        "grad",
        "softmax's backward sums the `y * g` term over the last axis whatever the softmax axis: "
        "right for axis=-1, wrong on any other axis (the Jacobian term of the wrong rows)."),
    Mutant(
        "log_softmax_missing_sum", "pygrad/ops/nn.py",
        "        gx *= g.sum(axis=ax, keepdims=True)\n",
        "        gx *= g\n",
        "grad",
        "log-softmax's backward uses g - softmax * g (a diagonal Jacobian) instead of "
        "g - softmax * sum(g). Shows for any axis longer than 1 (CCELoss, too)."),
    Mutant(
        "conv_input_grad_averaged_over_outC", "pygrad/ops/nn.py",
        "            gx = lay.from_flat(lay.scatter(g_cols, dtype))\n",
        "            gx = lay.from_flat(lay.scatter(g_cols, dtype)) / out_c\n",
        "grad",
        "conv2D's input gradient is averaged over the output channels instead of summed. Shows "
        "only for outC > 1."),
    Mutant(
        "conv_kernel_grad_flipped", "pygrad/ops/nn.py",
        "                gk = (cols @ g_flat.T).T\n",
        "                gk = (cols @ g_flat.T).T.reshape(kv.shape)[..., ::-1, ::-1]\n",
        "grad",
        "the shared kernel's gradient comes out flipped (each tap gets the gradient of the "
        "opposite tap, as if the forward were a convolution). Shows for kH > 1 or kW > 1 with a "
        "kernel of leading dim 1 (every Conv2D layer)."),
    # ------------------------------------------------------------------ losses and layers
    Mutant(
        "bce_grad_fused_sigmoid", "pygrad/losses.py",
        "        grad_pred = (pv - tv) / np.maximum((1 - pv) * pv, _BCE_EPS)\n",
        "        grad_pred = pv - tv\n",
        "grad",
        "BCELoss's gradient w.r.t. pred is the fused sigmoid+BCE one (pred - target), i.e. with "
        "respect to the logits; the value is unchanged. Shows for any BCELoss."),
    Mutant(
        "linear_repeats_W_over_batch", "pygrad/basics.py",
        "        out = x @ self.W\n",
        """        if self.W.shape[0] != x.shape[0]:
            self.W.value = np.repeat(self.W.value[:1], x.shape[0], axis=0)
        out = x @ self.W
""",
        "invariant",
        "Linear resizes W to the batch (as the original pygrad did): same outputs, but W's value "
        "and gradient become (batch, i, o) and the optimizer can no longer update the model. "
        "Shows for a batch > 1."),
    # ------------------------------------------------------------------ engine
    Mutant(
        "fanout_overwrite", "pygrad/tensor.py",
        "        self._grad = g if self._grad is None else self._grad + g\n",
        "        self._grad = g\n",
        "grad",
        "_add_grad overwrites instead of adding: a tensor used twice (x * x, a reused "
        "intermediate, a skip connection) keeps only the last contribution."),
    Mutant(
        "reset_grad_root_accumulated", "pygrad/tensor.py",
        "        self._grad = np.broadcast_to(np.ones((), dtype=self._value.dtype), self._value.shape)\n",
        "        self._add_grad(np.broadcast_to(np.ones((), dtype=self._value.dtype), self._value.shape))\n",
        "invariant",
        "backward adds ones to the root's gradient instead of setting it: no effect after the "
        "reset, but backward(reset_grad=False) then seeds 2 instead of 1."),
    Mutant(
        "reset_grad_intermediates_kept", "pygrad/tensor.py",
        """            for t in topo:
                t._grad = None
""",
        """            for t in topo:
                if not t.leaf:
                    t._grad = None
""",
        "invariant",
        "backward(reset_grad=True) zeroes only the weights: op outputs and inputs marked "
        "leaf=True keep their gradients, so a second backward() accumulates into them (and "
        "through them). A single backward on a fresh graph is right."),
    Mutant(
        "create_graph_right_to_left", "pygrad/tensor.py",
        "                    stack.append((child, iter(child._prev)))\n",
        "                    stack.append((child, iter(child._prev[::-1])))\n",
        "structure",
        "the graph walk visits the operands of every non-root node right to left: still a valid "
        "topological order (gradients are right) but not the documented topo/weights order. "
        "Shows for a binary op below the root whose operands are both learnable."),
    # ------------------------------------------------------------------ Module
    Mutant(
        "module_call_leaks_into_originals", "pygrad/module.py",
        "            return self.copy.forward(**inputs)\n",
        "            return self.forward(**inputs)\n",
        "invariant",
        "the Module call runs forward on the model itself instead of its batched copy: same "
        "outputs and training still works, but backward fills the original weights' gradients."),
    # ------------------------------------------------------------------ optimizers
    Mutant(
        "optim_match_by_position", "pygrad/optims.py",
        """        for t in loss.weights:
            i = self._index.get(t.uid)
""",
        """        for k, t in enumerate(loss.weights):
            i = k if k < len(self.model_parameters) else None
""",
        "invariant",
        "the optimizer pairs its parameters with the loss's weights by list position instead of "
        "uid: wrong updates (or a shape error) when the parameters are not given in graph order "
        "or a target was not marked leaf=True."),
    Mutant(
        "momentum_first_step_dampened", "pygrad/optims.py",
        "        buf = grad.copy() if buf is None else self.beta * buf + grad\n",
        "        buf = (1 - self.beta) * grad if buf is None else self.beta * buf + grad\n",
        "invariant",
        "SGD_Momentum starts its buffer at (1 - beta) g instead of g (torch: g). The first step is "
        "too small and every later step inherits it."),
    Mutant(
        "rmsprop_eps_inside_sqrt", "pygrad/optims.py",
        "        return value - self.lr * grad / (np.sqrt(v) + self.eps)\n",
        "        return value - self.lr * grad / np.sqrt(v + self.eps)\n",
        "invariant",
        "RMSProp adds eps under the square root (Keras-style) instead of after it (torch). "
        "Visible when eps is not negligible against sqrt(v)."),
    Mutant(
        "adam_missing_bias_correction2", "pygrad/optims.py",
        "        denom = np.sqrt(v) / np.sqrt(1 - self.beta2 ** t) + self.eps\n",
        "        denom = np.sqrt(v) + self.eps\n",
        "invariant",
        "Adam forgets the second-moment bias correction 1/sqrt(1 - beta2**t): every step is "
        "scaled wrong, most at the first steps."),
)

BY_NAME = {m.name: m for m in MUTANTS}
if len(BY_NAME) != len(MUTANTS):
    raise RuntimeError("reference.mutants: mutant names must be unique")


# ---------------------------------------------------------------------------- applying
def occurrences(mutant: Mutant, root: Path | str = ROOT) -> int:
    """How many times the mutant's snippet occurs in its file under `root`."""
    return (Path(root) / mutant.file).read_text().count(mutant.original)


def patched_source(mutant: Mutant, text: str) -> str:
    """`text` with the snippet replaced; StaleMutant unless it occurs exactly once, and
    SyntaxError if the result does not compile."""
    n = text.count(mutant.original)
    if n != 1:
        where = "does not occur" if n == 0 else f"occurs {n} times"
        raise StaleMutant(f"mutant {mutant.name}: its snippet {where} in {mutant.file} (it must occur "
                          f"exactly once); update the catalogue to the current source.\n"
                          f"snippet:\n{mutant.original}")
    new = text.replace(mutant.original, mutant.replacement)
    compile(new, mutant.file, "exec")
    return new


def apply(mutant: Mutant, root: Path | str = ROOT, dest: Path | str | None = None) -> Path:
    """Copy the project at `root` (COPIED: pygrad/, reference/, fuzz/, tests/, conftest.py,
    pyproject.toml; no .git, no caches) into `dest` (default: a fresh temporary directory)
    and patch `mutant.file` there. Returns the copy's path; the caller removes it (or uses
    `applied`). Raises StaleMutant before copying anything if the snippet is stale."""
    root = Path(root)
    new = patched_source(mutant, (root / mutant.file).read_text())
    if dest is None:
        out = Path(tempfile.mkdtemp(prefix=f"pygrad-mutant-{mutant.name}-"))
    else:
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=_IGNORED, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, out / name)
    (out / mutant.file).write_text(new)
    return out


@contextmanager
def applied(mutant: Mutant, root: Path | str = ROOT):
    """`apply` as a context manager: yields the mutated copy, removes it afterwards."""
    path = apply(mutant, root)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def env(path: Path | str) -> dict:
    """The environment for a subprocess run in the mutated copy at `path`: its directory
    first on PYTHONPATH, and no bytecode written into it."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(path)] + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    return e
