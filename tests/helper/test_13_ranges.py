"""Tests for helper.py section 13, choosing the range: min-max, percentile and MSE-optimal
clipping (lesson 13).

Each method's contract is checked against references written here, independently of helper:
Python loops over the blocks (rows, columns, groups) with ``torch.sort`` for percentiles and
the round trip ``clamp(round(r / s), -q_max, q_max) * s`` spelled out. Then: percentile 100 is
min-max; the MSE search is never worse than min-max and per channel equals a search row by
row; a block of more than 2**24 elements works (``torch.quantile`` refuses it); inputs are
never modified; hypothesis tries many small tensors and block sizes. The last part checks that
the digits accuracies lesson 13 prints cannot change between CPUs. Bad input is in
test_bad_input.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import CLIPPING_FUNCTIONS, varied_rows_mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

import helper
from helper import (
    CLIPPING_GRIDS,
    RANGE_METHODS,
    SCALE_EPS,
    absmax_minmax,
    absmax_mse_optimal,
    absmax_percentile,
    aciq_clip_gaussian,
    aciq_mse_gaussian,
    clipping_absmax,
    clipping_mse_curve,
    dequantize_affine,
    fake_quantize,
    fake_quantize_clipped,
    fake_quantize_linears,
    granularity_block_size,
    plot_clipping_curves,
    plot_clipping_ranges,
    quantize_blockwise,
    quantize_clipped,
)
from support.examples import seeded_laplace, seeded_randn, test_tensor, varied_rows_weight

#: The hypothesis profile (conftest.py) with 100 examples: each one runs the MSE search.
HYPOTHESIS = settings(max_examples=100)


# ------------------------------------------------------------------------------------------
# References, written without helper
# ------------------------------------------------------------------------------------------


def tiles(tensor: torch.Tensor, block: tuple[int, int]):
    """Every block of a 2-D tensor as ``((i, j), 1-D tensor of its elements)``, in a loop."""
    rows, columns = tensor.shape
    for i in range(rows // block[0]):
        for j in range(columns // block[1]):
            part = tensor[i * block[0] : (i + 1) * block[0], j * block[1] : (j + 1) * block[1]]
            yield (i, j), part.flatten()


def per_block(tensor, block, function) -> torch.Tensor:
    """``function(elements)`` for every block of a 2-D tensor, float64 of shape n_blocks."""
    n_blocks = (tensor.shape[0] // block[0], tensor.shape[1] // block[1])
    out = torch.empty(n_blocks, dtype=torch.float64)
    for (i, j), values in tiles(tensor, block):
        out[i, j] = float(function(values))
    return out


def ref_percentile(values: torch.Tensor, percentile: float) -> float:
    """torch.quantile's linear interpolation, from a full sort of the magnitudes."""
    ordered = values.double().abs().sort().values
    position = (len(ordered) - 1) * percentile / 100
    k = math.floor(position)
    above = ordered[min(k + 1, len(ordered) - 1)]
    return float(ordered[k] + (position - k) * (above - ordered[k]))


def ref_round_trip(values: torch.Tensor, absmax: float, q_max: int) -> torch.Tensor:
    """Clip and round to the symmetric grid -q_max..q_max, in float32 like helper."""
    scale = torch.tensor(max(absmax / q_max, SCALE_EPS), dtype=torch.float64).float()
    return torch.round(values / scale).clamp(-q_max, q_max) * scale


def ref_mse(values: torch.Tensor, absmax: float, q_max: int) -> float:
    back = ref_round_trip(values, absmax, q_max)
    return (back - values).double().square().mean().item()


BLOCKS_8x12 = {
    "per tensor": (8, 12),
    "per row": (1, 12),
    "per column": (8, 1),
    "groups of 4": (1, 4),
    "2x3 tiles": (2, 3),
}

WEIGHT = varied_rows_weight(8, 12, seed=5)


# ------------------------------------------------------------------------------------------
# min-max and percentile
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS_8x12.values(), ids=BLOCKS_8x12.keys())
def test_absmax_minmax_is_the_largest_magnitude_of_every_block(block):
    expected = per_block(WEIGHT, block, lambda v: v.abs().max())
    got = absmax_minmax(WEIGHT, block)
    assert got.dtype == torch.float64 and torch.equal(got, expected)


