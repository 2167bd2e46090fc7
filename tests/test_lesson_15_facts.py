"""Facts lesson 15 states in its prose that no output cell of the lesson prints.

Each test names the section whose sentence it backs. The numbers printed by the lesson itself
are checked by nbval; these are the rules and the claims about PyTorch written in the text.
"""

import inspect

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helper import PackedLinearLayer, fake_quantize_ste, fake_quantize_ste_blockwise
from support.examples import seeded_randn
from support.models import DigitsMLP
from support.qat import train_qat


def test_round_has_a_gradient_of_0_everywhere_even_at_the_half_way_points():
    """Section 2: PyTorch defines the backward of round as 0 everywhere."""
    x = torch.tensor([-2.5, -0.5, 0.0, 0.3, 0.5, 1.5, 2.5, 7.49], requires_grad=True)
    torch.round(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@given(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_the_ste_trick_gives_exactly_round_x(value, dtype):
    """Section 2: x + (round(x) - x).detach() is round(x), for every finite float: round(x) - x
    is exact (Sterbenz), and so is the sum, which is representable."""
    x = torch.tensor(value, dtype=dtype)
    assert torch.equal(x + (torch.round(x) - x), torch.round(x))


def test_the_other_order_can_miss_round_x_and_lose_the_gradient_at_the_edge():
    """Section 9's solution: (round(x) + x) - x is not always round(x): 7.3 in float64 comes
    out just above 7, and clamp(..., -8, 7) clips it, so its gradient is 0."""
    x = torch.tensor(7.3, dtype=torch.float64, requires_grad=True)
    value = x.round().detach() + x - x.detach()
    assert value.item() > 7.0
    torch.clamp(value, -8, 7).backward()
    assert x.grad.item() == 0.0
    y = torch.tensor(7.3, dtype=torch.float64, requires_grad=True)
    torch.clamp(y.round().detach() + (y - y.detach()), -8, 7).backward()
    assert y.grad.item() == 1.0


SETTINGS = [  # section 4's grids: scale, zero point, q_min, q_max, spread
    (0.05, 0, -128, 127, 3.0),
    (0.03, 128, 0, 255, 2.0),
    (0.25, 3, -8, 7, 1.5),
    (0.37, 0, -2, 1, 1.0),
]


@pytest.mark.parametrize("setting", SETTINGS)
def test_our_gradient_is_g_times_s_divided_by_s_on_the_mask(setting):
    """Section 4: the gradients differ from PyTorch's because the backward computes
    (g * s) / s in float32, which is not always g; PyTorch multiplies g by the mask."""
    scale, zero_point, q_min, q_max, spread = setting
    values = seeded_randn(20_000, seed=1) * spread
    upstream = seeded_randn(20_000, seed=2)
    leaf = values.clone().requires_grad_(True)
    fake_quantize_ste(leaf, scale, zero_point, q_min, q_max).backward(upstream)
    level = torch.round(values / scale) + zero_point
    mask = ((level >= q_min) & (level <= q_max)).float()
    s = torch.tensor(scale)
    assert torch.equal(leaf.grad, (upstream * s) * mask / s)
    if scale == 0.25:  # a power of two: exact
        assert torch.equal(leaf.grad, upstream * mask)


def test_one_unit_in_the_last_place_between_2_and_4_is_2_4e_07():
    """Section 4: the largest gradient difference, 2.4e-07, is one ulp of a float32 in [2, 4)."""
    two = torch.tensor(2.0)
    ulp = (torch.nextafter(two, torch.tensor(4.0)) - two).item()
    assert ulp == 2.0**-22 and f"{ulp:.1e}" == "2.4e-07"


def test_pytorch_rounds_r_times_the_float32_inverse_of_the_scale():
    """Section 4: PyTorch's kernel computes inv_scale = 1.0f / scale and rounds input *
    inv_scale; on the 255 half-way points of int8 at s = 0.1 that reproduces its output
    exactly, the 18 values that differ from r / s included."""
    halfway = ((torch.arange(-128, 127, dtype=torch.float64) + 0.5) * 0.1).float()
    scale = torch.tensor(0.1)
    theirs = torch.fake_quantize_per_tensor_affine(halfway, 0.1, 0, -128, 127)
    by_inverse = torch.clamp(torch.round(halfway * (1 / scale)), -128, 127) * scale
    by_division = torch.clamp(torch.round(halfway / scale), -128, 127) * scale
    assert torch.equal(theirs, by_inverse)
    assert int((theirs != by_division).sum()) == 18
    assert halfway[6].item() == torch.tensor(-12.15).item()  # the float32 nearest -12.15


@pytest.mark.parametrize("n_bits", range(2, 9))
def test_min_max_scales_never_use_the_extra_negative_level(n_bits):
    """Section 5: with min-max scales |r| / s is at most q_max, so the level -2**(b-1) stays
    unused."""
    w = seeded_randn(32, 48, seed=n_bits)
    w[0, 0] = -w.abs().max() * 1.5  # a row whose largest magnitude is negative
    fake = fake_quantize_ste_blockwise(w, (1, 48), n_bits=n_bits)
    q_max = 2 ** (n_bits - 1) - 1
    scale = w.abs().amax(dim=1, keepdim=True) / q_max
    assert torch.round(fake / scale).min() >= -q_max


def test_the_scale_gets_lsqs_gradient():
    """Section 6: the gradient of s * q with respect to s is round(r / s) - r / s inside the
    grid and the clipped level outside (zero point 0)."""
    r = torch.tensor([0.26, -0.61, 0.9, 3.0, -4.2])
    scale = torch.full((5,), 0.5, requires_grad=True)
    fake_quantize_ste(r, scale, 0, -4, 3).sum().backward()
    x = r / 0.5
    expected = torch.where(x.round() > 3, 3.0, torch.where(x.round() < -4, -4.0, x.round() - x))
    assert torch.allclose(scale.grad, expected, atol=1e-6)
    assert scale.grad[3].item() == 3.0 and scale.grad[4].item() == -4.0


def test_adam_steps_hardly_change_when_every_gradient_is_scaled():
    """Section 6: Adam divides each step by the size of recent gradients, so a constant
    factor on a parameter's gradient (LSQ's gradient scale) hardly matters."""
    paths = []
    for factor in (1.0, 0.01):
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
        optimizer = torch.optim.Adam([p], lr=0.01)
        for _ in range(50):
            optimizer.zero_grad()
            p.grad = factor * (2 * (p.detach() - torch.tensor([3.0, 0.5], dtype=torch.float64)))
            optimizer.step()
        paths.append(p.detach().clone())
    assert torch.allclose(paths[0], paths[1], atol=1e-5)


def test_there_is_no_3_bit_packed_layer():
    """Section 7: the packed layer takes 2, 4 or 8 bits (widths that fill a byte), not 3."""
    with pytest.raises(ValueError, match="n_bits must be 2, 4 or 8"):
        PackedLinearLayer(8, 2, n_bits=3)


def test_train_qat_records_every_10_steps_by_default():
    """Section 6: a TrainingRecord every 10 steps (and at step 0)."""
    assert inspect.signature(train_qat).parameters["record_every"].default == 10
    assert inspect.signature(train_qat).parameters["steps"].default == 200


def test_digits_mlp_has_linear_layers_and_relus_and_no_batch_norm():
    """Section 8c: three nn.Linear layers, torch.relu in forward, no batch norm."""
    model = DigitsMLP()
    kinds = [type(m).__name__ for _, m in model.named_children()]
    assert kinds == ["Linear", "Linear", "Linear"]
    source = inspect.getsource(DigitsMLP.forward)
    assert source.count("torch.relu(") == 2 and "norm" not in source.lower()


def test_pytorchs_conv_bn_qat_fake_quantizes_the_folded_weight():
    """Section 8c: PyTorch's fused conv + batch-norm QAT modules fake-quantize the weight
    times gamma / sqrt(running_var + eps)."""
    from torch.ao.nn.intrinsic.qat.modules import conv_fused

    source = "".join(inspect.getsource(conv_fused._ConvBnNd._forward_approximate).split())
    assert "scale_factor=self.bn.weight/running_std" in source
    assert "self.weight_fake_quant(self.weight*scale_factor" in source


def test_a_measured_scale_passes_no_gradient():
    """Section 5: without a given scale, the scale is measured without a gradient, so the
    weights' gradient is the mask alone (also for the largest weight of each row)."""
    w = seeded_randn(4, 16, seed=5).requires_grad_(True)
    fake_quantize_ste_blockwise(w, (1, 16), n_bits=2).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # min-max: nothing clipped
