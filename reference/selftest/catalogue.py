"""The mutant catalogue: deliberately wrong pygrad, one source patch each.

Every mutant is a bug someone could plausibly write, modelled on bugs reported in real
autodiff libraries; most leave forward values unchanged, so only a gradient, structure or
invariant check can see them -- often only under a condition (a broadcast or 1-element
operand, a tuple axis, a non-last softmax axis, outC > 1, stride > 1, repeated indices, an
exact zero, mixed dtypes, an intermediate with several consumers, a second backward pass,
a later optimizer step, several parameters, a Module call, CCELoss's mask). Each names the
file it patches (under `pygrad/`), the report row its finding should be blamed on, the check
kind expected to catch it, the exact original snippet and its replacement, and what breaks.
"""
from __future__ import annotations

from reference.selftest.mutants import Mutant


def _m(name, file, row, catches, original, replacement, description):
    return Mutant(name, "pygrad/" + file, original, replacement, catches, description, row)


MUTANTS = (
    _m('unbroadcast_size1_not_summed', 'ops/_core.py', 'add', 'grad',
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
       'unbroadcast sums the added leading dims but not the size-1 dims that were stretched: it keeps '
       'the first slice instead. Shows for an operand with a size-1 dim broadcast against a larger one '
       '(a (3, 1) + (3, 4)), e.g. a Linear bias under a Module with n > 1 rows.'),
    _m('unbroadcast_mean_not_sum', 'ops/_core.py', 'add', 'grad',
       """        if axes:
            g = g.sum(axis=axes)
""",
       """        if axes:
            g = g.mean(axis=axes)
""",
       "broadcast dims are averaged instead of summed: every broadcast operand's gradient is divided by "
       'the broadcast factor. Shows only for broadcast operands.'),
    _m('sub_second_operand_sign', 'ops/arithmetic.py', 'sub', 'grad',
       '            b._add_grad(unbroadcast(-g, bv))\n',
       '            b._add_grad(unbroadcast(g, bv))\n',
       'a - b sends +g to b instead of -g. Shows for a Tensor on the right of -, and for the reflected '
       'form (3 - x).'),
    _m('mul_copy_paste', 'ops/arithmetic.py', 'mul', 'grad',
       '            b._add_grad(unbroadcast(g * av, bv))\n',
       '            b._add_grad(unbroadcast(g * bv, bv))\n',
       'a * b sends g * b (its own value) to b instead of g * a. Invisible when a == b (x * x).'),
    _m('div_second_operand', 'ops/arithmetic.py', 'div', 'grad',
       '            b._add_grad(unbroadcast(-g * av / (bv * bv), bv))\n',
       '            b._add_grad(unbroadcast(-g * av / bv, bv))\n',
       'd(a/b)/db = -a/b instead of -a/b**2. Shows for a Tensor denominator with |b| != 1 (and for the '
       'reflected 1 / x).'),
    _m('neg_sign', 'ops/arithmetic.py', 'neg', 'grad',
       '        a._add_grad(-g)\n',
       '        a._add_grad(g)\n',
       'unary minus passes the gradient through unchanged.'),
    _m('pow_tensor_exponent_scale', 'ops/arithmetic.py', 'pow_tensor', 'grad',
       '                da = np.where(bw == 0, 0.0, bw * np.power(aw, bw - 1))\n',
       '                da = np.where(bw == 0, 0.0, np.power(aw, bw - 1))\n',
       'a ** b with a Tensor (or array) exponent forgets the factor b in d/da; the scalar-exponent path '
       'is right, so this shows only when the exponent is a Tensor with b != 1.'),
    _m('pow_square_fast_path', 'ops/arithmetic.py', 'pow', 'grad',
       '                    a._add_grad(unbroadcast(g * (2.0 * av), av))\n',
       '                    a._add_grad(unbroadcast(g * av, av))\n',
       'the special case x ** 2 drops the factor 2; every other scalar exponent is right. Shows only for '
       'the exponent exactly 2 (the squared-error losses use it).'),
    _m('rpow_log_of_exponent', 'ops/arithmetic.py', 'pow_tensor', 'grad',
       '                db = np.where((aw == 0) & (bw >= 0), 0.0, value * np.log(aw))\n',
       '                db = np.where((aw == 0) & (bw >= 0), 0.0, value * np.log(bw))\n',
       'd(a ** b)/db = a**b log(b) instead of log(a): the operands mixed up in the reflected form. Shows '
       'for a Tensor exponent (2 ** x, x ** y).'),
    _m('matmul_shared_b_transposed', 'ops/linalg.py', 'matmul', 'grad',
       '                gb = (_rows(a2).T @ _rows(g)).reshape(b2.shape)\n',
       '                gb = (_rows(g).T @ _rows(a2)).reshape(b2.shape)\n',
       "the gradient of a right operand shared by the batch (a Linear's W) is computed transposed, then "
       "reshaped into b's shape (sizes agree, so nothing raises). Shows when b is 2-D or has size-1 "
       'batch dims and a has at least as many dims.'),
    _m('transpose_perm_not_inverted', 'ops/shape.py', 'transpose', 'grad',
       '        x._add_grad(g.transpose(inverse))\n',
       '        x._add_grad(g.transpose(perm))\n',
       "transpose's backward applies the permutation again instead of its inverse. Shows only for "
       'permutations that are not their own inverse (a 3-cycle on 3+ axes).'),
    _m('T_backward_reshape', 'ops/shape.py', 'T', 'grad',
       '        x._add_grad(g.swapaxes(-1, -2))\n',
       '        x._add_grad(g.reshape(xv.shape))\n',
       ".T's backward reshapes the gradient into x's shape instead of swapping the axes back. Shows for "
       'non-square last two dims with 2+ entries each.'),
    _m('getitem_add_at_lost', 'ops/shape.py', 'getitem', 'grad',
       '            np.add.at(gx, idx, g)\n',
       '            gx[idx] = g\n',
       'advanced indexing scatters its gradient by assignment: repeated indices keep one contribution '
       'instead of their sum. Shows only for advanced indices with repeats.'),
    _m('mask_idcs_grad_not_zeroed', 'ops/shape.py', 'mask_idcs', 'grad',
       '        gx[idcs] = 0\n',
       '',
       'mask_idcs lets the gradient through at the written positions (torch: 0). Shows for Dropout in '
       'training mode and any mask_idcs call with a nonzero cotangent there.'),
    _m('mean_tuple_axis_count', 'ops/reduction.py', 'mean', 'grad',
       """    axes = normalize_axes(axis, xv.ndim, "mean", xv.shape)
    count = math.prod(xv.shape[a] for a in axes)
""",
       """    axes = normalize_axes(axis, xv.ndim, "mean", xv.shape)
    count = xv.shape[axes[-1]] if axes else 1
""",
       "mean's backward divides by the size of the last reduced axis only: right for one axis, wrong for "
       'a tuple of axes or axis=None over 2+ non-trivial dims.'),
    _m('std_missing_one_over_n', 'ops/reduction.py', 'std', 'grad',
       '        scale = 2.0 / count if count else 0.0',
       '        scale = 2.0 if count else 0.0',
       "std's backward forgets the 1/N of the variance: gradient N times too large. Shows for any "
       'reduced size N > 1.'),
    _m('relu_derivative_at_zero', 'ops/elementwise.py', 'relu', 'grad',
       '        x._add_grad(g * (xv > 0))\n',
       '        x._add_grad(g * (xv >= 0))\n',
       "relu'(0) = 1 (torch: 0). Shows only at exact zeros, where finite differences cannot judge: the "
       'torch comparison must generate exact zeros on purpose.'),
    _m('sigmoid_derivative_y', 'ops/elementwise.py', 'sigmoid', 'grad',
       '        x._add_grad(g * (y * (1 - y)))\n',
       '        x._add_grad(g * y)\n',
       "sigmoid's derivative taken as y instead of y (1 - y)."),
    _m('tanh_derivative', 'ops/elementwise.py', 'tanh', 'grad',
       '        x._add_grad(g * (1 - y * y))\n',
       '        x._add_grad(g * (1 - y))\n',
       "tanh's derivative taken as 1 - y instead of 1 - y**2; right at y = 0 and y = 1 only."),
    _m('softmax_jacobian_last_axis_only', 'ops/nn.py', 'softmax', 'grad',
       '        gx = g - np.expand_dims(np.vecdot(g, y, axis=ax), ax)\n',
       '        gx = g - np.expand_dims(np.vecdot(g, y, axis=-1), -1)\n',
       "softmax's backward sums the `y * g` term over the last axis whatever the softmax axis: right for "
       'axis=-1, wrong on any other axis (the Jacobian term of the wrong rows).'),
    _m('log_softmax_missing_sum', 'ops/nn.py', 'softmax_log', 'grad',
       '        gx *= g.sum(axis=ax, keepdims=True)\n',
       '        gx *= g\n',
       "log-softmax's backward uses g - softmax * g (a diagonal Jacobian) instead of g - softmax * "
       'sum(g). Shows for any axis longer than 1 (CCELoss, too).'),
    _m('conv_input_grad_averaged_over_outC', 'ops/nn.py', 'conv2D', 'grad',
       '            gx = lay.from_flat(lay.scatter(g_cols, dtype))\n',
       '            gx = lay.from_flat(lay.scatter(g_cols, dtype)) / out_c\n',
       "conv2D's input gradient is averaged over the output channels instead of summed. Shows only for "
       'outC > 1.'),
    _m('conv_kernel_grad_flipped', 'ops/nn.py', 'conv2D', 'grad',
       '                gk = (cols @ g_flat.T).T\n',
       '                gk = (cols @ g_flat.T).T.reshape(kv.shape)[..., ::-1, ::-1]\n',
       "the shared kernel's gradient comes out flipped (each tap gets the gradient of the opposite tap, "
       'as if the forward were a convolution). Shows for kH > 1 or kW > 1 with a kernel of leading dim 1 '
       '(every Conv2D layer).'),
    _m('bce_grad_fused_sigmoid', 'losses.py', 'loss:BCELoss', 'grad',
       '        grad_pred = (pw - tv) / np.maximum((1 - pw) * pw, _BCE_EPS)\n',
       '        grad_pred = pw - tv\n',
       "BCELoss's gradient w.r.t. pred is the fused sigmoid+BCE one (pred - target), i.e. with respect "
       'to the logits; the value is unchanged. Shows for any BCELoss.'),
    _m('linear_repeats_W_over_batch', 'basics.py', 'layer:Linear', 'invariant',
       '        out = x @ self.W\n',
       """        if self.W.shape[0] != x.shape[0]:
            self.W.value = np.repeat(self.W.value[:1], x.shape[0], axis=0)
        out = x @ self.W
""",
       "Linear resizes W to the batch (as the original pygrad did): same outputs, but W's value and "
       'gradient become (batch, i, o) and the optimizer can no longer update the model. Shows for a '
       'batch > 1.'),
    _m('fanout_overwrite', 'tensor.py', 'engine', 'grad',
       '        self._grad = g if self._grad is None else self._grad + g\n',
       '        self._grad = g\n',
       '_add_grad overwrites instead of adding: a tensor used twice (x * x, a reused intermediate, a '
       'skip connection) keeps only the last contribution.'),
    _m('reset_grad_root_accumulated', 'tensor.py', 'engine', 'invariant',
       '        self._grad = np.broadcast_to(np.ones((), dtype=self._value.dtype), self._value.shape)\n',
       '        self._add_grad(np.broadcast_to(np.ones((), dtype=self._value.dtype), self._value.shape))\n',
       "backward adds ones to the root's gradient instead of setting it: no effect after the reset, but "
       'backward(reset_grad=False) then seeds 2 instead of 1.'),
    _m('reset_grad_intermediates_kept', 'tensor.py', 'engine', 'invariant',
       """            for t in topo:
                t._grad = None
""",
       """            for t in topo:
                if not t.leaf:
                    t._grad = None
""",
       'backward(reset_grad=True) zeroes only the weights: op outputs and inputs marked leaf=True keep '
       'their gradients, so a second backward() accumulates into them (and through them). A single '
       'backward on a fresh graph is right.'),
    _m('create_graph_right_to_left', 'tensor.py', 'engine', 'structure',
       '                    stack.append((child, iter(child._prev)))\n',
       '                    stack.append((child, iter(child._prev[::-1])))\n',
       'the graph walk visits the operands of every non-root node right to left: still a valid '
       'topological order (gradients are right) but not the documented topo/weights order. Shows for a '
       'binary op below the root whose operands are both learnable.'),
    _m('walk_recursive', 'tensor.py', 'engine', 'error',
       """        seen = {self}
        stack = [(self, iter(self._prev))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child in seen:
                    continue
                seen.add(child)
                if child.learnable:
                    stack.append((child, iter(child._prev)))
                    break
                stops.append(child)
            else:
                stack.pop()
                topo.append(node)
        return topo, stops
""",
       """        seen = {self}

        def visit(node):
            for child in node._prev:
                if child in seen:
                    continue
                seen.add(child)
                if child.learnable:
                    visit(child)
                else:
                    stops.append(child)
            topo.append(node)
        visit(self)
        return topo, stops
""",
       'the graph walk is written recursively (the same order): right on every small graph, but '
       'backward on a deep graph (a chain of 10 000 ops) raises RecursionError.'),
    _m('topo_getter_misspelt', 'tensor.py', 'engine', 'error',
       '        return self._with_self(self._topo)\n',
       '        return self._with_self(self.topo_)\n',
       'the topo property reads a misspelt attribute: every read of tensor.topo raises '
       'AttributeError, whatever the graph (an exception with no conditions).'),
    _m('module_call_leaks_into_originals', 'module.py', 'module', 'invariant',
       '            return self.copy.forward(**inputs)\n',
       '            return self.forward(**inputs)\n',
       'the Module call runs forward on the model itself instead of its batched copy: same outputs and '
       "training still works, but backward fills the original weights' gradients."),
    _m('optim_match_by_position', 'optims.py', 'optim:SGD', 'invariant',
       """        for t in loss.weights:
            i = self._index.get(t.uid)
""",
       """        for k, t in enumerate(loss.weights):
            i = k if k < len(self.model_parameters) else None
""",
       "the optimizer pairs its parameters with the loss's weights by list position instead of uid: "
       'wrong updates (or a shape error) when the parameters are not given in graph order or a target '
       'was not marked leaf=True.'),
    _m('momentum_first_step_dampened', 'optims.py', 'optim:SGD_Momentum', 'invariant',
       '        buf = grad.copy() if buf is None else self.beta * buf + grad\n',
       '        buf = (1 - self.beta) * grad if buf is None else self.beta * buf + grad\n',
       'SGD_Momentum starts its buffer at (1 - beta) g instead of g (torch: g). The first step is too '
       'small and every later step inherits it.'),
    _m('rmsprop_eps_inside_sqrt', 'optims.py', 'optim:RMSProp', 'invariant',
       '        return value - self.lr * grad / (np.sqrt(v) + self.eps)\n',
       '        return value - self.lr * grad / np.sqrt(v + self.eps)\n',
       'RMSProp adds eps under the square root (Keras-style) instead of after it (torch). Visible when '
       'eps is not negligible against sqrt(v).'),
    _m('adam_missing_bias_correction2', 'optims.py', 'optim:Adam', 'invariant',
       '        denom = np.sqrt(v) / np.sqrt(1 - self.beta2 ** t) + self.eps\n',
       '        denom = np.sqrt(v) + self.eps\n',
       'Adam forgets the second-moment bias correction 1/sqrt(1 - beta2**t): every step is scaled wrong, '
       'most at the first steps.'),
    # ------------------------------------------------------------------ classes the old gate missed unfocused
    _m('one_element_operand_gets_no_gradient', 'ops/arithmetic.py', 'add', 'grad',
       '    a_needs, b_needs = isinstance(a, Tensor), isinstance(b, Tensor)\n',
       '    a_needs, b_needs = isinstance(a, Tensor), isinstance(b, Tensor) and np.size(b._value) > 1\n',
       'a 1-element Tensor on the right of + - * / ** is treated like a Python scalar: it gets no '
       'gradient. Shows only for a 1-element right operand broadcast against a larger one.'),
    _m('pow_log_in_base_dtype', 'ops/arithmetic.py', 'pow_tensor', 'grad',
       '        aw, bw = np.asarray(av, dtype=value.dtype), np.asarray(bv, dtype=value.dtype)\n',
       '        aw, bw = av, bv\n',
       "a ** b computes its derivatives in the operands' own dtypes: a float32 base under a float64 "
       'exponent gives the exponent a float64 gradient of float32 accuracy. Shows only for operands '
       'of different float dtypes.'),
    _m('sum_keepdims_dims_appended', 'ops/reduction.py', 'sum', 'grad',
       '        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))\n',
       '        g = g.reshape(g.shape + (1,) * len(axes))\n',
       'sum and mean with keepdims=False restore the reduced axes at the end instead of in their '
       'places: right for trailing axes, silently transposed on square shapes and an error otherwise.'),
    _m('walk_revisits_shared_intermediates', 'tensor.py', 'engine', 'grad',
       '                if child in seen:\n',
       '                if child in seen and child._backward is None:\n',
       'the graph walk re-enters an op output it has seen: an intermediate that fans out into several '
       'consumers is listed (and back-propagated) once per consumer, so what lies below it gets its '
       'gradient several times. Shows only for a shared intermediate.'),
    _m('matmul_shared_left_first_batch_only', 'ops/linalg.py', 'matmul', 'grad',
       '            a._add_grad(unbroadcast(ga, a2).reshape(av.shape))\n',
       '            a._add_grad((ga.reshape((-1,) + a2.shape)[0] if ga.ndim > a2.ndim else '
       'unbroadcast(ga, a2)).reshape(av.shape))\n',
       "the left operand's gradient under a batched right operand takes the first batch entry "
       'instead of the sum over the batch. Shows only for a batched right, shared left operand.'),
    _m('matmul_1d_left_untransposed', 'ops/linalg.py', 'matmul', 'grad',
       '            ga = _mm(g, b2.swapaxes(-1, -2))\n',
       '            ga = _mm(g, b2.swapaxes(-1, -2) if av.ndim > 1 else b2)\n',
       "a 1-D left operand's gradient multiplies by b instead of b's transpose (the vector path of "
       'a matmul rule written separately): silently wrong for a square b, an error otherwise. Shows '
       'only for a 1-D left operand.'),
    _m('conv_input_grad_ignores_stride', 'ops/nn.py', 'conv2D', 'grad',
       '                                        strides=(flat.strides[0], self.s * row, self.s * b * item, item))\n',
       '                                        strides=(flat.strides[0], row, b * item, item))\n',
       "conv2D's input gradient scatters every tap's columns as if the stride were 1. Shows only "
       'for stride > 1.'),
    _m('cce_mask_divides_by_all_rows', 'losses.py', 'loss:CCELoss', 'value',
       '            rows = int(keep.sum())\n',
       '',
       'CCELoss(mask=True) ignores the padding rows but still divides by every row. Shows only with '
       'mask=True and ignored rows.'),
    _m('cce_mask_drops_first_end_row', 'losses.py', 'loss:CCELoss', 'value',
       '            keep = ~is_end | (is_end & (np.cumsum(is_end, axis=1) == 1))\n',
       '            keep = ~is_end\n',
       "CCELoss(mask=True) ignores every class-0 row, also each sequence's first (its end token, "
       'which counts). Shows only with mask=True.'),
    _m('bce_grad_unclamped_at_ends', 'losses.py', 'loss:BCELoss', 'grad',
       '        grad_pred = (pw - tv) / np.maximum((1 - pw) * pw, _BCE_EPS)\n',
       '        grad_pred = (pw - tv) / ((1 - pw) * pw)\n',
       "BCELoss's gradient drops torch's floor on p (1 - p): nan (0 / 0) where a prediction is "
       'exactly 0 or 1. Shows only at predictions of exactly 0 or 1.'),
    _m('linear_bias_detached', 'basics.py', 'layer:Linear', 'grad',
       '        return out + self.B if self.B is not None else out\n',
       '        return out + self.B.detach() if self.B is not None else out\n',
       "Linear adds a detached copy of its bias: the same outputs, but B gets no gradient (and is not "
       'among model.weights). Shows for any Linear with a bias.'),
    _m('addnorm_variance_detached', 'basics.py', 'layer:AddNorm', 'grad',
       '        var = (centred * centred).mean(axis=-1, keepdims=True)\n',
       '        var = Tensor((centred * centred).value.mean(axis=-1, keepdims=True), leaf=True)\n',
       "AddNorm computes the variance on values, outside the graph: the same outputs, but the "
       "gradient misses the variance's path. Shows for any AddNorm."),
    _m('softmax_layer_ignores_axis', 'basics.py', 'layer:Softmax', 'value',
       '        return check_tensor(x, "Softmax").softmax(axis=self.axis)\n',
       '        return check_tensor(x, "Softmax").softmax()\n',
       'the Softmax layer always normalises the last axis. Shows only for a non-last axis.'),
    _m('dropout_rescales_kept_entries', 'basics.py', 'layer:Dropout', 'value',
       '        return x.mask_idcs(np.unravel_index(flat, x.shape))\n',
       '        return x.mask_idcs(np.unravel_index(flat, x.shape)) * (1.0 / max(1.0 - self.rate, 1e-12))\n',
       "Dropout rescales the entries it keeps by 1 / (1 - rate), as torch's does (pygrad's must not). "
       'Shows only in training mode with rate > 0.'),
    _m('momentum_buffer_stores_gradient', 'optims.py', 'optim:SGD_Momentum', 'invariant',
       '        self.momentum[i] = buf\n',
       '        self.momentum[i] = grad\n',
       "SGD_Momentum keeps the step's gradient instead of its buffer: steps 1 and 2 are right, "
       'every later one is not. Shows only from the third step on.'),
    _m('adam_second_moment_not_kept', 'optims.py', 'optim:Adam', 'invariant',
       '        v = self.exp_avg_sq[i] = self.beta2 * self.exp_avg_sq[i] + (1 - self.beta2) * (grad * grad)\n',
       '        v = self.beta2 * self.exp_avg_sq[i] + (1 - self.beta2) * (grad * grad)\n'
       '        self.exp_avg_sq[i] = (1 - self.beta2) * (grad * grad)\n',
       "Adam keeps only the last gradient's share of its second moment: steps 1 and 2 are right, "
       'every later one is not. Shows only from the third step on.'),
    _m('adam_step_counter_shared', 'optims.py', 'optim:Adam', 'invariant',
       '        t = self.steps[i] = self.steps[i] + 1\n',
       '        t = self.steps[0] = self.steps[0] + 1\n',
       "Adam counts steps in one counter for all its parameters: every parameter's bias correction "
       'uses the number of updates so far. Shows only with two or more parameters.'),
    _m('adam_eps_inside_sqrt', 'optims.py', 'optim:Adam', 'invariant',
       '        denom = np.sqrt(v) / np.sqrt(1 - self.beta2 ** t) + self.eps\n',
       '        denom = np.sqrt(v / (1 - self.beta2 ** t) + self.eps)\n',
       'Adam adds eps under the square root. Visible only when eps is not negligible against '
       'sqrt(v).'),
)

BY_NAME = {m.name: m for m in MUTANTS}
if len(BY_NAME) != len(MUTANTS):
    raise RuntimeError("reference.selftest.catalogue: mutant names must be unique")
