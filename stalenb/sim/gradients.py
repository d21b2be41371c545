"""Gradient oracles: the objective a run optimises, seen as a flat parameter vector.

A *problem* exposes

- ``x0`` (flat initial parameters), ``dim``, ``n_train``, ``layer_sizes``;
- ``loss_grad(x, idx)`` → (mean loss, mean gradient) over training samples ``idx`` at x;
- ``loss_grad_buffer(x, idx)`` → like ``loss_grad``, but the gradient may be a buffer the problem
  reuses (valid until its next call): the engine's fast path consumes it at once;
- ``evaluate(x)`` → ``{"train_loss", "test_loss", "test_acc"}``.

:class:`NeuralNet` is MNIST with one of :mod:`stalenb.models`. Its ``loss_grad`` differentiates
with ``torch.func`` (``functional_call`` + ``grad_and_value``) over the flat vector: the small
reference path. Its ``loss_grad_buffer`` uses a :class:`FlatModule`, a copy of the network whose
parameters are views of the flat vector being read (convolution weights in ``channels_last``)
and whose gradients are laid out in one reused flat buffer, so a plain ``loss.backward()`` yields
the flat gradient with no ``torch.func`` overhead (a sizeable share of a small-batch step).
``torch.func.vmap`` over per-worker gradients is not used: on CPU it was slower than a loop of
plain backward passes (the per-worker batches are small, and the MLP's case is memory-bound).
:class:`Quadratic` is f(x) = ½ Σ_i a_i (x_i − x*_i)² with optional Gaussian gradient noise, for
tests with hand-computable trajectories and for the theory notebooks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value

from . import data, models

aten = torch.ops.aten


class Problem:
    """Base class; subclasses set ``x0``, ``n_train``, ``layer_sizes`` and the methods below."""

    x0: torch.Tensor
    n_train: int
    layer_sizes: tuple

    @property
    def dim(self) -> int:
        return self.x0.numel()

    def loss_grad(self, x, idx):
        raise NotImplementedError

    def loss_grad_buffer(self, x, idx):
        """``loss_grad``; subclasses may return a reused gradient buffer (valid until the next call)."""
        return self.loss_grad(x, idx)

    def evaluate(self, x) -> dict:
        raise NotImplementedError


class FlatModule:
    """``module`` rewired to read its parameters from any flat vector and to return its gradient
    in one flat buffer ``self.grad`` (both in ``module.parameters()`` order).

    - :meth:`bind` points the parameters at the flat vector a push read (a snapshot or the
      server's model) by re-seating each parameter's ``.data`` on a view of it: no copy of the model;
    - fully connected layers write their gradients straight into ``self.grad``: their forward is
      :class:`_FlatLinear`, whose backward computes ∂L/∂W = gᵀa and ∂L/∂b = Σ g with
      ``torch.mm(..., out=)`` / ``torch.sum(..., out=)`` into views of the flat buffer (the
      products ``torch.nn.Linear``'s own backward computes, without the copy into a flat
      vector, a noticeable part of a small-batch MLP step);
    - a network that is only fully connected (``nn.Sequential`` of ``Flatten``, ``Linear`` with
      bias and ``ReLU``: the poster's MLP) skips autograd altogether: :class:`_LinearStack`
      computes the same backward by hand, calling the aten kernels autograd would call, so the
      gradient is bit-for-bit autograd's (``closed_form=False`` keeps the autograd route);
    - the other layers' gradients (convolutions) arrive in ``.grad`` as usual (unset before each
      ``backward``, so autograd hands them over without accumulating) and are copied into their
      slots of ``self.grad``;
    - convolution weights are in ``channels_last`` memory format (oneDNN's fast layout on CPU,
      faster on LeNet's step than the plain layout): a weight with one input
      channel is a strided view of the flat vector, the others are copied into a
      ``channels_last`` buffer (LeNet: 25,000 of 431,080 numbers). The flat layout of x and of the
      gradient stays the natural (NCHW) one; only the order of the floating-point sums inside the
      convolutions differs from the plain layout (float rounding).
    """

    def __init__(self, module: torch.nn.Module, channels_last: bool = True, closed_form: bool = True):
        self.module = module
        self.params = list(module.parameters())
        ref = self.params[0]
        self.grad = torch.zeros(sum(p.numel() for p in self.params), dtype=ref.dtype, device=ref.device)
        self.views, self.copies = [], []  # (param, offset, shape, stride) / (param, offset)
        offsets, start = {}, 0
        for p in self.params:
            offsets[id(p)] = start
            if channels_last and p.dim() == 4 and p.shape[1] != 1:
                p.data = torch.empty_like(p, memory_format=torch.channels_last)
                self.copies.append((p, start))
            else:
                stride = (_channels_last_stride(p.shape) if channels_last and p.dim() == 4
                          else torch.empty(p.shape, device="meta").stride())
                self.views.append((p, start, tuple(p.shape), stride))
            start += p.numel()
        self.bind(torch.cat([p.detach().reshape(-1) for p in self.params]))
        self.rest = []  # (param, gradient slot) of the layers that leave their gradient in .grad
        linear = set()
        for layer in module.modules():
            if type(layer) is torch.nn.Linear and layer.bias is not None:
                w, b = layer.weight, layer.bias
                slot_w = self.grad[offsets[id(w)] : offsets[id(w)] + w.numel()].view(w.shape)
                slot_b = self.grad[offsets[id(b)] : offsets[id(b)] + b.numel()]
                layer.forward = _flat_linear_forward(layer, slot_w, slot_b)
                linear.update((id(w), id(b)))
        for p in self.params:
            if id(p) not in linear:
                self.rest.append((p, self.grad[offsets[id(p)] : offsets[id(p)] + p.numel()].view(p.shape)))
        self.stack = _LinearStack.of(module, self.grad, offsets) if closed_form else None

    def bind(self, x: torch.Tensor) -> None:
        """Make the module compute at the flat parameters ``x`` (views of x, no copy)."""
        for p, start, shape, stride in self.views:
            p.data = x.as_strided(shape, stride, x.storage_offset() + start)
        for p, start in self.copies:
            p.data.copy_(x[start : start + p.numel()].view(p.shape))

    def loss_grad(self, x: torch.Tensor, inputs, targets):
        """(mean cross-entropy, flat gradient buffer) at the flat parameters ``x``."""
        if self.stack is not None:
            return self.stack.loss_grad(x, inputs, targets), self.grad
        self.bind(x)
        for p, _ in self.rest:
            p.grad = None
        loss = F.cross_entropy(self.module(inputs), targets)
        loss.backward()
        for p, slot in self.rest:
            slot.copy_(p.grad)
        return float(loss.detach()), self.grad

    def logits(self, x: torch.Tensor, inputs) -> torch.Tensor:
        """The network's outputs at ``x``, with no autograd (``torch.inference_mode``)."""
        self.bind(x)  # outside inference mode: the views stay usable by later backward passes
        with torch.inference_mode():
            return self.module(inputs)


class _FlatLinear(torch.autograd.Function):
    """y = a Wᵀ + b whose backward writes ∂L/∂W = gᵀa and ∂L/∂b = Σ_rows g into given buffers.

    ``weight`` and ``bias`` take part only so that autograd records the node (the first layer's
    input, data, needs no gradient); their gradients are returned as ``None`` (``.grad`` stays
    unset) because they already sit in ``slot_w`` / ``slot_b``.
    """

    @staticmethod
    def forward(ctx, a, weight, bias, slot_w, slot_b):  # ctx-style: no per-call signature binding
        ctx.save_for_backward(a, weight)
        ctx.slots = (slot_w, slot_b)
        return torch.addmm(bias, a, weight.t())

    @staticmethod
    def backward(ctx, g):
        a, weight = ctx.saved_tensors
        slot_w, slot_b = ctx.slots
        torch.mm(g.t(), a, out=slot_w)
        torch.sum(g, 0, out=slot_b)
        return (g.mm(weight) if ctx.needs_input_grad[0] else None), None, None, None, None


class _Dense(NamedTuple):
    """One fully connected layer of a :class:`_LinearStack`: where W and b sit in the flat vector,
    whether a ReLU follows, and the slots of the flat gradient buffer its gradients go to."""

    relu: bool  # a ReLU follows the layer
    w_offset: int  # W = x[w_offset : w_offset + w_shape.numel()].view(w_shape)
    w_shape: torch.Size
    b_offset: int  # b = x[b_offset : b_offset + b_shape.numel()]
    b_shape: torch.Size
    grad_w: torch.Tensor  # ∂L/∂W, a view of the flat gradient buffer
    grad_b: torch.Tensor  # ∂L/∂b, likewise


class _LinearStack:
    """Cross-entropy loss and its gradient for a stack of fully connected layers, by hand.

    For layers a_{l+1} = φ_l(a_l W_lᵀ + b_l) (φ = ReLU or identity) and L = mean cross-entropy of
    the last layer's outputs z: g = ∂L/∂z from ``nll_loss_backward`` and ``_log_softmax_backward_data``,
    then per layer, last first, g ← g ⊙ 1[a_{l+1} > 0] (``threshold_backward``), ∂L/∂W_l = gᵀa_l
    and ∂L/∂b_l = Σ_rows g written into the flat gradient buffer, and g ← g W_l — the kernels, in
    the order, that autograd runs for ``F.cross_entropy(module(inputs), targets).backward()``, so
    the result is the same to the bit (``tests/test_fastpath.py``). Hand-written because at small
    batches autograd's per-node bookkeeping is a noticeable part of an MLP step. W_l and b_l
    are read as views of the flat vector (no :meth:`FlatModule.bind`).
    """

    def __init__(self, flatten, layers: list[_Dense]):
        self.flatten = flatten  # (start_dim, end_dim) of a leading nn.Flatten, or None
        self.layers = layers

    @classmethod
    def of(cls, module, grad: torch.Tensor, offsets: dict):
        """The stack for ``module`` when it is ``[Flatten] (Linear [ReLU])* Linear``; else None."""
        if type(module) is not torch.nn.Sequential:
            return None
        mods, flatten, layers = list(module), None, []
        if mods and type(mods[0]) is torch.nn.Flatten:
            flatten, mods = (mods[0].start_dim, mods[0].end_dim), mods[1:]
        for m in mods:
            if type(m) is torch.nn.ReLU and layers and not layers[-1].relu:
                layers[-1] = layers[-1]._replace(relu=True)
            elif type(m) is torch.nn.Linear and m.bias is not None:
                w, b = m.weight, m.bias
                ow, ob = offsets[id(w)], offsets[id(b)]
                layers.append(_Dense(relu=False, w_offset=ow, w_shape=w.shape, b_offset=ob, b_shape=b.shape,
                                     grad_w=grad[ow : ow + w.numel()].view(w.shape),
                                     grad_b=grad[ob : ob + b.numel()]))
            else:
                return None
        if not layers or layers[-1].relu:
            return None
        return cls(flatten, layers)

    @torch.no_grad()
    def loss_grad(self, x: torch.Tensor, inputs, targets) -> float:
        """Mean cross-entropy at the flat parameters ``x``; the gradient lands in the slots."""
        a = inputs.flatten(*self.flatten) if self.flatten else inputs
        acts, weights = [], []
        for layer in self.layers:
            w = x[layer.w_offset : layer.w_offset + layer.w_shape.numel()].view(layer.w_shape)
            z = torch.addmm(x[layer.b_offset : layer.b_offset + layer.b_shape.numel()], a, w.t())
            out = torch.relu(z) if layer.relu else z
            acts.append((a, out))
            weights.append(w)
            a = out
        logp = torch.log_softmax(a, 1)
        loss, total = aten.nll_loss_forward(logp, targets, None, 1, -100)  # reduction mean
        g = aten.nll_loss_backward(torch.ones((), dtype=logp.dtype), logp, targets, None, 1, -100, total)
        g = aten._log_softmax_backward_data(g, logp, 1, logp.dtype)
        for j in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[j]
            a, out = acts[j]
            if layer.relu:
                g = aten.threshold_backward(g, out, 0)
            torch.mm(g.t(), a, out=layer.grad_w)
            torch.sum(g, 0, out=layer.grad_b)
            if j:
                g = g.mm(weights[j])
        return float(loss)


def _flat_linear_forward(layer: torch.nn.Linear, slot_w: torch.Tensor, slot_b: torch.Tensor):
    """``layer.forward`` through :class:`_FlatLinear` (2-d inputs; others take the plain path)."""
    plain = layer.forward

    def forward(a):
        if a.dim() != 2 or not torch.is_grad_enabled():
            return plain(a)
        return _FlatLinear.apply(a, layer.weight, layer.bias, slot_w, slot_b)

    return forward


def _channels_last_stride(shape) -> tuple:
    """Strides of a contiguous ``channels_last`` tensor of 4-d ``shape`` (N, C, H, W)."""
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c)


class NeuralNet(Problem):
    """MNIST classification with ``model`` (cross-entropy), parameters as one flat vector."""

    def __init__(self, model="lenet", seed=0, data_root=None, train_size=None, eval_size=1000,
                 device="cpu", download=True, validation=0, eval_splits=("train", "test", "val")):
        self.device = torch.device(device)
        self.model_name, self.seed = model, seed
        self.eval_splits = tuple(eval_splits)
        self._flat = None
        self.module = models.build(model, seed).to(self.device)
        params = dict(self.module.named_parameters())
        self.names = list(params)
        self.shapes = [p.shape for p in params.values()]
        self.layer_sizes = tuple(p.numel() for p in params.values())
        self.x0 = torch.cat([p.detach().reshape(-1) for p in params.values()]).to(self.device)
        root = None if data_root is None else str(data_root)
        X, y = data.mnist_tensors(root, train=True, download=download)
        if train_size is not None:
            X, y = X[:train_size], y[:train_size]
        if validation:  # hold out the last `validation` training digits: tuning never sees the test set
            if validation >= len(y):
                raise ValueError(f"validation must be smaller than the training set ({len(y)}), got {validation}")
            X, y, Xv, yv = X[:-validation], y[:-validation], X[-validation:], y[-validation:]
            self.X_val, self.y_val = Xv.to(self.device), yv.to(self.device)
        else:
            self.X_val = self.y_val = None
        Xt, yt = data.mnist_tensors(root, train=False, download=download)
        m = len(yt) if eval_size is None else min(eval_size, len(yt))
        self.X, self.y = X.to(self.device), y.to(self.device)
        self.X_test, self.y_test = Xt[:m].to(self.device), yt[:m].to(self.device)
        self.X_eval, self.y_eval = X[:m].to(self.device), y[:m].to(self.device)
        self.n_train = len(y)
        self._grad = grad_and_value(self._loss)

    def params(self, x: torch.Tensor) -> dict:
        """The flat vector ``x`` as the module's named parameters (views, no copy)."""
        out, start = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.layer_sizes):
            out[name] = x[start : start + size].view(shape)
            start += size
        return out

    def logits(self, x, inputs):
        return functional_call(self.module, self.params(x), (inputs,))

    def _loss(self, x, inputs, targets):
        return F.cross_entropy(self.logits(x, inputs), targets)

    def loss_grad(self, x, idx):
        idx = idx.to(self.device)
        g, loss = self._grad(x, self.X[idx], self.y[idx])
        return float(loss), g

    @property
    def flat(self) -> FlatModule:
        """The :class:`FlatModule` of the fast path and of :meth:`evaluate` (built on first use)."""
        if self._flat is None:
            self._flat = FlatModule(models.build(self.model_name, self.seed).to(self.device))
        return self._flat

    def loss_grad_buffer(self, x, idx):
        """Fast path: :class:`FlatModule` forward + ``backward``; the gradient is a reused buffer."""
        idx = idx.to(self.device)
        return self.flat.loss_grad(x, self.X[idx], self.y[idx])

    def evaluate(self, x) -> dict:
        """Loss on the fixed training subset; loss and accuracy on the test digits and, when the
        problem holds out a validation split, on it (``val_loss``, ``val_acc``; NaN otherwise).
        Only the splits named in ``eval_splits`` are computed; the others read NaN.

        Computed by the :class:`FlatModule` under ``torch.inference_mode`` (no autograd
        bookkeeping, channels_last convolutions) in chunks of 2,000 digits."""
        with torch.no_grad():
            return self._evaluate(x)

    def _evaluate(self, x) -> dict:
        splits = {"train": (self.X_eval, self.y_eval), "test": (self.X_test, self.y_test)}
        if self.X_val is not None:
            splits["val"] = (self.X_val, self.y_val)
        out = dict.fromkeys(("train_loss", "test_loss", "test_acc", "val_loss", "val_acc"), math.nan)
        for split, (X, y) in splits.items():
            if split not in self.eval_splits:
                continue
            loss, correct = 0.0, 0
            for s in range(0, len(y), 2000):
                z = self.flat.logits(x, X[s : s + 2000])
                loss += float(F.cross_entropy(z, y[s : s + 2000], reduction="sum"))
                correct += int((z.argmax(1) == y[s : s + 2000]).sum())
            out[f"{split}_loss"] = loss / len(y)
            if split != "train":
                out[f"{split}_acc"] = correct / len(y)
        return out


