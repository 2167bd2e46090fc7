"""Tests for helper.py section 9, one quantization mechanism for every granularity (course
lessons L3-B to L3-D): ``block_shapes``, ``granularity_block_size``, ``block_range``,
``choose_qparams_affine`` (with a given ``r_range`` too), ``quantize_affine``,
``quantize_blockwise``, ``dequantize_affine``, ``per_element``, the course-named
``linear_q_symmetric_per_channel``, ``linear_q_symmetric_per_group`` and
``linear_dequantization_per_group``, and the lesson's ``bits_per_weight`` and
``plot_granularity_tradeoff``.

Expected numbers never come from helper.py itself. They come from:

* the course's inputs with values worked out here from the formulas (Python floats and loops
  over channels and groups, the way the course writes them),
* a reference written in this file that walks over every block with a Python loop.

Parity with PyTorch's per-channel quantization is in test_09_granularity_parity.py, bad input
in test_bad_input.py, the chunked path for large tensors in test_fast_paths.py.
"""

from __future__ import annotations

import itertools
import math

import matplotlib.pyplot as plt
import pytest
import torch
from conftest import (
    COLUMN_ABSMAX,
    GROUP_TENSOR,
    INT_DTYPES,
    ROW_ABSMAX,
    TEST_TENSOR,
    blocks_of,
    expand,
    f32,
    per_channel_block,
    per_group_block,
    real_tensors,
    reference_quantize,
    seeded,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

import helper
from helper import (
    SCALE_EPS,
    Blocks,
    TradeoffPoint,
    bits_per_weight,
    block_range,
    block_shapes,
    choose_qparams_affine,
    dequantize_affine,
    get_q_range,
    get_q_scale_and_zero_point,
    get_q_scale_symmetric,
    granularity_block_size,
    linear_dequantization,
    linear_dequantization_per_group,
    linear_q_symmetric,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
    linear_q_with_scale_and_zero_point,
    linear_quantization,
    per_element,
    plot_granularity_tradeoff,
    quantize_affine,
    quantize_blockwise,
)
from support.examples import varied_rows_weight

#: Property tests here run the whole mechanism on every example: fewer than the profile's 150.
PROPERTY = settings(max_examples=80)

PROPERTY_FEW = settings(max_examples=40)


def reference_blockwise(t, block_size, dtype, n_bits, symmetric):
    """``(q, scale, zero_point)`` block by block, from the formulas, with Python numbers.

    The scale and zero point follow CURRICULUM.md's formulas in float64 (Python floats); the
    quantize step is the one-liner with each element's own scale in the tensor's precision.
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    n_blocks = tuple(n // b for n, b in zip(t.shape, block_size, strict=True))
    scale = torch.empty(n_blocks, dtype=torch.float64)
    zero_point = torch.empty(n_blocks, dtype=torch.int64)
    for index, where in blocks_of(t, block_size):
        values = t[where].double().flatten().tolist()
        r_min, r_max = min(min(values), 0.0), max(max(values), 0.0)
        if symmetric:
            z = 0 if q_min < 0 else (q_min + q_max + 1) // 2
            s = max(max(-r_min, r_max) / (q_max - z), SCALE_EPS)
        else:
            s = max((r_max - r_min) / (q_max - q_min), SCALE_EPS)
            z = min(max(q_min - round(r_min / s), q_min), q_max)  # round: half to even
        scale[index], zero_point[index] = s, z
    s_elem = expand(scale, block_size)
    z_elem = expand(zero_point, block_size)
    q = reference_quantize(t, s_elem, z_elem, q_min, q_max, dtype)
    return q, scale, zero_point


# ------------------------------------------------------------------------------------------
# The course's inputs and their values (L3-B to L3-D)
# ------------------------------------------------------------------------------------------


def test_course_per_channel_dim_0():
    """L3-B: one scale per row, max|row| / 127, shape (3, 1); q worked out by hand."""
    q, scale = linear_q_symmetric_per_channel(TEST_TENSOR, dim=0)
    assert scale.shape == (3, 1) and scale.dtype == torch.float32
    expected_scale = [f32(m) / 127 for m in ROW_ABSMAX]
    torch.testing.assert_close(scale.flatten().double(), torch.tensor(expected_scale).double())
    expected = torch.tensor([[33, -2, 127], [40, 127, -79], [0, 127, 46]], dtype=torch.int8)
    assert torch.equal(q, expected)
    rows = TEST_TENSOR.tolist()
    assert q.tolist() == [
        [round(v / s) for v in row] for row, s in zip(rows, expected_scale, strict=True)
    ]
    deq = linear_dequantization(q, scale, 0)  # the (3, 1) scale broadcasts
    for row in range(3):
        assert (deq[row] - TEST_TENSOR[row]).abs().max() <= expected_scale[row] / 2 + 1e-4


def test_course_per_channel_dim_1():
    """L3-B: one scale per column, max|column| / 127, shape (1, 3)."""
    q, scale = linear_q_symmetric_per_channel(TEST_TENSOR, dim=1)
    assert scale.shape == (1, 3) and scale.dtype == torch.float32
    expected_scale = [f32(m) / 127 for m in COLUMN_ABSMAX]
    torch.testing.assert_close(scale.flatten().double(), torch.tensor(expected_scale).double())
    expected = torch.tensor([[127, -3, 127], [61, 55, -32], [0, 127, 43]], dtype=torch.int8)
    assert torch.equal(q, expected)
    rows = TEST_TENSOR.tolist()
    assert q.tolist() == [
        [round(v / s) for v, s in zip(row, expected_scale, strict=True)] for row in rows
    ]
    q_negative_dim, scale_negative_dim = linear_q_symmetric_per_channel(TEST_TENSOR, dim=-1)
    assert torch.equal(q_negative_dim, q) and torch.equal(scale_negative_dim, scale)


def test_course_per_channel_mse_is_smaller_than_per_tensor():
    """L3-B/C: per-channel scales fit each channel, so the error drops below per tensor's."""
    q, scale = linear_q_symmetric(TEST_TENSOR)
    mse_tensor = (linear_dequantization(q, scale, 0) - TEST_TENSOR).square().mean().item()
    for dim in (0, 1):
        q, scale = linear_q_symmetric_per_channel(TEST_TENSOR, dim)
        mse = (linear_dequantization(q, scale, 0) - TEST_TENSOR).square().mean().item()
        assert mse < mse_tensor


def test_course_per_group_on_a_seeded_6x6_tensor():
    """L3-D: groups of 3 along each row: 12 scales, max|group| / 127, in row order."""
    q, scale = linear_q_symmetric_per_group(GROUP_TENSOR, group_size=3)
    assert scale.shape == (12, 1) and scale.dtype == torch.float32
    groups = [row[i : i + 3] for row in GROUP_TENSOR.tolist() for i in (0, 3)]
    expected_scale = [max(abs(v) for v in group) / 127 for group in groups]
    assert scale.flatten().tolist() == pytest.approx(expected_scale, rel=1e-7)
    expected_q = [
        [round(v / f32(s)) for v in g] for g, s in zip(groups, expected_scale, strict=True)
    ]
    assert q.reshape(12, 3).tolist() == expected_q
    assert q.abs().reshape(12, 3).amax(dim=1).tolist() == [127] * 12  # each group's max -> 127
    deq = linear_dequantization_per_group(q, scale, group_size=3)
    assert deq.shape == (6, 6) and deq.dtype == torch.float32
    errors = (deq - GROUP_TENSOR).abs().reshape(12, 3)
    assert bool((errors <= torch.tensor(expected_scale).reshape(12, 1) / 2 + 1e-7).all())


def test_course_per_group_error_is_below_per_channel_and_per_tensor():
    """Smaller blocks, smaller scales: per group <= per channel <= per tensor (MSE)."""
    q, s = linear_q_symmetric(GROUP_TENSOR)
    mse_tensor = (linear_dequantization(q, s, 0) - GROUP_TENSOR).square().mean().item()
    q, s = linear_q_symmetric_per_channel(GROUP_TENSOR, dim=0)
    mse_channel = (linear_dequantization(q, s, 0) - GROUP_TENSOR).square().mean().item()
    q, s = linear_q_symmetric_per_group(GROUP_TENSOR, group_size=3)
    mse_group = (linear_dequantization_per_group(q, s, 3) - GROUP_TENSOR).square().mean().item()
    assert mse_group < mse_channel < mse_tensor


# ------------------------------------------------------------------------------------------
# Block sizes: the table from granularity to block, and the views behind it
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "granularity", "kwargs", "expected"),
    [
        ((3, 3), "per_tensor", {}, (3, 3)),
        ((3, 3), "per_channel", {"dim": 0}, (1, 3)),
        ((3, 3), "per_channel", {"dim": 1}, (3, 1)),
        ((3, 3), "per_channel", {"dim": -2}, (1, 3)),
        ((6, 6), "per_group", {"group_size": 3}, (1, 3)),
        ((2, 3, 4), "per_channel", {"dim": 1}, (2, 1, 4)),
        ((2, 3, 4), "per_group", {"group_size": 2}, (1, 1, 2)),
        ((5,), "per_channel", {"dim": 0}, (1,)),  # a 1-D tensor: one scale per element
        ((5,), "per_group", {"group_size": 5}, (5,)),
        ((), "per_tensor", {}, ()),
    ],
)
def test_granularity_block_size_table(shape, granularity, kwargs, expected):
    """Named granularities give the documented block sizes (any dim, negative dims too)."""
    assert granularity_block_size(shape, granularity, **kwargs) == expected


