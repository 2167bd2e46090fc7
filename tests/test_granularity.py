"""Tests for helper.py's one quantization mechanism: symmetric mode and granularity.

Covers sections 3, 4, 5, 8 and 9 of helper.py: ``qparams_from_range`` (symmetric and not),
``block_shapes``, ``granularity_block_size``, ``block_range``, ``choose_qparams_affine`` (with a
given ``r_range``), ``quantize_affine``, ``quantize_blockwise``, ``dequantize_affine``,
``per_element`` and the course-named ``get_q_scale_symmetric``, ``linear_q_symmetric``,
``linear_q_symmetric_per_channel``, ``linear_q_symmetric_per_group`` and
``linear_dequantization_per_group``. The linear layers of section 10 are in test_linear_W8.py.

Expected numbers never come from helper.py itself. They come from:

* the course's inputs with values worked out here from the formulas (Python floats and loops
  over channels and groups, the way the course writes them),
* PyTorch: ``torch.quantize_per_channel``, ``torch.fake_quantize_per_channel_affine``,
  ``torch.ao.quantization.PerChannelMinMaxObserver`` and the symmetric observers,
* a reference written in this file that walks over every block with a Python loop.

As in test_helper.py, PyTorch multiplies by ``1/s`` (and its kernels round ``r / s + z``), so
its quantized values may differ from helper's by one step, but only at near-ties of ``r / s``.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_helper import (
    HYPOTHESIS,
    INT_DTYPES,
    QUANTIZE_PER_TENSOR_DEPRECATION,
    TEST_TENSOR,
    assert_differs_only_at_near_ties,
    exact_zero_point,
    near_tie,
    real_tensors,
    reference_quantize,
    seeded,
)
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
from torch.overrides import TorchFunctionMode

import helper
from helper import (
    SCALE_EPS,
    Blocks,
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
    qparams_from_range,
    quantize_affine,
    quantize_blockwise,
)
from support import fast
from support.examples import seeded_randn

#: Property tests here run the whole mechanism on every example: fewer than test_helper's 150.
PROPERTY = settings(HYPOTHESIS, max_examples=80)
PROPERTY_FEW = settings(HYPOTHESIS, max_examples=40)

#: The course's L3-D per-group example: a seeded 6x6 tensor (identical on every CPU), groups of 3.
GROUP_TENSOR = seeded_randn(6, 6, seed=0)

#: The maximum |r| of every row / column of the test tensor, read off the tensor by eye.
ROW_ABSMAX = [728.6, 295.5, 684.6]
COLUMN_ABSMAX = [191.6, 684.6, 728.6]


def f32(value: float) -> float:
    """``value`` rounded to float32 (the test tensor holds float32 values)."""
    return torch.tensor(value, dtype=torch.float32).item()


def expand(param: torch.Tensor, block_size: tuple[int, ...]) -> torch.Tensor:
    """A per-block parameter (shape ``n_blocks``) repeated over each block's elements.

    Written independently of helper's reshaping: ``repeat_interleave`` along every dim.
    """
    out = param
    for dim, b in enumerate(block_size):
        out = out.repeat_interleave(b, dim=dim)
    return out


def blocks_of(t: torch.Tensor, block_size: tuple[int, ...]):
    """Yield ``(index, slices)`` for every block of ``t``: a plain loop, as the course writes it."""
    n_blocks = [n // b for n, b in zip(t.shape, block_size, strict=True)]
    for index in itertools.product(*(range(n) for n in n_blocks)):
        yield (
            index,
            tuple(slice(i * b, (i + 1) * b) for i, b in zip(index, block_size, strict=True)),
        )


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


def per_channel_block(shape, dim):
    """The block size for one scale per index of ``dim``, built here without helper."""
    dim %= len(shape)
    return tuple(1 if d == dim else n for d, n in enumerate(shape))


def per_group_block(shape, group_size):
    """The block size for groups of ``group_size`` along the last dim, built here."""
    return (1,) * (len(shape) - 1) + (group_size,)


# ------------------------------------------------------------------------------------------
# 1. The course's inputs and their values (L3-A to L3-D)
# ------------------------------------------------------------------------------------------


def test_course_symmetric_scale_per_tensor():
    """L3-A: s = max|r| / 127 = 728.5999755859375 / 127 = 5.737007681779035 (a float)."""
    scale = get_q_scale_symmetric(TEST_TENSOR)
    assert type(scale) is float
    assert scale == f32(728.6) / 127 == 5.737007681779035


def test_course_symmetric_quantize_per_tensor():
    """L3-A: q = round(r / s), values worked out by hand; dequantized error within s/2."""
    q, scale = linear_q_symmetric(TEST_TENSOR)
    assert scale == 5.737007681779035
    # round(191.6 / 5.737) = round(33.397) = 33, round(-13.5 / 5.737) = round(-2.353) = -2, ...
    expected = torch.tensor([[33, -2, 127], [16, 52, -32], [0, 119, 43]], dtype=torch.int8)
    assert torch.equal(q, expected)
    from_formula = [[round(v / scale) for v in row] for row in TEST_TENSOR.double().tolist()]
    assert q.tolist() == from_formula
    deq = linear_dequantization(q, scale, 0)
    assert (deq - TEST_TENSOR).abs().max().item() <= scale / 2 + 1e-4
    # the course's MSE for symmetric mode is larger than asymmetric's 1.573 (L2-B)
    assert (deq - TEST_TENSOR).square().mean().item() == pytest.approx(2.5092, abs=1e-3)


def test_course_symmetric_uint8_uses_the_midpoint_zero_point():
    """uint8: z = 128 (the midpoint, like PyTorch), s = max|r| / (255 - 128) = the int8 scale."""
    scale, zero_point = choose_qparams_affine(TEST_TENSOR, (3, 3), torch.uint8, symmetric=True)
    assert zero_point.item() == 128
    assert scale.item() == f32(728.6) / (255 - 128) == get_q_scale_symmetric(TEST_TENSOR)
    assert get_q_scale_symmetric(TEST_TENSOR, torch.uint8) == scale.item()
    q_uint8, _ = linear_q_symmetric(TEST_TENSOR, torch.uint8)
    q_int8, _ = linear_q_symmetric(TEST_TENSOR, torch.int8)
    # the same grid, shifted by 128; and 0 stays exact
    assert torch.equal(q_uint8.to(torch.int64), q_int8.to(torch.int64) + 128)
    assert q_uint8[2, 0].item() == 128


def test_pytorch_symmetric_observer_divides_by_127_5():
    """PyTorch's symmetric observers: s = max|r| / 127.5 and z = 128 for quint8 (documented).

    helper keeps the course's 127: its scale is larger by 127.5 / 127.
    """
    observer = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric)
    observer(TEST_TENSOR)
    torch_scale, torch_zero_point = observer.calculate_qparams()
    assert torch_zero_point.item() == 128
    assert torch_scale.item() == pytest.approx(728.6 / 127.5, rel=1e-6)
    ours = get_q_scale_symmetric(TEST_TENSOR, torch.uint8)
    assert ours / torch_scale.item() == pytest.approx(127.5 / 127, rel=1e-6)


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
# 2. Block sizes: the table from granularity to block, and the views behind it
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
# 3. qparams_from_range and choose_qparams_affine
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
    # a number broadcasts to every block; a negative absmax counts as its magnitude
    scale, _ = choose_qparams_affine(t, (1, 3), symmetric=True, r_range=torch.tensor(-2.54))
    assert scale.shape == (6, 2) and bool((scale == f32(2.54) / 127).all())


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
# 4. The mechanism equals a block-by-block loop and the course-named functions
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


class CountTorchCalls(TorchFunctionMode):
    """Counts every torch function and tensor method called inside the ``with`` block."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def torch_calls(function, *args) -> int:
    with CountTorchCalls() as counter:
        function(*args)
    return counter.calls