@pytest.mark.parametrize("block", BLOCKS_8x12.values(), ids=BLOCKS_8x12.keys())
@pytest.mark.parametrize("percentile", [100.0, 99.9, 90.0, 50.0, 12.5, 0.01])
def test_absmax_percentile_matches_a_sort_per_block(block, percentile):
    expected = per_block(WEIGHT, block, lambda v: ref_percentile(v, percentile))
    got = absmax_percentile(WEIGHT, block, percentile)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("block", BLOCKS_8x12.values(), ids=BLOCKS_8x12.keys())
def test_percentile_100_is_min_max_exactly(block):
    assert torch.equal(absmax_percentile(WEIGHT, block, 100), absmax_minmax(WEIGHT, block))


def test_absmax_percentile_agrees_with_torch_quantile():
    r = seeded_laplace(3000, seed=2)
    for percentile in (99.9, 99.0, 75.0, 1.0):
        expected = torch.quantile(r.double().abs(), percentile / 100).item()
        assert absmax_percentile(r, (3000,), percentile).item() == pytest.approx(expected, 1e-12)


def test_absmax_percentile_of_a_transposed_float64_tensor_and_a_0_dim_tensor():
    t = WEIGHT.double().T  # not contiguous
    expected = per_block(t, (1, 8), lambda v: ref_percentile(v, 95.0))
    assert torch.allclose(absmax_percentile(t, (1, 8), 95.0), expected, rtol=1e-12)
    assert absmax_percentile(torch.tensor(-3.0), (), 50.0).item() == 3.0


def test_a_block_of_more_than_2_24_elements_works():
    """torch.quantile refuses it; kthvalue and the search take it (about 0.4 GB, seconds)."""
    n = 2**24 + 3
    r = seeded_randn(n, seed=7)
    with pytest.raises(RuntimeError, match="too large"):
        torch.quantile(r.abs(), 0.999)
    assert absmax_percentile(r, (n,), 99.9).item() == pytest.approx(ref_percentile(r, 99.9))
    assert absmax_percentile(r, (n,), 100.0).item() == r.abs().max().item()
    peak = absmax_minmax(r, (n,))
    best = absmax_mse_optimal(r, (n,), n_bits=4, n_grid=4, n_refine=1)
    curve = clipping_mse_curve(r, (n,), [best.item() / peak.item(), 1.0], n_bits=4)
    assert best.item() < peak.item() and curve[0].item() < curve[1].item()


# ------------------------------------------------------------------------------------------
# quantize_clipped and fake_quantize_clipped
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS_8x12.values(), ids=BLOCKS_8x12.keys())
@pytest.mark.parametrize("n_bits", [8, 4, 3, 2])
def test_quantize_clipped_matches_a_loop_over_blocks(block, n_bits):
    q_max = 2 ** (n_bits - 1) - 1
    absmax = absmax_percentile(WEIGHT, block, 80.0)
    q, scale, zero_point = quantize_clipped(WEIGHT, block, absmax, n_bits=n_bits)
    back = dequantize_affine(q, block, scale, zero_point)
    assert q.dtype == torch.int8 and torch.equal(zero_point, torch.zeros_like(zero_point))
    assert int(q.min()) >= -q_max and int(q.max()) <= q_max  # q_min stays unused
    for (i, j), values in tiles(WEIGHT, block):
        expected = ref_round_trip(values, absmax[i, j].item(), q_max)
        rows = slice(i * block[0], (i + 1) * block[0])
        columns = slice(j * block[1], (j + 1) * block[1])
        assert torch.equal(back[rows, columns].flatten(), expected)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16])
@pytest.mark.parametrize("n_bits", [None, 4, 2])
@pytest.mark.parametrize("block", [(8, 12), (1, 12), (1, 4)], ids=["tensor", "row", "group"])
def test_min_max_range_is_exactly_quantize_blockwise(dtype, n_bits, block):
    """Min-max never reaches the unused code, so clipping at max|r| changes nothing."""
    expected = quantize_blockwise(WEIGHT, block, dtype, n_bits, symmetric=True)
    got = quantize_clipped(WEIGHT, block, absmax_minmax(WEIGHT, block), dtype, n_bits)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_uint8_clipping_keeps_the_grid_symmetric_around_its_midpoint():
    r = torch.tensor([-5.0, -1.0, 0.0, 0.4, 5.0])
    q, scale, zero_point = quantize_clipped(r, (5,), 1.0, torch.uint8, n_bits=4)
    assert zero_point.item() == 8 and scale.item() == pytest.approx(1 / 7)
    assert q.tolist() == [1, 1, 8, 11, 15]  # -5 saturates at 8 - 7 = 1, not at 0


