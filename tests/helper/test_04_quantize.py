"""Tests for helper.py section 4, quantize: ``linear_q_with_scale_and_zero_point`` and
``linear_quantization``, from the course's numbers to properties of any tensor.

The expected numbers come from two independent sources, never from helper.py itself:

* the course's published numbers (CURRICULUM.md, lessons L2-A and L2-B), and
* PyTorch's own quantization: ``torch.quantize_per_tensor`` and
  ``torch.fake_quantize_per_tensor_affine``.

PyTorch computes ``r * (1 / s)`` in float32 where helper computes ``r / s``, and its
``quantize_per_tensor`` kernel (fbgemm) rounds ``r / s + z`` instead of ``r / s``, so the two may
disagree by one step, but only where ``r / s`` is (within float32 error) exactly halfway between
two integers. The parity tests allow exactly that and nothing else.

Bad input is in test_bad_input.py; the chunked path for large tensors in test_fast_paths.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import (
    INT_DTYPES,
    PARITY_TENSORS,
    QUANTIZE_PER_TENSOR_DEPRECATION,
    TEST_TENSOR,
    assert_differs_only_at_near_ties,
    real_tensors,
    reference_quantize,
    seeded,
    torch_quantize_per_tensor,
)
from hypothesis import given
from hypothesis import strategies as st

from helper import (
    SCALE_EPS,
    get_q_range,
    get_q_scale_and_zero_point,
    linear_dequantization,
    linear_q_with_scale_and_zero_point,
    linear_quantization,
    quantization_error,
)

# ------------------------------------------------------------------------------------------
# The course's published numbers
# ------------------------------------------------------------------------------------------


def test_course_l2a_quantize_with_scale_3_5_and_zero_point_minus_70():
    """L2-A: the quantized test tensor with s = 3.5, z = -70 (728.6 saturates at 127)."""
    q = linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -70)
    expected = torch.tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8)
    assert q.dtype == torch.int8
    assert torch.equal(q, expected)


def test_course_l2b_linear_quantization_round_trip():
    """L2-B: the full quantizer's q values and an MSE of about 1.573."""
    q, scale, zero_point = linear_quantization(TEST_TENSOR)
    expected = torch.tensor([[-23, -81, 127], [-51, 6, -128], [-77, 114, -8]], dtype=torch.int8)
    assert torch.equal(q, expected)
    assert (scale, zero_point) == (3.578823433670343, -77)
    deq = linear_dequantization(q, scale, zero_point)
    mse = (deq - TEST_TENSOR).square().mean()  # the course's metric, computed here
    assert mse.item() == pytest.approx(1.5730, abs=5e-4)
    assert quantization_error(TEST_TENSOR, deq).item() == pytest.approx(mse.item(), rel=1e-6)


def test_course_l2b_errors_are_at_most_half_a_step():
    """L2-B: no value of the test tensor is clipped, so every error is at most s/2."""
    q, scale, zero_point = linear_quantization(TEST_TENSOR)
    deq = linear_dequantization(q, scale, zero_point)
    mse = quantization_error(TEST_TENSOR, deq).item()
    assert 0 < mse <= scale**2 / 4  # each error is at most s/2
    assert (deq - TEST_TENSOR).abs().max().item() <= scale / 2 + 1e-4


