"""Tests for helper.py section 3, scale and zero point: ``get_q_scale_and_zero_point`` and
``qparams_from_range`` (symmetric and not, one pair per block).

The expected numbers come from two independent sources, never from helper.py itself: the
course's published numbers (CURRICULUM.md, lesson L2-B) and the formulas worked out here, and
PyTorch's ``torch.ao.quantization.MinMaxObserver``. The observer computes in float32 where
helper (like the course) computes in float64, so the zero points may differ by one step, but
only at exact ties of ``r_min / s``; there helper's must equal the exact rational answer.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import TEST_TENSOR, exact_zero_point, near_tie, seeded
from torch.ao.quantization import MinMaxObserver

import helper
from helper import SCALE_EPS, get_q_range, get_q_scale_and_zero_point, qparams_from_range

# ------------------------------------------------------------------------------------------
# The course's published numbers
# ------------------------------------------------------------------------------------------


def test_course_min_max_of_test_tensor():
    """L2-B: r_min is -184.0 and r_max is 728.5999755859375 (float32 728.6)."""
    assert TEST_TENSOR.min().item() == -184.0
    assert TEST_TENSOR.max().item() == 728.5999755859375


def test_course_scale_and_zero_point_exact():
    """L2-B: scale 3.578823433670343 (a float) and zero point -77 (an int), exactly."""
    scale, zero_point = get_q_scale_and_zero_point(TEST_TENSOR)
    assert type(scale) is float and type(zero_point) is int
    assert scale == 3.578823433670343
    assert zero_point == -77
    # The course's unrounded zero point is -76.58645490333825.
    assert -128 - (-184.0 / scale) == pytest.approx(-76.58645490333825, abs=1e-12)


# ------------------------------------------------------------------------------------------
# Parity with PyTorch's MinMaxObserver
# ------------------------------------------------------------------------------------------


def _observer(dtype, n_bits):
    q_min, q_max = get_q_range(dtype, n_bits)
    # torch 2.13 observers accept dtype=torch.int16 directly (no qint32 workaround needed).
    observer_dtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}.get(dtype, dtype)
    return MinMaxObserver(
        dtype=observer_dtype,
        qscheme=torch.per_tensor_affine,
        quant_min=q_min,
        quant_max=q_max,
    )


OBSERVER_TENSORS = {
    "test_tensor": TEST_TENSOR,
    "random": seeded((8, 8), seed=11, magnitude=2.0, offset=0.3),
    "large": seeded((50,), seed=12, magnitude=1e4),
    "tiny": seeded((50,), seed=13, magnitude=1e-5),
    "positive": torch.tensor([100.0, 150.0, 200.0]),
    "negative": torch.tensor([-200.0, -150.0, -100.0]),
    "constant": torch.full((3, 3), 5.0),
    "negative_constant": torch.full((4,), -0.75),
    "all_zero": torch.zeros(2, 3),
    "single": torch.tensor([42.0]),
    # r_min / s is exactly -1.5 (int8, uint8): half to even gives -2, not -1
    "zero_point_tie": torch.tensor([-3.0, 507.0]),
    # symmetric: r_min / s is exactly -127.5 in int8/uint8, but -127.4999 in float32
    "symmetric": torch.tensor([-1.0, 0.25, 1.0]),
}


@pytest.mark.parametrize(
    ("dtype", "n_bits"),
    [
        (torch.int8, None),
        (torch.uint8, None),
        (torch.int16, None),
        (torch.int8, 4),
        (torch.uint8, 2),
        (torch.int16, 12),
    ],
)
@pytest.mark.parametrize("name", list(OBSERVER_TENSORS))
def test_scale_and_zero_point_match_min_max_observer(name, dtype, n_bits):
    """Scale equals MinMaxObserver's to float32 precision; so does the zero point, but for ties.

    The observer computes in float32, helper (like the course) in float64. Where ``r_min / s``
    is an exact tie, float32 rounding can break it the other way; there the zero point must
    equal the exact rational answer (half to even) and be one step from the observer's.
    """
    x = OBSERVER_TENSORS[name]
    observer = _observer(dtype, n_bits)
    observer(x)
    torch_scale, torch_zero_point = observer.calculate_qparams()
    scale, zero_point = get_q_scale_and_zero_point(x, dtype, n_bits)
    assert scale == pytest.approx(torch_scale.item(), rel=1e-6)
    q_min, q_max = get_q_range(dtype, n_bits)
    assert q_min <= zero_point <= q_max
    assert zero_point == exact_zero_point(x, q_min, q_max)
    r_min = min(x.min().item(), 0.0)
    if near_tie(torch.tensor([r_min]), scale).item():
        assert abs(zero_point - torch_zero_point.item()) <= 1
    else:
        assert zero_point == torch_zero_point.item()


def test_symmetric_range_zero_point_is_the_exact_tie_not_float32():
    """[-1, 1] in int8: r_min / s = -127.5 exactly, so z = -128 + 128 = 0 (observer: -1)."""
    x = OBSERVER_TENSORS["symmetric"]
    assert get_q_scale_and_zero_point(x, torch.int8)[1] == 0
    assert get_q_scale_and_zero_point(x, torch.uint8)[1] == 128
    observer = _observer(torch.int8, None)
    observer(x)
    # Measured with torch 2.13: float32 turns the tie into -127.49999, which rounds to -127.
    assert observer.calculate_qparams()[1].item() == -1


def test_all_zero_scale_is_observer_eps():
    """An all-zero tensor gets scale SCALE_EPS, which is PyTorch's observer eps."""
    observer = _observer(torch.int8, None)
    assert SCALE_EPS == observer.eps.item() == torch.finfo(torch.float32).eps
    assert get_q_scale_and_zero_point(torch.zeros(5))[0] == SCALE_EPS