@pytest.mark.parametrize(
    ("shape", "block_size", "expected"),
    [
        ((3, 3), (3, 3), Blocks((3, 3), (1, 1), (1, 1))),
        ((3, 3), (1, 3), Blocks((3, 3), (3, 1), (3, 1))),
        ((3, 3), (3, 1), Blocks((3, 3), (1, 3), (1, 3))),
        ((6, 6), (1, 3), Blocks((6, 2, 3), (6, 2, 1), (6, 2))),
        ((4, 6), (2, 3), Blocks((2, 2, 2, 3), (2, 1, 2, 1), (2, 2))),
        ((4, 6), (1, 1), Blocks((4, 6), (4, 6), (4, 6))),
        ((4096, 4096), (1, 128), Blocks((4096, 32, 128), (4096, 32, 1), (4096, 32))),
        ((5,), (1,), Blocks((5,), (5,), (5,))),
        ((1, 1), (1, 1), Blocks((1, 1), (1, 1), (1, 1))),
    ],
)
def test_block_shapes_table(shape, block_size, expected):
    """view_shape keeps per-tensor/per-channel dims whole and splits (n // b, b) otherwise."""
    blocks = block_shapes(shape, block_size)
    assert blocks == expected
    assert math.prod(blocks.view_shape) == math.prod(shape)
    assert torch.broadcast_shapes(blocks.param_shape, blocks.view_shape) == blocks.view_shape
    assert math.prod(blocks.param_shape) == math.prod(blocks.n_blocks)


