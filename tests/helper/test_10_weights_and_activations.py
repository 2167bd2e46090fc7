"""Tests for helper.py section 10: linear layers with quantized weights (and activations),
and lesson 06's ``sqnr_db_per_row`` and ``plot_output_sqnr``.

``quantized_linear_W8A32_without_bias`` must equal ``F.linear`` on the dequantized weight, for
per-tensor and per-channel scales, any zero point and any batch shape ``(..., in)``.
``quantized_linear_W8A8_without_bias`` must equal the float computation on dequantized
activations and weights (to float32 tolerance) and accumulate exactly in integers.
Expected values are computed here from the formulas or with PyTorch, never with helper.
Bad input is in test_bad_input.py.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from conftest import seeded
from hypothesis import given, settings
from hypothesis import strategies as st

import helper
from helper import (
    quantized_linear_W8A8_without_bias,
    quantized_linear_W8A32_without_bias,
)

#: The course's L3-E example: input [1, 2, 3] and a 3x3 weight, symmetric per tensor.
COURSE_INPUT = torch.tensor([1.0, 2.0, 3.0])

COURSE_WEIGHT = torch.tensor([[-2, -1.13, 0.42], [-1.51, 0.25, 1.62], [0.23, 1.35, 2.15]])

#: Fewer examples than the profile's 150 (conftest.py): each one runs two layers.
PROPERTY = settings(max_examples=60)


def dequantized(q: torch.Tensor, scale, zero_point) -> torch.Tensor:
    """``s * (q - z)`` in float32, written out here (no helper)."""
    scale = torch.as_tensor(scale, dtype=torch.float32)
    return (q.float() - torch.as_tensor(zero_point, dtype=torch.float32)) * scale


def random_weight(out_features, in_features, seed, dtype=torch.int8):
    """Random integers of ``dtype``'s full range (seeded)."""
    info = torch.iinfo(dtype)
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(
        info.min, info.max + 1, (out_features, in_features), generator=generator, dtype=dtype
    )


