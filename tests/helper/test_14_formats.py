"""Tests for helper.py section 14, number formats as grids: float8 and NF4 (lesson 14).

The float8 decoder is checked against PyTorch's own float8 dtypes, every one of the 256 codes of
both formats, bit for bit (NaNs as NaNs, -0 as -0). NF4 is checked against the table that
bitsandbytes publishes (functional.py, get_4bit_type) and QLoRA uses. The grid quantizer is
checked against PyTorch's float8 casts for every block size, ties included, and, with
hypothesis, for its error bound: inside the range, no value is further than half the local
spacing from its grid value.
Bad input is in test_bad_input.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import NF4_PUBLISHED
from hypothesis import given, settings
from hypothesis import strategies as st

from helper import (
    FLOAT8_FORMATS,
    block_shapes,
    dequantize_from_grid,
    float8_from_bits,
    float8_grid,
    grid_values,
    nf4_levels,
    quantize_to_grid,
)

FORMATS = list(FLOAT8_FORMATS)
DTYPES = {"e4m3fn": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}


def torch_codes(fmt: str) -> torch.Tensor:
    """All 256 codes of ``fmt`` as PyTorch reads them, in float32."""
    return torch.arange(256, dtype=torch.uint8).view(DTYPES[fmt]).float()


# -- decoding the bit fields ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_code_decodes_as_pytorch_reads_it_bit_for_bit(fmt):
    ours = torch.tensor([float8_from_bits(byte, fmt) for byte in range(256)])
    theirs = torch_codes(fmt)
    assert torch.equal(ours.isnan(), theirs.isnan())
    finite_or_inf = ~theirs.isnan()
    # the int32 view compares the bits: -0.0 and +0.0 differ there, and so do +inf and -inf
    assert torch.equal(
        ours[finite_or_inf].view(torch.int32), theirs[finite_or_inf].view(torch.int32)
    )


def test_the_special_codes_of_each_format():
    # e4m3fn: no infinities, S.1111.111 is NaN, S.1111.110 is the largest value, 448
    assert math.isnan(float8_from_bits(0x7F, "e4m3fn")) and math.isnan(
        float8_from_bits(0xFF, "e4m3fn")
    )
    assert [float8_from_bits(b, "e4m3fn") for b in (0x7E, 0xFE, 0x78)] == [448.0, -448.0, 256.0]
    nan_codes = [b for b in range(256) if math.isnan(float8_from_bits(b, "e4m3fn"))]
    assert nan_codes == [0x7F, 0xFF]
    # e5m2: IEEE 754, an all-ones exponent is inf (mantissa 0) or NaN
    assert (
        float8_from_bits(0x7C, "e5m2") == math.inf and float8_from_bits(0xFC, "e5m2") == -math.inf
    )
    assert [b for b in range(256) if math.isnan(float8_from_bits(b, "e5m2"))] == [
        0x7D,
        0x7E,
        0x7F,
        0xFD,
        0xFE,
        0xFF,
    ]
    assert float8_from_bits(0x7B, "e5m2") == 57344.0
    # subnormals: exponent field 0, no implicit 1, evenly spaced by the smallest one
    assert [float8_from_bits(b, "e4m3fn") for b in range(1, 8)] == [
        k * 2.0**-9 for k in range(1, 8)
    ]
    assert [float8_from_bits(b, "e5m2") for b in range(1, 4)] == [k * 2.0**-16 for k in range(1, 4)]
    assert math.copysign(1.0, float8_from_bits(0x80, "e4m3fn")) == -1.0  # -0 keeps its sign


def test_a_one_element_integer_tensor_is_a_code():
    assert float8_from_bits(torch.tensor(0x7E, dtype=torch.uint8), "e4m3fn") == 448.0
    assert float8_from_bits(0x38, torch.float8_e4m3fn) == 1.0  # PyTorch's dtype names the format


# -- the grids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "size", "zero_at", "largest"),
    [("e4m3fn", 253, 126, 448.0), ("e5m2", 247, 123, 57344.0)],
)
def test_the_grid_is_every_finite_value_once_sorted(fmt, size, zero_at, largest):
    grid = float8_grid(fmt)
    assert grid.dtype == torch.float32 and len(grid) == size
    assert bool((grid.diff() > 0).all())
    assert grid[zero_at] == 0 and grid[-1] == largest and grid[0] == -largest
    theirs = torch_codes(fmt)
    assert torch.equal(grid, torch.unique(theirs[theirs.isfinite()]))


def test_nf4_reproduces_the_published_table():
    levels = nf4_levels()
    assert levels.dtype == torch.float32 and len(levels) == 16
    assert (levels.double() - torch.tensor(NF4_PUBLISHED, dtype=torch.float64)).abs().max() < 1e-6
    assert levels[7] == 0 and levels[0] == -1 and levels[-1] == 1
    assert int((levels > 0).sum()) == 8 and int((levels < 0).sum()) == 7  # asymmetric halves


def test_qloras_formula_starts_at_minus_infinity_and_misses_the_table():
    """q_i = (Q(i / 17) + Q((i + 1) / 17)) / 2 from the paper: Q(0) = -inf, so q_0 = -inf."""
    quantile = torch.special.ndtri
    i = torch.arange(16, dtype=torch.float64)
    q = (quantile(i / 17) + quantile((i + 1) / 17)) / 2
    assert q[0] == -math.inf
    assert not torch.allclose(
        q[1:-1] / q[1:-1].abs().max(),
        torch.tensor(NF4_PUBLISHED[1:-1], dtype=torch.float64),
        atol=1e-3,
    )


def test_grid_values_takes_names_and_tensors():
    assert torch.equal(grid_values("nf4"), nf4_levels())
    assert torch.equal(grid_values("e5m2"), float8_grid("e5m2"))
    custom = torch.tensor([-1.0, 0.0, 0.5, 1.0], dtype=torch.float64)
    assert grid_values(custom).dtype == torch.float32


# -- quantizing onto a grid ------------------------------------------------------------------------

BLOCK_SIZES = [(32, 48), (1, 48), (32, 1), (1, 16), (4, 8), (8, 48), (1, 1)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("block_size", BLOCK_SIZES, ids=str)
def test_float8_equals_pytorchs_cast_for_every_block_size(fmt, block_size):
    generator = torch.Generator().manual_seed(7)
    t = torch.randn(32, 48, generator=generator, dtype=torch.float64).float() * 5
    t[3, :7] = 0.0  # a few zeros, and for (1, 1) blocks zero blocks
    codes, scale = quantize_to_grid(t, fmt, block_size)
    blocks = block_shapes(t.shape, block_size)
    assert codes.dtype == torch.uint8 and codes.shape == t.shape
    assert scale.dtype == torch.float32 and tuple(scale.shape) == blocks.n_blocks
    s = scale.reshape(blocks.param_shape)
    cast = (t.reshape(blocks.view_shape) / s).to(DTYPES[fmt]).float() * s
    back = dequantize_from_grid(codes, scale, fmt, block_size)
    assert torch.equal(back, cast.reshape(t.shape))


@pytest.mark.parametrize("fmt", FORMATS)
def test_ties_go_to_the_even_encoding_as_the_cast_does(fmt):
    grid = float8_grid(fmt)
    middles = (grid[1:].double() + grid[:-1].double()) / 2
    exact = middles == middles.float().double()  # the middles float32 can hold exactly
    ties = middles[exact].float()
    t = torch.cat([ties, grid[-1:]])  # the largest value makes the scale exactly 1
    codes, scale = quantize_to_grid(t, fmt, t.shape)
    assert scale.item() == 1.0 and len(ties) > 200
    assert torch.equal(grid[codes.long()][:-1], ties.to(DTYPES[fmt]).float())
    encodings = (grid[codes.long()][:-1]).to(DTYPES[fmt]).view(torch.uint8)
    assert bool((encodings % 2 == 0).all())


def test_codes_are_indices_into_the_grid():
    # e5m2: zero at index 123, so the encoding 0x01 (even steps 1) sits at index 124
    codes, _ = quantize_to_grid(torch.tensor([0.0, 57344.0, 2.0**-16]), "e5m2", (3,))
    assert codes.tolist() == [123, 246, 124]


def test_a_block_of_zeros_gets_scale_one_and_code_zero():
    t = torch.zeros(2, 4)
    t[1] = torch.tensor([1.0, -2.0, 0.5, 4.0])
    codes, scale = quantize_to_grid(t, "nf4", (1, 4))
    assert scale.flatten().tolist() == [1.0, 4.0]
    assert codes[0].tolist() == [7, 7, 7, 7]
    assert torch.equal(dequantize_from_grid(codes, scale, "nf4", (1, 4))[0], torch.zeros(4))


def test_nf4_is_absmax_scaling_then_the_nearest_level():
    generator = torch.Generator().manual_seed(3)
    t = torch.randn(4, 64, generator=generator)
    codes, scale = quantize_to_grid(t, "nf4", (1, 64))
    absmax = t.abs().amax(dim=1, keepdim=True)
    assert torch.equal(scale, absmax)
    nearest = ((t / absmax).unsqueeze(-1) - nf4_levels()).abs().argmin(dim=-1)
    assert torch.equal(codes.long(), nearest)


def test_inputs_are_not_modified():
    t = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    copy = t.clone()
    codes, scale = quantize_to_grid(t, "e4m3fn", (1, 8))
    codes_copy, scale_copy = codes.clone(), scale.clone()
    dequantize_from_grid(codes, scale, "e4m3fn", (1, 8))
    assert (
        torch.equal(t, copy) and torch.equal(codes, codes_copy) and torch.equal(scale, scale_copy)
    )


def test_pytorchs_cpu_cast_saturates_e4m3fn_but_overflows_e5m2():
    """What lesson 14 teaches about out-of-range values, and why the grid scale avoids them."""
    big = torch.tensor([464.0, 1e6])
    assert big.to(torch.float8_e4m3fn).float().tolist() == [448.0, 448.0]
    assert torch.tensor([61440.0]).to(torch.float8_e5m2).float().item() == math.inf
    codes, scale = quantize_to_grid(torch.tensor([61440.0, 1.0]), "e5m2", (2,))
    assert dequantize_from_grid(codes, scale, "e5m2", (2,)).isfinite().all()


@settings(max_examples=60, deadline=None)
@given(
    grid=st.sampled_from(["e4m3fn", "e5m2", "nf4"]),
    rows=st.integers(1, 6),
    groups=st.integers(1, 4),
    group=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
    spread=st.floats(1e-3, 1e3),
)
def test_every_value_is_within_half_the_local_spacing(grid, rows, groups, group, seed, spread):
    """Inside the range, the error is at most half the gap between the two grid values around
    r / s (times the scale): the nearest value is never further than that."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.randn(rows, groups * group, generator=generator) * spread
    codes, scale = quantize_to_grid(t, grid, (1, group))
    blocks = block_shapes(t.shape, (1, group))
    s = scale.reshape(blocks.param_shape)
    x = (t.reshape(blocks.view_shape) / s).reshape(t.shape).double()
    values = grid_values(grid).double()
    above = torch.bucketize(x, values).clamp(1, len(values) - 1)
    gap = values[above] - values[above - 1]
    error = (values[codes.long()] - x).abs()
    assert bool((error <= gap / 2 + 1e-12).all())
