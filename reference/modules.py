"""Random Modules with a PyTorch twin.

A `ModuleSpec` is plain data: the per-sample input shape, a tuple of `Layer`s and a loss. It is
what strategies draw (structure first, so hypothesis shrinks it layer by layer) and what the
reports print. From a spec:

- `print_module(spec)` renders it as runnable pygrad code: a `Module` subclass `Model` made of
  the library's layers and a `loss_fn(y_pred, y_true)`. `build` compiles exactly that code, so
  a printed reproducer and the model that failed cannot drift apart;
- `build(spec, seed)` returns (pygrad model, torch twin, pairs). The twin is made of
  `torch.nn` layers (`nn.Linear`, `nn.Conv2d`, `F.layer_norm`, ...) in float64, an oracle
  independent of pygrad's formulation, and starts from pygrad's initial weights exactly. The
  `Pair`s map each pygrad weight to its torch parameter (name and layout), so values and
  gradients compare both ways;
- `run_batch` sends one batch through both (pygrad through the Module call `model(x=...)`,
  the way users train) and returns outputs, losses and every gradient, plus what happened to
  the original weights, which the call must leave untouched;
- `torch_optimizer` gives the torch.optim twin of a pygrad optimizer and `train` runs both
  side by side for several steps.

Shape rules. The builder tracks the per-sample activation shape (batch excluded): (C, H, W)
for conv stacks, (n, features) for MLPs and after `Flatten`, which maps (...) to
(1, prod(...)). `Linear` acts on the last axis of any activation of 2 or more per-sample
dims; `Conv2D` needs (C, H, W); activations, `Softmax` (any axis except the batch's) and
`Dropout` (eval mode: identity) keep the shape; `AddNorm` adds a skip of the same shape: its
own input (`skip=None`) or an earlier activation (`skip=j`, 0 being the model input).
Losses: `cce` (CCELoss on logits, needs (n, w)), `bce` (BCELoss, needs a last layer Sigmoid
or Softmax), `sse` (squared error summed) and `mse` (squared error averaged over every entry).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from reference.programs import array_literal

KINDS = ("linear", "conv", "flatten", "relu", "tanh", "sigmoid", "softmax", "addnorm", "dropout")
LOSSES = ("cce", "bce", "sse", "mse")
DTYPES = ("float64", "float32")

# Layer kind -> the pygrad class that implements it.
_PYGRAD_CLASS = {"linear": "Linear", "conv": "Conv2D", "flatten": "Flatten", "relu": "ReLU",
                 "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax", "addnorm": "AddNorm",
                 "dropout": "Dropout"}


class SpecError(ValueError):
    """The spec is not consistent (shapes, skip indices, loss requirements)."""


# ---------------------------------------------------------------------------- the description
@dataclass(frozen=True)
class Layer:
    """One layer. Only the fields of its kind matter; the others keep their defaults."""

    kind: str
    out: int = 0                  # linear: out features; conv: out channels
    kernel: tuple = (1, 1)        # conv: (kH, kW)
    stride: int = 1               # conv
    padding: int = 0              # conv
    bias: bool = True             # linear, conv
    axis: int = -1                # softmax
    skip: int | None = None       # addnorm: None = its own input, j = activation j (0 = model input)
    gain: float = 1.0             # addnorm
    shift: float = 0.0            # addnorm's `bias`
    epsilon: float = 1e-9         # addnorm
    rate: float = 0.1             # dropout

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SpecError(f"Layer: kind must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "kernel", tuple(self.kernel))   # hashable, printable

    def __repr__(self) -> str:
        parts = [repr(self.kind)]
        for f in fields(self)[1:]:
            v = getattr(self, f.name)
            if v != f.default:
                parts.append(f"{f.name}={v!r}")
        return f"Layer({', '.join(parts)})"


@dataclass(frozen=True)
class ModuleSpec:
    """A model: per-sample input shape, layers in order, loss, dtype of the pygrad side."""

    input: tuple
    layers: tuple = ()
    loss: str = "sse"
    dtype: str = "float64"

    def __post_init__(self):
        object.__setattr__(self, "input", tuple(self.input))
        object.__setattr__(self, "layers", tuple(self.layers))


def layer_name(i: int, layer: Layer) -> str:
    """The attribute name of layer `i` in both models, e.g. `conv0`, `relu1`."""
    return f"{layer.kind}{i}"


# ---------------------------------------------------------------------------- shapes
def out_shape(layer: Layer, shape: tuple, earlier: list | None = None) -> tuple:
    """The per-sample shape after `layer`, given its per-sample input `shape` and the
    earlier activations' shapes (for AddNorm's skip). Raises SpecError."""
    k, nd = layer.kind, len(shape)
    if k == "linear":
        if nd < 2:
            raise SpecError(f"linear needs a per-sample shape of 2+ dims, got {shape}")
        if layer.out < 1:
            raise SpecError(f"linear needs out >= 1, got {layer.out}")
        return shape[:-1] + (layer.out,)
    if k == "conv":
        if nd != 3:
            raise SpecError(f"conv needs a per-sample shape (C, H, W), got {shape}")
        kh, kw = layer.kernel
        if layer.out < 1 or kh < 1 or kw < 1 or layer.stride < 1 or layer.padding < 0:
            raise SpecError(f"conv needs out, kernel and stride >= 1 and padding >= 0: {layer!r}")
        h, w = shape[1] + 2 * layer.padding, shape[2] + 2 * layer.padding
        if kh > h or kw > w:
            raise SpecError(f"conv kernel {layer.kernel} is larger than the padded input {(h, w)}")
        return (layer.out, (h - kh) // layer.stride + 1, (w - kw) // layer.stride + 1)
    if k == "flatten":
        return (1, math.prod(shape))
    if k == "softmax":
        if not (-nd <= layer.axis <= nd and layer.axis != 0):
            raise SpecError(f"softmax axis {layer.axis} is not a non-batch axis of {(None,) + shape}")
        return shape
    if k == "addnorm":
        if layer.skip is not None:
            if earlier is None or not 0 <= layer.skip < len(earlier):
                raise SpecError(f"addnorm skip {layer.skip} does not name an earlier activation")
            if earlier[layer.skip] != shape:
                raise SpecError(f"addnorm skip {layer.skip} has shape {earlier[layer.skip]}, "
                                f"its input {shape}")
        return shape
    if k == "dropout" and not 0.0 <= layer.rate <= 1.0:
        raise SpecError(f"dropout rate must be in [0, 1], got {layer.rate}")
    return shape


def shapes(spec: ModuleSpec) -> list:
    """Per-sample shapes of every activation: [input, after layer 0, ...]. Raises SpecError
    when the spec is inconsistent."""
    if not (2 <= len(spec.input) <= 3 and all(isinstance(n, int) and n >= 1 for n in spec.input)):
        raise SpecError(f"input must be a per-sample shape (n, features) or (C, H, W), got {spec.input}")
    if spec.loss not in LOSSES:
        raise SpecError(f"loss must be one of {LOSSES}, got {spec.loss!r}")
    if spec.dtype not in DTYPES:
        raise SpecError(f"dtype must be one of {DTYPES}, got {spec.dtype!r}")
    acts = [tuple(spec.input)]
    for layer in spec.layers:
        acts.append(out_shape(layer, acts[-1], acts))
    if spec.loss == "cce" and len(acts[-1]) != 2:
        raise SpecError(f"cce needs logits of per-sample shape (n, w), got {acts[-1]}")
    if spec.loss == "bce" and (not spec.layers or spec.layers[-1].kind not in ("sigmoid", "softmax")):
        raise SpecError("bce needs a last layer sigmoid or softmax (predictions in [0, 1])")
    return acts


def valid(spec: ModuleSpec) -> bool:
    try:
        shapes(spec)
    except SpecError:
        return False
    return True


# ---------------------------------------------------------------------------- printer
def _layer_code(layer: Layer, name: str, shape: tuple, dtype: str) -> str:
    k, cls = layer.kind, _PYGRAD_CLASS[layer.kind]
    dt = "" if dtype == "float64" else f", dtype=np.{dtype}"
    bias = "" if layer.bias else ", bias=False"
    if k == "linear":
        return f"{cls}({shape[-1]}, {layer.out}{bias}, label={name!r}{dt})"
    if k == "conv":
        extra = (f", stride={layer.stride}" if layer.stride != 1 else "") + \
                (f", padding={layer.padding}" if layer.padding else "")
        return f"{cls}({layer.out}, {shape[0]}, {layer.kernel[0]}, {layer.kernel[1]}{bias}, " \
               f"label={name!r}{dt}{extra})"
    if k == "softmax":
        return f"{cls}(axis={layer.axis})"
    if k == "addnorm":
        return f"{cls}(gain={layer.gain!r}, bias={layer.shift!r}, epsilon={layer.epsilon!r})"
    if k == "dropout":
        return f"{cls}(rate={layer.rate!r})"
    return f"{cls}()"


_LOSS_CODE = {
    "cce": "CCELoss()(y_pred, y_true)",
    "bce": "BCELoss()(y_pred, y_true)",
    "sse": "((y_pred - y_true) ** 2).sum()",
    "mse": "((y_pred - y_true) ** 2).mean(axis=None, keepdims=False)",
}


def _imports(spec: ModuleSpec, extra=()) -> str:
    names = {"Module", "Tensor", *extra}
    names.update(_PYGRAD_CLASS[layer.kind] for layer in spec.layers)
    names.update({"cce": ["CCELoss"], "bce": ["BCELoss"]}.get(spec.loss, []))
    return "from pygrad import " + ", ".join(sorted(names))


def module_code(spec: ModuleSpec) -> str:
    """The class `Model` and the function `loss_fn` (no imports, no instance)."""
    acts = shapes(spec)
    dt = "" if spec.dtype == "float64" else f", dtype=np.{spec.dtype}"
    lines = ["class Model(Module):", "    def __init__(self):"]
    for i, layer in enumerate(spec.layers):
        name = layer_name(i, layer)
        lines.append(f"        self.{name} = {_layer_code(layer, name, acts[i], spec.dtype)}")
    lines.append(f"        super().__init__(x=Tensor(np.zeros({(1,) + acts[0]!r}){dt}, leaf=True))")
    lines += ["", "    def forward(self, x):"]
    var = ["x"] + [f"h{i + 1}" for i in range(len(spec.layers))]
    for i, layer in enumerate(spec.layers):
        call = f"self.{layer_name(i, layer)}({var[i]}"
        if layer.kind == "addnorm":
            call += f", {var[i if layer.skip is None else layer.skip]}"
        elif layer.kind == "dropout":
            call += ", training=False"
        lines.append(f"        {var[i + 1]} = {call})")
    lines.append(f"        return {var[-1]}")
    lines += ["", "", "def loss_fn(y_pred, y_true):", f"    return {_LOSS_CODE[spec.loss]}"]
    return "\n".join(lines) + "\n"


def _optim_code(optim: "OptimSpec") -> str:
    args = {"SGD": "", "SGD_Momentum": f", beta={optim.beta!r}",
            "RMSProp": f", beta={optim.beta!r}, eps={optim.eps!r}",
            "Adam": f", beta1={optim.beta!r}, beta2={optim.beta2!r}, eps={optim.eps!r}"}[optim.kind]
    return f"optim = {optim.kind}(model.weights{args}, lr={optim.lr!r})"


def print_module(spec: ModuleSpec, seed: int | None = None, optim: "OptimSpec | None" = None,
                 batches=()) -> str:
    """`spec` as a runnable pygrad script.

    Always: imports, `class Model(Module)` and `loss_fn`. With `seed`: `np.random.seed(seed)`
    and `model = Model()` (the weights `build(spec, seed)` starts from). With `optim`: the
    optimizer. With `batches` ([(x, target)]): one training step per batch as in the README
    (`model_reset`, `zero_grad`, call, loss, `backward`, `step` when there is an optimizer),
    inputs printed exactly."""
    extra = [optim.kind] if optim is not None else []
    head = ["import numpy as np"]
    if len(batches):
        head.append("from numpy import array")
    head += ["", _imports(spec, extra), "", "", ""]
    code = "\n".join(head) + module_code(spec)
    if seed is None and optim is None and not len(batches):
        return code
    lines = ["", ""]
    if seed is not None:
        lines.append(f"np.random.seed({int(seed)})")
    lines.append("model = Model()")
    if optim is not None:
        lines.append(_optim_code(optim))
    dt = "" if spec.dtype == "float64" else f", dtype=np.{spec.dtype}"
    for k, (x, target) in enumerate(batches):
        lines.append(f"x{k} = Tensor({array_literal(np.asarray(x, dtype=np.float64))}{dt}, leaf=True)")
        lines.append(f"y{k} = Tensor({array_literal(np.asarray(target, dtype=np.float64))}{dt}, leaf=True)")
        lines.append("model.model_reset()")
        if optim is not None:
            lines.append("optim.zero_grad()")
        lines.append(f"loss = loss_fn(model(x=x{k}), y{k})")
        lines.append("loss.backward()")
        if optim is not None:
            lines.append("optim.step(loss)")
    return code + "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=256)
def _compiled(spec: ModuleSpec) -> dict:
    """Namespace holding `Model` and `loss_fn`, compiled from the printed code."""
    code = print_module(spec)
    ns: dict = {"__name__": "reference_modules_generated"}
    exec(compile(code, f"<pygrad model {spec!r}>", "exec"), ns)  # noqa: S102 - our own printer's output
    return ns


def loss_fn(spec: ModuleSpec):
    """The pygrad loss of `spec`: `loss_fn(y_pred, y_true) -> scalar Tensor`."""
    return _compiled(spec)["loss_fn"]


# ---------------------------------------------------------------------------- torch twin
@dataclass(frozen=True)
class Pair:
    """One pygrad weight and its torch parameter.

    `name` is the attribute path in the pygrad model (the name `Module.named_weights` gives
    it, e.g. "linear0.W"); `torch_name` the twin's parameter name ("linear0.weight");
    `layout` how the arrays differ; `uid` the pygrad weight's identity (shared by its twin in
    the Module's batched copy)."""

    name: str
    torch_name: str
    layout: str        # "linear.W" | "linear.B" | "conv.kw" | "conv.kb"
    shape: tuple       # pygrad shape
    uid: int

    def to_torch(self, a) -> np.ndarray:
        """A pygrad-layout array (value or gradient) in torch's layout, float64."""
        a = np.asarray(a, dtype=np.float64)
        if self.layout == "linear.W":       # (1, i, o) -> (o, i)
            a = a[0].T
        elif self.layout == "linear.B":     # (1, 1, o) -> (o,)
            a = a[0, 0]
        elif self.layout == "conv.kw":      # (1, o, i, kH, kW) -> (o, i, kH, kW)
            a = a[0]
        else:                               # (1, o, 1, 1) -> (o,)
            a = a[0, :, 0, 0]
        return np.ascontiguousarray(a)

    def to_pygrad(self, a) -> np.ndarray:
        """A torch-layout array or tensor in pygrad's layout, float64."""
        if isinstance(a, torch.Tensor):
            a = a.detach().numpy()
        a = np.asarray(a, dtype=np.float64)
        if self.layout == "linear.W":
            a = a.T[None]
        elif self.layout == "linear.B":
            a = a[None, None]
        elif self.layout == "conv.kw":
            a = a[None]
        else:
            a = a[None, :, None, None]
        return np.array(a)


