"""Tests of the fast path (support/fast.py): helper.py hands tensors of more than
``fast.PARALLEL_ELEMENTS`` elements to it, which quantizes and dequantizes a chunk of rows at a
time in worker threads (and multiplies large weights a block of rows at a time); the result
must equal the one-line formula bit for bit, whatever the chunk size and the threads.

Every test here runs with ``CHUNK`` elements per chunk (the autouse ``small_chunks`` fixture sets
``support.fast.CHUNK_ELEMENTS`` with monkeypatch), so small tensors already take the fast path
and several chunks, unless a test sets its own size.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from conftest import INT_DTYPES, blocks_of, expand, reference_quantize, seeded
from torch.overrides import TorchFunctionMode

from helper import (
    block_range,
    dequantize_affine,
    get_q_range,
    linear_dequantization,
    linear_dequantization_per_group,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
    linear_q_with_scale_and_zero_point,
    linear_quantization,
    quantize_blockwise,
    w8_a16_forward,
)
from support import fast

#: The chunk size the chunked-path tests run with (patched in by ``small_chunks``): small,
#: so that small tensors already take several chunks and the tests stay quick.
CHUNK = 2**14


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Run with ``CHUNK`` elements per chunk, and every tensor of more than 64 elements on the
    fast path (its worker threads included); results must not depend on either."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", CHUNK)
    monkeypatch.setattr(fast, "PARALLEL_ELEMENTS", 64)


# ------------------------------------------------------------------------------------------
# Per-tensor quantize and dequantize (sections 4 and 5)
# ------------------------------------------------------------------------------------------


def _per_row(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-row parameter of shape (rows, 1, ..., 1) for a tensor of ``ndim`` dims."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


CHUNK_SHAPES = {
    "0d": (),
    "1d_short": (100,),
    "1d_long": (2 * CHUNK + 123,),
    "2d_many_chunks": (300, 1000),  # 16 rows per chunk
    "2d_wide_rows": (3, CHUNK + 77),  # one row per chunk
    "3d": (9, 50, 600),  # rows of 30000 elements: one row per chunk
    "3d_single_row": (1, 5, 9),
}


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize("shape_name", list(CHUNK_SHAPES))
def test_chunked_quantize_equals_one_liner_scalar_params(shape_name, dtype, float_dtype):
    """Python-number scale and zero point: chunked quantize == the one-liner, bit for bit."""
    shape = CHUNK_SHAPES[shape_name]
    x = seeded(shape, seed=21, magnitude=50.0).to(float_dtype)
    q_min, q_max = get_q_range(dtype)
    scale, zero_point = 0.37, (q_min + q_max) // 2 + 3
    ours = linear_q_with_scale_and_zero_point(x, scale, zero_point, dtype)
    expected = reference_quantize(x, scale, zero_point, q_min, q_max, dtype)
    assert ours.shape == x.shape and ours.dtype == dtype
    assert torch.equal(ours, expected)
    deq = linear_dequantization(ours, scale, zero_point)
    assert torch.equal(deq, scale * (ours.float() - zero_point))


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize("shape_name", [n for n in CHUNK_SHAPES if n != "0d"])
def test_chunked_quantize_equals_one_liner_per_row_params(shape_name, dtype):
    """Per-row tensor scales (rows, 1, ...) and zero points: chunked == one-liner."""
    shape = CHUNK_SHAPES[shape_name]
    x = seeded(shape, seed=22, magnitude=20.0)
    rows = shape[0]
    q_min, q_max = get_q_range(dtype)
    generator = torch.Generator().manual_seed(23)
    scale = _per_row(0.01 + torch.rand(rows, generator=generator, dtype=torch.float64), len(shape))
    zero_point = _per_row(torch.randint(q_min, q_max + 1, (rows,), generator=generator), len(shape))
    ours = linear_q_with_scale_and_zero_point(x, scale, zero_point, dtype)
    expected = reference_quantize(x, scale, zero_point, q_min, q_max, dtype)
    assert torch.equal(ours, expected)
    deq = linear_dequantization(ours, scale, zero_point)
    assert torch.equal(deq, scale.float() * (ours.float() - zero_point))


def test_chunked_quantize_per_column_and_per_element_params():
    """Scales of shape (cols,) and (rows, cols) broadcast like the one-liner's."""
    x = seeded((200, 500), seed=24, magnitude=3.0)
    generator = torch.Generator().manual_seed(25)
    for scale_shape in [(500,), (1, 500), (200, 500), ()]:
        scale = 0.01 + torch.rand(scale_shape, generator=generator)
        zero_point = torch.randint(-20, 20, scale_shape, generator=generator).float()
        ours = linear_q_with_scale_and_zero_point(x, scale, zero_point)
        expected = reference_quantize(x, scale, zero_point, -128, 127, torch.int8)
        assert torch.equal(ours, expected), scale_shape
        deq = linear_dequantization(ours, scale, zero_point)
        assert torch.equal(deq, scale * (ours.float() - zero_point)), scale_shape