def test_the_searchs_fast_round_trip_is_the_public_one_bit_for_bit():
    """The search computes the round trip in float without the integer tensor; it must give
    exactly what quantize_clipped + dequantize_affine give (float32 input)."""
    for block in BLOCKS_8x12.values():
        for n_bits in (8, 4, 2):
            for dtype in (torch.int8, torch.uint8):
                ratios = [0.3, 0.77, 1.0]
                curve = clipping_mse_curve(WEIGHT, block, ratios, dtype, n_bits)
                peak = absmax_minmax(WEIGHT, block)
                for ratio, mses in zip(ratios, curve, strict=True):
                    back = fake_quantize_clipped(WEIGHT, block, ratio * peak, dtype, n_bits)
                    squares = (back - WEIGHT).square().double()  # float32 squares, as helper
                    expected = per_block(squares, block, lambda v: v.mean())
                    assert torch.allclose(mses, expected, rtol=1e-12, atol=0)


def test_fake_quantize_clipped_keeps_the_float_dtype_and_makes_integers_float32():
    r = torch.tensor([[0.25, -1.5], [3.0, 0.0]], dtype=torch.float64)
    assert fake_quantize_clipped(r, (2, 2), 1.0, n_bits=4).dtype == torch.float64
    result = fake_quantize_clipped(torch.tensor([3, -7, 1]), (3,), 7, n_bits=4)
    assert result.dtype == torch.float32 and result.tolist() == [3.0, -7.0, 1.0]


def test_midrise_grid_has_2_to_the_n_levels_and_no_zero():
    r = torch.linspace(-3, 3, 601)
    for n_bits in (2, 3, 4):
        back = fake_quantize_clipped(r, (601,), 2.0, n_bits=n_bits, grid="midrise")
        levels = torch.unique(back)
        step = 2 * 2.0 / 2**n_bits
        expected = (torch.arange(2**n_bits) + 0.5) * step - 2.0
        assert torch.allclose(levels, expected.float()) and not bool((levels == 0).any())


def test_midrise_matches_floor_plus_a_half_per_row():
    block = (1, 12)
    absmax = absmax_percentile(WEIGHT, block, 90.0)
    back = fake_quantize_clipped(WEIGHT, block, absmax, n_bits=3, grid="midrise")
    for (i, _), values in tiles(WEIGHT, block):
        step = torch.tensor(absmax[i, 0].item() / 4).float()
        expected = (torch.floor(values / step).clamp(-4, 3) + 0.5) * step
        assert torch.allclose(back[i], expected, rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------------
# The MSE search
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS_8x12.values(), ids=BLOCKS_8x12.keys())
@pytest.mark.parametrize("n_bits", [8, 4, 2])
@pytest.mark.parametrize("grid", CLIPPING_GRIDS)
def test_mse_optimal_is_never_worse_than_min_max_nor_than_any_coarse_candidate(block, n_bits, grid):
    best = absmax_mse_optimal(WEIGHT, block, n_bits=n_bits, n_grid=20, n_refine=4, grid=grid)
    peak = absmax_minmax(WEIGHT, block)
    assert bool((best <= peak).all()) and bool((best > 0).all())
    ratios = [k / 20 for k in range(1, 21)]
    coarse = clipping_mse_curve(WEIGHT, block, ratios, n_bits=n_bits, grid=grid)
    back = fake_quantize_clipped(WEIGHT, block, best, n_bits=n_bits, grid=grid)
    mse = per_block((back - WEIGHT).square().double(), block, lambda v: v.mean())
    assert bool((mse <= coarse.amin(dim=0) * (1 + 1e-12)).all())
    assert bool((mse <= coarse[-1] * (1 + 1e-12)).all())  # ratio 1: min-max


def test_mse_search_per_channel_equals_the_search_row_by_row():
    weight = varied_rows_weight(16, 64, seed=9)
    for n_bits in (4, 2):
        together = absmax_mse_optimal(weight, (1, 64), n_bits=n_bits)
        one_by_one = torch.stack(
            [absmax_mse_optimal(row.unsqueeze(0), (1, 64), n_bits=n_bits) for row in weight]
        )
        assert torch.equal(together, one_by_one.reshape(16, 1))