def test_no_python_loop_over_channels_or_groups(monkeypatch):
    """The number of torch calls does not grow with the number of blocks (same element count,
    hence the same number of chunks): no Python loop runs over channels or groups.

    A loop would make thousands of calls here; the counts differ by a few at most. The whole
    tensor is one chunk, so the counts compare blocks, not chunks."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 1 << 20)
    t = seeded((64, 1024), seed=60)
    few = torch_calls(linear_q_symmetric_per_group, t, 512)  # 128 groups
    many = torch_calls(linear_q_symmetric_per_group, t, 4)  # 16384 groups
    assert few == many
    few = torch_calls(linear_q_symmetric_per_channel, t, 0)  # 64 channels
    many = torch_calls(linear_q_symmetric_per_channel, t, 1)  # 1024 channels
    assert abs(few - many) <= 5  # a row scale is sliced with the rows, a column scale is not
    q, scale = linear_q_symmetric_per_group(t, 4)
    q2, scale2 = linear_q_symmetric_per_group(t, 512)
    assert torch_calls(linear_dequantization_per_group, q, scale, 4) == torch_calls(
        linear_dequantization_per_group, q2, scale2, 512
    )
    few = torch_calls(quantize_blockwise, t, (64, 1024))  # one block
    many = torch_calls(quantize_blockwise, t, (1, 1))  # one block per element
    assert many <= few + 5


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
# 5. The chunked, in-place path with per-block parameters (several chunks per tensor)
# ------------------------------------------------------------------------------------------

#: The chunk size the chunked-path tests run with (patched in by ``small_chunks``): small,
#: so that small tensors already take several chunks and the tests stay quick.
CHUNK = 2**14


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Run with ``CHUNK`` elements per chunk; results must not depend on the chunk size."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", CHUNK)


CHUNKED_CASES = {
    "groups_many_rows": ((300, 1024), (1, 32)),  # view (300, 32, 32): 16 rows per chunk
    "groups_wide_rows": ((2, 2 * CHUNK), (1, 128)),  # one row per chunk
    "channels_dim0_3d": ((40, 100, 100), (1, 100, 100)),  # one row per chunk
    "channels_dim1": ((600, 1000), (600, 1)),  # a (1, 1000) scale, never sliced
    "channels_dim2_3d": ((30, 100, 120), (30, 100, 1)),
    "tiles": ((600, 1000), (2, 4)),  # view (300, 2, 250, 4)
}


@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("case", list(CHUNKED_CASES))
def test_chunked_blockwise_equals_the_one_liner(case, symmetric):
    """Chunked per-block quantize == the one-liner with each element's own scale."""
    shape, block_size = CHUNKED_CASES[case]
    t = seeded(shape, seed=52, magnitude=4.0)
    t[0, 1] = 0.0  # a real zero
    q, scale, zero_point = quantize_blockwise(t, block_size, symmetric=symmetric)
    s_elem, z_elem = expand(scale, block_size), expand(zero_point, block_size)
    assert torch.equal(q, reference_quantize(t, s_elem, z_elem, -128, 127, torch.int8))
    deq = dequantize_affine(q, block_size, scale, zero_point)
    assert torch.equal(deq, (q.float() - z_elem) * s_elem.float())
    # block_range against a plain min / max of a sample of blocks, found by a loop
    r_min, r_max = block_range(t, block_size)
    assert bool((expand(r_min, block_size) <= t).all()) and bool(
        (t <= expand(r_max, block_size)).all()
    )
    step = max(1, scale.numel() // 50)
    for index, where in itertools.islice(blocks_of(t, block_size), 0, None, step):
        assert (r_min[index].item(), r_max[index].item()) == (
            t[where].min().item(),
            t[where].max().item(),
        )


# ------------------------------------------------------------------------------------------
# 6. Parity with PyTorch's per-channel quantization
# ------------------------------------------------------------------------------------------

PARITY_TENSORS = {
    "test_tensor": TEST_TENSOR,
    "2d": seeded((16, 31), seed=53, magnitude=3.0, offset=0.5),
    "3d": seeded((4, 8, 9), seed=54, magnitude=10.0),
    "rows_of_different_size": seeded((8, 64), seed=55) * torch.logspace(-3, 3, 8).reshape(8, 1),
    "positive": seeded((6, 10), seed=56).abs() + 0.25,
    "1d": seeded((20,), seed=57),
    # r / s exactly k + 1/2 for s = 0.1 in every row: ties
    "ties": ((torch.arange(-60, 60, dtype=torch.float32) + 0.5) * 0.1).reshape(4, 30),
}


def _qdtype(dtype):
    return {torch.int8: torch.qint8, torch.uint8: torch.quint8}[dtype]


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("name", list(PARITY_TENSORS))
def test_per_channel_matches_quantize_per_channel(name, dtype, symmetric):
    """Given helper's scales, quantize_per_channel's int_repr equals helper's q but at near-ties.

    Symmetric mode is compared with the same scale (PyTorch's symmetric observer would pick
    max|r| / 127.5); dequantizing PyTorch's integers with helper equals .dequantize().
    """
    x = PARITY_TENSORS[name]
    for axis in range(x.dim()):
        block_size = per_channel_block(tuple(x.shape), axis)
        q, scale, zero_point = quantize_blockwise(x, block_size, dtype, symmetric=symmetric)
        if name == "ties":
            scale = torch.full_like(scale, 0.1)
            zero_point = torch.full_like(zero_point, get_q_range(dtype)[0] + 121)  # odd for int8
            q = quantize_affine(x, block_size, scale, zero_point, dtype)
        theirs = torch.quantize_per_channel(
            x, scale.flatten(), zero_point.flatten(), axis, _qdtype(dtype)
        )
        s_elem = expand(scale, block_size)
        count = assert_differs_only_at_near_ties(x, q, theirs.int_repr(), s_elem)
        if name != "ties":
            assert count <= max(2, x.numel() // 100), "near-ties should be rare in random data"
        ours = dequantize_affine(theirs.int_repr(), block_size, scale, zero_point)
        torch.testing.assert_close(ours, theirs.dequantize(), rtol=1e-6, atol=0.0)


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
def test_exact_ties_with_an_odd_zero_point_are_the_known_disagreement():
    """quantize_per_channel rounds r / s + z: with an odd z an exact tie goes the other way.

    helper rounds r / s half to even and then adds z, as fake_quantize_per_channel_affine and
    the course do; so the parity tests' near-tie tolerance is really needed.
    """
    x = ((torch.arange(-20, 20, dtype=torch.float32) + 0.5) * 0.25).reshape(4, 10)  # exact ties
    scale = torch.full((4, 1), 0.25, dtype=torch.float64)
    zero_point = torch.full((4, 1), 3)
    q = quantize_affine(x, (1, 10), scale, zero_point)
    assert torch.equal(q, (torch.round(x / 0.25) + 3).to(torch.int8))
    theirs = torch.quantize_per_channel(x, scale.flatten(), zero_point.flatten(), 0, torch.qint8)
    assert assert_differs_only_at_near_ties(x, q, theirs.int_repr(), 0.25) == x.numel()
    fake = torch.fake_quantize_per_channel_affine(
        x, scale.flatten().float(), zero_point.flatten().int(), 0, -128, 127
    )
    assert torch.equal(dequantize_affine(q, (1, 10), scale, zero_point), fake)


#: A group size for each tensor's last dim (31 is prime: groups of one element).
FAKE_QUANT_GROUP_SIZE = {"2d": 1, "3d": 3, "rows_of_different_size": 16, "positive": 5}

FAKE_QUANT_CASES = [(torch.int8, n) for n in (2, 3, 4, 6, None)]
FAKE_QUANT_CASES += [(torch.uint8, n) for n in (2, 4, 7, None)]
FAKE_QUANT_CASES += [(torch.int16, None), (torch.int16, 12)]


@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize(("dtype", "n_bits"), FAKE_QUANT_CASES)
@pytest.mark.parametrize("name", ["2d", "3d", "rows_of_different_size", "positive"])
def test_round_trip_matches_fake_quantize_per_channel(name, dtype, n_bits, symmetric):
    """dequantize(quantize(x)) == fake_quantize_per_channel_affine, but at near-ties.

    Per channel along the first and the last dim, and per group through the
    (groups, group_size) view, one channel per group.
    """
    for granularity in ["channel_dim0", "channel_last", "group"]:
        check_round_trip_against_fake_quantize(name, granularity, dtype, n_bits, symmetric)


def check_round_trip_against_fake_quantize(name, granularity, dtype, n_bits, symmetric):
    """One granularity of test_round_trip_matches_fake_quantize_per_channel."""
    x = PARITY_TENSORS[name]
    q_min, q_max = get_q_range(dtype, n_bits)
    shape = tuple(x.shape)
    if granularity == "channel_dim0":
        block_size, view, axis = per_channel_block(shape, 0), x, 0
    elif granularity == "channel_last":
        block_size, view, axis = per_channel_block(shape, -1), x, x.dim() - 1
    else:
        group_size = FAKE_QUANT_GROUP_SIZE[name]
        block_size = per_group_block(shape, group_size)
        view, axis = x.reshape(-1, group_size), 0
    q, scale, zero_point = quantize_blockwise(x, block_size, dtype, n_bits, symmetric=symmetric)
    ours = dequantize_affine(q, block_size, scale, zero_point)
    theirs = torch.fake_quantize_per_channel_affine(
        view, scale.flatten().float(), zero_point.flatten().int(), axis, q_min, q_max
    ).reshape(shape)
    s_elem, z_elem = expand(scale, block_size), expand(zero_point, block_size)
    steps_ours = torch.round(ours.double() / s_elem) + z_elem
    steps_theirs = torch.round(theirs.double() / s_elem) + z_elem
    assert torch.equal(steps_ours.to(q.dtype), q)
    assert_differs_only_at_near_ties(x, steps_ours, steps_theirs, s_elem)
    same = steps_ours == steps_theirs
    torch.testing.assert_close(ours[same], theirs[same], rtol=1e-6, atol=0.0)


OBSERVER_TENSORS = {
    "test_tensor": TEST_TENSOR,
    "random": seeded((8, 8), seed=58, magnitude=2.0, offset=0.3),
    "rows_of_different_size": PARITY_TENSORS["rows_of_different_size"],
    "one_signed_rows": torch.tensor([[100.0, 150.0, 200.0], [-200.0, -150.0, -100.0]]),
    "zero_and_constant_rows": torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-0.75] * 3]),
    # r_min / s is exactly -1.5 in the first row and -127.5 in the second (ties)
    "zero_point_ties": torch.tensor([[-3.0, 507.0], [-1.0, 1.0]]),
    "3d": seeded((3, 4, 5), seed=59, magnitude=7.0),
}


