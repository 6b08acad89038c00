"""reference.gradcheck / check_module / strategies / the pytest plugin, on users' own code.

Each wrong rule below must be caught, and caught for the right reason: the error names the
input (or weight), the index and both values; a kink is reported as a kink."""
import ast
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import pygrad
from pygrad import Dropout, Linear, Module, Tensor
from reference import GradientMismatch, KinkError, ModuleCheckError, ValueMismatch, check_module, gradcheck
from reference import strategies as rs

pytest_plugins = ["reference.usercheck.fixtures", "pytester"]

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))


@pygrad.function
def softplus(x):
    return np.logaddexp(0.0, x), lambda g: g * sigmoid(x)


@pygrad.function
def softplus_sign_slip(x):
    """The classic slip: sigmoid(-x) instead of sigmoid(x)."""
    return np.logaddexp(0.0, x), lambda g: g / (1 + np.exp(x))


@pygrad.function
def softplus_naive(x):
    """Right in float64; exp overflows in float32 above x = 88.7 (inf / inf)."""
    def backward(g):
        e = np.exp(x)
        return g * e / (1 + e)
    return np.logaddexp(0.0, x), backward


@pygrad.function
def relu6(x, top=6.0):
    return np.clip(x, 0.0, top), lambda g: g * ((x > 0) & (x < top))


@pygrad.function
def mul(a, b):
    return a * b, lambda g: (g * b, g * a)


@pygrad.function
def mul_b_slip(a, b):
    """Right for a; b's rule uses b instead of a."""
    return a * b, lambda g: (g * b, g * b)


@pygrad.function
def add_bias(x, b):
    """Reduces the bias' gradient itself -- with mean instead of sum: wrong only when b is broadcast."""
    def backward(g):
        return g, (g if g.shape == np.shape(b) else g.mean(axis=0))
    return x + b, backward


def smooth(shape, seed, lo=0.2, hi=2.0):
    """Values away from 0 (the kink of relu-like functions), either sign; the same for the
    same seed, whatever the order the tests run in."""
    r = np.random.default_rng([1515, seed])
    return r.uniform(lo, hi, size=shape) * r.choice([-1.0, 1.0], size=shape)


# ---------------------------------------------------------------------------- correct ops pass
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correct_custom_ops_pass(dtype):
    x = Tensor(smooth((3, 4), 1), dtype=dtype)
    assert gradcheck(softplus, x) is True
    assert gradcheck(softplus, x, torch_fn=F.softplus) is True
    assert gradcheck(relu6, Tensor(np.random.default_rng(100).uniform(0.5, 5.5, size=(5,)), dtype=dtype)) is True
    for sa, sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 2))]:
        a, b = Tensor(smooth(sa, 2), dtype=dtype), Tensor(smooth(sb, 3), dtype=dtype)
        assert gradcheck(mul, a, b, torch_fn=torch.mul) is True
        assert gradcheck(add_bias, a, Tensor(smooth(sa, 4), dtype=dtype)) is True


def test_compositions_of_pygrad_ops_and_layers_pass():
    np.random.seed(1)
    layer = Linear(4, 3)
    x = Tensor(smooth((2, 1, 4), 5))
    assert gradcheck(lambda t: softplus(layer(t)).softmax(), x)
    assert gradcheck(lambda a, b: (a @ b).tanh().sum(axis=0) / b.sum(), Tensor(smooth((3, 2), 6)),
                     Tensor(np.random.default_rng(101).uniform(0.5, 1.5, size=(2, 4))))
    # a large input: random direction only (no coordinate pass), nothing to report
    assert gradcheck(softplus, Tensor(smooth((30, 40), 7)))


def test_inputs_are_left_untouched_and_non_tensor_arguments_pass_through():
    x = Tensor(smooth((3,), 8))
    value = x.value.copy()
    assert gradcheck(lambda t, k: relu6(t, top=k) * 2.0, x, 4.0)
    assert np.array_equal(x.value, value) and not np.any(x.grad)
    c = Tensor(smooth((3,), 9), learnable=False)       # passed through, not checked
    assert gradcheck(lambda t, u: softplus_sign_slip(u) + t, x, c)