def test_mse_search_finds_the_best_of_a_brute_force_scan_within_its_resolution():
    """On one tensor, against ref_mse over 1000 ratios: within 1% of the brute-force best."""
    r = seeded_randn(4096, seed=4)
    peak = r.abs().max().item()
    for n_bits in (4, 2):
        q_max = 2 ** (n_bits - 1) - 1
        brute = min(ref_mse(r, k / 1000 * peak, q_max) for k in range(1, 1001))
        found = ref_mse(r, absmax_mse_optimal(r, (4096,), n_bits=n_bits).item(), q_max)
        assert found <= brute * 1.01


def test_optimal_ranges_of_a_gaussian_are_the_known_ones():
    """2 bits: 1.224 sigma on the 3-level grid (Lloyd-Max's 3-level quantizer is uniform),
    1.99 sigma on the 4-level mid-rise grid (Max, 1960: step 0.9957 sigma)."""
    r = seeded_randn(2**18, seed=1)
    sigma = r.double().std().item()
    course = absmax_mse_optimal(r, r.shape, n_bits=2).item() / sigma
    midrise = absmax_mse_optimal(r, r.shape, n_bits=2, grid="midrise").item() / sigma
    assert course == pytest.approx(1.224, abs=0.03)
    assert midrise == pytest.approx(1.991, abs=0.05)


def test_min_max_wins_for_uniform_data_at_8_bits():
    """Clipping evenly spread values only hurts: the search keeps (almost) the whole range."""
    r = torch.linspace(-1, 1, 4001)
    assert absmax_mse_optimal(r, (4001,), n_bits=8).item() > 0.99


def test_clipping_absmax_dispatches_to_each_method():
    block = (1, 12)
    assert torch.equal(clipping_absmax(WEIGHT, block, "min-max"), absmax_minmax(WEIGHT, block))
    assert torch.equal(
        clipping_absmax(WEIGHT, block, "percentile", percentile=97),
        absmax_percentile(WEIGHT, block, 97),
    )
    assert torch.equal(
        clipping_absmax(WEIGHT, block, "mse", n_bits=4),
        absmax_mse_optimal(WEIGHT, block, n_bits=4),
    )
    assert RANGE_METHODS == ("min-max", "percentile", "mse")


def test_clipping_mse_curve_has_one_row_per_ratio_and_one_column_per_block():
    curve = clipping_mse_curve(WEIGHT, (1, 4), [0.5, 1.0, 0.25], n_bits=4)
    assert curve.shape == (3, 8, 3) and curve.dtype == torch.float64
    one = clipping_mse_curve(WEIGHT[2, 4:8], (4,), [0.5, 1.0, 0.25], n_bits=4)
    assert torch.allclose(curve[:, 2, 1], one.flatten(), rtol=1e-12)


# ------------------------------------------------------------------------------------------
# Weights and models
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granularity", "group_size"), [("per_tensor", None), ("per_channel", None), ("per_group", 4)]
)
@pytest.mark.parametrize("n_bits", [8, 4, 2])
def test_min_max_range_is_lesson_10s_fake_quantize(granularity, group_size, n_bits):
    """The clipping path with the min-max range gives exactly the plain symmetric path."""
    block = granularity_block_size(WEIGHT.shape, granularity, dim=0, group_size=group_size)
    absmax = clipping_absmax(WEIGHT, block, "min-max", torch.int8, n_bits)
    got = fake_quantize_clipped(WEIGHT, block, absmax, torch.int8, n_bits)
    assert torch.equal(got, fake_quantize(WEIGHT, n_bits, granularity, group_size))


def clipped(method: str, n_bits: int, percentile: float = 99.9):
    """The range rule lesson 13 passes to ``fake_quantize_linears``: ``clipping_absmax``."""
    return lambda w, block: clipping_absmax(w, block, method, n_bits=n_bits, percentile=percentile)


def fake_quantize_with(weight, n_bits, method, granularity="per_channel", percentile=99.9):
    """``fake_quantize`` with the range of ``method`` (section 13) passed in, per row."""
    block = granularity_block_size(weight.shape, granularity, dim=0)
    absmax = clipped(method, n_bits, percentile)(weight, block)
    return fake_quantize(weight, n_bits, granularity, absmax=absmax)