def test_block_range_per_row_column_group_and_tensor():
    """block_range returns every block's min and max (float64, shape n_blocks)."""
    r_min, r_max = block_range(TEST_TENSOR, (1, 3))
    assert r_min.dtype == r_max.dtype == torch.float64 and r_min.shape == (3, 1)
    assert r_min.flatten().tolist() == [-13.5, -184.0, 0.0]
    assert r_max.flatten().tolist() == [f32(728.6), 295.5, f32(684.6)]
    r_min, r_max = block_range(TEST_TENSOR, (3, 1))
    assert r_min.shape == (1, 3)
    assert r_min.flatten().tolist() == [0.0, -13.5, -184.0]
    assert r_max.flatten().tolist() == [f32(191.6), f32(684.6), f32(728.6)]
    r_min, r_max = block_range(TEST_TENSOR, (3, 3))
    assert r_min.shape == (1, 1) and (r_min.item(), r_max.item()) == (-184.0, f32(728.6))
    r_min, r_max = block_range(GROUP_TENSOR, (1, 3))
    groups = GROUP_TENSOR.reshape(6, 2, 3)
    assert torch.equal(r_min, groups.amin(dim=2).double())
    assert torch.equal(r_max, groups.amax(dim=2).double())


def test_block_range_of_single_element_blocks_is_the_tensor():
    """Blocks of one element (per channel of a 1-D tensor, block (1, 1)) need no reduction."""
    t = torch.tensor([1.5, -2.0, 0.0], dtype=torch.float64)
    r_min, r_max = block_range(t, (1,))
    assert r_min.tolist() == r_max.tolist() == [1.5, -2.0, 0.0]
    r_min.add_(100.0)  # the result is a copy, never a view of the input
    assert t.tolist() == [1.5, -2.0, 0.0] and r_max.tolist() == [1.5, -2.0, 0.0]
    r_min, r_max = block_range(GROUP_TENSOR, (1, 1))
    assert torch.equal(r_min, GROUP_TENSOR.double()) and torch.equal(r_max, r_min)


def test_per_element_repeats_each_blocks_parameter():
    """per_element spreads one value per block over the block's elements (any granularity)."""
    for block_size in [(3, 3), (1, 3), (3, 1), (1, 1)]:
        scale, _ = choose_qparams_affine(TEST_TENSOR, block_size, symmetric=True)
        spread = per_element(scale, TEST_TENSOR.shape, block_size)
        assert torch.equal(spread, expand(scale, block_size))
    scale, _ = choose_qparams_affine(GROUP_TENSOR, (1, 3))
    assert torch.equal(per_element(scale, (6, 6), (1, 3)), expand(scale, (1, 3)))
    assert per_element(torch.tensor([[2.0]]), (), ()).shape == ()


# ------------------------------------------------------------------------------------------
# choose_qparams_affine
# ------------------------------------------------------------------------------------------


def test_choose_qparams_per_tensor_equals_get_q_scale_and_zero_point():
    """The mechanism with one block is the course's per-tensor functions, for every dtype."""
    for dtype, n_bits in [(torch.int8, None), (torch.uint8, 4), (torch.int16, None)]:
        for t in (TEST_TENSOR, GROUP_TENSOR, seeded((4, 5, 6), seed=41, magnitude=3.0)):
            scale, zero_point = choose_qparams_affine(t, tuple(t.shape), dtype, n_bits)
            assert scale.shape == zero_point.shape == (1,) * t.dim()
            expected = get_q_scale_and_zero_point(t, dtype, n_bits)
            assert (scale.item(), int(zero_point)) == expected
            q, s, z = quantize_blockwise(t, tuple(t.shape), dtype, n_bits)
            q_ref, s_ref, z_ref = linear_quantization(t, dtype, n_bits)
            assert torch.equal(q, q_ref) and (s.item(), int(z)) == (s_ref, z_ref)
            scale, zero_point = choose_qparams_affine(t, tuple(t.shape), dtype, symmetric=True)
            assert scale.item() == get_q_scale_symmetric(t, dtype)