class Quadratic(Problem):
    """f(x) = ½ (x − x*)ᵀ A (x − x*) with A = diag(a) (``a`` a vector) or A = a (a symmetric
    matrix); gradient A (x − x*) plus optional N(0, noise²/b) per entry for a batch of b samples
    (so one gradient of batch b has variance σ² = noise² · d / b).

    With ``a = 1`` and ``x* = 0`` the gradient *is* the model it was computed at, which makes the
    staleness bookkeeping visible (tests check that step t used x_{t−τ_t}). A matrix ``a`` gives the
    tridiagonal worst-case quadratic of the time-optimal literature (:func:`worst_case_quadratic`).
    """

    def __init__(self, a, x_star=None, x0=None, noise=0.0, n_train=1024, seed=0):
        a = torch.as_tensor(a, dtype=torch.float64)
        if a.dim() not in (1, 2) or (a.dim() == 2 and a.shape[0] != a.shape[1]):
            raise ValueError(f"a must be a vector (diagonal) or a square matrix, got shape {tuple(a.shape)}")
        self.a = a if a.dim() == 2 else a.reshape(-1)
        d = self.a.shape[0]
        self.x_star = torch.zeros(d, dtype=torch.float64) if x_star is None else torch.as_tensor(x_star, dtype=torch.float64)
        self.x0 = torch.ones(d, dtype=torch.float64) if x0 is None else torch.as_tensor(x0, dtype=torch.float64).clone()
        self.noise = float(noise)
        self.n_train = int(n_train)
        self.layer_sizes = (d,)
        self._gen = torch.Generator().manual_seed(int(seed) + 1)

    def _curvature(self, e):
        return self.a @ e if self.a.dim() == 2 else self.a * e

    def value(self, x) -> float:
        e = x - self.x_star
        return float(0.5 * (e * self._curvature(e)).sum())

    def loss_grad(self, x, idx):
        e = x - self.x_star
        g = self._curvature(e)
        loss = 0.5 * float(e.dot(g))  # f(x) − f*, from the same product as the gradient
        if self.noise:
            g = g + self.noise * torch.randn(g.shape, generator=self._gen, dtype=g.dtype) / math.sqrt(len(idx))
        return loss, g

    def evaluate(self, x) -> dict:
        f = self.value(x)
        return {"train_loss": f, "test_loss": f, "test_acc": float("nan")}