def test_fake_quantize_with_a_range_keeps_dtype_and_the_mse_method_lowers_each_rows_error():
    weight = WEIGHT.to(torch.bfloat16)
    assert fake_quantize_with(weight, 4, "percentile").dtype == torch.bfloat16
    for n_bits in (4, 2):
        minmax = fake_quantize_with(WEIGHT, n_bits, "min-max")
        best = fake_quantize_with(WEIGHT, n_bits, "mse")
        row_mse = (best - WEIGHT).double().square().mean(dim=1)
        assert bool((row_mse <= (minmax - WEIGHT).double().square().mean(dim=1)).all())


def test_fake_quantize_linears_with_a_range_quantizes_a_copy():
    model = varied_rows_mlp()
    before = [p.detach().clone() for p in model.parameters()]
    quantized = fake_quantize_linears(model, 2, layers=["2"], absmax=clipped("mse", 2))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert torch.equal(quantized[0].weight, model[0].weight)  # not chosen: unchanged
    assert torch.equal(quantized[2].bias, model[2].bias)
    expected = fake_quantize_with(model[2].weight.detach(), 2, "mse")
    assert torch.equal(quantized[2].weight.detach(), expected)


# ------------------------------------------------------------------------------------------
# ACIQ
# ------------------------------------------------------------------------------------------


def test_aciq_optimal_ranges_are_the_papers():
    """Banner et al. (2019), table for Gaussian data: 1.71, 2.15, 2.55 (2.5591), 3.92."""
    assert [round(aciq_clip_gaussian(bits), 2) for bits in (2, 3, 4, 8)] == [
        1.71,
        2.15,
        2.56,
        3.92,
    ]
    assert aciq_clip_gaussian(4, sigma=2.0) == pytest.approx(2 * aciq_clip_gaussian(4))


def test_aciq_clipping_term_is_the_integral_of_the_clipped_tails():
    x = torch.linspace(0, 12, 1_200_001, dtype=torch.float64)
    density = torch.exp(-x.square() / 2) / math.sqrt(2 * math.pi)
    for alpha in (1.0, 2.5, 4.0):
        tails = 2 * torch.trapezoid(((x - alpha).clamp(min=0) ** 2) * density, x).item()
        rounding = alpha**2 / (3 * 4**4)
        assert aciq_mse_gaussian(alpha, 4) == pytest.approx(tails + rounding, rel=1e-7)


# ------------------------------------------------------------------------------------------
# Untouched inputs and all-zero blocks
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", CLIPPING_FUNCTIONS.values(), ids=CLIPPING_FUNCTIONS.keys())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inputs_are_never_modified(function, dtype):
    tensor = varied_rows_weight(6, 10, seed=3).to(dtype)
    for t in (tensor, tensor.T):
        before = t.clone()
        function(t)
        assert torch.equal(t, before)


def test_an_all_zero_block_gets_a_tiny_range_and_comes_back_as_zeros():
    weight = torch.zeros(2, 4)
    weight[1] = torch.tensor([0.5, -1.0, 0.25, 0.0])
    for method in RANGE_METHODS:
        absmax = clipping_absmax(weight, (1, 4), method, n_bits=4)
        assert absmax[0].item() == 0.0
        back = fake_quantize_clipped(weight, (1, 4), absmax, n_bits=4)
        assert torch.equal(back[0], torch.zeros(4)) and bool(torch.isfinite(back).all())


# ------------------------------------------------------------------------------------------
# Properties (hypothesis)
# ------------------------------------------------------------------------------------------


@st.composite
def tensors_and_blocks(draw):
    rows, columns = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    values = draw(
        st.lists(
            st.floats(-1e3, 1e3, width=32, allow_subnormal=False),
            min_size=rows * columns,
            max_size=rows * columns,
        )
    )
    tensor = torch.tensor(values, dtype=torch.float32).reshape(rows, columns)
    divisors = [g for g in range(1, columns + 1) if columns % g == 0]
    block = draw(
        st.sampled_from(
            [(rows, columns), (1, columns), (rows, 1)] + [(1, g) for g in divisors] + [(1, 1)]
        )
    )
    return tensor, block