_PARAMS = {"linear": (("W", "weight", "linear.W"), ("B", "bias", "linear.B")),
           "conv": (("kw", "weight", "conv.kw"), ("kb", "bias", "conv.kb"))}


class TorchTwin(torch.nn.Module):
    """The spec in torch.nn, float64, eval mode (Dropout is the identity)."""

    def __init__(self, spec: ModuleSpec):
        super().__init__()
        self.spec = spec
        acts = shapes(spec)
        f64 = torch.float64
        for i, layer in enumerate(spec.layers):
            name, shape = layer_name(i, layer), acts[i]
            if layer.kind == "linear":
                setattr(self, name, torch.nn.Linear(shape[-1], layer.out, bias=layer.bias, dtype=f64))
            elif layer.kind == "conv":
                setattr(self, name, torch.nn.Conv2d(shape[0], layer.out, tuple(layer.kernel),
                                                    stride=layer.stride, padding=layer.padding,
                                                    bias=layer.bias, dtype=f64))
            elif layer.kind == "dropout":
                setattr(self, name, torch.nn.Dropout(layer.rate))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts = [x]
        for i, layer in enumerate(self.spec.layers):
            h, k = acts[-1], layer.kind
            if k in ("linear", "conv", "dropout"):
                h = getattr(self, layer_name(i, layer))(h)
            elif k == "flatten":
                h = h.reshape(h.shape[0], 1, -1)
            elif k == "relu":
                h = torch.relu(h)
            elif k == "tanh":
                h = torch.tanh(h)
            elif k == "sigmoid":
                h = torch.sigmoid(h)
            elif k == "softmax":
                h = torch.softmax(h, dim=layer.axis)
            elif k == "addnorm":
                y = h + acts[i if layer.skip is None else layer.skip]
                h = F.layer_norm(y, (y.shape[-1],), eps=layer.epsilon) * layer.gain + layer.shift
            acts.append(h)
        return acts[-1]