@pytest.mark.parametrize(
    ("dtype", "n_bits"),
    [
        (torch.int8, None),
        (torch.uint8, None),
        (torch.int16, None),
        (torch.int8, 4),
        (torch.uint8, 2),
    ],
)
@pytest.mark.parametrize("name", list(OBSERVER_TENSORS))
def test_per_channel_qparams_match_per_channel_min_max_observer(name, dtype, n_bits):
    """Asymmetric per-channel scales equal PerChannelMinMaxObserver's (float32 precision); the
    zero points too, except at ties, where helper's equals the exact rational answer."""
    x = OBSERVER_TENSORS[name]
    q_min, q_max = get_q_range(dtype, n_bits)
    observer_dtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}.get(dtype, dtype)
    for axis in range(x.dim()):
        observer = PerChannelMinMaxObserver(
            ch_axis=axis,
            dtype=observer_dtype,
            qscheme=torch.per_channel_affine,
            quant_min=q_min,
            quant_max=q_max,
        )
        observer(x)
        torch_scale, torch_zero_point = observer.calculate_qparams()
        block_size = per_channel_block(tuple(x.shape), axis)
        scale, zero_point = choose_qparams_affine(x, block_size, dtype, n_bits)
        assert scale.flatten().tolist() == pytest.approx(torch_scale.tolist(), rel=1e-6)
        for channel, (z, z_torch) in enumerate(
            zip(zero_point.flatten().tolist(), torch_zero_point.tolist(), strict=True)
        ):
            values = x.select(axis, channel)
            assert z == exact_zero_point(values, q_min, q_max)
            r_min = min(values.min().item(), 0.0)
            if near_tie(torch.tensor([r_min]), scale.flatten()[channel].item()).item():
                assert abs(z - z_torch) <= 1
            else:
                assert z == z_torch