@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
def test_choose_qparams_with_a_given_range(symmetric):
    """r_range: a pair (r_min, r_max) or one absmax tensor replaces the measured range."""
    t = GROUP_TENSOR
    measured = choose_qparams_affine(t, (1, 3), symmetric=symmetric)
    r_min, r_max = block_range(t, (1, 3))
    given_pair = choose_qparams_affine(t, (1, 3), symmetric=symmetric, r_range=(r_min, r_max))
    assert torch.equal(given_pair[0], measured[0]) and torch.equal(given_pair[1], measured[1])
    # a clipped range: half of each group's absmax; as an absmax tensor or as a pair
    absmax = torch.maximum(-r_min, r_max) / 2
    from_absmax = choose_qparams_affine(t, (1, 3), symmetric=symmetric, r_range=absmax)
    from_pair = choose_qparams_affine(t, (1, 3), symmetric=symmetric, r_range=(-absmax, absmax))
    assert torch.equal(from_absmax[0], from_pair[0]) and torch.equal(from_absmax[1], from_pair[1])
    q_max = 127
    expected = absmax / q_max if symmetric else 2 * absmax / 255
    torch.testing.assert_close(from_absmax[0], expected, rtol=1e-15, atol=0)
    # a number broadcasts to every block; a negative absmax is refused, not read as its magnitude
    scale, _ = choose_qparams_affine(t, (1, 3), symmetric=True, r_range=torch.tensor(2.54))
    assert scale.shape == (6, 2) and bool((scale == f32(2.54) / 127).all())
    with pytest.raises(ValueError, match="r_range must hold finite numbers >= 0"):
        choose_qparams_affine(t, (1, 3), symmetric=True, r_range=torch.tensor(-2.54))


def test_quantize_blockwise_with_a_clipped_range_saturates_outside_it():
    """Values beyond a given range clamp to q_min / q_max instead of wrapping around."""
    t = torch.tensor([[-10.0, 0.5, 10.0], [1.0, -1.0, 0.25]])
    q, scale, _ = quantize_blockwise(t, (1, 3), symmetric=True, r_range=torch.tensor(1.0))
    assert scale.flatten().tolist() == [1 / 127, 1 / 127]
    assert q.tolist() == [[-127 - 1, 64, 127], [127, -127, 32]]  # -10 / s clamps at q_min


def test_choose_qparams_all_zero_blocks_get_the_floored_scale():
    """An all-zero channel or group: scale SCALE_EPS, never NaN; it round-trips to zeros."""
    t = GROUP_TENSOR.clone()
    t[1] = 0.0  # an all-zero row: one channel and two groups
    t[:, 3] = 0.0  # an all-zero column
    t[4, :3] = 0.0  # one more all-zero group
    for symmetric, dtype in itertools.product([False, True], INT_DTYPES):
        for block_size in [(1, 6), (1, 3), (6, 1)]:
            q, scale, zero_point = quantize_blockwise(t, block_size, dtype, symmetric=symmetric)
            zero_blocks = torch.tensor(
                [[bool((t[where] == 0).all()) for _, where in blocks_of(t, block_size)]]
            ).reshape(scale.shape)
            assert bool(zero_blocks.any()), block_size
            assert bool((scale[zero_blocks] == SCALE_EPS).all())
            deq = dequantize_affine(q, block_size, scale, zero_point)
            assert not bool(deq.isnan().any())
            assert bool((deq[t == 0] == 0.0).all())


# ------------------------------------------------------------------------------------------
# The mechanism equals a block-by-block loop and the course-named functions
# ------------------------------------------------------------------------------------------


MECHANISM_CASES = {
    "tensor_3x3": (TEST_TENSOR, (3, 3)),
    "rows_3x3": (TEST_TENSOR, (1, 3)),
    "columns_3x3": (TEST_TENSOR, (3, 1)),
    "groups_6x6": (GROUP_TENSOR, (1, 3)),
    "elements_6x6": (GROUP_TENSOR, (1, 1)),
    "tiles_6x6": (GROUP_TENSOR, (2, 3)),
    "1d_elements": (seeded((7,), seed=42), (1,)),
    "1d_groups": (seeded((12,), seed=43), (4,)),
    "3d_dim1": (seeded((3, 4, 5), seed=44, magnitude=10.0, offset=2.0), (3, 1, 5)),
    "3d_groups": (seeded((3, 4, 6), seed=45), (1, 1, 2)),
    "3d_tiles": (seeded((4, 4, 6), seed=46), (2, 4, 3)),
    "positive_rows": (seeded((5, 8), seed=47).abs() + 0.5, (1, 8)),
}

#: Every dtype, full width and narrow.
DTYPES_AND_BITS = [
    (torch.int8, None),
    (torch.uint8, None),
    (torch.int16, None),
    (torch.int8, 3),
    (torch.uint8, 5),
    (torch.int16, 10),
]


@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("case", list(MECHANISM_CASES))
def test_mechanism_equals_a_loop_over_blocks(case, symmetric):
    """quantize_blockwise == the block-by-block reference, bit for bit; dequantize too."""
    t, block_size = MECHANISM_CASES[case]
    for dtype, n_bits in DTYPES_AND_BITS:
        check_mechanism_against_the_loop(t, block_size, dtype, n_bits, symmetric)