# ------------------------------------------------------------------------------------------
# qparams_from_range: one scale and zero point per block
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "n_bits"),
    [(torch.int8, None), (torch.int8, 4), (torch.int16, None), (torch.int16, 2)],
)
def test_qparams_symmetric_signed_is_absmax_over_q_max(dtype, n_bits):
    """Signed symmetric: z = 0 and s = max(|r_min|, |r_max|) / q_max, per block."""
    q_min, q_max = get_q_range(dtype, n_bits)
    r_min = torch.tensor([-3.0, -1.0, 0.0, 0.0, 2.0])
    r_max = torch.tensor([1.0, 5.0, 0.0, 7.0, 4.0])
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric=True)
    expected = [3.0 / q_max, 5.0 / q_max, SCALE_EPS, 7.0 / q_max, 4.0 / q_max]
    assert scale.dtype == torch.float64 and zero_point.dtype == torch.int64
    assert scale.tolist() == expected
    assert zero_point.tolist() == [0] * 5


@pytest.mark.parametrize("n_bits", [None, 2, 4, 7])
def test_qparams_symmetric_unsigned_uses_the_midpoint(n_bits):
    """Unsigned symmetric: z = (q_min + q_max + 1) // 2 and s = max|r| / (q_max - z)."""
    q_min, q_max = get_q_range(torch.uint8, n_bits)
    z = 2 ** ((n_bits or 8) - 1)  # 128 for 8 bits, 2 for 2 bits
    scale, zero_point = qparams_from_range(
        torch.tensor([-6.0, 0.0]), torch.tensor([2.0, 0.0]), q_min, q_max, symmetric=True
    )
    assert zero_point.tolist() == [z, z]
    assert scale.tolist() == [6.0 / (q_max - z), SCALE_EPS]
    # the most negative value lands on q_min + 1 or above: nothing is clipped
    assert round(-6.0 / scale[0].item()) + z >= q_min


def test_qparams_asymmetric_matches_the_scalar_formula_per_block():
    """Asymmetric, per block, equals the per-tensor scale_and_zero_point_from_range."""
    r_min = torch.tensor([[-184.0, 100.0], [-3.0, 0.0]])
    r_max = torch.tensor([[728.5999755859375, 200.0], [507.0, 0.0]])
    scale, zero_point = qparams_from_range(r_min, r_max, -128, 127)
    assert scale.shape == zero_point.shape == (2, 2)
    for i, j in itertools.product(range(2), range(2)):
        expected = helper.scale_and_zero_point_from_range(
            r_min[i, j].item(), r_max[i, j].item(), -128, 127
        )
        assert (scale[i, j].item(), zero_point[i, j].item()) == expected
    assert (scale[0, 0].item(), zero_point[0, 0].item()) == (3.578823433670343, -77)
    assert zero_point[1, 0].item() == -128 + 2  # -3 / s = -1.5 exactly: half to even gives -2
    assert scale[1, 1].item() == SCALE_EPS