# ------------------------------------------------------------------------------------------
# Parity with PyTorch's own quantization
# ------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("name", list(PARITY_TENSORS))
def test_quantize_matches_quantize_per_tensor(name, dtype):
    """helper's q equals quantize_per_tensor(...).int_repr(), except at near-ties."""
    x = PARITY_TENSORS[name]
    scale, zero_point = get_q_scale_and_zero_point(x, dtype)
    if name == "ties":
        scale, zero_point = 0.1, get_q_range(dtype)[0] + 121  # an odd zero point for int8
    ours = linear_q_with_scale_and_zero_point(x, scale, zero_point, dtype)
    theirs = torch_quantize_per_tensor(x, scale, zero_point, dtype)
    assert ours.dtype == dtype and theirs.int_repr().dtype == dtype
    count = assert_differs_only_at_near_ties(x, ours, theirs.int_repr(), scale)
    if name != "ties":
        assert count <= max(2, x.numel() // 100), "near-ties should be rare in random data"


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
def test_odd_zero_point_exact_ties_are_the_known_one_step_disagreement():
    """quantize_per_tensor rounds r/s + z: with an odd z an exact tie goes the other way."""
    x = (torch.arange(-20, 20, dtype=torch.float32) + 0.5) * 0.25  # exact ties, s = 1/4
    ours = linear_q_with_scale_and_zero_point(x, 0.25, 3)
    theirs = torch_quantize_per_tensor(x, 0.25, 3, torch.int8).int_repr()
    assert_differs_only_at_near_ties(x, ours, theirs, 0.25)
    # helper rounds r / s half to even and then adds z, as fake_quantize and the course do.
    assert torch.equal(ours, (torch.round(x / 0.25) + 3).to(torch.int8))
    fake = torch.fake_quantize_per_tensor_affine(x, 0.25, 3, -128, 127)
    assert torch.equal(linear_dequantization(ours, 0.25, 3), fake)


FAKE_QUANT_CASES = [(torch.int8, n) for n in range(2, 8)]
FAKE_QUANT_CASES += [(torch.uint8, n) for n in range(2, 8)]
FAKE_QUANT_CASES += [(torch.int8, None), (torch.uint8, None)]
FAKE_QUANT_CASES += [(torch.int16, None), (torch.int16, 12), (torch.int16, 4)]


@pytest.mark.parametrize(("dtype", "n_bits"), FAKE_QUANT_CASES)
@pytest.mark.parametrize("name", ["2d", "3d", "large", "tiny", "positive", "ties"])
def test_round_trip_matches_fake_quantize(name, dtype, n_bits):
    """dequantize(quantize(x)) equals fake_quantize_per_tensor_affine, except at near-ties."""
    x = PARITY_TENSORS[name]
    q_min, q_max = get_q_range(dtype, n_bits)
    q, scale, zero_point = linear_quantization(x, dtype, n_bits)
    ours = linear_dequantization(q, scale, zero_point)
    theirs = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, q_min, q_max)
    # Compare on the integer grid: (deq / s) + z recovers each side's quantized value.
    steps_ours = torch.round(ours.double() / scale) + zero_point
    steps_theirs = torch.round(theirs.double() / scale) + zero_point
    assert_differs_only_at_near_ties(x, steps_ours, steps_theirs, scale)
    same = steps_ours == steps_theirs
    torch.testing.assert_close(ours[same], theirs[same], rtol=1e-6, atol=0.0)


# ------------------------------------------------------------------------------------------
# Odd but valid input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
def test_constant_tensor_round_trips_without_division_by_zero(dtype):
    """The course's ZeroDivisionError case: [5, 5, 5] gets a positive scale and round-trips."""
    t = torch.full((3,), 5.0)
    q, scale, zero_point = linear_quantization(t, dtype)
    q_min, q_max = get_q_range(dtype)
    assert scale == pytest.approx(5.0 / (q_max - q_min), rel=1e-12)
    assert zero_point == q_min
    deq = linear_dequantization(q, scale, zero_point)
    assert bool(((deq - t).abs() <= scale / 2).all())


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize("shape", [(), (1,), (4, 4)])
def test_all_zero_tensor_gets_eps_scale_and_exact_zeros(dtype, shape):
    """All zeros: scale is SCALE_EPS, q is the zero point, the round trip is exact zeros."""
    t = torch.zeros(shape)
    q, scale, zero_point = linear_quantization(t, dtype)
    assert scale == SCALE_EPS
    assert bool((q == zero_point).all())
    deq = linear_dequantization(q, scale, zero_point)
    assert not bool(deq.isnan().any())
    assert torch.equal(deq, t)
    assert quantization_error(t, deq).item() == 0.0