def check_mechanism_against_the_loop(t, block_size, dtype, n_bits, symmetric):
    """quantize_blockwise, the separate steps and dequantize_affine against the reference."""
    q, scale, zero_point = quantize_blockwise(t, block_size, dtype, n_bits, symmetric=symmetric)
    q_ref, scale_ref, zero_point_ref = reference_blockwise(t, block_size, dtype, n_bits, symmetric)
    assert scale.dtype == torch.float64 and zero_point.dtype == torch.int64
    assert torch.equal(scale, scale_ref)
    assert torch.equal(zero_point, zero_point_ref)
    assert q.dtype == dtype and torch.equal(q, q_ref)
    # the same through the separate steps
    scale2, zero_point2 = choose_qparams_affine(t, block_size, dtype, n_bits, symmetric=symmetric)
    assert torch.equal(scale2, scale) and torch.equal(zero_point2, zero_point)
    assert torch.equal(quantize_affine(t, block_size, scale, zero_point, dtype, n_bits), q)
    deq = dequantize_affine(q, block_size, scale, zero_point)
    s_elem, z_elem = expand(scale, block_size).float(), expand(zero_point, block_size)
    assert deq.dtype == torch.float32
    assert torch.equal(deq, (q.float() - z_elem) * s_elem)


@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("case", ["rows_3x3", "columns_3x3", "groups_6x6", "3d_dim1", "3d_tiles"])
def test_each_block_equals_the_per_tensor_quantizer_on_that_block(case, symmetric):
    """Quantizing block by block with linear_quantization / linear_q_symmetric gives the same."""
    t, block_size = MECHANISM_CASES[case]
    q, scale, zero_point = quantize_blockwise(t, block_size, symmetric=symmetric)
    for index, where in blocks_of(t, block_size):
        block = t[where]
        if symmetric:
            q_block, s_block = linear_q_symmetric(block)
            z_block = 0
        else:
            q_block, s_block, z_block = linear_quantization(block)
        assert (scale[index].item(), zero_point[index].item()) == (s_block, z_block)
        assert torch.equal(q[where], q_block), index


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize(
    "t", [TEST_TENSOR, GROUP_TENSOR, seeded((3, 4, 5), seed=48)], ids=["3x3", "6x6", "3d"]
)
def test_per_channel_equals_the_course_loop_over_channels(t, dtype):
    """linear_q_symmetric_per_channel == a loop: each channel's symmetric scale, then quantize."""
    for dim in range(-t.dim(), t.dim()):
        q, scale = linear_q_symmetric_per_channel(t, dim, dtype)
        scale_shape = [1] * t.dim()
        scale_shape[dim] = -1
        channel_scales = [get_q_scale_symmetric(c, dtype) for c in t.unbind(dim)]
        expected_scale = torch.tensor(channel_scales).reshape(scale_shape)
        assert scale.shape == expected_scale.shape
        assert torch.equal(scale, expected_scale.float())
        z = 0 if dtype != torch.uint8 else 128
        expected = linear_q_with_scale_and_zero_point(t, expected_scale.double(), z, dtype)
        assert torch.equal(q, expected)


def test_per_channel_of_a_1d_tensor_gives_one_scale_per_element():
    """A 1-D tensor per channel: every element is its own channel and maps to +-q_max or 0."""
    t = torch.tensor([0.5, -2.0, 0.0, 3.0])
    q, scale = linear_q_symmetric_per_channel(t, dim=0)
    assert q.tolist() == [127, -127, 0, 127]
    assert scale.shape == (4,)
    assert scale.tolist() == pytest.approx([0.5 / 127, 2.0 / 127, SCALE_EPS, 3.0 / 127])
    deq = linear_dequantization(q, scale, 0)
    torch.testing.assert_close(deq, t, rtol=1e-6, atol=0)
    q, scale = linear_q_symmetric_per_channel(torch.tensor([4.0]), dim=-1)
    assert q.tolist() == [127] and scale.shape == (1,)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize(
    ("shape", "group_size"), [((6, 6), 3), ((6, 6), 6), ((6, 6), 1), ((2, 3, 8), 4), ((12,), 4)]
)
def test_per_group_equals_the_course_loop_over_groups(shape, group_size, dtype):
    """linear_q_symmetric_per_group == reshape to (-1, group_size), then per channel dim 0."""
    t = seeded(shape, seed=49, magnitude=2.0)
    q, scale = linear_q_symmetric_per_group(t, group_size, dtype)
    n_groups = t.numel() // group_size
    assert scale.shape == (n_groups, 1)
    rows = t.reshape(-1, group_size)
    q_rows, scale_rows = linear_q_symmetric_per_channel(rows, dim=0, dtype=dtype)
    assert torch.equal(scale, scale_rows)
    assert torch.equal(q, q_rows.reshape(shape))
    z = 0 if dtype != torch.uint8 else 128
    deq = linear_dequantization_per_group(q, scale, group_size, z)
    assert torch.equal(deq, linear_dequantization(q_rows, scale_rows, z).reshape(shape))