def test_per_channel_symmetric_observer_scale_is_127_5_not_127():
    """PerChannelMinMaxObserver (symmetric): max|r| / 127.5 per channel; helper: / 127."""
    observer = PerChannelMinMaxObserver(
        ch_axis=1, dtype=torch.quint8, qscheme=torch.per_channel_symmetric
    )
    observer(TEST_TENSOR)
    torch_scale, torch_zero_point = observer.calculate_qparams()
    assert torch_zero_point.tolist() == [128, 128, 128]
    assert torch_scale.tolist() == pytest.approx([m / 127.5 for m in COLUMN_ABSMAX], rel=1e-6)
    scale, zero_point = choose_qparams_affine(TEST_TENSOR, (3, 1), torch.uint8, symmetric=True)
    assert zero_point.flatten().tolist() == [128, 128, 128]
    assert scale.flatten().tolist() == [f32(m) / 127 for m in COLUMN_ABSMAX]


# ------------------------------------------------------------------------------------------
# 7. Properties (hypothesis): every granularity, both modes, every dtype and bit width
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
    absmax = r_max.clone()
    choose_qparams_affine(t, block_size, dtype, n_bits, symmetric=True, r_range=absmax)
    assert torch.equal(absmax, r_max)
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
# 8. Bad input: the exception type and a phrase of its message
# ------------------------------------------------------------------------------------------

