"""Tests for helper.py section 15 (fake quantization with a straight-through estimator) and for
support/qat.py (the QAT layer, its conversions and the training loop), lesson 15.

Forward values and gradients are compared with PyTorch's own fake-quantize ops, per tensor and
per channel, with values clipped at both ends; the learned-scale gradient with PyTorch's
learnable (LSQ) op. The per-block version is compared with the layers of sections 11 and 12:
what QAT trains is what they hold. Bad input is in test_bad_input.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from helper import (
    W2A16LinearLayer,
    W4A16LinearLayer,
    W8A16LinearLayer,
    fake_quantize_ste,
    fake_quantize_ste_blockwise,
)
from support.models import DigitsMLP, digits_classifier
from support.qat import QATLinear, convert_qat, prepare_qat, train_qat

CASES = [(0.25, 0, -8, 7), (0.1, 3, -32, 31), (0.7, 2, 0, 15), (0.05, 0, -2, 1)]


def values(seed: int = 0, n: int = 2000) -> torch.Tensor:
    """Seeded values wide enough that every case clips some at both ends."""
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 4


@pytest.mark.parametrize(("scale", "zero_point", "q_min", "q_max"), CASES)
def test_per_tensor_forward_and_gradient_match_pytorch(scale, zero_point, q_min, q_max):
    r = values()
    ours, theirs = r.clone().requires_grad_(), r.clone().requires_grad_()
    y = fake_quantize_ste(ours, scale, zero_point, q_min, q_max)
    y_ref = torch.fake_quantize_per_tensor_affine(theirs, scale, zero_point, q_min, q_max)
    upstream = torch.randn(len(r), generator=torch.Generator().manual_seed(1))
    y.backward(upstream)
    y_ref.backward(upstream)
    level = torch.round(r / scale) + zero_point
    assert bool((level < q_min).any()) and bool((level > q_max).any())  # clipped at both ends
    # PyTorch multiplies by 1/scale where the formula divides: a level may differ where
    # r / scale lands within a rounding error of a half; none does on these values
    assert torch.equal(y, y_ref)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-6, atol=0)
    assert torch.equal(ours.grad != 0, theirs.grad != 0)  # the same mask


def test_per_channel_forward_and_gradient_match_pytorch():
    r = values(2, 6 * 50).reshape(6, 50)
    scale = torch.tensor([0.1, 0.2, 0.3, 0.5, 0.05, 1.0])
    zero_point = torch.tensor([0, 1, -2, 3, 0, -1], dtype=torch.int32)
    ours, theirs = r.clone().requires_grad_(), r.clone().requires_grad_()
    y = fake_quantize_ste(ours, scale.reshape(-1, 1), zero_point.reshape(-1, 1), -8, 7)
    y_ref = torch.fake_quantize_per_channel_affine(theirs, scale, zero_point, 0, -8, 7)
    y.sum().backward()
    y_ref.sum().backward()
    assert torch.equal(y, y_ref)
    assert torch.equal(ours.grad, theirs.grad)


def test_the_mask_is_taken_on_the_rounded_value():
    """r / s + z = 7.4 rounds to 7, inside [-8, 7]: the gradient passes. 7.6 rounds to 8: not."""
    r = torch.tensor([7.4, 7.6, -8.4, -8.6], requires_grad=True)
    fake_quantize_ste(r, 1.0, 0, -8, 7).sum().backward()
    assert r.grad.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_plain_round_has_no_gradient_but_the_ste_has_one():
    r = torch.tensor([0.3, 1.7], requires_grad=True)
    torch.round(r).sum().backward()
    assert r.grad.tolist() == [0.0, 0.0]
    r.grad = None
    fake_quantize_ste(r, 1.0, 0, -8, 7).sum().backward()
    assert r.grad.tolist() == [1.0, 1.0]


def test_a_learned_scale_gets_lsqs_gradient():
    r = values(4, 500)
    scale = torch.tensor([0.3], requires_grad=True)
    fake_quantize_ste(r, scale, 0, -8, 7).sum().backward()
    theirs = torch.tensor([0.3], requires_grad=True)
    torch._fake_quantize_learnable_per_tensor_affine(
        r, theirs, torch.tensor([0.0]), -8, 7, 1.0
    ).sum().backward()
    torch.testing.assert_close(scale.grad, theirs.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("n_bits", "layer_class"), [(8, W8A16LinearLayer), (4, W4A16LinearLayer), (2, W2A16LinearLayer)]
)
def test_the_blockwise_version_uses_the_layers_rule(n_bits, layer_class):
    w = torch.randn(12, 40, generator=torch.Generator().manual_seed(5))
    layer = layer_class(40, 12, bias=False)
    layer.quantize(w)
    levels = layer.int8_weights if n_bits == 8 else layer.unpacked_weights()
    held = levels.float() * layer.scales.reshape(-1, 1)
    assert torch.equal(fake_quantize_ste_blockwise(w, (1, 40), n_bits), held)


def test_the_blockwise_version_trains_and_leaves_its_input_alone():
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(6))
    copy_ = w.clone()
    leaf = w.clone().requires_grad_()
    fake_quantize_ste_blockwise(leaf, (1, 4), 4).sum().backward()
    assert torch.equal(leaf.grad, torch.ones_like(w))  # symmetric max-abs scale: nothing clipped
    assert torch.equal(w, copy_)
    frozen = torch.full((4, 2), 0.05)
    leaf.grad = None
    fake_quantize_ste_blockwise(leaf, (1, 4), 4, frozen).sum().backward()
    assert bool((leaf.grad == 0).any())  # a small frozen scale clips, and blocks the gradient


# -- support.qat ---------------------------------------------------------------------------------


def test_prepare_qat_copies_and_keeps_the_weights():
    model = digits_classifier()
    before = copy.deepcopy(model.state_dict())
    qat = prepare_qat(model, n_bits=3, module_name_to_exclude=["classifier"])
    assert isinstance(qat.hidden1, QATLinear) and isinstance(qat.hidden2, QATLinear)
    assert type(qat.classifier) is nn.Linear
    assert torch.equal(qat.hidden1.weight, model.hidden1.weight)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_scales_measured_frozen_and_learned():
    layer = QATLinear(8, 3, n_bits=4)
    measured = layer.current_scales()
    assert torch.allclose(measured, layer.weight.detach().abs().amax(dim=1) / 7)
    layer.freeze_scales()
    assert "scales" in dict(layer.named_buffers()) and torch.equal(layer.scales, measured)
    with torch.no_grad():
        layer.weight.mul_(10)  # frozen: the scales do not follow
    assert torch.equal(layer.current_scales(), measured)
    layer.learn_scales(torch.full((3,), 0.1))
    assert "scales" in dict(layer.named_parameters())
    layer(torch.randn(2, 8)).sum().backward()
    assert layer.scales.grad is not None and layer.weight.grad is not None


@pytest.mark.parametrize(
    ("n_bits", "expected"), [(2, W2A16LinearLayer), (3, W8A16LinearLayer), (4, W4A16LinearLayer)]
)
def test_convert_qat_holds_exactly_the_trained_levels(n_bits, expected):
    qat = prepare_qat(digits_classifier(), n_bits=n_bits)
    qat.hidden2.freeze_scales(qat.hidden2.current_scales() * 0.7)  # a frozen scale that clips
    real = convert_qat(qat)
    assert type(real.hidden1) is expected
    for name in ("hidden1", "hidden2", "classifier"):
        trained, held = getattr(qat, name), getattr(real, name)
        levels = held.int8_weights if expected is W8A16LinearLayer else held.unpacked_weights()
        q_min, q_max = -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1
        assert int(levels.min()) >= q_min and int(levels.max()) <= q_max
        weight = levels.float() * held.scales.reshape(-1, 1)
        torch.testing.assert_close(weight, trained.quantized_weight().detach(), rtol=0, atol=1e-6)
    x = torch.rand(16, 64, generator=torch.Generator().manual_seed(0))
    # the same weights; only the order of the float sums differs (packed layers go plane by plane)
    torch.testing.assert_close(real(x), qat(x).detach(), rtol=1e-4, atol=1e-4)


def test_convert_qat_refuses_a_layer_too_narrow():
    qat = prepare_qat(DigitsMLP(), n_bits=4)
    with pytest.raises(ValueError, match="does not fit W2A16LinearLayer"):
        convert_qat(qat, W2A16LinearLayer)


def test_train_qat_is_repeatable_and_leaves_its_input_alone():
    qat = prepare_qat(digits_classifier(), n_bits=2)
    before = copy.deepcopy(qat.state_dict())
    trained, curve = train_qat(qat, steps=20, record_every=5)
    again, curve_again = train_qat(qat, steps=20, record_every=5)
    assert [r.step for r in curve] == [0, 5, 10, 15, 20]
    assert curve == curve_again
    assert all(
        torch.equal(a, b)
        for a, b in zip(trained.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert all(torch.equal(v, qat.state_dict()[k]) for k, v in before.items())
    assert curve[-1].loss < curve[0].loss
    assert trained.hidden1.weight.dtype == torch.float32 and not trained.training


def test_a_scale_per_row_may_be_given_as_one_dimension():
    w = torch.randn(3, 8, generator=torch.Generator().manual_seed(8))
    scale = torch.tensor([0.1, 0.2, 0.3])
    flat = fake_quantize_ste_blockwise(w, (1, 8), 4, scale)
    assert torch.equal(flat, fake_quantize_ste_blockwise(w, (1, 8), 4, scale.reshape(3, 1)))