def torch_loss(spec: ModuleSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss of `spec` written with torch's own loss functions."""
    if spec.loss == "cce":
        w = pred.shape[-1]
        return F.cross_entropy(pred.reshape(-1, w), target.reshape(-1, w))
    if spec.loss == "bce":
        return F.binary_cross_entropy(pred, target, reduction="sum") / pred.shape[0]
    if spec.loss == "sse":
        return ((pred - target) ** 2).sum()
    return ((pred - target) ** 2).mean()


def weight(model, name: str):
    """The pygrad Tensor at attribute path `name` (e.g. "linear0.W") of `model`."""
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def build(spec: ModuleSpec, seed: int):
    """(pygrad model, torch twin, pairs): the pygrad `Model` of `print_module(spec)`,
    initialised under `np.random.seed(seed)` (the global NumPy state is restored after), and
    its torch twin holding the same initial weights. Raises SpecError for an inconsistent
    spec. The pairs are read from the layers (not from `model.weights`), so a Module that
    records its weights wrongly is still compared in full."""
    ns = _compiled(spec)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        pg_model = ns["Model"]()
    finally:
        np.random.set_state(state)
    twin = TorchTwin(spec)
    params = dict(twin.named_parameters())
    pairs = []
    for i, layer in enumerate(spec.layers):
        for attr, tattr, layout in _PARAMS.get(layer.kind, ()):
            w = getattr(getattr(pg_model, layer_name(i, layer)), attr)
            if w is None:  # bias=False
                continue
            pair = Pair(f"{layer_name(i, layer)}.{attr}", f"{layer_name(i, layer)}.{tattr}", layout,
                        tuple(w.shape), w.uid)
            pairs.append(pair)
    missing = set(params) - {p.torch_name for p in pairs}
    if missing:
        raise RuntimeError(f"modules: torch parameters without a pygrad weight: {sorted(missing)}")
    load_torch(twin, pairs, pg_model)
    return pg_model, twin, pairs


def load_torch(twin: torch.nn.Module, pairs, pg_model) -> None:
    """Copy the values of `pg_model`'s weights into the twin's parameters."""
    params = dict(twin.named_parameters())
    with torch.no_grad():
        for p in pairs:
            params[p.torch_name].copy_(torch.from_numpy(p.to_torch(weight(pg_model, p.name).value)))


def torch_weights(twin: torch.nn.Module, pairs) -> dict:
    """name -> the twin's parameter value in pygrad's layout."""
    params = dict(twin.named_parameters())
    return {p.name: p.to_pygrad(params[p.torch_name]) for p in pairs}


# ---------------------------------------------------------------------------- running a batch
def make_batch(spec: ModuleSpec, batch: int, seed, zeros: float = 0.0) -> tuple:
    """(x, target) float64 arrays for `batch` samples: x standard normal; the target one-hot
    rows for cce, uniform in [0, 1] for bce, standard normal for sse/mse.

    `zeros`: the probability that an entry of x, and separately a whole row of x (its last
    axis), is exactly 0. A zero row through a bias-free Linear (a zero patch through a
    bias-free Conv2D) gives exact zeros to the next ReLU: its kink, where torch says 0."""
    rng = np.random.default_rng(seed)
    acts = shapes(spec)
    x = rng.standard_normal((batch,) + acts[0])
    if zeros:
        x[rng.random(x.shape) < zeros] = 0.0
        x[rng.random(x.shape[:-1]) < zeros] = 0.0
    shape = (batch,) + acts[-1]
    if spec.loss == "cce":
        target = np.zeros(shape)
        cls = rng.integers(0, shape[-1], size=shape[:-1])
        np.put_along_axis(target, cls[..., None], 1.0, axis=-1)
    elif spec.loss == "bce":
        target = rng.uniform(0.0, 1.0, size=shape)
    else:
        target = rng.standard_normal(shape)
    return x, target


@dataclass
class BatchResult:
    """One batch through both models. Gradients are in pygrad's layout, keyed by pair name.

    `pg_grads` are read from the Module's batched copy (where the call must put them);
    `original_grads` / `original_changed` describe the original weights, which the call and
    backward must leave alone (zero grads, same values); `resized` lists the weights, original
    or copy, whose value or gradient no longer has the weight's shape (whatever the batch)."""

    pg_out: np.ndarray
    torch_out: np.ndarray
    pg_loss: float
    torch_loss: float
    pg_grads: dict
    torch_grads: dict
    pg_x_grad: np.ndarray
    torch_x_grad: np.ndarray
    original_grads: dict
    original_changed: list
    resized: dict           # name -> (value shape, grad shape) of weights no longer of their shape
    loss: object            # the pygrad loss Tensor (for `optim.step(loss)`)


def run_batch(spec: ModuleSpec, pg_model, twin, pairs, x, target, reset: bool = True) -> BatchResult:
    """Forward, loss and backward of one batch in both models.

    pygrad: `model(x=Tensor(x, leaf=True))`, `loss_fn`, `loss.backward()`; with `reset`
    the batched copy is dropped first so it holds the current weights. torch: the twin on the
    same inputs (cast to the spec's dtype and back), float64."""
    xv = np.asarray(x, dtype=spec.dtype)
    tv = np.asarray(target, dtype=spec.dtype)
    originals = {p.name: weight(pg_model, p.name) for p in pairs}
    before = {n: w.value.copy() for n, w in originals.items()}
    from pygrad import Tensor   # the pygrad on sys.path (a mutated copy under the self-test)
    if reset:
        pg_model.model_reset()
    x_t = Tensor(xv, dtype=spec.dtype, leaf=True)
    out = pg_model(x=x_t)
    loss = loss_fn(spec)(out, Tensor(tv, dtype=spec.dtype, leaf=True))
    loss.backward()
    home = pg_model.copy if pg_model.copy is not None else pg_model
    pg_grads = {p.name: np.array(weight(home, p.name).grad) for p in pairs}
    resized = {}
    for p in pairs:
        for where, model in (("", pg_model), ("copy.", home)):
            w = weight(model, p.name)
            if w.shape != p.shape or w.grad.shape != p.shape:
                resized[where + p.name] = (w.shape, w.grad.shape)

    t_out, t_loss, torch_grads, t_x_grad = torch_batch(spec, twin, pairs, xv, tv)
    return BatchResult(
        pg_out=np.array(out.value), torch_out=t_out,
        pg_loss=float(loss.value), torch_loss=t_loss,
        pg_grads=pg_grads, torch_grads=torch_grads,
        pg_x_grad=np.array(x_t.grad), torch_x_grad=t_x_grad,
        original_grads={n: np.array(w.grad) for n, w in originals.items()},
        original_changed=[n for n, w in originals.items()
                          if w.value.shape != before[n].shape or not np.array_equal(w.value, before[n])],
        resized=resized, loss=loss)


def torch_batch(spec: ModuleSpec, twin, pairs, x, target) -> tuple:
    """(output, loss, {pair name: gradient in pygrad's layout}, gradient of x): one batch
    through the twin in float64, with the twin's current parameters."""
    twin.zero_grad()
    tx = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    t_out = twin(tx)
    t_loss = torch_loss(spec, t_out, torch.tensor(np.asarray(target, dtype=np.float64)))
    t_loss.backward()
    params = dict(twin.named_parameters())
    grads = {}
    for p in pairs:
        g = params[p.torch_name].grad
        grads[p.name] = np.zeros(p.shape) if g is None else p.to_pygrad(g)
    return (t_out.detach().numpy().copy(), float(t_loss.detach()), grads,
            tx.grad.numpy().copy())


def mismatches(r: BatchResult, rtol: float, atol: float) -> list:
    """[(check kind, what, message)] for every disagreement in `r` (empty: all agree).
    Kinds as in the gate's report: value, grad, invariant."""
    out = []

    def close(kind, what, got, want):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            out.append((kind, what, f"shape {got.shape}, torch's {want.shape}"))
        elif not np.allclose(got.astype(np.float64), want, rtol=rtol, atol=atol):
            err = float(np.max(np.abs(got.astype(np.float64) - want)))
            out.append((kind, what, f"max |error| {err:.3g} (rtol {rtol}, atol {atol})"))

    close("value", "output", r.pg_out, r.torch_out)
    close("value", "loss", r.pg_loss, r.torch_loss)
    for name in r.torch_grads:
        close("grad", f"gradient of {name}", r.pg_grads[name], r.torch_grads[name])
    close("grad", "gradient of the input x", r.pg_x_grad, r.torch_x_grad)
    for name, g in r.original_grads.items():
        if np.any(g != 0):
            out.append(("invariant", f"original {name}", "the Module call leaked gradient into the "
                        "original weight (backward must fill the batched copy only)"))
    for name in r.original_changed:
        out.append(("invariant", f"original {name}", "the Module call changed the original weight"))
    for name, (vshape, gshape) in r.resized.items():
        out.append(("invariant", f"weight {name}", f"value {vshape} and grad {gshape} after a batch of "
                    f"{r.pg_out.shape[0] if r.pg_out.ndim else '?'}: weights must never be resized"))
    return out


# ---------------------------------------------------------------------------- optimizers
@dataclass(frozen=True)
class OptimSpec:
    """A pygrad optimizer: kind, lr, and `beta` (SGD_Momentum's beta, RMSProp's beta,
    Adam's beta1), `beta2` (Adam), `eps` (RMSProp, Adam)."""

    kind: str
    lr: float = 0.01
    beta: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


OPTIMIZERS = ("SGD", "SGD_Momentum", "RMSProp", "Adam")


def make_optimizer(ospec: OptimSpec, params):
    """The pygrad optimizer of `ospec` over `params` (e.g. `model.weights`)."""
    import pygrad
    cls = getattr(pygrad, ospec.kind)
    kw = {"SGD": {}, "SGD_Momentum": {"beta": ospec.beta},
          "RMSProp": {"beta": ospec.beta, "eps": ospec.eps},
          "Adam": {"beta1": ospec.beta, "beta2": ospec.beta2, "eps": ospec.eps}}[ospec.kind]
    return cls(params, lr=ospec.lr, **kw)


def torch_optimizer(pg_optim, twin: torch.nn.Module, pairs, params=None) -> torch.optim.Optimizer:
    """The torch.optim twin of a pygrad optimizer, over the twin's parameters paired with the
    pygrad optimizer's (matched by uid), or over `params` (torch parameters) if given.
    SGD -> SGD; SGD_Momentum(beta) -> SGD(momentum=beta); RMSProp(beta, eps) ->
    RMSprop(alpha=beta, eps); Adam(beta1, beta2, eps) -> Adam(betas, eps)."""
    if params is None:
        by_uid = {p.uid: p for p in pairs}
        named = dict(twin.named_parameters())
        params = []
        for w in pg_optim.model_parameters:
            if w.uid not in by_uid:
                raise ValueError(f"torch_optimizer: pygrad parameter {w.label or w.shape} has no torch twin")
            params.append(named[by_uid[w.uid].torch_name])
    kind, o = type(pg_optim).__name__, pg_optim
    if kind == "SGD":
        return torch.optim.SGD(params, lr=o.lr)
    if kind == "SGD_Momentum":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.beta)
    if kind == "RMSProp":
        return torch.optim.RMSprop(params, lr=o.lr, alpha=o.beta, eps=o.eps)
    if kind == "Adam":
        return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
    raise TypeError(f"torch_optimizer: no torch twin for {kind}")