def test_chunked_quantize_handles_non_contiguous_input():
    """A transposed (non-contiguous) view quantizes like its contiguous copy."""
    x = seeded((CHUNK // 100, 300), seed=26).t()
    assert not x.is_contiguous()
    q, s, z = linear_quantization(x)
    assert torch.equal(q, linear_quantization(x.contiguous())[0])
    assert torch.equal(q, reference_quantize(x, s, z, -128, 127, torch.int8))


# ------------------------------------------------------------------------------------------
# Per-block parameters (section 9)
# ------------------------------------------------------------------------------------------


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
    tensor is one chunk, computed in this thread (the counter sees this thread's calls only),
    so the counts compare blocks, not chunks."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 1 << 20)
    monkeypatch.setattr(fast, "PARALLEL_ELEMENTS", 1 << 30)
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


# ------------------------------------------------------------------------------------------
# The W8A16 forward in row blocks (section 11)
# ------------------------------------------------------------------------------------------


def test_forward_in_row_blocks_equals_one_conversion(monkeypatch):
    """A weight larger than CHUNK_ELEMENTS is converted a block of rows at a time; with values
    whose products and sums are exact in float32 the result equals one big F.linear exactly."""

    generator = torch.Generator().manual_seed(7)
    q = torch.randint(-127, 128, (37, 16), generator=generator, dtype=torch.int8)
    x = torch.randint(-8, 9, (3, 5, 16), generator=generator).float()
    scales = torch.full((37,), 0.5)
    expected = F.linear(x, q.float()) * 0.5
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 16 * 5)  # 5 rows per block, 8 blocks
    assert torch.equal(w8_a16_forward(q, x, scales), expected)
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 1)  # one row per block
    assert torch.equal(w8_a16_forward(q, x, scales), expected)


# ------------------------------------------------------------------------------------------
# The grid quantizer (section 14)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", ["e4m3fn", "e5m2", "nf4"])
@pytest.mark.parametrize("block_size", [(300, 1000), (1, 1000), (1, 50), (300, 1)], ids=str)
def test_chunked_grid_codes_equal_the_readable_path(grid, block_size, monkeypatch):
    """The same codes from the chunks in workers as from helper's readable lines, ties
    included (a tensor whose values sit on the grid's middles)."""
    from helper import grid_values, quantize_to_grid

    values = grid_values(grid)
    largest = float(values[-1])
    t = (seeded((300, 1000), seed=4) * largest / 4).clamp(-largest, largest)
    middles = (values[1:].double() + values[:-1].double()) / 2
    ties = middles[middles == middles.float().double()].float()  # those float32 holds exactly
    t.view(-1)[: len(ties)] = ties
    t[-1, -1] = largest  # per tensor the scale is exactly 1, and the middles are ties
    fast_codes, fast_scale = quantize_to_grid(t, grid, block_size)
    monkeypatch.setattr(fast, "PARALLEL_ELEMENTS", 10**12)  # now the readable lines
    codes, scale = quantize_to_grid(t, grid, block_size)
    assert torch.equal(fast_codes, codes) and torch.equal(fast_scale, scale)