@HYPOTHESIS
@given(tensors_and_blocks(), st.sampled_from([8, 4, 3, 2]), st.floats(0.5, 100.0))
def test_properties_of_every_method(case, n_bits, percentile):
    tensor, block = case
    before = tensor.clone()
    peak = absmax_minmax(tensor, block)
    assert torch.equal(absmax_percentile(tensor, block, 100), peak)
    clipped = absmax_percentile(tensor, block, percentile)
    assert bool((clipped <= peak).all()) and bool((clipped >= 0).all())
    q_max = 2 ** (n_bits - 1) - 1
    for got, expected in zip(
        quantize_clipped(tensor, block, peak, n_bits=n_bits),
        quantize_blockwise(tensor, block, n_bits=n_bits, symmetric=True),
        strict=True,
    ):
        assert torch.equal(got, expected)
    q, _, _ = quantize_clipped(tensor, block, clipped, n_bits=n_bits)
    assert int(q.min()) >= -q_max and int(q.max()) <= q_max
    best = absmax_mse_optimal(tensor, block, n_bits=n_bits, n_grid=10, n_refine=2)
    error_best = fake_quantize_clipped(tensor, block, best, n_bits=n_bits) - tensor
    error_peak = fake_quantize_clipped(tensor, block, peak, n_bits=n_bits) - tensor
    rows_best = per_block(error_best.square().double(), block, lambda v: v.mean())
    rows_peak = per_block(error_peak.square().double(), block, lambda v: v.mean())
    assert bool((rows_best <= rows_peak * (1 + 1e-12) + 1e-300).all())
    assert torch.equal(tensor, before)


# ------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------


def test_plot_clipping_curves_marks_the_three_methods_in_every_panel():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plot_clipping_curves(seeded_randn(4096, seed=0), n_bits=(4, 2), title="t")
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    assert [ax.get_title() for ax in fig.axes] == ["4 bits: levels -7..7", "2 bits: levels -1..1"]
    for ax in fig.axes:
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert labels[:2] == ["measured MSE", "s² / 12 (rounding only)"]
        assert labels[2].startswith("min-max: 1.000, MSE ")
        assert labels[3].startswith("percentile 99.9: ") and labels[4].startswith("MSE-optimal")
        assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    assert fig._suptitle.get_text() == "t"


def test_plot_clipping_ranges_labels_each_range_with_its_clipped_share():
    r = torch.tensor([-4.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 8.0])
    fig = plot_clipping_ranges(r, {"min-max": 8.0, "half": 2.0}, bins=10)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["8 values", "min-max: ±8, 0.00% beyond", "half: ±2, 37.50% beyond"]


# ------------------------------------------------------------------------------------------
# Lesson 13's printed numbers
# ------------------------------------------------------------------------------------------


#: The digits table of lesson 13: images right out of 360, per bit width and range.
NOTEBOOK_METHODS = {
    "min-max": ("min-max", 100.0),
    "percentile 99.9": ("percentile", 99.9),
    "percentile 99": ("percentile", 99.0),
    "MSE-optimal": ("mse", 99.9),
}


def test_the_digits_predictions_of_lesson_13_are_far_from_ties():
    """The gap between every test image's two largest scores exceeds 5e-4 for every model
    lesson 13 counts, so no CPU's float32 products (about 1e-6 apart) can swap them."""
    from support.models import digits_classifier, load_digits_split

    model = digits_classifier()
    _, _, x_test, _ = load_digits_split()
    for n_bits in (4, 2):
        for label, (method, percentile) in NOTEBOOK_METHODS.items():
            quantized = fake_quantize_linears(
                model, n_bits, absmax=clipped(method, n_bits, percentile)
            )
            with torch.no_grad():
                top2 = quantized(x_test).topk(2, dim=-1).values
            gap = (top2[:, 0] - top2[:, 1]).min().item()
            assert gap > 5e-4, f"{n_bits} bits {label}: scores {gap:.2e} apart"


def test_helper_functions_of_section_13_have_doctests():
    for name in (
        "absmax_minmax",
        "absmax_percentile",
        "quantize_clipped",
        "fake_quantize_clipped",
        "clipping_mse_curve",
        "absmax_mse_optimal",
        "clipping_absmax",
        "aciq_mse_gaussian",
        "aciq_clip_gaussian",
        "plot_clipping_ranges",
    ):
        assert ">>>" in getattr(helper, name).__doc__, name


def test_the_test_tensor_per_row_ranges():
    """A worked example on the course's tensor: per row at 2 bits the search clips row 0."""
    t = test_tensor()
    peak = absmax_minmax(t, (1, 3)).flatten().tolist()
    best = absmax_mse_optimal(t, (1, 3), n_bits=2).flatten().tolist()
    assert peak == [728.5999755859375, 295.5, 684.5999755859375]
    assert all(b <= p for b, p in zip(best, peak, strict=True))
    assert granularity_block_size(t.shape, "per_channel", dim=0) == (1, 3)