def test_linear_dequantization_per_group_with_per_group_zero_points():
    """zero_point may be one per group, shaped like the scale (n_groups, 1)."""
    t = GROUP_TENSOR
    q, scale, zero_point = quantize_blockwise(t, (1, 3))  # asymmetric, per group
    deq = linear_dequantization_per_group(q, scale.reshape(-1, 1), 3, zero_point.reshape(-1, 1))
    assert torch.equal(deq, dequantize_affine(q, (1, 3), scale, zero_point))
    assert bool(((deq - t).abs() <= expand(scale, (1, 3)) / 2 + 1e-6).all())


def test_dequantize_affine_output_dtypes():
    """output_dtype casts at the end: bf16/f16/f64 results are the float32 result cast."""
    q, scale, zero_point = quantize_blockwise(GROUP_TENSOR, (1, 3), torch.int16)
    deq32 = dequantize_affine(q, (1, 3), scale, zero_point)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        deq = dequantize_affine(q, (1, 3), scale, zero_point, output_dtype=dtype)
        assert deq.dtype == dtype and torch.equal(deq, deq32.to(dtype))


def test_dequantize_affine_accepts_python_numbers_for_one_block():
    """A single block's scale and zero point may be Python numbers."""
    q = torch.tensor([[-70, -68], [127, 0]], dtype=torch.int8)
    deq = dequantize_affine(q, (2, 2), 3.5, -70)
    assert deq.tolist() == [[0.0, 7.0], [689.5, 245.0]]
    assert torch.equal(quantize_affine(deq, (2, 2), 3.5, -70), q)