# ---------------------------------------------------------------------------- wrong rules are caught
def test_a_wrong_rule_is_caught_naming_input_index_and_both_values():
    x = Tensor([[0.5, -1.0, 2.0]], label="x")
    with pytest.raises(GradientMismatch) as info:
        gradcheck(softplus_sign_slip, x)
    e = info.value
    assert e.input.startswith("input 0 'x'") and e.index == (0, 0)
    w = np.random.default_rng([0, 0]).standard_normal((1, 3))   # the projection gradcheck documents
    assert e.got == pytest.approx(w[0, 0] * sigmoid(-0.5), rel=1e-12)
    assert e.want == pytest.approx(w[0, 0] * sigmoid(0.5), rel=1e-8)
    text = str(e)
    assert "input 0 'x'" in text and "index (0, 0)" in text and f"{e.got:.17g}" in text and f"{e.want:.17g}" in text


def test_a_wrong_value_is_caught_against_the_torch_twin():
    @pygrad.function
    def softplus_off(x):               # forward forgets the log1p's "1 +" for x > 1
        return np.where(x > 1, x, np.logaddexp(0.0, x)), lambda g: g * sigmoid(x)
    x = Tensor([0.5, 1.5, -0.5])
    with pytest.raises(ValueMismatch) as info:
        gradcheck(softplus_off, x, torch_fn=F.softplus)
    assert info.value.index == (1,) and info.value.got == 1.5
    assert info.value.want == pytest.approx(np.logaddexp(0, 1.5))
    # without a twin the forward disagrees with its own rule: finite differences catch it
    with pytest.raises(GradientMismatch, match=r"input 0 .* at index \(1,\)"):
        gradcheck(softplus_off, x)


def test_a_wrong_rule_in_one_operand_of_two_names_that_operand():
    a, b = Tensor(smooth((2, 3), 10)), Tensor(smooth((2, 3), 11), label="b")
    with pytest.raises(GradientMismatch) as info:
        gradcheck(mul_b_slip, a, b)
    assert info.value.input.startswith("input 1 'b'")
    with pytest.raises(GradientMismatch) as info:
        gradcheck(mul_b_slip, a, b, torch_fn=torch.mul)
    assert info.value.input.startswith("input 1 'b'") and "torch_fn" in str(info.value)


def test_a_wrong_rule_only_for_a_broadcast_operand():
    x = Tensor(smooth((4, 3), 12))
    assert gradcheck(add_bias, x, Tensor(smooth((4, 3), 13)))           # not broadcast: right
    with pytest.raises(GradientMismatch) as info:
        gradcheck(add_bias, x, Tensor(smooth((3,), 14)))               # broadcast over 4 rows: mean != sum
    e = info.value
    assert e.input.startswith("input 1") and "shape (3,)" in e.input
    assert e.got == pytest.approx(e.want / 4, rel=1e-6)


def test_a_wrong_rule_only_in_float32():
    values = [100.0, -3.0, 1.0]
    assert gradcheck(softplus_naive, Tensor(values))                 # float64: exp(100) is finite
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(GradientMismatch) as info:
        gradcheck(softplus_naive, Tensor(values, dtype=np.float32))
    e = info.value
    assert "float32" in e.input and e.index == (0,) and np.isnan(e.got) and np.isfinite(e.want)


def softplus_float32_branch(factor):
    """softplus whose rule has a float32-only code path with a constant off by `factor`."""
    @pygrad.function
    def op(x):
        def backward(g):
            return g * sigmoid(x) * (factor if x.dtype == np.float32 else 1.0)
        return np.logaddexp(0.0, x), backward
    return op


# float32 is held to its resolution, which grows with the number of terms of L (1200 here)
@pytest.mark.parametrize("shape, factor", [((3,), 1.02), ((4, 5), 1.02), ((40, 30), 10.0)])
def test_a_wrong_constant_only_in_float32(shape, factor):
    values, op = smooth(shape, 15), softplus_float32_branch(factor)
    assert gradcheck(op, Tensor(values))
    with pytest.raises(GradientMismatch) as info:
        gradcheck(op, Tensor(values, dtype=np.float32))
    e = info.value
    assert "float32" in e.input and e.index is not None and e.got == pytest.approx(factor * e.want, rel=1e-3)