def worst_case_quadratic(d: int, L: float = 1.0, x0=None, noise: float = 0.0, seed: int = 0) -> Quadratic:
    """The tridiagonal quadratic f(x) = ½ xᵀA x − bᵀx, A = (L/4)·tridiag(−1, 2, −1), b = (L/4)·(−1, 0, …, 0),
    of the lower-bound constructions and of the public reference code of Rennala and Ringmaster
    (Tyurin & Richtárik's ``create_worst_case``; ``docs/reference_methods.md`` §6), as a
    :class:`Quadratic` around x* = A⁻¹b (so ``train_loss`` is f(x) − f*). ``x0`` defaults to √d·e₁."""
    main = torch.full((d,), 2.0, dtype=torch.float64)
    side = torch.full((d - 1,), -1.0, dtype=torch.float64)
    A = (L / 4) * (torch.diag(main) + torch.diag(side, 1) + torch.diag(side, -1))
    b = torch.zeros(d, dtype=torch.float64)
    b[0] = -L / 4
    if x0 is None:
        x0 = torch.zeros(d, dtype=torch.float64)
        x0[0] = math.sqrt(d)
    return Quadratic(A, torch.linalg.solve(A, b), x0, noise=noise, seed=seed)


def from_config(config) -> Problem:
    """The problem a :class:`stalenb.Config` describes (MNIST + its model)."""
    return NeuralNet(config.model, seed=config.seed, data_root=config.data_root, train_size=config.train_size,
                     eval_size=config.eval_size, device=_device(config.device), download=config.download,
                     validation=config.validation, eval_splits=config.eval_splits)


def _device(name: str) -> str:
    return "cuda" if name == "cuda" and torch.cuda.is_available() else "cpu"