@dataclass
class Step:
    """The state after one training step (weights in pygrad's layout)."""

    pg_loss: float
    torch_loss: float
    pg_weights: dict
    torch_weights: dict
    batch: BatchResult


def train(spec: ModuleSpec, ospec: OptimSpec, seed: int, batches, reset: bool = True,
          shuffle: int | None = None) -> list:
    """Train `build(spec, seed)` in both libraries on `batches` ([(x, target)]), one step
    per batch, the README's loop (`model_reset` unless `reset=False`, `zero_grad`, call, loss,
    `backward`, `step(loss)`). The pygrad optimizer gets `model.weights` (in an order
    shuffled by the seed `shuffle` if given: parameters are matched by identity, never by
    position); the torch one every parameter of the twin, so a weight missing from
    `model.weights` shows as a trajectory that differs. Returns one `Step` per batch."""
    pg_model, twin, pairs = build(spec, seed)
    params = list(pg_model.weights)
    if shuffle is not None:
        params = [params[i] for i in np.random.default_rng(shuffle).permutation(len(params))]
    pg_optim = make_optimizer(ospec, params)
    t_optim = torch_optimizer(pg_optim, twin, pairs, params=list(twin.parameters()))
    steps = []
    for x, target in batches:
        if reset:
            pg_model.model_reset()
        pg_optim.zero_grad()
        t_optim.zero_grad()
        r = run_batch(spec, pg_model, twin, pairs, x, target, reset=False)
        pg_optim.step(r.loss)
        t_optim.step()
        steps.append(Step(r.pg_loss, r.torch_loss,
                          {p.name: weight(pg_model, p.name).value.copy() for p in pairs},
                          torch_weights(twin, pairs), r))
    return steps