def test_a_rule_wrong_in_every_precision_is_caught_for_a_large_float32_input_at_float64_accuracy():
    @pygrad.function
    def softplus_approx(x):
        return np.logaddexp(0.0, x), lambda g: g * sigmoid(x) * (1 + 1e-4)
    with pytest.raises(GradientMismatch, match=r"input 0 \(float32, shape \(40, 30\)\) at index .* is wrong "
                       r"when the same code runs in float64"):
        gradcheck(softplus_approx, Tensor(smooth((40, 30), 16), dtype=np.float32))


def test_a_small_relative_error_is_caught_in_float64():
    @pygrad.function
    def softplus_approx(x):
        return np.logaddexp(0.0, x), lambda g: g * sigmoid(x) * (1 + 1e-6)
    with pytest.raises(GradientMismatch):
        gradcheck(softplus_approx, Tensor(smooth((3,), 17)))


def test_a_large_input_is_bisected_to_the_one_wrong_index():
    @pygrad.function
    def one_bad_entry(x):
        def backward(g):
            d = sigmoid(x).copy()
            d[7, 11] *= 1.5
            return g * d
        return np.logaddexp(0.0, x), backward
    with pytest.raises(GradientMismatch) as info:
        gradcheck(one_bad_entry, Tensor(smooth((20, 30), 18)))
    assert info.value.index == (7, 11)


# ---------------------------------------------------------------------------- kinks
@pytest.mark.parametrize("fn, values, index", [
    (lambda t: t.relu(), [0.5, 0.0, -0.3], (1,)),           # exactly at relu's kink
    (lambda t: t.relu(), [0.5, -1e-12, -0.3], (1,)),        # within the smallest stencil of it
    (relu6, [[1.0, 2.0], [6.0, 3.0]], (1, 0)),              # a custom op's upper kink
    (lambda t: (t * t).sum() ** 0.5, [0.0, 0.0], None),     # |x| at 0: kink in every direction
])
def test_an_input_at_a_kink_is_reported_as_a_kink_not_a_mismatch(fn, values, index):
    with pytest.raises(KinkError) as info:
        gradcheck(fn, Tensor(values))
    assert not isinstance(info.value, GradientMismatch)
    assert "kink" in str(info.value)
    if index is not None:
        assert info.value.index == index and f"index {index}" in str(info.value)


def test_a_kink_farther_than_the_shrunk_stencil_is_no_obstacle():
    assert gradcheck(lambda t: t.relu(), Tensor([0.5, 1e-4, -1e-4, -0.3]))


def test_at_a_kink_the_torch_twin_alone_can_judge():
    x = Tensor([0.5, 0.0, -0.3])
    assert gradcheck(lambda t: t.relu(), x, torch_fn=torch.relu, fd=False)

    @pygrad.function
    def relu_half(t):                   # relu'(0) = 1/2: torch says 0
        return np.maximum(t, 0.0), lambda g: g * np.where(t == 0, 0.5, t > 0)
    with pytest.raises(GradientMismatch) as info:
        gradcheck(relu_half, x, torch_fn=torch.relu, fd=False)
    assert info.value.index == (1,)