@pytest.mark.parametrize("float_dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_inputs(float_dtype):
    """float16/bfloat16 are quantized like their float32 values; float64 in float64."""
    t = seeded((4, 6), seed=50, magnitude=5.0).to(float_dtype)
    q, scale, zero_point = quantize_blockwise(t, (1, 3), symmetric=True)
    if float_dtype == torch.float64:
        q_ref, s_ref, _ = reference_blockwise(t, (1, 3), torch.int8, None, True)
    else:
        q_ref, s_ref, _ = reference_blockwise(t.float(), (1, 3), torch.int8, None, True)
    assert torch.equal(q, q_ref) and torch.equal(scale, s_ref)


def test_zero_dim_tensor_is_one_block():
    """A 0-dim tensor: block size (), scalar-shaped parameters, a 0-dim result."""
    t = torch.tensor(-3.0)
    q, scale, zero_point = quantize_blockwise(t, (), symmetric=True)
    assert q.shape == () and scale.shape == () and q.item() == -127
    deq = dequantize_affine(q, (), scale, zero_point)
    assert deq.shape == () and deq.item() == pytest.approx(-3.0)
    q, scale, zero_point = quantize_blockwise(t, (1,))
    assert q.shape == () and (scale.item(), zero_point.item()) == (3.0 / 255, 127)


def test_one_number_or_1_element_tensor_is_shared_by_every_block():
    """quantize_affine / dequantize_affine: a number or a 1-element tensor serves every block."""
    t = GROUP_TENSOR
    q = quantize_affine(t, (1, 3), 0.02, 3)
    assert torch.equal(q, quantize_affine(t, (1, 3), torch.tensor(0.02), torch.tensor([3])))
    assert torch.equal(q, reference_quantize(t, 0.02, 3, -128, 127, torch.int8))
    deq = dequantize_affine(q, (1, 3), torch.tensor([[0.02]]), torch.tensor(3))
    assert torch.equal(deq, dequantize_affine(q, (1, 3), 0.02, 3))
    q, scale = linear_q_symmetric_per_group(t, 3, torch.uint8)
    deq = linear_dequantization_per_group(q, scale, 3, torch.tensor(128))
    assert torch.equal(deq, linear_dequantization_per_group(q, scale, 3, 128))


def test_requires_grad_input_is_accepted():
    """A weight that requires grad quantizes like its detached copy; no grad flows."""
    weight = torch.nn.Parameter(seeded((4, 6), seed=51))
    q, scale, zero_point = quantize_blockwise(weight, (1, 3), symmetric=True)
    q_ref, scale_ref, _ = quantize_blockwise(weight.detach(), (1, 3), symmetric=True)
    assert torch.equal(q, q_ref) and torch.equal(scale, scale_ref)
    assert not q.requires_grad and not scale.requires_grad and weight.grad is None
    q2, s2 = linear_q_symmetric_per_channel(weight, 0)
    assert not s2.requires_grad


# ------------------------------------------------------------------------------------------
# Properties (hypothesis): every granularity, both modes, every dtype and bit width
# ------------------------------------------------------------------------------------------


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def block_sizes_for(draw, shape: tuple[int, ...]):
    """A block size for ``shape``: per tensor, per channel, per group, or any divisors."""
    if not shape:
        return ()
    kind = draw(st.sampled_from(["per_tensor", "per_channel", "per_group", "any"]))
    if kind == "per_tensor":
        return shape
    if kind == "per_channel":
        return per_channel_block(shape, draw(st.integers(-len(shape), len(shape) - 1)))
    if kind == "per_group":
        return per_group_block(shape, draw(st.sampled_from(divisors(shape[-1]))))
    return tuple(draw(st.sampled_from(divisors(n))) for n in shape)


@st.composite
def dtypes_and_any_bits(draw):
    """An integer dtype and n_bits None or 2..its width."""
    dtype = draw(st.sampled_from(INT_DTYPES))
    width = torch.iinfo(dtype).bits
    return dtype, draw(st.one_of(st.none(), st.integers(2, width)))


@st.composite
def blockwise_cases(draw):
    t = draw(real_tensors())
    block_size = draw(block_sizes_for(tuple(t.shape)))
    dtype, n_bits = draw(dtypes_and_any_bits())
    return t, block_size, dtype, n_bits, draw(st.booleans())


@PROPERTY
@given(blockwise_cases())
def test_property_round_trip_error_at_most_half_a_step(case):
    """|dequantized - original| <= s/2 for every element, with the element's block scale."""
    t, block_size, dtype, n_bits, symmetric = case
    q_min, q_max = get_q_range(dtype, n_bits)
    q, scale, zero_point = quantize_blockwise(t, block_size, dtype, n_bits, symmetric=symmetric)
    n_blocks = tuple(n // b for n, b in zip(t.shape, block_size, strict=True))
    assert q.dtype == dtype and q.shape == t.shape
    assert scale.shape == zero_point.shape == n_blocks
    assert q_min <= int(q.min()) and int(q.max()) <= q_max
    assert bool(torch.isfinite(scale).all()) and bool((scale >= SCALE_EPS).all())
    assert q_min <= int(zero_point.min()) and int(zero_point.max()) <= q_max
    deq = dequantize_affine(q, block_size, scale, zero_point)
    s_elem = expand(scale, block_size) if t.dim() else scale
    error = (deq.double() - t.double()).abs()
    tolerance = 1e-6 * (t.double().abs() + s_elem) + 1e-30
    assert bool((error <= s_elem / 2 + tolerance).all())


@PROPERTY
@given(blockwise_cases())
def test_property_zero_is_exact(case):
    """A real 0 quantizes to its block's zero point and dequantizes to exactly 0.0."""
    t, block_size, dtype, n_bits, symmetric = case
    t = t.clone()
    t.view(-1)[:: max(1, t.numel() // 5)] = 0.0
    q, scale, zero_point = quantize_blockwise(t, block_size, dtype, n_bits, symmetric=symmetric)
    z_elem = expand(zero_point, block_size) if t.dim() else zero_point
    zeros = t == 0
    assert bool((q.to(torch.int64)[zeros] == z_elem[zeros]).all())
    deq = dequantize_affine(q, block_size, scale, zero_point)
    assert bool((deq[zeros] == 0.0).all()) and not bool(deq.isnan().any())


@PROPERTY
@given(blockwise_cases())
def test_property_mechanism_equals_the_loop_over_blocks(case):
    """quantize_blockwise == reference_blockwise (a loop over blocks), bit for bit."""
    t, block_size, dtype, n_bits, symmetric = case
    if t.dim() == 0:
        t, block_size = t.reshape(1), (1,)
    q, scale, zero_point = quantize_blockwise(t, block_size, dtype, n_bits, symmetric=symmetric)
    q_ref, scale_ref, zero_point_ref = reference_blockwise(t, block_size, dtype, n_bits, symmetric)
    assert torch.equal(scale, scale_ref)
    assert torch.equal(zero_point, zero_point_ref)
    assert torch.equal(q, q_ref)


@PROPERTY_FEW
@given(blockwise_cases(), st.integers(0, 2**31 - 1))
def test_property_no_function_modifies_its_inputs(case, seed):
    """Every function of the mechanism leaves its tensor arguments (and their dtype) unchanged."""
    t, block_size, dtype, n_bits, symmetric = case
    original = t.clone()
    scale, zero_point = choose_qparams_affine(t, block_size, dtype, n_bits, symmetric=symmetric)
    generator = torch.Generator().manual_seed(seed)
    r_min, r_max = block_range(t, block_size)
    r_min = r_min - torch.rand(r_min.shape, generator=generator, dtype=torch.float64)
    ranges = (r_min.clone(), r_max.clone())
    s2, z2 = choose_qparams_affine(t, block_size, dtype, n_bits, r_range=(r_min, r_max))
    assert torch.equal(r_min, ranges[0]) and torch.equal(r_max, ranges[1])
    absmax = r_max.abs()
    kept = absmax.clone()
    choose_qparams_affine(t, block_size, dtype, n_bits, symmetric=True, r_range=absmax)
    assert torch.equal(absmax, kept)
    params = (s2.clone(), z2.clone())
    q = quantize_affine(t, block_size, s2, z2, dtype, n_bits)
    q_before = q.clone()
    deq = dequantize_affine(q, block_size, s2, z2)
    quantize_blockwise(t, block_size, dtype, n_bits, symmetric=symmetric)
    assert torch.equal(t, original) and t.dtype == original.dtype
    assert torch.equal(q, q_before)
    assert torch.equal(s2, params[0]) and torch.equal(z2, params[1])
    assert not deq.isnan().any()
    if t.dim() >= 1:
        dim = seed % t.dim()
        linear_q_symmetric_per_channel(t, dim, dtype, n_bits)
        group_size = divisors(t.shape[-1])[seed % len(divisors(t.shape[-1]))]
        q_g, s_g = linear_q_symmetric_per_group(t, group_size, dtype, n_bits)
        s_g_before, q_g_before = s_g.clone(), q_g.clone()
        linear_dequantization_per_group(
            q_g, s_g, group_size, 0 if dtype != torch.uint8 else 2 ** ((n_bits or 8) - 1)
        )
        assert torch.equal(s_g, s_g_before) and torch.equal(q_g, q_g_before)
        assert torch.equal(t, original)
    assert torch.equal(
        scale, choose_qparams_affine(t, block_size, dtype, n_bits, symmetric=symmetric)[0]
    )


@PROPERTY
@given(real_tensors(), dtypes_and_any_bits())
def test_property_per_tensor_block_equals_the_per_tensor_functions(t, dtype_bits):
    """The block that is the whole tensor gives linear_quantization's and linear_q_symmetric's."""
    dtype, n_bits = dtype_bits
    block_size = tuple(t.shape)
    q, scale, zero_point = quantize_blockwise(t, block_size, dtype, n_bits)
    q_ref, scale_ref, zero_point_ref = linear_quantization(t, dtype, n_bits)
    assert torch.equal(q, q_ref) and (scale.item(), int(zero_point)) == (scale_ref, zero_point_ref)
    q, scale, _ = quantize_blockwise(t, block_size, dtype, n_bits, symmetric=True)
    q_sym, scale_sym = linear_q_symmetric(t, dtype, n_bits)
    assert torch.equal(q, q_sym) and scale.item() == scale_sym


# ------------------------------------------------------------------------------------------
# bits_per_weight (lesson 05)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granularity", "keywords", "n_bits", "expected"),
    [
        ("per_tensor", {}, 8, 8 + 32 / 65536),
        ("per_channel", {"dim": 0}, 8, 8 + 32 / 256),
        ("per_channel", {"dim": 1}, 4, 4 + 32 / 256),
        ("per_group", {"group_size": 32}, 4, 5.0),
        ("per_group", {"group_size": 8}, 4, 8.0),
    ],
)
def test_bits_per_weight_is_n_bits_plus_the_scales_share(granularity, keywords, n_bits, expected):
    block = granularity_block_size((256, 256), granularity, **keywords)
    assert math.isclose(bits_per_weight((256, 256), block, n_bits), expected)


def test_bits_per_weight_float16_scales_and_zero_points():
    block = granularity_block_size((64, 64), "per_group", group_size=16)
    assert bits_per_weight((64, 64), block, 4, scale_bits=16) == 5.0
    assert bits_per_weight((64, 64), block, 4, scale_bits=16, zero_point_bits=8) == 5.5


def test_bits_per_weight_of_the_test_tensor():
    """On a 3x3 tensor the scales cost more than the values: 8 + 32 * 3 / 9 bits per row."""
    assert math.isclose(bits_per_weight((3, 3), (1, 3)), 8 + 32 / 3)
    assert math.isclose(bits_per_weight((3, 3), (3, 3)), 8 + 32 / 9)


# ------------------------------------------------------------------------------------------
# plot_granularity_tradeoff (lesson 05)
# ------------------------------------------------------------------------------------------


def measured_points():
    """The lesson's comparison, on a smaller weight."""
    weight = varied_rows_weight(16, 16, seed=0)
    choices = {
        "per tensor": granularity_block_size(weight.shape),
        "per channel, dim 0": granularity_block_size(weight.shape, "per_channel", dim=0),
        "per group of 4": granularity_block_size(weight.shape, "per_group", group_size=4),
    }
    points = []
    for n_bits in (8, 4):
        for label, block in choices.items():
            q, s, z = helper.quantize_blockwise(weight, block, n_bits=n_bits, symmetric=True)
            back = helper.dequantize_affine(q, block, s, z)
            mse = helper.quantization_error(weight, back).item()
            cost = bits_per_weight(weight.shape, block, n_bits)
            points.append(TradeoffPoint(label, n_bits, cost, mse))
    return points


def test_plot_has_two_log_panels_with_one_line_per_bit_width():
    points = measured_points()
    fig = plot_granularity_tradeoff(points, title="a title")
    assert isinstance(fig, Figure)
    by_label, by_cost = fig.axes[:2]
    for ax in (by_label, by_cost):
        assert ax.get_yscale() == "log"
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert [line.get_label() for line in ax.lines] == ["8-bit values", "4-bit values"]
    eight = by_cost.lines[0]
    assert list(eight.get_xdata()) == [p.bits_per_weight for p in points[:3]]
    assert list(eight.get_ydata()) == [p.mse for p in points[:3]]
    ticks = [t.get_text() for t in by_label.get_xticklabels()]
    assert ticks == ["1: per tensor", "2: per channel, dim 0", "3: per group of 4"]
    assert sorted(t.get_text() for t in by_cost.texts) == ["1", "1", "2", "2", "3", "3"]
    assert fig._suptitle.get_text() == "a title"


def test_plot_is_closed_for_pyplot_and_accepts_plain_tuples():
    before = plt.get_fignums()
    plot_granularity_tradeoff([("per tensor", 8, 8.0, 1e-4)])
    assert plt.get_fignums() == before