def positive(shape, seed):
    """Scales: positive float32 values around 0.01 (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    return 0.001 + 0.02 * torch.rand(shape, generator=generator)


# ------------------------------------------------------------------------------------------
# The course's W8A32 example
# ------------------------------------------------------------------------------------------


def test_course_w8a32_example():
    """L3-E: s = 2.15 / 127, q_w by hand, and y = s * (q_w @ x), close to x @ W.T."""
    s = torch.tensor(2.15).item() / 127  # the float32 value of 2.15, over q_max
    q_w = torch.tensor([[-118, -67, 25], [-89, 15, 96], [14, 80, 127]], dtype=torch.int8)
    # e.g. -1.13 / s = -66.75 -> -67 and 0.42 / s = 24.81 -> 25
    assert q_w.tolist() == [[round(w / s) for w in row] for row in COURSE_WEIGHT.tolist()]
    y = quantized_linear_W8A32_without_bias(COURSE_INPUT, q_w, s, 0)
    assert y.shape == (3,) and y.dtype == torch.float32
    x = COURSE_INPUT.tolist()
    expected = [s * sum(q * xi for q, xi in zip(row, x, strict=True)) for row in q_w.tolist()]
    assert y.tolist() == pytest.approx(expected, rel=1e-6)
    assert y.tolist() == pytest.approx([-2.9965, 3.8768, 9.3957], abs=1e-4)
    # each weight is off by at most s/2, so each output by at most sum(|x|) * s/2
    exact = (COURSE_WEIGHT.double() @ COURSE_INPUT.double()).tolist()
    assert exact == pytest.approx([-3.0, 3.85, 9.38], abs=1e-6)
    for ours, true in zip(y.tolist(), exact, strict=True):
        assert abs(ours - true) <= 6 * s / 2


def test_course_defect_scaling_after_f_linear_breaks_per_channel():
    """The course multiplies by s_w after F.linear: with an (out, 1) scale that broadcasts a
    (batch, out) result to (out, out). helper dequantizes first and keeps (batch, out)."""
    q_w = random_weight(3, 3, seed=1)
    s_w = positive((3, 1), seed=2)
    x = COURSE_INPUT.reshape(1, 3)
    wrong = F.linear(x, q_w.float()) * s_w
    assert wrong.shape == (3, 3)
    y = quantized_linear_W8A32_without_bias(x, q_w, s_w, 0)
    assert y.shape == (1, 3)
    torch.testing.assert_close(y, F.linear(x, dequantized(q_w, s_w, 0)))
    assert not torch.allclose(y, wrong[:1])  # it is not a matter of picking the right row


def test_per_channel_scale_after_linear_broadcasts_and_only_the_diagonal_is_right():
    """A (1, 3) output times a (3, 1) scale is (3, 3); its diagonal is the right output."""
    x = COURSE_INPUT.reshape(1, 3)  # one token
    q, s = helper.linear_q_symmetric_per_channel(COURSE_WEIGHT, dim=0)
    late = F.linear(x, q.float()) * s
    right = helper.quantized_linear_W8A32_without_bias(x, q, s, 0)
    assert late.shape == (3, 3)
    assert torch.allclose(torch.diagonal(late), right[0])


# ------------------------------------------------------------------------------------------
# W8A32 equals F.linear on the dequantized weight
# ------------------------------------------------------------------------------------------


W8A32_PARAMS = {
    "per_tensor_number": (0.013, 0),
    "per_tensor_zero_point": (0.013, -7),
    "per_tensor_0d_tensors": (torch.tensor(0.02), torch.tensor(5)),
    "per_channel": (positive((5, 1), seed=3), 0),
    "per_channel_zero_points": (positive((5, 1), seed=4), torch.arange(-2, 3).reshape(5, 1)),
    "per_channel_float64": (positive((5, 1), seed=5).double(), torch.full((5, 1), 3)),
}


@pytest.mark.parametrize("batch_shape", [(), (1,), (4,), (2, 3), (2, 1, 3)])
@pytest.mark.parametrize("params", list(W8A32_PARAMS))
def test_w8a32_equals_f_linear_on_the_dequantized_weight(params, batch_shape):
    """Per tensor or per channel, any zero point, input of shape (..., in)."""
    s_w, z_w = W8A32_PARAMS[params]
    q_w = random_weight(5, 7, seed=6)
    x = seeded((*batch_shape, 7), seed=7)
    y = quantized_linear_W8A32_without_bias(x, q_w, s_w, z_w)
    expected = F.linear(x, dequantized(q_w, s_w, z_w))
    assert y.shape == (*batch_shape, 5) and y.dtype == torch.float32
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16])
def test_w8a32_other_weight_dtypes(dtype):
    """uint8 (zero point 128) and int16 weights: q - z is computed in float, never wrapped."""
    q_w = random_weight(4, 6, seed=8, dtype=dtype)
    z_w = 128 if dtype == torch.uint8 else -300
    x = seeded((3, 6), seed=9)
    y = quantized_linear_W8A32_without_bias(x, q_w, 0.01, z_w)
    expected = F.linear(x.double(), (q_w.double() - z_w) * 0.01).float()
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_w8a32_keeps_the_input_dtype(dtype):
    """float16 / bfloat16 / float64 inputs return their own dtype (computed in float32)."""
    q_w = random_weight(5, 7, seed=10)
    s_w = positive((5, 1), seed=11)
    x = seeded((2, 7), seed=12).to(dtype)
    y = quantized_linear_W8A32_without_bias(x, q_w, s_w, 0)
    assert y.dtype == dtype and y.shape == (2, 5)
    expected = F.linear(x.float(), dequantized(q_w, s_w, 0))
    torch.testing.assert_close(y.float(), expected, rtol=1e-2, atol=1e-2)


def test_w8a32_does_not_modify_its_inputs():
    """Input, weight, scale and zero point are unchanged afterwards."""
    q_w, s_w, z_w = random_weight(5, 7, seed=13), positive((5, 1), seed=14), torch.full((5, 1), 2)
    x = seeded((3, 7), seed=15)
    before = [t.clone() for t in (x, q_w, s_w, z_w)]
    quantized_linear_W8A32_without_bias(x, q_w, s_w, z_w)
    for t, b in zip((x, q_w, s_w, z_w), before, strict=True):
        assert torch.equal(t, b) and t.dtype == b.dtype


# ------------------------------------------------------------------------------------------
# W8A8: integer accumulation
# ------------------------------------------------------------------------------------------


def w8a8_float(q_x, s_x, z_x, q_w, s_w, z_w) -> torch.Tensor:
    """The float computation: F.linear on dequantized activations and weights (float64)."""
    x = (q_x.double() - torch.as_tensor(z_x).double()) * torch.as_tensor(s_x).double()
    w = (q_w.double() - torch.as_tensor(z_w).double()) * torch.as_tensor(s_w).double()
    return F.linear(x, w)


W8A8_PARAMS = {
    "tensor_tensor": lambda b, o: (0.02, 0, 0.01, 0),
    "tensor_tensor_zero_points": lambda b, o: (0.02, -5, 0.01, 3),
    "token_tensor": lambda b, o: (positive((b, 1), 16), torch.arange(b).reshape(b, 1), 0.01, 0),
    "tensor_channel": lambda b, o: (0.02, 7, positive((o, 1), 17), torch.full((o, 1), -1)),
    "token_channel": lambda b, o: (
        positive((b, 1), 18),
        torch.full((b, 1), -128),
        positive((o, 1), 19).double(),
        torch.arange(o).reshape(o, 1) - 3,
    ),
    "0d_tensors": lambda b, o: (torch.tensor(0.02), torch.tensor(1), torch.tensor(0.5), 0),
}


@pytest.mark.parametrize("params", list(W8A8_PARAMS))
def test_w8a8_equals_the_float_computation(params):
    """Per tensor / per token activations x per tensor / per channel weights, with zero points."""
    batch, out_features, in_features = 4, 6, 32
    s_x, z_x, s_w, z_w = W8A8_PARAMS[params](batch, out_features)
    q_x = random_weight(batch, in_features, seed=20)
    q_w = random_weight(out_features, in_features, seed=21)
    y = quantized_linear_W8A8_without_bias(q_x, s_x, z_x, q_w, s_w, z_w)
    assert y.shape == (batch, out_features) and y.dtype == torch.float32
    expected = w8a8_float(q_x, s_x, z_x, q_w, s_w, z_w).float()
    torch.testing.assert_close(y, expected, rtol=2e-7, atol=1e-6)


def test_w8a8_accumulates_exactly_in_integers():
    """With s = 1 and z = 0 the result is the exact integer dot product, rounded once to
    float32, even where the sums pass 2**24 and a float32 accumulation would round each step."""
    q_x = random_weight(3, 4096, seed=22)
    q_w = random_weight(5, 4096, seed=23)
    y = quantized_linear_W8A8_without_bias(q_x, 1.0, 0, q_w, 1.0, 0)
    assert torch.equal(y, (q_x.long() @ q_w.long().T).float())
    generator = torch.Generator().manual_seed(26)
    q_x = torch.randint(100, 128, (2, 4096), generator=generator, dtype=torch.int8)
    q_w = torch.randint(100, 128, (3, 4096), generator=generator, dtype=torch.int8)
    exact = q_x.long() @ q_w.long().T
    assert int(exact.min()) > 2**24  # float32 no longer holds every integer here
    y = quantized_linear_W8A8_without_bias(q_x, 1.0, 0, q_w, 1.0, 0)
    assert torch.equal(y, exact.float())


def test_w8a8_does_not_overflow_int32():
    """(q - z) of int8 reaches 255 in magnitude: 40000 products of 255 * 255 exceed 2**31."""
    in_features = 40_000
    q_x = torch.full((1, in_features), 127, dtype=torch.int8)
    q_w = torch.full((2, in_features), 127, dtype=torch.int8)
    q_w[1] = -128
    y = quantized_linear_W8A8_without_bias(q_x, 1.0, -128, q_w, 1.0, -128)
    exact = in_features * 255 * 255
    assert exact > 2**31
    assert torch.equal(y, torch.tensor([[exact, 0]], dtype=torch.float64).float())


def test_w8a8_int16_activations_do_not_overflow():
    """int16 codes (an A16 layer): single products reach 65535 * 255, beyond int32 sums."""
    q_x = torch.full((1, 1000), 32767, dtype=torch.int16)
    q_w = torch.full((1, 1000), 127, dtype=torch.int8)
    y = quantized_linear_W8A8_without_bias(q_x, 1.0, -32768, q_w, 1.0, -128)
    assert y.item() == torch.tensor(1000 * 65535 * 255, dtype=torch.float64).float().item()


def test_w8a8_integer_product_equals_the_float_product_of_dequantized_tensors():
    """Factoring per-token and per-channel scales out of an int32 sum changes nothing."""
    x = torch.tensor([[1.0, 2.0, 3.0], [0.02, -0.05, 0.01]])
    q_x, s_x = helper.linear_q_symmetric_per_channel(x, dim=0)
    q_w, s_w = helper.linear_q_symmetric_per_channel(COURSE_WEIGHT, dim=0)
    integer = helper.quantized_linear_W8A8_without_bias(q_x, s_x, 0, q_w, s_w, 0)
    x_back = helper.linear_dequantization(q_x, s_x, 0).double()
    w_back = helper.linear_dequantization(q_w, s_w, 0).double()
    assert torch.allclose(integer.double(), x_back @ w_back.T, rtol=1e-6, atol=1e-9)


@PROPERTY
@given(
    st.integers(1, 5),
    st.integers(1, 6),
    st.integers(1, 40),
    st.sampled_from(["tensor", "row"]),
    st.sampled_from(["tensor", "row"]),
    st.integers(0, 2**31 - 1),
)
def test_property_w8a8_equals_float_and_w8a32(
    batch, out_features, in_features, x_mode, w_mode, seed
):
    """W8A8 == the float computation; and == W8A32 on the dequantized activations."""
    generator = torch.Generator().manual_seed(seed)

    def params(rows, mode):
        shape = (rows, 1) if mode == "row" else ()
        scale = 0.001 + torch.rand(shape, generator=generator)
        zero_point = torch.randint(-128, 128, shape, generator=generator)
        return scale, zero_point

    q_x = torch.randint(-128, 128, (batch, in_features), generator=generator, dtype=torch.int8)
    q_w = torch.randint(-128, 128, (out_features, in_features), generator=generator).to(torch.int8)
    s_x, z_x = params(batch, x_mode)
    s_w, z_w = params(out_features, w_mode)
    originals = [t.clone() for t in (q_x, s_x, z_x, q_w, s_w, z_w)]
    y = quantized_linear_W8A8_without_bias(q_x, s_x, z_x, q_w, s_w, z_w)
    expected = w8a8_float(q_x, s_x, z_x, q_w, s_w, z_w)
    scale = expected.abs().max().item() + 1e-30
    torch.testing.assert_close(y.double(), expected, rtol=1e-6, atol=1e-6 * scale)
    x = dequantized(q_x, s_x, z_x)
    y32 = quantized_linear_W8A32_without_bias(x, q_w, s_w, z_w)
    torch.testing.assert_close(y32.double(), expected, rtol=1e-5, atol=1e-5 * scale)
    for t, b in zip((q_x, s_x, z_x, q_w, s_w, z_w), originals, strict=True):
        assert torch.equal(t, b)


# ------------------------------------------------------------------------------------------
# sqnr_db_per_row and plot_output_sqnr (lesson 06)
# ------------------------------------------------------------------------------------------


def test_sqnr_per_row_is_sqnr_db_of_each_row():
    """Row b of the result is sqnr_db of row b."""
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(5, 7, generator=generator)
    y_back = y + 0.01 * torch.randn(5, 7, generator=generator)
    per_row = helper.sqnr_db_per_row(y, y_back)
    assert per_row.dtype == torch.float64 and per_row.shape == (5,)
    for row in range(5):
        assert math.isclose(per_row[row].item(), helper.sqnr_db(y[row], y_back[row]), rel_tol=1e-9)


def test_sqnr_per_row_exact_and_lost_rows():
    """An exact row is inf, an all-zero row that comes back non-zero -inf, a zeroed row 0."""
    y = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -4.0]])
    y_back = torch.tensor([[1.0, 2.0], [0.5, 0.0], [0.0, 0.0]])
    assert helper.sqnr_db_per_row(y, y_back).tolist() == [math.inf, -math.inf, 0.0]


def test_sqnr_per_row_rejects_bad_input_and_leaves_inputs_alone():
    """Shape mismatch and 0-dim tensors raise ValueError; the inputs are not modified."""
    y, y_back = torch.ones(2, 3), torch.zeros(2, 3)
    before = y.clone(), y_back.clone()
    helper.sqnr_db_per_row(y, y_back)
    assert torch.equal(y, before[0]) and torch.equal(y_back, before[1])
    with pytest.raises(ValueError, match="shape"):
        helper.sqnr_db_per_row(torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="0-dim"):
        helper.sqnr_db_per_row(torch.tensor(1.0), torch.tensor(1.5))


def test_plot_output_sqnr_returns_a_closed_figure_with_two_panels():
    """The figure is closed for pyplot (shown once) and has a bar per output."""
    y = torch.tensor([[1.0, 2.0, 3.0], [0.1, 0.2, -0.3]])
    outputs = {"a": y + 0.01, "b": y * 1.1, "exact": y.clone()}
    fig = helper.plot_output_sqnr(y, outputs, "title")
    assert not plt.fignum_exists(fig.number)
    left, right = fig.axes[:2]
    assert len(left.patches) == 3
    assert [t.get_text() for t in left.get_yticklabels()] == ["a", "b", "exact"]
    assert len(right.get_lines()) == 3