@pytest.mark.parametrize(
    "values", [[100.0, 150.0, 200.0], [-200.0, -150.0, -100.0]], ids=["positive", "negative"]
)
def test_one_signed_tensors_do_not_saturate(values):
    """The course's clipped-zero-point defect is absent: [100, 150, 200] round-trips within s/2."""
    t = torch.tensor(values)
    q, scale, zero_point = linear_quantization(t)
    assert len(set(q.tolist())) == 3, "all values saturated to one integer"
    deq = linear_dequantization(q, scale, zero_point)
    assert bool(((deq - t).abs() <= scale / 2 + 1e-5).all())
    # The range is extended to hold 0: 0 is representable, z is at an end of the range.
    assert zero_point == (-128 if values[0] > 0 else 127)
    assert scale == pytest.approx(200.0 / 255, rel=1e-12)


def test_integer_input_tensor_is_quantized_like_its_float_version():
    """An int64 tensor is accepted and quantized exactly like the same values in float32."""
    ints = torch.tensor([[-7, 0, 3], [120, -64, 5]])
    q, scale, zero_point = linear_quantization(ints)
    q_float, scale_float, zero_point_float = linear_quantization(ints.float())
    assert (scale, zero_point) == (scale_float, zero_point_float)
    assert torch.equal(q, q_float)
    assert ints.dtype == torch.int64  # unchanged


def test_float64_input_follows_the_formula_in_float64():
    """A float64 tensor is divided in float64 and round-trips within s/2."""
    t = seeded((20, 20), seed=31, magnitude=100.0).double()
    q, scale, zero_point = linear_quantization(t)
    assert torch.equal(q, reference_quantize(t, scale, zero_point, -128, 127, torch.int8))
    deq = linear_dequantization(q, scale, zero_point)
    assert bool(((deq.double() - t).abs() <= scale / 2 + 1e-4).all())


def test_bfloat16_input_clamps_instead_of_wrapping():
    """bfloat16 127.5 rounds to 128 and must clamp to 127, never wrap to -128 (course defect)."""
    t = torch.tensor([127.5, 200.0, -128.5, -300.0, 0.5, 1.5], dtype=torch.bfloat16)
    q = linear_q_with_scale_and_zero_point(t, 1.0, 0)
    assert torch.equal(q, torch.tensor([127, 127, -128, -128, 0, 2], dtype=torch.int8))
    q, scale, zero_point = linear_quantization(t)
    q_float, scale_float, zero_point_float = linear_quantization(t.float())
    assert torch.equal(q, q_float) and (scale, zero_point) == (scale_float, zero_point_float)


def test_zero_dim_tensor():
    """A 0-dim tensor gives a 0-dim result and round-trips within s/2."""
    t = torch.tensor(3.0)
    q, scale, zero_point = linear_quantization(t)
    assert q.shape == () and q.item() == 127 and zero_point == -128
    deq = linear_dequantization(q, scale, zero_point)
    assert deq.shape == () and abs(deq.item() - 3.0) <= scale / 2
    assert linear_q_with_scale_and_zero_point(t, torch.tensor(0.5), torch.tensor(2)).item() == 8


def test_tensor_that_requires_grad_is_accepted():
    """A weight that requires grad (an nn.Parameter) can be quantized, with the same result."""
    weight = torch.nn.Parameter(seeded((4, 6), seed=32))
    q, scale, zero_point = linear_quantization(weight)
    assert torch.equal(q, linear_quantization(weight.detach())[0])
    scale_t = torch.full((4, 1), scale, requires_grad=True)
    q2 = linear_q_with_scale_and_zero_point(weight, scale_t, zero_point)
    assert torch.equal(q2, q)
    assert not q.requires_grad and weight.grad is None


# ------------------------------------------------------------------------------------------
# Properties (hypothesis)
# ------------------------------------------------------------------------------------------


@st.composite
def dtypes_and_bits(draw):
    """An integer dtype and n_bits None or 2..8."""
    dtype = draw(st.sampled_from(INT_DTYPES))
    n_bits = draw(st.one_of(st.none(), st.integers(2, 8)))
    return dtype, n_bits


@given(real_tensors(), dtypes_and_bits())
def test_property_round_trip_error_at_most_half_a_step(t, dtype_bits):
    """Every |dequantized - original| is at most s/2 (plus float rounding)."""
    dtype, n_bits = dtype_bits
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    deq = linear_dequantization(q, scale, zero_point)
    error = (deq.double() - t.double()).abs()
    tolerance = 1e-6 * (t.double().abs() + scale) + 1e-30
    assert bool((error <= scale / 2 + tolerance).all())


