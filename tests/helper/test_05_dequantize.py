"""Tests for helper.py section 5, dequantize: ``linear_dequantization``.

The expected values are the course's (lesson L2-A) and PyTorch's own ``.dequantize()`` of a
``torch.quantize_per_tensor`` tensor, never helper's own.
"""

from __future__ import annotations

import pytest
import torch
from conftest import (
    INT_DTYPES,
    PARITY_TENSORS,
    QUANTIZE_PER_TENSOR_DEPRECATION,
    TEST_TENSOR,
    torch_quantize_per_tensor,
)

from helper import (
    get_q_range,
    get_q_scale_and_zero_point,
    linear_dequantization,
    linear_q_with_scale_and_zero_point,
    quantization_error,
)


def test_course_l2a_dequantize_and_its_error():
    """L2-A: dequantized values 3.5 * (q + 70) and the course's MSE 170.8753."""
    q = linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -70)
    deq = linear_dequantization(q, 3.5, -70)
    expected = torch.tensor([[192.5, -14.0, 689.5], [91.0, 294.0, -185.5], [0.0, 686.0, 245.0]])
    assert deq.dtype == torch.float32
    assert torch.equal(deq, expected)
    mse = (deq - TEST_TENSOR).square().mean()
    assert mse.item() == pytest.approx(170.8753, abs=1e-4)
    assert quantization_error(TEST_TENSOR, deq).item() == pytest.approx(mse.item(), rel=1e-6)


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("name", list(PARITY_TENSORS))
def test_dequantize_matches_torch_dequantize(name, dtype):
    """helper's s * (q - z) on PyTorch's own int_repr equals PyTorch's .dequantize()."""
    x = PARITY_TENSORS[name]
    scale, zero_point = get_q_scale_and_zero_point(x, dtype)
    theirs = torch_quantize_per_tensor(x, scale, zero_point, dtype)
    ours = linear_dequantization(theirs.int_repr(), scale, zero_point)
    expected = theirs.dequantize()
    assert ours.dtype == expected.dtype == torch.float32
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
def test_dequantization_does_not_wrap_around(dtype):
    """q - z is computed in float: 127 - (-70) gives 197 * s, not a wrapped int8 value."""
    q_min, q_max = get_q_range(dtype)
    q = torch.tensor([q_min, q_max], dtype=dtype)
    zero_point = q_min + 58
    deq = linear_dequantization(q, 0.5, zero_point)
    assert deq.tolist() == [0.5 * (q_min - zero_point), 0.5 * (q_max - zero_point)]