# ---------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, error, match", [
    (lambda: gradcheck(3, Tensor([1.0])), TypeError, r"gradcheck: fn must be callable"),
    (lambda: gradcheck(softplus, np.ones(3)), TypeError, r"gradcheck: no input to check"),
    (lambda: gradcheck(lambda t: t.value, Tensor([1.0])), TypeError, r"gradcheck: fn must return a pygrad Tensor"),
    (lambda: gradcheck(softplus, Tensor([1.0])), None, None),
    (lambda: gradcheck(softplus, Tensor([1.0]), fd=False), ValueError, r"fd=False leaves nothing"),
    (lambda: gradcheck(softplus, Tensor([1.0, 2.0]), torch_fn=lambda t: t.sum()), ValueError,
     r"torch_fn returns shape \(\), fn returns \(2,\)"),
    (lambda: gradcheck(softplus, Tensor([1.0, np.inf])), ValueError, r"input 0 .* is not finite at index \(1,\)"),
    (lambda: gradcheck(lambda t: Dropout(0.5)(t), Tensor(np.ones(8))), ValueError, r"not deterministic"),
    (lambda: gradcheck(lambda t: Tensor(t.value, dtype=np.float32) * 2.0, Tensor([1.0, 2.0])), TypeError,
     r"fn returns float32 for float64 copies"),
])
def test_bad_arguments_raise_naming_gradcheck(call, error, match):
    if error is None:
        assert call() is True
        return
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------- check_module
class Net(Module):
    def __init__(self, act=softplus, dtype=np.float64):
        self.dense1, self.dense2 = Linear(3, 5, dtype=dtype), Linear(5, 2, dtype=dtype)
        self.act = act
        super().__init__(x=Tensor(np.zeros((1, 1, 3)), dtype=dtype, leaf=True))

    def forward(self, x):
        return self.dense2(self.act(self.dense1(x)))


class BatchNormish(Net):
    """Normalises with the batch's mean: each sample's output depends on the others."""

    def forward(self, x):
        h = self.dense1(x)
        return self.dense2(softplus(h - h.mean(axis=0)))


class SharedWeight(Module):
    """The weight is a class attribute: the batched copy shares it with the original."""
    W = Tensor(np.ones((1, 3, 2)), label="W")

    def __init__(self):
        super().__init__(x=Tensor(np.zeros((1, 1, 3)), leaf=True))

    def forward(self, x):
        return x @ SharedWeight.W


class KeepsItsCopy(Net):
    def model_reset(self):
        pass