@given(real_tensors(), dtypes_and_bits())
def test_property_zero_is_exact(t, dtype_bits):
    """A real 0 quantizes to the zero point and dequantizes to exactly 0.0."""
    dtype, n_bits = dtype_bits
    t = t.clone()
    t.view(-1)[0] = 0.0  # every tensor here contains a zero
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    zeros = t == 0
    assert bool((q[zeros] == zero_point).all())
    deq = linear_dequantization(q, scale, zero_point)
    assert bool((deq[zeros] == 0.0).all())
    assert not bool(deq.isnan().any())


@given(real_tensors(), dtypes_and_bits())
def test_property_range_scale_and_zero_point_are_valid(t, dtype_bits):
    """q has the target dtype and lies in [q_min, q_max]; s >= eps is finite; z is in range."""
    dtype, n_bits = dtype_bits
    q_min, q_max = get_q_range(dtype, n_bits)
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    assert q.dtype == dtype and q.shape == t.shape
    assert q_min <= int(q.min()) and int(q.max()) <= q_max
    assert type(scale) is float and math.isfinite(scale) and scale >= SCALE_EPS
    assert type(zero_point) is int and q_min <= zero_point <= q_max
    assert (scale, zero_point) == get_q_scale_and_zero_point(t, dtype, n_bits)


@given(real_tensors(), dtypes_and_bits())
def test_property_result_does_not_depend_on_shape(t, dtype_bits):
    """Quantizing t.flatten() gives the same values as t, reshaped."""
    dtype, n_bits = dtype_bits
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    q_flat, scale_flat, zero_point_flat = linear_quantization(t.flatten(), dtype, n_bits)
    assert (scale, zero_point) == (scale_flat, zero_point_flat)
    assert torch.equal(q, q_flat.reshape(t.shape))
    deq = linear_dequantization(q, scale, zero_point)
    assert torch.equal(deq, linear_dequantization(q_flat, scale, zero_point).reshape(t.shape))


@given(real_tensors(), dtypes_and_bits())
def test_property_matches_fake_quantize(t, dtype_bits):
    """The round trip equals torch.fake_quantize_per_tensor_affine except at near-ties."""
    dtype, n_bits = dtype_bits
    q_min, q_max = get_q_range(dtype, n_bits)
    t = t.float()
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    theirs = torch.fake_quantize_per_tensor_affine(t, scale, zero_point, q_min, q_max)
    steps_theirs = torch.round(theirs.double() / scale) + zero_point
    assert_differs_only_at_near_ties(t, q, steps_theirs, scale)


@given(real_tensors(), dtypes_and_bits(), st.integers(0, 2**31 - 1))
def test_property_no_public_function_modifies_its_inputs(t, dtype_bits, seed):
    """Every public function leaves its tensor arguments unchanged."""
    dtype, n_bits = dtype_bits
    q_min, q_max = get_q_range(dtype, n_bits)
    original = t.clone()
    scale, zero_point = get_q_scale_and_zero_point(t, dtype, n_bits)
    q, _, _ = linear_quantization(t, dtype, n_bits)
    rows = t.shape[0] if t.dim() else 1
    generator = torch.Generator().manual_seed(seed)
    scale_t = (scale * (1 + torch.rand(rows, generator=generator))).reshape(
        (rows,) + (1,) * max(t.dim() - 1, 0)
    )
    scale_t = scale_t.reshape(()) if t.dim() == 0 else scale_t
    zero_point_t = torch.full(scale_t.shape, zero_point)
    params = (scale_t.clone(), zero_point_t.clone())
    linear_q_with_scale_and_zero_point(t, scale_t, zero_point_t, dtype, n_bits)
    q_before = q.clone()
    deq = linear_dequantization(q, scale_t, zero_point_t)
    deq_before = deq.clone()
    quantization_error(t, deq)
    assert torch.equal(t, original) and t.dtype == original.dtype
    assert torch.equal(q, q_before)
    assert torch.equal(deq, deq_before)
    assert torch.equal(scale_t, params[0]) and torch.equal(zero_point_t, params[1])
    assert q_min <= zero_point <= q_max