NAN = torch.tensor([[1.0, float("nan"), 3.0, 4.0]])
INF = torch.tensor([[1.0, 2.0], [float("-inf"), 4.0]])
Q33 = torch.ones(3, 3, dtype=torch.int8)
Q66 = torch.ones(6, 6, dtype=torch.int8)
ONES31 = torch.ones(3, 1)

BAD_INPUT = {
    # block sizes and granularities
    "group_not_dividing": (
        lambda: linear_q_symmetric_per_group(TEST_TENSOR, 2),
        ValueError,
        r"group_size=2 does not divide the last dimension \(3\)",
    ),
    "group_too_large": (lambda: linear_q_symmetric_per_group(TEST_TENSOR, 6), ValueError, "divide"),
    "group_zero": (lambda: linear_q_symmetric_per_group(TEST_TENSOR, 0), ValueError, "divide"),
    "group_float": (lambda: linear_q_symmetric_per_group(TEST_TENSOR, 1.5), TypeError, "whole"),
    "group_none": (
        lambda: granularity_block_size((3, 3), "per_group"),
        TypeError,
        "group_size must be a whole number",
    ),
    "group_0d": (
        lambda: linear_q_symmetric_per_group(torch.tensor(1.0), 1),
        ValueError,
        "0-dim",
    ),
    "block_not_dividing": (
        lambda: quantize_blockwise(TEST_TENSOR, (1, 2)),
        ValueError,
        r"block_size\[1\] = 2 does not divide the size 3 of dimension 1",
    ),
    "block_zero": (lambda: block_shapes((3, 3), (0, 3)), ValueError, "from 1 to 3"),
    "block_too_large": (lambda: block_range(TEST_TENSOR, (3, 6)), ValueError, "from 1 to 3"),
    "block_float": (lambda: block_shapes((3, 3), (1.0, 3)), ValueError, "whole number"),
    "block_bool": (lambda: block_shapes((3, 3), (True, 3)), ValueError, "whole number"),
    "block_wrong_length": (
        lambda: quantize_blockwise(TEST_TENSOR, (3,)),
        ValueError,
        "one entry per dimension",
    ),
    "block_wrong_length_long": (
        lambda: choose_qparams_affine(TEST_TENSOR, (1, 3, 1)),
        ValueError,
        "one entry per dimension",
    ),
    "block_0d": (lambda: quantize_blockwise(torch.tensor(1.0), (2,)), ValueError, "0-dim"),
    "dim_out_of_range": (
        lambda: linear_q_symmetric_per_channel(TEST_TENSOR, 2),
        ValueError,
        "dim=2 is out of range for a tensor with 2 dimensions",
    ),
    "dim_negative_out_of_range": (
        lambda: linear_q_symmetric_per_channel(TEST_TENSOR, -3),
        ValueError,
        "out of range",
    ),
    "dim_1d": (
        lambda: linear_q_symmetric_per_channel(torch.ones(4), 1),
        ValueError,
        "out of range",
    ),
    "dim_0d": (
        lambda: linear_q_symmetric_per_channel(torch.tensor(1.0), 0),
        ValueError,
        "out of range",
    ),
    "dim_float": (lambda: linear_q_symmetric_per_channel(TEST_TENSOR, 1.0), TypeError, "whole"),
    "dim_none": (lambda: linear_q_symmetric_per_channel(TEST_TENSOR, None), TypeError, "whole"),
    "unknown_granularity": (
        lambda: granularity_block_size((3, 3), "per_row"),
        ValueError,
        "unknown granularity",
    ),
    # scales and zero points of the wrong shape
    "quantize_scale_wrong_shape": (
        lambda: quantize_affine(TEST_TENSOR, (1, 3), torch.ones(1, 3), 0),
        ValueError,
        r"scale has shape \(1, 3\), but this block size needs one value per block, shape \(3, 1\)",
    ),
    "quantize_scale_flat": (
        lambda: quantize_affine(TEST_TENSOR, (1, 3), torch.ones(3), 0),
        ValueError,
        r"shape \(3, 1\)",
    ),
    "quantize_scale_too_few": (
        lambda: quantize_affine(GROUP_TENSOR, (1, 3), torch.ones(6, 1), 0),
        ValueError,
        r"shape \(6, 2\)",
    ),
    "quantize_zero_point_wrong_shape": (
        lambda: quantize_affine(TEST_TENSOR, (1, 3), ONES31, torch.zeros(3, 3, dtype=torch.int64)),
        ValueError,
        "zero_point has shape",
    ),
    "dequantize_scale_wrong_shape": (
        lambda: dequantize_affine(Q66, (1, 3), torch.ones(12, 1), 0),
        ValueError,
        r"scale has shape \(12, 1\).*shape \(6, 2\)",
    ),
    "dequantize_zero_point_wrong_shape": (
        lambda: dequantize_affine(Q33, (3, 1), torch.ones(1, 3), torch.zeros(3, 1)),
        ValueError,
        "zero_point has shape",
    ),
    "quantize_scale_zero": (
        lambda: quantize_affine(TEST_TENSOR, (1, 3), torch.tensor([[1.0], [0.0], [1.0]]), 0),
        ValueError,
        "positive, finite",
    ),
    "quantize_scale_nan": (
        lambda: quantize_affine(
            TEST_TENSOR, (1, 3), torch.tensor([[1.0], [float("nan")], [1.0]]), 0
        ),
        ValueError,
        "positive, finite",
    ),
    "dequantize_scale_negative": (
        lambda: dequantize_affine(Q33, (1, 3), -ONES31, 0),
        ValueError,
        "positive, finite",
    ),
    "quantize_zero_point_outside": (
        lambda: quantize_affine(TEST_TENSOR, (1, 3), ONES31, torch.tensor([[0], [200], [0]])),
        ValueError,
        r"zero point 200 is outside the quantized range \[-128, 127\]",
    ),
    "quantize_zero_point_outside_n_bits": (
        lambda: quantize_affine(TEST_TENSOR, (3, 3), 1.0, 8, torch.int8, 4),
        ValueError,
        r"\[-8, 7\]",
    ),
    "quantize_zero_point_fraction": (
        lambda: quantize_affine(TEST_TENSOR, (1, 3), ONES31, torch.full((3, 1), 0.5)),
        ValueError,
        "whole number",
    ),
    "quantize_scale_string": (
        lambda: quantize_affine(TEST_TENSOR, (3, 3), "1.0", 0),
        TypeError,
        "scale must be a number or a tensor, got str",
    ),
    "dequantize_zero_point_none": (
        lambda: dequantize_affine(Q33, (3, 3), 1.0, None),
        TypeError,
        "zero_point must be a number or a tensor",
    ),
    # a per-group scale where a broadcasting one is expected
    "per_group_scale_to_linear_dequantization": (
        lambda: linear_dequantization(Q66, torch.ones(12, 1), 0),
        ValueError,
        "linear_dequantization_per_group",
    ),
    "per_group_scale_3d_to_linear_dequantization": (
        lambda: linear_dequantization(torch.ones(2, 3, 4, dtype=torch.int8), torch.ones(12, 1), 0),
        ValueError,
        "linear_dequantization_per_group",
    ),
    "per_group_wrong_count": (
        lambda: linear_dequantization_per_group(Q66, torch.ones(6, 1), 3),
        ValueError,
        r"one value per group, shape \(12, 1\) for group_size=3, got \(6, 1\)",
    ),
    "per_group_scale_number": (
        lambda: linear_dequantization_per_group(Q66, 0.5, 3),
        ValueError,
        "one value per group",
    ),
    "per_group_not_dividing": (
        lambda: linear_dequantization_per_group(Q66, torch.ones(9, 1), 4),
        ValueError,
        "does not divide",
    ),
    "per_group_float_tensor": (
        lambda: linear_dequantization_per_group(GROUP_TENSOR, torch.ones(12, 1), 3),
        TypeError,
        "needs the integer tensor",
    ),
    # NaN, infinity, empty
    "nan_per_group": (lambda: linear_q_symmetric_per_group(NAN, 2), ValueError, "NaN"),
    "nan_per_channel": (lambda: linear_q_symmetric_per_channel(NAN, 1), ValueError, "NaN"),
    "nan_block_range": (lambda: block_range(NAN, (1, 4)), ValueError, "NaN"),
    "nan_quantize_affine": (
        lambda: quantize_affine(NAN, (1, 2), torch.ones(1, 2), 0),
        ValueError,
        "NaN",
    ),
    "nan_with_r_range": (
        lambda: quantize_blockwise(NAN, (1, 2), r_range=torch.ones(1, 2)),
        ValueError,
        "NaN",
    ),
    "nan_symmetric_per_tensor": (lambda: get_q_scale_symmetric(NAN), ValueError, "NaN"),
    "inf_per_channel": (lambda: linear_q_symmetric_per_channel(INF, 0), ValueError, "infinite"),
    "inf_per_group": (lambda: quantize_blockwise(INF, (1, 1)), ValueError, "infinite"),
    "inf_symmetric": (lambda: linear_q_symmetric(INF), ValueError, "infinite"),
    "empty_per_channel": (
        lambda: linear_q_symmetric_per_channel(torch.empty(0, 3), 1),
        ValueError,
        "empty",
    ),
    "empty_per_group": (
        lambda: linear_q_symmetric_per_group(torch.empty(2, 0), 1),
        ValueError,
        "empty",
    ),
    "empty_choose": (lambda: choose_qparams_affine(torch.empty(0), (1,)), ValueError, "empty"),
    "empty_dequantize_affine": (
        lambda: dequantize_affine(torch.empty(0, dtype=torch.int8), (1,), 1.0, 0),
        ValueError,
        "empty",
    ),
    # r_range
    "r_range_nan": (
        lambda: choose_qparams_affine(
            TEST_TENSOR, (1, 3), r_range=torch.tensor([[1.0], [float("nan")], [2.0]])
        ),
        ValueError,
        "NaN",
    ),
    "r_range_inf": (
        lambda: choose_qparams_affine(
            TEST_TENSOR, (1, 3), r_range=(-ONES31, ONES31 * float("inf"))
        ),
        ValueError,
        "infinite",
    ),
    "r_range_wrong_shape": (
        lambda: choose_qparams_affine(TEST_TENSOR, (1, 3), r_range=(torch.zeros(2), torch.ones(2))),
        ValueError,
        r"r_range must broadcast to the blocks' shape \(3, 1\)",
    ),
    "r_range_min_above_max": (
        lambda: choose_qparams_affine(TEST_TENSOR, (1, 3), r_range=(ONES31, torch.zeros(3, 1))),
        ValueError,
        "r_min is larger than its r_max",
    ),
    "r_range_three_items": (
        lambda: choose_qparams_affine(TEST_TENSOR, (1, 3), r_range=(0.0, 1.0, 2.0)),
        TypeError,
        "pair",
    ),
    "r_range_number": (
        lambda: choose_qparams_affine(TEST_TENSOR, (1, 3), r_range=1.0),
        TypeError,
        "pair",
    ),
    # dtypes
    "float_target": (
        lambda: linear_q_symmetric_per_channel(TEST_TENSOR, 0, torch.float16),
        TypeError,
        "floating-point",
    ),
    "int32_target": (
        lambda: quantize_blockwise(TEST_TENSOR, (1, 3), torch.int32),
        TypeError,
        "not supported",
    ),
    "n_bits_too_many": (
        lambda: linear_q_symmetric_per_group(GROUP_TENSOR, 3, torch.int8, 9),
        ValueError,
        "2 to 8",
    ),
    "n_bits_one": (lambda: linear_q_symmetric(TEST_TENSOR, torch.int8, 1), ValueError, "2 to 8"),
    "list_input": (lambda: linear_q_symmetric_per_channel([[1.0]], 0), TypeError, "torch.Tensor"),
    "complex_input": (
        lambda: quantize_blockwise(torch.ones(2, dtype=torch.complex64), (1,)),
        TypeError,
        "real numbers",
    ),
    "dequantize_affine_float": (
        lambda: dequantize_affine(TEST_TENSOR, (1, 3), ONES31, 0),
        TypeError,
        "needs the integer tensor",
    ),
    "dequantize_affine_int_output": (
        lambda: dequantize_affine(Q33, (1, 3), ONES31, 0, output_dtype=torch.int32),
        TypeError,
        "output_dtype must be a float dtype",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_raises_a_clear_error(case):
    """Bad input raises the documented exception type, with a message that says what to do."""
    call, exception, phrase = BAD_INPUT[case]
    with pytest.raises(exception, match=phrase):
        call()