class TwoHeads(Net):
    def forward(self, x):
        h = self.act(self.dense1(x))
        return self.dense2(h), h.sum(axis=-1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_correct_module_passes(dtype, batch):
    np.random.seed(batch)
    model = Net(dtype=dtype)
    x = Tensor(np.random.default_rng(102).normal(size=(batch, 1, 3)), dtype=dtype, leaf=True)
    y = Tensor(np.random.default_rng(103).normal(size=(batch, 1, 2)), dtype=dtype, leaf=True)
    assert check_module(model, x=x) is True
    assert check_module(model, x=x, loss=lambda out: ((out - y) ** 2).mean(axis=None, keepdims=False)) is True
    assert check_module(TwoHeads(), x=Tensor(np.random.default_rng(104).normal(size=(batch, 2, 3)), leaf=True)) is True


def test_check_module_leaves_the_model_as_it_was():
    np.random.seed(4)
    model = Net()
    x = Tensor(np.random.default_rng(105).normal(size=(2, 1, 3)), leaf=True)
    model(x=x).sum().backward()
    copy_before = model.copy
    state = [(w.value.copy(), w.grad.copy()) for w in model.weights]
    assert check_module(model, x=x)
    assert model.copy is copy_before
    assert all(np.array_equal(w.value, v) and np.array_equal(w.grad, g) for w, (v, g) in zip(model.weights, state))


def test_a_batch_mixing_module_fails():
    np.random.seed(5)
    with pytest.raises(ModuleCheckError, match=r"sample 0 called alone .* row 0 of the batch of 3.*mean\(axis=0\)"):
        check_module(BatchNormish(), x=Tensor(np.random.default_rng(106).normal(size=(3, 1, 3)), leaf=True))


def test_a_batch_mixing_module_fails_even_from_a_batch_of_one():
    np.random.seed(5)
    with pytest.raises(ModuleCheckError, match=r"a call with a batch of 2 .*new sample.* gives a row 0 different"):
        check_module(BatchNormish(), x=Tensor(np.random.default_rng(107).normal(size=(1, 1, 3)), leaf=True))


def test_a_weight_shared_with_the_batched_copy_fails():
    with pytest.raises(ModuleCheckError, match=r"changed the original weight .*'s gradient"):
        check_module(SharedWeight(), x=Tensor(np.random.default_rng(108).normal(size=(2, 1, 3)), leaf=True))


def test_a_model_reset_that_keeps_the_copy_fails():
    np.random.seed(6)
    with pytest.raises(ModuleCheckError, match=r"model_reset\(\) must drop the batched copy"):
        check_module(KeepsItsCopy(), x=Tensor(np.random.default_rng(109).normal(size=(2, 1, 3)), leaf=True))


def test_a_wrong_rule_inside_a_module_names_the_weight():
    np.random.seed(7)
    with pytest.raises(GradientMismatch) as info:
        check_module(Net(act=softplus_sign_slip),
                     x=Tensor(np.random.default_rng(110).normal(size=(2, 1, 3)), leaf=True))
    assert info.value.input.startswith("weight dense1.") and info.value.index is not None
    assert "check_module:" in str(info.value)


@pytest.mark.parametrize("call, error, match", [
    (lambda m: check_module(object(), x=Tensor(np.ones((1, 3)))), TypeError, r"check_module: model must be"),
    (lambda m: check_module(m), TypeError, r"check_module: give the model's example inputs"),
    (lambda m: check_module(m, x=Tensor(np.ones((2, 1, 3))), y=Tensor(np.ones((3, 1)))), ValueError,
     r"same first \(batch\) axis, got shapes \{'x': \(2, 1, 3\), 'y': \(3, 1\)\}"),
    (lambda m: check_module(m, x=Tensor(np.ones((2, 1, 3))), loss=lambda o: o), TypeError,
     r"loss must return a single-element Tensor, got Tensor of shape \(2, 1, 2\)"),
])
def test_check_module_bad_arguments(call, error, match):
    np.random.seed(8)
    with pytest.raises(error, match=match):
        call(Net())


def test_a_module_with_dropout_on_is_refused_as_random():
    class Dropping(Net):
        def forward(self, x):
            return Dropout(0.5)(self.dense1(x))
    np.random.seed(9)
    with pytest.raises(ValueError, match="Dropout must be off"):
        check_module(Dropping(), x=Tensor(np.random.default_rng(111).normal(size=(2, 1, 3)), leaf=True))


# ---------------------------------------------------------------------------- strategies and the fixture
@settings(max_examples=15, deadline=None)
@given(x=rs.tensors(rs.shapes(max_dims=2), dtype=None, away_from=(0.0, 6.0), lo=-8, hi=8))
def test_relu6_property(gradcheck, x):
    assert gradcheck(relu6, x)


@settings(max_examples=15, deadline=None)
@given(ab=rs.broadcastable(2, dtype=None))
def test_mul_property_over_broadcastable_shapes(gradcheck, ab):
    assert gradcheck(mul, *ab, torch_fn=torch.mul)


@settings(max_examples=5, deadline=None)
@given(x=rs.batches((1, 3), max_batch=3), seed=st.integers(0, 10))
def test_module_property(check_module, x, seed):
    np.random.seed(seed)
    assert check_module(Net(), x=x)


@settings(max_examples=30, deadline=None)
@given(a=rs.arrays((5,), domain="real", away_from=(1.5,), margin=0.1), z=rs.arrays((5,)),
       p=rs.arrays((3,), domain="pos"), u=rs.arrays((3,), dtype="float32", domain="unit"))
def test_strategies_keep_their_domains(a, z, p, u):
    assert np.all(np.abs(a - 1.5) >= 0.1) and np.all(np.abs(a) <= rs.R)
    assert np.all(np.abs(z) >= rs.MARGIN)                # by default away from 0, the commonest kink
    assert np.all(p >= rs.MARGIN) and u.dtype == np.float32 and np.all((u > 0) & (u < 1))


def test_the_fixture_rejects_kinks_inside_hypothesis_and_raises_outside(gradcheck):
    seen = {"kink": 0, "pass": 0}

    @settings(max_examples=20, deadline=None, database=None)
    @given(st.sampled_from([0.0, 0.5]))
    def prop(v):
        seen["kink" if v == 0 else "pass"] += 1
        assert gradcheck(lambda t: t.relu(), Tensor([v]))
    prop()
    assert seen["kink"] and seen["pass"]        # the kink examples were drawn and rejected, not failed
    with pytest.raises(KinkError):
        gradcheck(lambda t: t.relu(), Tensor([0.0]))


# ---------------------------------------------------------------------------- plugin, packaging, docs, example
def test_the_plugin_is_a_pytest_entry_point_and_imports_no_torch():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {
        "reference.usercheck.fixtures": "reference.usercheck.fixtures"}
    code = ("import sys, reference, reference.usercheck.fixtures; from reference import strategies; "
            "assert not {'torch', 'pygrad'} & set(sys.modules), sorted({'torch', 'pygrad'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=_env())


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    env.pop("HYPOTHESIS_PROFILE", None)
    env.update(extra)
    return env


USER_TESTS = '''
import numpy as np
import pygrad
from hypothesis import given, settings
from reference import strategies as rs

@pygrad.function
def softplus(x):
    return np.logaddexp(0.0, x), lambda g: g * 0.5 * (1 + np.tanh(x / 2))

@pygrad.function
def softplus_wrong(x):
    return np.logaddexp(0.0, x), lambda g: g / (1 + np.exp(x))

@given(rs.tensors((2, 3)))
def test_softplus(gradcheck, x):
    assert gradcheck(softplus, x)

def test_softplus_wrong(gradcheck):
    assert gradcheck(softplus_wrong, pygrad.Tensor(np.ones((2, 3))))

def test_profile():
    print("PROFILE", settings.default.max_examples)
'''


@pytest.mark.parametrize("profile, examples", [(None, 100), ("dev", 8)])
def test_a_users_test_file_with_the_plugin(pytester, profile, examples):
    pytester.makepyfile(test_user=USER_TESTS)
    env = _env(**({"HYPOTHESIS_PROFILE": profile} if profile else {}))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "reference.usercheck.fixtures", "-q", "-s",
                           "-p", "no:cacheprovider", "test_user.py"], cwd=pytester.path, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert "1 failed, 2 passed" in out, out + proc.stderr
    assert re.search(r"GradientMismatch: gradcheck: the gradient of input 0 \(float64, shape \(2, 3\)\) at index", out)
    assert f"PROFILE {examples}" in out      # the plugin loads a profile only when asked to


def test_the_plugin_imports_nothing_heavy_in_a_project_that_does_not_use_it(pytester):
    """Installed, the plugin is active in every pytest run of the environment: without
    HYPOTHESIS_PROFILE it must not cost a project hypothesis', torch's or pygrad's import."""
    pytester.makepyfile(test_other="""
import sys

def test_nothing_heavy_imported():
    assert not {"hypothesis", "torch", "pygrad"} & set(sys.modules), sorted(sys.modules)
""")
    env = {**_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("HYPOTHESIS_PROFILE", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "reference.usercheck.fixtures", "-q",
                           "-p", "no:cacheprovider", "test_other.py"], cwd=pytester.path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "1 passed" in proc.stdout, proc.stdout + proc.stderr


def test_the_example_runs_and_prints_the_caught_rule():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_op.py")], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "gradcheck(softplus, x): True" in proc.stdout
    assert "check_module(model, x=x): True" in proc.stdout
    assert "GradientMismatch: gradcheck: the gradient of input 0 'x'" in proc.stdout


def test_the_readme_section_and_its_docs_page_run():
    """The README's Check-your-own-code snippets, then the docs page's that continue them, run as
    one program, and the message the README shows for the wrong rule is what gradcheck prints."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Check your own code"):readme.index("## Benchmarks")]
    page = (ROOT / "docs" / "check-your-own-code.md").read_text()
    blocks = [b for text in (section, page) for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)]
    assert len(blocks) >= 4
    for block in blocks:
        ast.parse(block)
    proc = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [shown] = re.findall(r"```text\n(.*?)```", section, flags=re.S)
    shown, printed = shown.splitlines(), proc.stdout.splitlines()
    assert printed[0] == shown[0], proc.stdout
    # pygrad's and the finite-difference value, to rounding (NumPy's exp may differ in the last
    # bits between CPUs)
    def value(line):
        return float(re.search(r"-?\d+\.\d+(?:e-?\d+)?", line).group())
    assert np.allclose([value(v) for v in printed[1:3]], [value(v) for v in shown[1:3]], rtol=1e-9, atol=0), \
        proc.stdout
