"""Quantization-aware training (lesson 15): the layer, the conversions and the training loop.

``helper.py`` (section 15) holds the formula, ``fake_quantize_ste``, and its per-block version.
This module holds what lesson 15 uses around it: ``QATLinear``, an ``nn.Linear`` that computes
with its weight fake-quantized; ``prepare_qat``, which puts one in place of every linear layer;
``convert_qat``, which loads the trained levels into the real layers of lessons 07 and 12; and
``train_qat``, the training loop, run as ``support.models.train_digits_classifier`` runs
(full batch, Adam, float64 on one thread, so the learning curve is the same on every CPU).

Import direction: imports ``helper``, ``support.checks`` and ``support.models``; only lessons
and the exercise checkers import it.
"""

from __future__ import annotations

import copy
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helper import (
    W2A16LinearLayer,
    W4A16LinearLayer,
    W8A16LinearLayer,
    _linears_to_replace,
    fake_quantize_ste_blockwise,
    get_q_range,
    qparams_from_range,
)
from support import checks
from support.models import accuracy, load_digits_split


class QATLinear(nn.Linear):
    """An ``nn.Linear`` that computes with its weight fake-quantized per output row at
    ``n_bits`` (``fake_quantize_ste_blockwise``), so training sees the quantized model.

    ``scales`` is ``None`` (measured from the weight at every step), a frozen buffer
    (``freeze_scales()``) or a learned parameter (``learn_scales()``, LSQ-style).
    """

    def __init__(self, in_features: int, out_features: int, bias=True, n_bits=4, dtype=None):
        super().__init__(in_features, out_features, bias=bias, dtype=dtype)
        self.n_bits = checks.qat_bits(n_bits)
        self.register_buffer("scales", None)

    def current_scales(self) -> Tensor:
        """The scales the forward uses now, one per output row, without a gradient."""
        if self.scales is not None:
            return self.scales.detach().clone()
        absmax = self.weight.detach().double().abs().amax(dim=1)  # as the forward measures it
        q_min, q_max = get_q_range(torch.int8, self.n_bits)
        scale, _ = qparams_from_range(-absmax, absmax, q_min, q_max, symmetric=True)
        return scale.to(self.weight.dtype)

    def freeze_scales(self, scales: Tensor | None = None) -> None:
        """Stop measuring: keep the current scales (or ``scales``, one per row) fixed."""
        scales = (
            self.current_scales()
            if scales is None
            else checks.layer_scales(scales, len(self.weight))
        )
        delattr(self, "scales")
        self.register_buffer("scales", scales.to(self.weight.dtype))

    def learn_scales(self, scales: Tensor | None = None) -> None:
        """Make the current scales (or ``scales``) a parameter, trained with the weights
        (LSQ-style); create the optimizer after this call."""
        self.freeze_scales(scales)
        scales = self.scales
        delattr(self, "scales")
        self.scales = nn.Parameter(scales)

    def quantized_weight(self) -> Tensor:
        """The weight as the forward sees it: ``scale * level``, every value on the grid."""
        block = (1, self.in_features)  # one scale per output row
        return fake_quantize_ste_blockwise(self.weight, block, self.n_bits, self.scales)

    def forward(self, input: Tensor) -> Tensor:
        """``F.linear`` with the fake-quantized weight and the float bias."""
        return F.linear(input, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        """``nn.Linear``'s description and the bit width."""
        return f"{super().extra_repr()}, n_bits={self.n_bits}"


def prepare_qat(model: nn.Module, n_bits=4, module_name_to_exclude=()) -> nn.Module:
    """A copy of ``model`` with its ``nn.Linear`` layers (but the excluded, as in section 11)
    turned into ``QATLinear`` at ``n_bits``, starting from their weights."""
    checks.module(model, "model")
    excluded = checks.names(module_name_to_exclude)
    quantized = copy.deepcopy(model)
    for parent, name, child in list(_linears_to_replace(quantized, excluded)):
        layer = QATLinear(child.in_features, child.out_features, child.bias is not None, n_bits)
        layer.load_state_dict(child.state_dict())
        setattr(parent, name, layer.to(child.weight.dtype))
    return quantized


def convert_qat(model: nn.Module, target_class=None) -> nn.Module:
    """A copy of ``model`` with every ``QATLinear`` replaced by a real layer holding exactly
    the levels it trained with: ``target_class`` (``W8A16LinearLayer``, ``W4A16LinearLayer``,
    ``W2A16LinearLayer``), or by default the packed layer of its bit width, and
    ``W8A16LinearLayer`` (int8 holding the levels) at 3, 5, 6 and 7 bits."""
    checks.module(model, "model")
    converted = copy.deepcopy(model)
    for path, layer in list(converted.named_modules()):
        if not isinstance(layer, QATLinear):
            continue
        packed = {2: W2A16LinearLayer, 4: W4A16LinearLayer}
        cls = packed.get(layer.n_bits, W8A16LinearLayer) if target_class is None else target_class
        checks.qat_target(cls, layer.n_bits, path)
        real = cls(layer.in_features, layer.out_features, layer.bias is not None)
        real.quantize(layer.quantized_weight().detach().float(), layer.current_scales().float())
        if layer.bias is not None:
            real.bias.copy_(layer.bias.detach().reshape(1, -1))
        parent, _, name = path.rpartition(".")
        setattr(converted.get_submodule(parent), name, real.to(layer.weight.dtype))
    return converted


class TrainingRecord(NamedTuple):
    """One point of a learning curve: the step, the training loss and the test accuracy."""

    step: int
    loss: float
    test_accuracy: float


def train_qat(
    model: nn.Module, steps: int = 200, lr: float = 0.003, record_every: int = 10, seed: int = 0
) -> tuple[nn.Module, list[TrainingRecord]]:
    """Fine-tune ``model`` (a digits classifier, usually from ``prepare_qat``) on the digits
    training split: ``steps`` full-batch Adam steps in float64 on one thread. Returns a
    float32 copy in eval mode and the learning curve, a ``TrainingRecord`` every
    ``record_every`` steps (and at step 0). ``model`` itself is not changed.

    Training in float64 and rounding to float32 at the end is what makes the same seed give
    the same numbers on every CPU path (see ``train_digits_classifier``).
    """
    checks.module(model, "model")
    for name, value, low in (("steps", steps, 1), ("record_every", record_every, 1)):
        checks.whole_number(value, name, low)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < float("inf"):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
    trained = copy.deepcopy(model).double().train().requires_grad_(True)
    optimizer = torch.optim.Adam(trained.parameters(), lr=lr)
    x, x_test = x_train.double(), x_test.double()
    curve = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and the order is fixed
    try:
        for step in range(steps + 1):
            loss = F.cross_entropy(trained(x), y_train)
            if step % record_every == 0 or step == steps:
                with torch.no_grad():
                    test = accuracy(trained, x_test, y_test)
                curve.append(TrainingRecord(step, loss.item(), test))
            if step == steps:
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return trained.float().eval().requires_grad_(False), curve
