"""The interactive explorer (support.explorer), driven without a browser.

Every control value is set the way a learner sets it (through the widget's ``.value``, which
runs the same observer the browser triggers), and the numbers the explorer shows are checked
against helper's own functions called directly. The quick redraw (blitting, and regions put
back as drawn before) is checked against an ordinary full draw of the same state, pixel for
pixel.
"""

import gc
import inspect
import io
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import helper
from helper import (
    absmax_minmax,
    absmax_mse_optimal,
    absmax_percentile,
    clipping_absmax,
    dequantize_affine,
    get_q_range,
    get_q_scale_and_zero_point,
    granularity_block_size,
    linear_dequantization,
    linear_dequantization_per_group,
    linear_q_symmetric,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
    linear_q_with_scale_and_zero_point,
    per_element,
    quantization_error,
    quantize_blockwise,
    quantize_clipped,
)
from support import examples
from support import explorer as explorer_module
from support.explorer import (
    BUILTIN_TENSOR_SOURCES,
    EXPLORER_CONTROLS,
    EXPLORER_DTYPES,
    EXPLORER_GRANULARITIES,
    EXPLORER_GROUP_SIZES,
    EXPLORER_MODES,
    EXPLORER_RANGES,
    EXPLORER_SIZES,
    MSE_SEARCH,
    MSE_SEARCH_COARSE,
    TENSOR_SOURCES,
    ExplorerControl,
    QuantizationExplorer,
    QuantizerResult,
    estimate_check,
    explore,
    explorer_quantize,
    format_number,
    register_tensor_source,
)
from support.explorer import drawing as explorer_drawing

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEST_TENSOR = [[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]]
DEFAULT_TENSOR = "lesson test tensor (3x3)"
# Every (dtype, bit width) the controls offer: 2 up to the dtype's own width.
DTYPE_BITS = [
    (name, bits)
    for name, dtype in EXPLORER_DTYPES.items()
    for bits in range(2, torch.iinfo(dtype).bits + 1)
]
# Every granularity, with a group size that divides the tensors used below (3 and 12 columns).
GRANULARITY_CASES = [
    ("per tensor", 3),
    ("per channel (rows)", 3),
    ("per channel (columns)", 3),
    ("per group", 3),
]


def lesson_12_packed_bytes(tensor: torch.Tensor, n_bits: int, storage_bits: int) -> int | None:
    """The bytes helper.pack_weights really produces for these values, row by row (padded with
    pad=True), or None where it refuses the width; at the dtype's own width, the stored bytes."""
    if n_bits == storage_bits:
        return tensor.numel() * storage_bits // 8
    levels = torch.zeros(tensor.shape, dtype=torch.uint8)
    try:
        return helper.pack_weights(levels, n_bits, pad=True).numel()
    except ValueError:
        return None


def expected(tensor_name: str, size: int, seed: int, dtype_name: str, n_bits: int) -> dict:
    """The explorer's numbers (asymmetric, per tensor), step by step with the lessons'
    per-tensor functions."""
    tensor = TENSOR_SOURCES[tensor_name](seed, size)
    dtype = EXPLORER_DTYPES[dtype_name]
    scale, zero_point = get_q_scale_and_zero_point(tensor, dtype, n_bits)
    quantized = linear_q_with_scale_and_zero_point(tensor, scale, zero_point, dtype, n_bits)
    dequantized = linear_dequantization(quantized, scale, zero_point)
    q_min, q_max = get_q_range(dtype, n_bits)
    return {
        "shape": tuple(tensor.shape),
        "q_min": q_min,
        "q_max": q_max,
        "block_size": tuple(tensor.shape),
        "n_scales": 1,
        "scale": scale,
        "zero_point": zero_point,
        "mse": quantization_error(tensor, dequantized).item(),
        "max_error": (dequantized - tensor).abs().max().item(),
        "theory_mse": scale**2 / 12,
        "bytes_before": 4 * tensor.numel(),
        "bytes_after": tensor.numel() * torch.iinfo(dtype).bits // 8,
        "bytes_params": 4 + torch.iinfo(dtype).bits // 8,
        "bytes_packed": lesson_12_packed_bytes(tensor, n_bits, torch.iinfo(dtype).bits),
        "levels": 2**n_bits,
        "unreachable_level": None,  # asymmetric mode reaches every code
        "levels_used": len(set(quantized.flatten().tolist())),
        "message": None,
    }


def blockwise(tensor, dtype, n_bits, mode, granularity, group_size):
    """helper's one mechanism called directly: (block_size, q, scale, zero_point, deq)."""
    name, dim = {
        "per tensor": ("per_tensor", 0),
        "per channel (rows)": ("per_channel", 0),
        "per channel (columns)": ("per_channel", -1),
        "per group": ("per_group", 0),
    }[granularity]
    block_size = granularity_block_size(tensor.shape, name, dim=dim, group_size=group_size)
    q, scale, zero_point = quantize_blockwise(
        tensor, block_size, dtype, n_bits, symmetric=mode == "symmetric"
    )
    return block_size, q, scale, zero_point, dequantize_affine(q, block_size, scale, zero_point)


def assert_shows(explorer: QuantizationExplorer, numbers: dict) -> None:
    """The HTML widget shows these (per-tensor) numbers, each in its element."""
    html = explorer.numbers_widget.value
    assert f'<span class="qe-mse">{format_number(numbers["mse"])}</span>' in html
    assert f'<span class="qe-scale">{format_number(numbers["scale"])}</span>' in html
    assert f'<span class="qe-zero-point">{numbers["zero_point"]}</span>' in html
    assert f'<span class="qe-theory-mse">{format_number(numbers["theory_mse"])}</span>' in html
    assert f'<span class="qe-max-error">{format_number(numbers["max_error"])}</span>' in html
    for key in ("bytes_before", "bytes_after", "bytes_params", "bytes_packed"):
        css = key.replace("_", "-")
        shown = "not packable" if numbers[key] is None else f"{numbers[key]:,}"
        assert f'<span class="qe-{css}">{shown}</span>' in html
    levels = f"{numbers['levels_used']:,} of {numbers['levels']:,}"
    assert f'<span class="qe-levels">{levels}</span>' in html
    assert "if packed" in html and "qe-estimate" in html
    assert "qe-message" not in html


@pytest.fixture
def explorer():
    explorer = QuantizationExplorer()
    explorer.build_widgets()
    return explorer


def set_controls(explorer: QuantizationExplorer, **values) -> None:
    """Set widget values as a learner would; each assignment runs the observer."""
    for name, value in values.items():
        explorer.widgets[name].value = value


# -- the numbers, per tensor and asymmetric (the lessons' functions) --------------------------


@pytest.mark.parametrize(("dtype_name", "n_bits"), DTYPE_BITS)
@pytest.mark.parametrize("tensor_name", list(BUILTIN_TENSOR_SOURCES))
def test_compute_matches_helper_for_every_dtype_bits_and_tensor(tensor_name, dtype_name, n_bits):
    numbers = QuantizationExplorer().compute(dtype_name, n_bits, tensor_name, 8, 3)
    want = expected(tensor_name, 8, 3, dtype_name, n_bits)
    assert {key: numbers[key] for key in want} == want
    assert (numbers["dtype"], numbers["n_bits"], numbers["tensor_name"]) == (
        dtype_name,
        n_bits,
        tensor_name,
    )
    assert (numbers["mode"], numbers["granularity"]) == ("asymmetric", "per tensor")


def test_lesson_tensor_int8_gives_the_seed_facts():
    numbers = QuantizationExplorer().compute("int8", 8, DEFAULT_TENSOR)
    assert numbers["scale"] == pytest.approx(3.578823433670343, rel=1e-12)
    assert numbers["zero_point"] == -77
    assert (numbers["bytes_before"], numbers["bytes_after"], numbers["bytes_packed"]) == (36, 9, 9)
    assert torch.equal(explorer_module.lesson_test_tensor(), torch.tensor(TEST_TENSOR))


@pytest.mark.parametrize("size", EXPLORER_SIZES)
@pytest.mark.parametrize("tensor_name", [n for n in BUILTIN_TENSOR_SOURCES if n != DEFAULT_TENSOR])
def test_every_size_of_the_random_tensors(tensor_name, size):
    numbers = QuantizationExplorer().compute("int8", 4, tensor_name, size, 0)
    assert numbers["shape"] == (size, size)
    want = expected(tensor_name, size, 0, "int8", 4)
    assert {key: numbers[key] for key in want} == want


@pytest.mark.parametrize("tensor_name", list(BUILTIN_TENSOR_SOURCES))
def test_seeding_makes_every_tensor_reproducible(tensor_name):
    explorer = QuantizationExplorer()
    first = explorer.tensor(tensor_name, 16, 7)
    assert torch.equal(first, explorer.tensor(tensor_name, 16, 7))
    one, two = (explorer.compute("int8", 4, tensor_name, 16, 7) for _ in range(2))
    assert one.keys() == two.keys() and all(one[k] == two[k] for k in one)
    if tensor_name != DEFAULT_TENSOR:  # the lesson tensor is fixed; the others follow the seed
        assert not torch.equal(first, explorer.tensor(tensor_name, 16, 8))


def test_random_tensors_do_not_touch_the_global_random_state():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    for name in BUILTIN_TENSOR_SOURCES:
        QuantizationExplorer().tensor(name, 8, 1)
    assert torch.equal(torch.rand(3), before)


def test_outlier_and_positive_tensors_are_what_their_names_say():
    outlier = examples.outlier_tensor(seed=2, size=16)
    assert outlier.max().item() == examples.OUTLIER_VALUE
    assert (outlier.abs() > 10).sum().item() == 1
    assert examples.positive_tensor(seed=2, size=16).min().item() > 0


def test_the_outlier_collapses_values_onto_few_levels():
    explorer = QuantizationExplorer()
    normal = explorer.compute("int8", 4, "random normal", 64, 0)
    outlier = explorer.compute("int8", 4, "normal with one outlier", 64, 0)
    assert outlier["scale"] > 10 * normal["scale"]
    assert outlier["levels_used"] <= 4 < normal["levels_used"]


def test_mse_grows_as_bits_shrink():
    explorer = QuantizationExplorer()
    mses = [
        explorer.compute("int8", bits, "random normal", 64, 0)["mse"] for bits in range(8, 1, -1)
    ]
    assert all(a < b for a, b in zip(mses, mses[1:], strict=False))


# -- the numbers for every mode and granularity (helper's one mechanism) ----------------------

WIDE = "wide 6x12 (test source)"


@pytest.fixture
def sources():
    """The tensor menu plus a 6x12 tensor (12 columns: groups of 2, 3, 4 all fit)."""
    menu = {name: TENSOR_SOURCES[name] for name in BUILTIN_TENSOR_SOURCES}
    menu[WIDE] = lambda seed, size: examples.varied_rows_weight(6, 12, seed)
    return menu


@pytest.mark.parametrize(("granularity", "group_size"), GRANULARITY_CASES)
@pytest.mark.parametrize("mode", EXPLORER_MODES)
@pytest.mark.parametrize(
    ("tensor_name", "size"),
    [(DEFAULT_TENSOR, 3), (WIDE, 0), ("normal with one outlier", 12), ("all positive", 6)],
)
@pytest.mark.parametrize(("dtype_name", "n_bits"), [("int8", 8), ("int8", 3), ("uint8", 4)])
def test_compute_matches_helper_for_every_mode_and_granularity(
    sources, tensor_name, size, mode, granularity, group_size, dtype_name, n_bits
):
    explorer = QuantizationExplorer(sources=sources)
    numbers = explorer.compute(
        dtype_name, n_bits, tensor_name, size, 1, mode=mode, granularity=granularity,
        group_size=group_size,
    )  # fmt: skip
    assert numbers["message"] is None, numbers["message"]
    tensor = sources[tensor_name](1, size)
    dtype = EXPLORER_DTYPES[dtype_name]
    block_size, q, scale, zero_point, deq = blockwise(
        tensor, dtype, n_bits, mode, granularity, group_size
    )
    assert numbers["block_size"] == block_size
    assert numbers["n_scales"] == scale.numel()
    if scale.numel() == 1:
        assert numbers["scale"] == scale.item() and numbers["zero_point"] == zero_point.item()
        assert numbers["theory_mse"] == scale.item() ** 2 / 12
    else:
        assert torch.equal(numbers["scale"], scale)
        assert torch.equal(numbers["zero_point"], zero_point)
        per_value = per_element(scale, tensor.shape, block_size)
        assert numbers["theory_mse"] == pytest.approx(per_value.square().mean().item() / 12)
    assert numbers["mse"] == quantization_error(tensor, deq).item()
    assert numbers["max_error"] == (deq - tensor).abs().max().item()
    assert numbers["levels_used"] == len(set(q.flatten().tolist()))
    zero_bytes = 0 if mode == "symmetric" else 1
    assert numbers["bytes_params"] == scale.numel() * (4 + zero_bytes)


@pytest.mark.parametrize("dim", [0, 1])
def test_symmetric_per_channel_is_the_course_function(dim):
    granularity = ("per channel (rows)", "per channel (columns)")[dim]
    tensor = torch.tensor(TEST_TENSOR)
    result = explorer_quantize(tensor, torch.int8, 8, "symmetric", granularity)
    q, scale = linear_q_symmetric_per_channel(tensor, dim=dim)
    assert torch.equal(result.quantized, q)
    assert torch.allclose(result.scale.reshape(scale.shape).float(), scale)
    assert torch.equal(result.dequantized, linear_dequantization(q, scale, 0))


def test_symmetric_per_tensor_and_per_group_are_the_course_functions():
    tensor = torch.tensor(TEST_TENSOR)
    result = explorer_quantize(tensor, torch.int8, 8, "symmetric")
    q, scale = linear_q_symmetric(tensor)
    assert torch.equal(result.quantized, q) and result.scale.item() == scale
    weight = examples.seeded_randn(6, 6, seed=0)  # the course's per-group example: 6x6, g = 3
    result = explorer_quantize(weight, torch.int8, 8, "symmetric", "per group", group_size=3)
    q, scale = linear_q_symmetric_per_group(weight, group_size=3)
    assert torch.equal(result.quantized, q)
    assert torch.equal(result.dequantized, linear_dequantization_per_group(q, scale, 3))


def test_per_channel_scales_show_as_a_range(explorer):
    set_controls(explorer, granularity="per channel (rows)", mode="symmetric")
    html = explorer.numbers_widget.value
    scales = explorer.redraw()["scale"]
    low, high = format_number(scales.min().item()), format_number(scales.max().item())
    assert f'<span class="qe-scale">{low} to {high} (3 scales, one per row)</span>' in html
    assert '<span class="qe-zero-point">0 (all 3 zero points)</span>' in html
    assert "plus 3 scales: " in html  # symmetric: no zero points to store
    set_controls(explorer, granularity="per channel (columns)", mode="asymmetric")
    assert "(3 scales, one per column)" in explorer.numbers_widget.value
    assert "plus 3 scales and zero points: " in explorer.numbers_widget.value


def test_a_group_size_that_does_not_divide_the_rows_gives_a_message(explorer):
    group_size = explorer.widgets["group_size"]
    assert group_size.disabled  # per tensor: the group size does not matter
    set_controls(explorer, granularity="per group")
    assert not group_size.disabled and group_size.value == 3
    assert "qe-mse" in explorer.numbers_widget.value  # 3 divides the 3 columns
    set_controls(explorer, group_size=2)
    html = explorer.numbers_widget.value
    assert 'class="qe-message"' in html and "group_size=2 does not divide" in html
    assert "choose a divisor of 3" in html and "Traceback" not in html
    assert explorer.image_widget.layout.visibility == "hidden"
    set_controls(explorer, tensor_name="random normal", size=16)  # 16 columns: 2 divides
    assert explorer.image_widget.layout.visibility == "visible"
    assert "(128 scales, one per group of 2)" in explorer.numbers_widget.value
    set_controls(explorer, granularity="per tensor")
    assert group_size.disabled


def test_group_sizes_are_the_offered_ones(explorer):
    assert explorer.widgets["group_size"].options == EXPLORER_GROUP_SIZES
    assert tuple(explorer.widgets["granularity"].options) == tuple(EXPLORER_GRANULARITIES)
    assert tuple(explorer.widgets["mode"].options) == EXPLORER_MODES


@pytest.mark.parametrize("shape", [(12,), (2, 3, 4)])
@pytest.mark.parametrize(("granularity", "group_size"), [*GRANULARITY_CASES[:3], ("per group", 2)])
def test_other_ranks_work_for_every_granularity(shape, granularity, group_size):
    tensor = examples.seeded_randn(*shape, seed=5)
    explorer = QuantizationExplorer(sources={"t": lambda seed, size: tensor})
    numbers, png = explorer.render(tensor_name="t", granularity=granularity, group_size=group_size)
    assert numbers["message"] is None and png.startswith(PNG_SIGNATURE)
    assert numbers["shape"] == shape


# -- does s^2/12 apply? ---------------------------------------------------------------------


def test_the_estimate_fails_for_the_outlier_and_says_why():
    numbers = QuantizationExplorer().compute("int8", 4, "normal with one outlier", 64, 0)
    assert numbers["mse"] < 0.3 * numbers["theory_mse"]  # about the data's variance instead
    assert numbers["estimate"] == "does not apply"
    note = numbers["estimate_note"]
    assert "does not apply" in note and "busiest level" in note and "variance" in note
    html = QuantizationExplorer.html(numbers)
    assert 'class="qe-estimate qe-estimate-does-not-apply"' in html


def test_the_estimate_holds_for_a_normal_tensor():
    for bits in range(8, 1, -1):
        numbers = QuantizationExplorer().compute("int8", bits, "random normal", 64, 0)
        assert numbers["estimate"] == "applies"
        assert numbers["estimate_note"].startswith("s\u00b2/12 applies")


def test_few_values_get_a_caution_whatever_the_ratio():
    for bits in range(8, 1, -1):
        numbers = QuantizationExplorer().compute("int8", bits)  # 9 values
        assert numbers["estimate"] == "few values"
        assert numbers["estimate_note"].startswith("Only 9 values")
        assert "\u00b130%" in numbers["estimate_note"]


def test_small_blocks_are_named_as_the_cause():
    numbers = QuantizationExplorer().compute(
        "int8", 8, "random normal", 64, 0, mode="symmetric", granularity="per group", group_size=2
    )
    assert numbers["estimate"] == "does not apply"
    assert "each block holds only 2 values" in numbers["estimate_note"]


def test_outlier_per_channel_is_weighted_by_the_scales():
    numbers = QuantizationExplorer().compute(
        "int8", 4, "normal with one outlier", 64, 0, granularity="per channel (rows)"
    )
    assert numbers["estimate"] == "does not apply"
    assert "weighted by s\u00b2" in numbers["estimate_note"]


@pytest.mark.parametrize(
    ("ratio", "n", "status"),
    [(1.0, 9, "few values"), (1.49, 100, "applies"), (0.67, 100, "applies")]
    + [(1.51, 100, "does not apply"), (0.66, 100, "does not apply")],
)
def test_estimate_check_thresholds(ratio, n, status):
    assert estimate_check(ratio, 1.0, n, 0.9, n)[0] == status


# -- the range control (lesson 13: min-max, percentile, MSE-optimal) --------------------------

CLIPPING_RANGES = [name for name in EXPLORER_RANGES if name != "min-max"]


def helper_range(tensor, block_size, range_method, dtype, n_bits):
    """Every block's alpha from helper's section 13, called directly for each menu entry."""
    if range_method == "percentile 99.9":
        return absmax_percentile(tensor, block_size, 99.9)
    if range_method == "percentile 99":
        return absmax_percentile(tensor, block_size, 99.0)
    assert range_method == "MSE-optimal"
    return absmax_mse_optimal(tensor, block_size, dtype, n_bits)  # lesson 13's search


def clipped_by_hand(tensor, block_size, alpha, dequantized):
    """(values beyond their block's alpha, their squared errors summed over all values)."""
    r = tensor.double()
    beyond = r.abs() > per_element(alpha, tensor.shape, block_size)
    error = (dequantized.double() - r).square()
    return int(beyond.sum()), error[beyond].sum().item() / r.numel()


@pytest.mark.parametrize("range_method", CLIPPING_RANGES)
@pytest.mark.parametrize(("granularity", "group_size"), GRANULARITY_CASES)
@pytest.mark.parametrize(
    ("tensor_name", "size"),
    [(DEFAULT_TENSOR, 3), (WIDE, 0), ("normal with one outlier", 12), ("all positive", 6)],
)
@pytest.mark.parametrize(("dtype_name", "n_bits"), [("int8", 4), ("int8", 8), ("uint8", 3)])
def test_compute_matches_helper_for_every_range_method(
    sources, tensor_name, size, granularity, group_size, range_method, dtype_name, n_bits
):
    explorer = QuantizationExplorer(sources=sources)
    numbers = explorer.compute(
        dtype_name, n_bits, tensor_name, size, 1, mode="symmetric", granularity=granularity,
        group_size=group_size, range_method=range_method,
    )  # fmt: skip
    assert numbers["message"] is None, numbers["message"]
    tensor = sources[tensor_name](1, size)
    dtype = EXPLORER_DTYPES[dtype_name]
    block_size, *_ = blockwise(tensor, dtype, n_bits, "symmetric", granularity, group_size)
    alpha = helper_range(tensor, block_size, range_method, dtype, n_bits)
    method, percentile = EXPLORER_RANGES[range_method]
    assert torch.equal(
        alpha, clipping_absmax(tensor, block_size, method, dtype, n_bits, percentile)
    )
    q, scale, zero_point = quantize_clipped(tensor, block_size, alpha, dtype, n_bits)
    deq = dequantize_affine(q, block_size, scale, zero_point)
    assert numbers["block_size"] == block_size and numbers["n_scales"] == scale.numel()
    if scale.numel() == 1:
        assert numbers["clip_range"] == alpha.item() and numbers["scale"] == scale.item()
        assert numbers["zero_point"] == zero_point.item()
    else:
        assert torch.equal(numbers["clip_range"], alpha)
        assert torch.equal(numbers["scale"], scale)
        assert torch.equal(numbers["zero_point"], zero_point)
    assert numbers["mse"] == quantization_error(tensor, deq).item()
    assert numbers["max_error"] == (deq - tensor).abs().max().item()
    assert numbers["levels_used"] == len(set(q.flatten().tolist()))
    clipped, clip_mse = clipped_by_hand(tensor, block_size, alpha, deq)
    assert numbers["clipped"] == clipped
    assert numbers["clip_mse"] == pytest.approx(clip_mse, rel=1e-12, abs=1e-300)
    assert numbers["bytes_params"] == 4 * scale.numel()  # symmetric: no zero points stored
    # the grid stays -q_max..q_max around z (the midpoint for uint8): q_min is never used
    q_min, q_max = get_q_range(dtype, n_bits)
    z = int(zero_point.flatten()[0])
    assert q.min().item() >= 2 * z - q_max > q_min


@pytest.mark.parametrize("shape", [(12,), (2, 3, 4)])
@pytest.mark.parametrize(("granularity", "group_size"), [*GRANULARITY_CASES[:3], ("per group", 2)])
@pytest.mark.parametrize("range_method", CLIPPING_RANGES)
def test_clipped_ranges_work_for_other_ranks(shape, granularity, group_size, range_method):
    tensor = examples.seeded_randn(*shape, seed=5)
    explorer = QuantizationExplorer(sources={"t": lambda seed, size: tensor})
    numbers, png = explorer.render(
        tensor_name="t", mode="symmetric", granularity=granularity, group_size=group_size,
        range_method=range_method, n_bits=3,
    )  # fmt: skip
    assert numbers["message"] is None and png.startswith(PNG_SIGNATURE)
    block_size = numbers["block_size"]
    alpha = helper_range(tensor, block_size, range_method, torch.int8, 3)
    shown = torch.as_tensor(numbers["clip_range"], dtype=torch.float64)  # a number if one block
    assert torch.equal(shown.reshape(alpha.shape), alpha)


def test_min_max_is_what_symmetric_mode_always_did():
    """The menu's min-max changes nothing: the symmetric numbers of every earlier lesson, and
    helper's clipped quantizer with alpha = max|r| gives the same levels (nothing is clipped)."""
    explorer = QuantizationExplorer()
    tensor = explorer.tensor("normal with one outlier", 16, 0)
    for granularity in ("per tensor", "per channel (rows)"):
        settings = dict(tensor_name="normal with one outlier", mode="symmetric")
        settings.update(granularity=granularity, n_bits=4)
        plain = explorer.compute(**settings)
        same = explorer.compute(**settings, range_method="min-max")
        assert same.keys() == plain.keys()
        for key, value in plain.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(same[key], value), key
            else:
                assert same[key] == value, key
        assert plain["clip_range"] is None and plain["clipped"] == 0 and plain["clip_mse"] == 0
        block_size = plain["block_size"]
        q, _, _ = quantize_clipped(tensor, block_size, absmax_minmax(tensor, block_size), n_bits=4)
        q_plain, *_ = quantize_blockwise(tensor, block_size, n_bits=4, symmetric=True)
        assert torch.equal(q, q_plain)


def mse_by_range(tensor_name: str, granularity: str = "per tensor") -> dict[str, float]:
    explorer = QuantizationExplorer()
    return {
        method: explorer.compute(
            "int8", 4, tensor_name, 64, 0, mode="symmetric", granularity=granularity,
            range_method=method,
        )["mse"]
        for method in EXPLORER_RANGES
    }  # fmt: skip


def test_clipping_pays_on_the_normal_tensor_at_4_bits():
    mse = mse_by_range("random normal")
    assert mse["MSE-optimal"] < mse["percentile 99"] < mse["percentile 99.9"] < mse["min-max"]


def test_one_outlier_per_tensor_is_not_worth_clipping():
    """Clipping the outlier (100) costs more than the finer step saves: the search keeps
    min-max, and the percentiles, which clip it, more than double the MSE. Per channel, only
    the outlier's row keeps its wide range, and the search wins a little."""
    mse = mse_by_range("normal with one outlier")
    assert mse["MSE-optimal"] == mse["min-max"]
    assert min(mse["percentile 99.9"], mse["percentile 99"]) > 2 * mse["min-max"]
    numbers = QuantizationExplorer().compute(
        "int8", 4, "normal with one outlier", 64, 0, mode="symmetric", range_method="MSE-optimal"
    )
    assert numbers["clip_range"] == examples.OUTLIER_VALUE and numbers["clipped"] == 0
    per_row = mse_by_range("normal with one outlier", "per channel (rows)")
    assert per_row["MSE-optimal"] < per_row["min-max"]
    assert all(per_row["MSE-optimal"] <= value for value in per_row.values())


def test_the_estimate_leaves_the_clipped_values_out_and_says_so():
    numbers = QuantizationExplorer().compute(
        "int8", 4, "random normal", 64, 0, mode="symmetric", range_method="MSE-optimal"
    )
    clipped, n_values = numbers["clipped"], 64 * 64
    assert 0 < clipped < 0.05 * n_values
    note = numbers["estimate_note"]
    assert note.startswith(f"{clipped} of the 4,096 values (")
    assert "clipped to the end levels" in note and "leaves it out" in note
    assert f"the rounding MSE of the other {n_values - clipped:,} values" in note
    assert numbers["estimate"] == "applies"  # rounding inside the range follows s^2/12
    # the rounding error inside the range and the clipping error make up the MSE, and the
    # rounding error is s^2/12 for each value inside the range
    tensor = examples.seeded_randn(64, 64, seed=0)
    assert torch.equal(tensor, QuantizationExplorer().tensor("random normal", 64, 0))
    alpha = numbers["clip_range"]
    q, scale, zero_point = quantize_clipped(tensor, (64, 64), alpha, n_bits=4)
    back = dequantize_affine(q, (64, 64), scale, zero_point)
    inside = tensor.abs() <= alpha
    rounding = (back - tensor)[inside].double().square().sum().item() / n_values
    assert rounding + numbers["clip_mse"] == pytest.approx(numbers["mse"], rel=1e-5)
    share_inside = (n_values - clipped) / n_values
    assert rounding / (share_inside * numbers["theory_mse"]) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(("group_size", "share"), [(2, "50%"), (4, "25%"), (8, "12%")])
def test_percentile_note_shows_the_share_it_really_clips_in_small_groups(group_size, share):
    """Percentile 99.9 clips about 0.1% of a large block, but the interpolated percentile of a
    small block lies below its largest magnitude: groups of 2 lose half their values. The
    note shows the measured share, counted here from the ranges themselves."""
    explorer = QuantizationExplorer()
    settings = dict(mode="symmetric", range_method="percentile 99.9", granularity="per group")
    numbers = explorer.compute("int8", 4, "random normal", 64, 0, group_size=group_size, **settings)
    tensor = explorer.tensor("random normal", 64, 0)
    alpha = absmax_percentile(tensor, (1, group_size), 99.9)
    beyond = int((tensor.abs() > per_element(alpha, (64, 64), (1, group_size))).sum())
    assert beyond == numbers["clipped"] == 4096 // group_size
    note = numbers["range_note"]
    assert f"Measured: {beyond:,} of the 4,096 values ({share}) lie beyond it" in note
    assert f"In a block of {group_size} magnitudes it lies below the largest one" in note
    assert "about the largest 0.1%" not in note


def test_percentile_note_per_tensor_is_close_to_the_percentiles_share():
    numbers = QuantizationExplorer().compute(
        "int8", 4, "random normal", 64, 0, mode="symmetric", range_method="percentile 99"
    )
    assert numbers["clipped"] == 41  # of 4,096: 1.0%
    assert "Measured: 41 of the 4,096 values (1%) lie beyond it" in numbers["range_note"]
    assert "below the largest 41 (when no two are equal)" in numbers["range_note"]


def test_one_clipped_value_reads_in_the_singular():
    numbers = QuantizationExplorer().compute(
        "int8", 4, mode="symmetric", range_method="percentile 99.9"
    )
    assert numbers["clipped"] == 1  # 728.6, just beyond the 99.9th percentile of 9 values
    assert numbers["estimate"] == "few values"
    assert numbers["estimate_note"].startswith("1 of the 9 values (11%) lies beyond")
    assert (
        "Measured: 1 of the 9 values (11%) lies beyond it and is clipped" in numbers["range_note"]
    )
    assert "Only 8 values" in numbers["estimate_note"]


def test_a_range_that_clips_nothing_says_so():
    explorer = QuantizationExplorer(sources={"flat": lambda seed, size: torch.full((4, 4), 2.0)})
    numbers = explorer.compute(tensor_name="flat", mode="symmetric", range_method="percentile 99")
    assert numbers["clipped"] == 0 and numbers["clip_mse"] == 0.0
    assert numbers["estimate_note"].startswith("No value lies beyond \u00b1\u03b1")


def test_the_numbers_show_the_range_and_what_it_clips(explorer):
    set_controls(explorer, tensor_name="random normal", size=64, n_bits=4, mode="symmetric")
    assert "qe-clip-range" not in explorer.numbers_widget.value  # min-max: nothing to show
    set_controls(explorer, range_method="MSE-optimal")
    numbers = explorer.redraw()
    html = explorer.numbers_widget.value
    alpha = format_number(numbers["clip_range"])
    assert f'<span class="qe-clip-range">{alpha}</span>' in html
    share = f"{100 * numbers['clipped'] / 4096:.2g}%"
    assert f'<span class="qe-clipped">{numbers["clipped"]} ({share})</span>' in html
    assert 'class="qe-range"' in html and "the best of 120 ranges tried" in html
    set_controls(explorer, granularity="per channel (rows)", range_method="percentile 99")
    html = explorer.numbers_widget.value
    assert "(64 ranges, one per row)</span>" in html
    assert "99th percentile of |r| in every block" in html
    # 64 magnitudes per row: the 99th percentile lies below the largest, 1 of 64 clipped
    assert "Measured: 64 of the 4,096 values (1.6%) lie beyond it and are clipped" in html


def test_the_range_control_is_greyed_out_in_asymmetric_mode(explorer):
    control = explorer.widgets["range_method"]
    assert control.disabled and tuple(control.options) == tuple(EXPLORER_RANGES)
    assert "Symmetric mode only" in control.tooltip
    set_controls(explorer, tensor_name="random normal", size=64, n_bits=4, mode="symmetric")
    assert not control.disabled
    set_controls(explorer, range_method="MSE-optimal")
    clipped = explorer.redraw()
    assert clipped["clip_range"] is not None
    set_controls(explorer, mode="asymmetric")  # greyed out: it keeps its choice, min-max is used
    assert control.disabled and control.value == "MSE-optimal"
    assert explorer.settings["range_method"] == "min-max"
    numbers = explorer.redraw()
    assert numbers["message"] is None and numbers["clip_range"] is None
    assert numbers["mse"] == explorer.compute("int8", 4, "random normal", 64, 0)["mse"]
    assert "qe-message" not in explorer.numbers_widget.value
    set_controls(explorer, mode="symmetric")  # back: the choice applies again
    assert not control.disabled and explorer.redraw()["mse"] == clipped["mse"]


def test_changing_the_range_redraws_once(explorer, monkeypatch):
    calls = []
    render = explorer.render
    monkeypatch.setattr(explorer, "render", lambda **kw: calls.append(kw) or render(**kw))
    set_controls(explorer, mode="symmetric", range_method="percentile 99")
    assert len(calls) == 2
    set_controls(explorer, mode="asymmetric")  # greys the range out: still one redraw
    assert len(calls) == 3


def test_large_tensors_get_a_coarser_mse_search_and_say_so(monkeypatch):
    """512 x 512 in groups of 2 (131,072 blocks): 30 round trips instead of lesson 13's 120,
    counted through helper's round trip, and the explorer says so."""
    trips = []
    round_trip = helper._round_trip
    monkeypatch.setattr(helper, "_round_trip", lambda *a: trips.append(1) or round_trip(*a))
    explorer = QuantizationExplorer()
    settings = dict(tensor_name="random normal", size=512, mode="symmetric", n_bits=4)
    settings.update(range_method="MSE-optimal", granularity="per group", group_size=2)
    numbers = explorer.compute(**settings)
    n_grid, n_refine = MSE_SEARCH_COARSE
    assert len(trips) == n_grid + 2 * n_refine == 30
    tensor = explorer.tensor("random normal", 512, 0)
    monkeypatch.undo()
    want = absmax_mse_optimal(tensor, (1, 2), torch.int8, 4, n_grid=n_grid, n_refine=n_refine)
    assert torch.equal(numbers["clip_range"], want)
    note = numbers["range_note"]
    assert "best of 30 ranges" in note and "coarser search than lesson 13's 120 ranges" in note
    assert "(262,144 values, 131,072 blocks)" in note
    html = QuantizationExplorer.html(numbers)
    assert "coarser search" in html
    # per tensor, the same tensor gets lesson 13's full search
    numbers = explorer.compute(**{**settings, "granularity": "per tensor"})
    assert explorer_module.mse_search_size(512 * 512, 1) == MSE_SEARCH
    assert numbers["clip_range"] == absmax_mse_optimal(tensor, (512, 512), torch.int8, 4).item()
    assert "lesson 13's search" in numbers["range_note"]


def test_the_histogram_draws_the_clipping_range():
    explorer = QuantizationExplorer()
    numbers, _ = explorer.render(
        tensor_name="random normal", size=64, n_bits=4, mode="symmetric", range_method="MSE-optimal"
    )
    drawing = explorer._drawing
    alpha = numbers["clip_range"]
    lines = drawing.clip_lines.get_segments()
    assert [segment[0][0] for segment in lines] == pytest.approx([-alpha, alpha])
    assert all(segment[0][1] == 0 and segment[1][1] == 1 for segment in lines)  # full height
    # the grid is -q_max..q_max: 15 levels at 4 bits, ending on the clipping lines
    levels = sorted(segment[0][0] for segment in drawing.grids[0].get_segments())
    assert len(levels) == 15 and levels == pytest.approx([alpha * k / 7 for k in range(-7, 8)])
    title = drawing.hist_ax.get_title()
    assert (
        "15 levels" in title and f"range \u00b1{alpha:.4g}: {numbers['clipped']} clipped" in title
    )
    legend = [t.get_text() for t in drawing.hist_ax.get_legend().get_texts()]
    assert legend[-1] == "clipping range \u00b1\u03b1"
    # back to min-max: no clipping lines, the legend without them
    explorer.render(tensor_name="random normal", size=64, n_bits=4, mode="symmetric")
    assert len(drawing.clip_lines.get_segments()) == 0
    legend = [t.get_text() for t in drawing.hist_ax.get_legend().get_texts()]
    assert "clipping range \u00b1\u03b1" not in legend


def test_per_channel_histograms_draw_the_widest_and_the_narrowest_range():
    explorer = QuantizationExplorer()
    numbers, _ = explorer.render(
        tensor_name="normal with one outlier", size=64, n_bits=4, mode="symmetric",
        granularity="per channel (rows)", range_method="percentile 99",
    )  # fmt: skip
    drawing = explorer._drawing
    alpha = numbers["clip_range"].flatten()
    widest, narrowest = alpha.max().item(), alpha.min().item()
    lines = drawing.clip_lines.get_segments()
    assert [s[0][0] for s in lines] == pytest.approx([-widest, widest, -narrowest, narrowest])
    colors = [tuple(c) for c in drawing.clip_lines.get_colors()]
    red, green = (matplotlib_rgba(c) for c in explorer_module.GRID_COLORS)
    assert colors == [red, red, green, green]  # the colours of the two grids drawn
    title = drawing.hist_ax.get_title()
    assert f"4,096 values, {numbers['clipped']} clipped (" in title
    assert widest < examples.OUTLIER_VALUE  # the outlier's row clips the outlier itself
    legend = [t.get_text() for t in drawing.hist_ax.get_legend().get_texts()]
    assert legend[-1] == "their clipping ranges \u00b1\u03b1"


def matplotlib_rgba(color):
    from matplotlib.colors import to_rgba

    return tuple(to_rgba(color))


def test_the_title_names_the_range():
    explorer = QuantizationExplorer()
    explorer.render(n_bits=4, mode="symmetric", range_method="percentile 99.9")
    title = explorer._drawing.suptitle.get_text()
    assert title.startswith(
        "lesson test tensor (3x3), 4-bit int8, symmetric, percentile 99.9 range, per tensor: MSE"
    )
    explorer.render(n_bits=4, mode="symmetric", range_method="min-max")
    assert "range" not in explorer._drawing.suptitle.get_text()


# -- the widgets ----------------------------------------------------------------------------


def test_every_control_value_through_the_widgets(explorer):
    for tensor_name in BUILTIN_TENSOR_SOURCES:
        for dtype_name, n_bits in DTYPE_BITS:
            set_controls(explorer, tensor_name=tensor_name, size=4, seed=1)
            set_controls(explorer, dtype=dtype_name, n_bits=n_bits)
            assert explorer.settings["n_bits"] == n_bits
            assert_shows(explorer, expected(tensor_name, 4, 1, dtype_name, n_bits))


def test_sizes_and_seeds_through_the_widgets(explorer):
    set_controls(explorer, tensor_name="random normal", n_bits=5)
    for size in EXPLORER_SIZES:
        for seed in (0, 1, 2**31 - 1):
            set_controls(explorer, size=size, seed=seed)
            assert_shows(explorer, expected("random normal", size, seed, "int8", 5))


def test_modes_and_granularities_through_the_widgets(explorer):
    set_controls(explorer, tensor_name="random normal", size=16, n_bits=4)
    for mode in EXPLORER_MODES:
        for granularity in EXPLORER_GRANULARITIES:
            set_controls(explorer, mode=mode, granularity=granularity, group_size=4)
            settings = explorer.settings
            numbers = explorer.compute(**settings)
            html = explorer.numbers_widget.value
            assert f'<span class="qe-mse">{format_number(numbers["mse"])}</span>' in html
            assert numbers["mode"] == mode and numbers["granularity"] == granularity


def test_defaults_show_the_lesson_tensor_in_int8(explorer):
    assert explorer.settings == {
        "tensor_name": DEFAULT_TENSOR,
        "size": 16,
        "seed": 0,
        "dtype": "int8",
        "n_bits": 8,
        "mode": "asymmetric",
        "range_method": "min-max",
        "granularity": "per tensor",
        "group_size": 3,
    }
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "int8", 8))
    assert bytes(explorer.image_widget.value).startswith(PNG_SIGNATURE)


def test_bit_slider_max_follows_the_dtype(explorer):
    slider = explorer.widgets["n_bits"]
    assert (slider.min, slider.max) == (2, 8)
    set_controls(explorer, dtype="int16")
    assert slider.max == 16 and slider.value == 8
    set_controls(explorer, n_bits=13)
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "int16", 13))
    set_controls(explorer, dtype="uint8")  # 13 bits do not fit: the slider clamps to 8
    assert (slider.max, slider.value) == (8, 8)
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "uint8", 8))


def test_one_change_redraws_once(explorer, monkeypatch):
    calls = []
    render = explorer.render
    monkeypatch.setattr(explorer, "render", lambda **kw: calls.append(kw) or render(**kw))
    set_controls(explorer, dtype="int16", n_bits=16)
    assert len(calls) == 2
    set_controls(explorer, dtype="int8")  # clamps the bits to 8: still one redraw
    assert len(calls) == 3
    set_controls(explorer, granularity="per group")  # enables the group size: one redraw
    assert len(calls) == 4


def test_image_is_png_and_changes_with_the_bits(explorer):
    images = set()
    for bits in range(8, 1, -1):
        set_controls(explorer, n_bits=bits)
        png = bytes(explorer.image_widget.value)
        assert png.startswith(PNG_SIGNATURE)
        images.add(png)
    assert len(images) == 7
    assert explorer.image_widget.layout.visibility == "visible"


def live_figures() -> int:
    gc.collect()
    return sum(type(obj) is Figure for obj in gc.get_objects())  # type(): no lazy imports


def test_one_figure_is_reused_while_the_shape_stays(explorer):
    figure = explorer.figure
    count = live_figures()
    for dtype_name, n_bits in DTYPE_BITS:
        set_controls(explorer, dtype=dtype_name, n_bits=n_bits)
        assert explorer.figure is figure
    for mode in EXPLORER_MODES:
        for granularity in EXPLORER_GRANULARITIES:
            set_controls(explorer, mode=mode, granularity=granularity)
            assert explorer.figure is figure
    assert live_figures() == count
    assert plt.get_fignums() == []  # nothing is left open in pyplot
    assert len(figure.axes) == 8  # four panels and their colour bars, never more
    assert all(len(ax.texts) == 9 for ax in figure.axes[:4])  # 3x3 cell texts, not stacked


def test_a_new_figure_only_when_the_shape_or_layout_changes(explorer):
    set_controls(explorer, tensor_name="random normal", size=16)
    histogram = explorer.figure
    assert len(histogram.axes) == 3  # histogram, error heatmap, colour bar
    set_controls(explorer, tensor_name="normal with one outlier", seed=4, n_bits=3)
    set_controls(explorer, tensor_name="all positive", dtype="int16", n_bits=16)
    set_controls(explorer, mode="symmetric", granularity="per channel (columns)")
    assert explorer.figure is histogram
    set_controls(explorer, size=32)
    assert explorer.figure is not histogram
    set_controls(explorer, size=4)  # 16 values: the four annotated panels
    assert len(explorer.figure.axes) == 8
    assert all(len(ax.texts) == 16 for ax in explorer.figure.axes[:4])
    set_controls(explorer, size=8)  # 64 values in cells too narrow for numbers: plain heatmaps
    assert len(explorer.figure.axes) == 8
    assert all(len(ax.texts) == 0 for ax in explorer.figure.axes[:4])


# -- the histogram --------------------------------------------------------------------------


def test_the_histogram_grid_is_thinned_for_int16():
    explorer = QuantizationExplorer()
    explorer.render(tensor_name="random normal", size=32, dtype="int16", n_bits=16)
    drawing = explorer._drawing
    red, green = drawing.grids
    assert len(red.get_segments()) <= explorer_module.MAX_GRID_LINES + 1
    assert green.get_segments() == []  # one scale: one grid
    assert "65,536 levels (1 in 256 drawn)" in drawing.hist_ax.get_title()
    explorer.render(tensor_name="random normal", size=32, dtype="int8", n_bits=3)
    assert len(red.get_segments()) == 8  # all 8 levels of 3 bits
    levels = sorted(segment[0][0] for segment in red.get_segments())
    numbers = explorer.compute("int8", 3, "random normal", 32, 0)
    want = [numbers["scale"] * (q - numbers["zero_point"]) for q in range(-4, 4)]
    assert levels == pytest.approx(want)


def test_the_outlier_shows_on_a_log_count_axis():
    explorer = QuantizationExplorer()
    explorer.render(tensor_name="normal with one outlier", size=256, n_bits=4)
    drawing = explorer._drawing
    assert drawing.hist_ax.get_yscale() == "log"
    heights, edges = drawing.bars.get_data().values, drawing.bars.get_data().edges
    last = heights[-1]  # the outlier's bin, alone at the top of the range
    assert last == 1 and edges[-1] == examples.OUTLIER_VALUE
    low, high = drawing.hist_ax.get_ylim()
    assert low < 1 and high > 60_000  # one count and 65,000 counts are both on the axis
    assert math.log(last / low) > 0.1 * math.log(high / low)  # the bar is visibly tall
    assert list(drawing.extremes.get_xdata())[1] == examples.OUTLIER_VALUE  # and marked


def test_per_channel_histograms_draw_two_grids_and_say_so():
    explorer = QuantizationExplorer()
    numbers, _ = explorer.render(
        tensor_name="normal with one outlier", size=64, n_bits=4, granularity="per channel (rows)"
    )
    drawing = explorer._drawing
    red, green = drawing.grids
    assert len(red.get_segments()) == len(green.get_segments()) == 16
    scales = numbers["scale"].flatten()
    red_step = red.get_segments()[1][0][0] - red.get_segments()[0][0][0]
    green_step = green.get_segments()[1][0][0] - green.get_segments()[0][0][0]
    assert red_step == pytest.approx(scales.max().item())
    assert green_step == pytest.approx(scales.min().item())
    title = drawing.hist_ax.get_title()
    assert "64 grids (one per row): widest and finest drawn, 62 not drawn" in title
    legend = [t.get_text() for t in drawing.hist_ax.get_legend().get_texts()]
    assert "levels, block with the largest s" in legend


# -- the quick redraw draws what a full draw draws --------------------------------------------

STATES = [
    {},
    {"n_bits": 5},
    {"n_bits": 2, "mode": "symmetric"},
    {"n_bits": 4, "granularity": "per channel (rows)"},
    {"n_bits": 3, "granularity": "per channel (columns)", "dtype": "uint8"},
    {"n_bits": 12, "dtype": "int16", "granularity": "per group", "group_size": 3},
    {"n_bits": 5},  # back to a state drawn before: its saved pixels are put back
    {"tensor_name": "random normal", "size": 4, "n_bits": 3},
    {"tensor_name": "random normal", "size": 64, "n_bits": 3},
    {"tensor_name": "random normal", "size": 64, "n_bits": 6, "mode": "symmetric"},
    {"tensor_name": "normal with one outlier", "size": 64, "n_bits": 4},
    {"tensor_name": "normal with one outlier", "size": 64, "granularity": "per group"}
    | {"group_size": 8},
    {"tensor_name": "all positive", "size": 128, "n_bits": 3, "mode": "symmetric"},
    {"tensor_name": "normal with one outlier", "size": 64, "n_bits": 4},
    # the range control: dashed clipping lines, the grid -q_max..q_max, a longer legend
    {"tensor_name": "random normal", "size": 64, "n_bits": 4, "mode": "symmetric"}
    | {"range_method": "MSE-optimal"},
    {"tensor_name": "normal with one outlier", "size": 64, "n_bits": 4, "mode": "symmetric"}
    | {"range_method": "percentile 99", "granularity": "per channel (rows)"},
    {"tensor_name": "random normal", "size": 64, "n_bits": 3, "mode": "symmetric"}
    | {"range_method": "percentile 99.9", "dtype": "uint8"},
    {"tensor_name": "random normal", "size": 64, "n_bits": 4, "mode": "symmetric"},
    {"n_bits": 3, "mode": "symmetric", "range_method": "MSE-optimal"},
    {"n_bits": 3, "mode": "symmetric", "range_method": "percentile 99", "granularity": "per group"},
    # the grids of lesson 14: grid values in the cells, float8's lines thinned on the histogram
    {"dtype": "float8 e4m3fn", "n_bits": 8},
    {"dtype": "nf4", "n_bits": 4, "granularity": "per channel (rows)"},
    {"tensor_name": "random normal", "size": 64, "dtype": "float8 e4m3fn", "n_bits": 8},
    {"tensor_name": "random normal", "size": 64, "dtype": "float8 e5m2", "n_bits": 8}
    | {"granularity": "per group", "group_size": 8},
    {"tensor_name": "normal with one outlier", "size": 64, "dtype": "nf4", "n_bits": 4},
    {"tensor_name": "random normal", "size": 64, "n_bits": 4, "mode": "symmetric"},
]


def decoded(png: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(png)).convert("RGB"))


def test_blitted_redraws_equal_full_draws_pixel_for_pixel():
    explorer = QuantizationExplorer()
    for state in STATES:
        _, png = explorer.render(**state)
        full = explorer._drawing.full_render()[:, :, :3]
        assert np.array_equal(decoded(png), full), state
        _, again = explorer.render(**state)  # after a full draw, blitting starts again
        assert again == png, state


def test_a_blitted_redraw_equals_a_fresh_explorer():
    explorer = QuantizationExplorer()
    for state in STATES[:7]:  # the 3x3 panels: their layout does not depend on history
        _, png = explorer.render(**state)
        _, fresh = QuantizationExplorer().render(**state)
        assert png == fresh, state
    assert explorer._drawing.full_draws == 1  # the background was drawn once, then blitted


def test_the_background_is_redrawn_only_when_it_changes():
    explorer = QuantizationExplorer()
    explorer.render(tensor_name="random normal", size=64, n_bits=8)
    drawing = explorer._drawing
    for bits in range(7, 1, -1):  # the x range grows to the widest grid (at 2 bits) and stays
        explorer.render(tensor_name="random normal", size=64, n_bits=bits)
    draws = drawing.full_draws
    for bits in [*range(3, 9), *range(7, 1, -1)]:
        explorer.render(tensor_name="random normal", size=64, n_bits=bits)
    assert drawing.full_draws == draws  # new grid lines and error picture, same histogram
    explorer.render(tensor_name="random normal", size=64, seed=1)  # new values: new bars
    assert drawing.full_draws == draws + 1


def test_every_region_holds_its_own_artists():
    """A redraw puts a region's saved pixels back instead of drawing its artists: right only
    if they draw nowhere else, and if every animated artist belongs to one region. Drawn
    alone over the background, each region's artists change pixels inside it and none
    outside it."""
    explorer = QuantizationExplorer()
    for state in STATES:
        explorer.render(**state)
        drawing = explorer._drawing
        canvas = drawing.figure.canvas
        animated = [a for a in drawing.figure.findobj() if a.get_animated()]
        assert sorted(map(id, drawing.animated())) == sorted(map(id, animated)), state
        width, height = canvas.get_width_height()
        for region in drawing.regions:
            canvas.restore_region(drawing._background)
            before = np.array(canvas.buffer_rgba())
            for artist in region.artists:
                drawing.figure.draw_artist(artist)
            changed = np.any(np.asarray(canvas.buffer_rgba()) != before, axis=2)
            x0, y0, x1, y1 = (round(v) for v in region.bbox.extents)
            inside = np.zeros((height, width), dtype=bool)
            inside[height - y1 : height - y0, x0:x1] = True  # rows run down, y runs up
            assert changed[inside].any() and not changed[~inside].any(), (state, region.bbox)


def test_the_saved_pixels_are_bounded(monkeypatch):
    region_bytes = 4 * 240 * 240  # a little more than one panel of the 3x3 figure
    monkeypatch.setattr(explorer_drawing._SavedPixels, "MAX_BYTES", 5 * region_bytes)
    explorer = QuantizationExplorer()
    for bits in range(8, 1, -1):
        explorer.render(n_bits=bits)
        saved = explorer._drawing.saved
        assert saved.bytes == sum(size for _, size in saved.entries.values()) <= 5 * region_bytes
        assert 3 <= len(saved.entries) <= 5 * 240 // 19  # at least the three latest panels
    for bits in (8, 3):  # forgotten and kept: both still draw what a full draw draws
        _, png = explorer.render(n_bits=bits)
        assert np.array_equal(decoded(png), explorer._drawing.full_render()[:, :, :3]), bits


def test_repeated_states_come_from_the_saved_pixels(monkeypatch):
    explorer = QuantizationExplorer()
    for bits in (8, 7, 6):
        explorer.render(n_bits=bits)
    drawing = explorer._drawing
    saved = drawing.saved
    drawn = []
    draw_artist = drawing.figure.draw_artist
    monkeypatch.setattr(drawing.figure, "draw_artist", lambda a: drawn.append(a) or draw_artist(a))
    misses, hits = saved.misses, saved.hits
    for bits in (8, 7, 6):
        explorer.render(n_bits=bits)
    assert drawn == [] and saved.misses == misses  # nothing drawn again
    assert saved.hits == hits + 3 * len(drawing.regions)
    explorer.render(n_bits=5)  # a new state is drawn
    assert drawing.panels[1].image in drawn and saved.misses == misses + len(drawing.regions)


def test_the_png_is_the_canvas():
    explorer = QuantizationExplorer()
    _, png = explorer.render(n_bits=6)
    rgba = np.asarray(explorer._drawing.figure.canvas.buffer_rgba())
    assert np.array_equal(decoded(png), rgba[:, :, :3])
    width, height = explorer.figure.canvas.get_width_height()
    assert decoded(png).shape == (height, width, 3)


def test_png_bytes_round_trips():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    assert np.array_equal(decoded(explorer_module.png_bytes(pixels)), pixels[:, :, :3])


def test_the_layout_leaves_room_for_the_longest_labels():
    explorer = QuantizationExplorer()
    explorer.render(dtype="int16", n_bits=16, tensor_name="normal with one outlier", size=4)
    figure = explorer.figure
    panels = explorer._drawing.panels
    boxes = [panel.ax.title.get_window_extent() for panel in panels]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False))  # no overlap
    assert all(box.x0 >= 0 and box.x1 <= figure.bbox.width for box in boxes)


# -- bad settings -------------------------------------------------------------------------


def test_bits_that_do_not_fit_the_dtype_give_a_message():
    explorer = QuantizationExplorer()
    numbers = explorer.compute("int8", 12)
    assert "n_bits=12 does not fit int8" in numbers["message"]
    assert numbers["mse"] is None and numbers["scale"] is None
    html = explorer.html(numbers)
    assert 'class="qe-message"' in html and "n_bits=12 does not fit int8" in html
    assert "Traceback" not in html
    assert explorer.render(n_bits=12)[1] is None


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"dtype": "int4"}, "unknown dtype 'int4'"),
        ({"dtype": torch.float16}, "floating-point type"),
        ({"tensor_name": "no such tensor"}, "unknown tensor 'no such tensor'"),
        ({"tensor_name": "random normal", "size": 0}, "size must be a whole number >= 1"),
        (
            {"tensor_name": "random normal", "seed": -1},
            "seed must be a whole number from 0 to 2**64 - 1",
        ),
        ({"mode": "sideways"}, "unknown mode 'sideways'"),
        ({"granularity": "per row"}, "unknown granularity 'per row'"),
        ({"granularity": "per group", "group_size": 4}, "group_size=4 does not divide"),
        ({"range_method": "MSE-optimal"}, "the range 'MSE-optimal' needs symmetric mode"),
        ({"range_method": "percentile 99", "mode": "asymmetric"}, "Choose mode 'symmetric'"),
        ({"range_method": "percentile 50", "mode": "symmetric"}, "unknown range 'percentile 50'"),
        ({"range_method": "MSE-optimal", "mode": "symmetric", "dtype": "int4"}, "unknown dtype"),
        ({"range_method": "MSE-optimal", "mode": "symmetric", "n_bits": 12}, "does not fit int8"),
        (
            {"range_method": "MSE-optimal", "mode": "symmetric", "granularity": "per group"}
            | {"group_size": 2},
            "group_size=2 does not divide",
        ),
    ],
)
def test_other_bad_settings_give_a_message(settings, text):
    numbers = QuantizationExplorer().compute(**settings)
    assert text in numbers["message"]


def test_a_message_is_escaped_html():
    def quantizer(tensor, dtype, n_bits, **options):
        raise TypeError("<script>alert(1)</script> is not a tensor")

    numbers = QuantizationExplorer(quantizer=quantizer).compute()
    html = QuantizationExplorer.html(numbers)
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- extending it ---------------------------------------------------------------------------


def test_register_tensor_source_adds_a_menu_entry(monkeypatch):
    monkeypatch.setattr(explorer_module, "TENSOR_SOURCES", dict(TENSOR_SOURCES))
    weights = torch.tensor([[-2.0, -1.13, 0.42], [-1.51, 0.25, 1.62], [0.23, 1.35, 2.15]])
    register_tensor_source("real weight matrix", lambda seed, size: weights)
    explorer = QuantizationExplorer(sources=explorer_module.TENSOR_SOURCES)
    explorer.build_widgets()
    assert "real weight matrix" in explorer.widgets["tensor_name"].options
    set_controls(explorer, tensor_name="real weight matrix", n_bits=4)
    scale, zero_point = get_q_scale_and_zero_point(weights, torch.int8, 4)
    assert explorer.redraw()["scale"] == scale
    with pytest.raises(TypeError):
        register_tensor_source("not callable", weights)


def test_a_new_control_is_one_line_and_reaches_the_quantizer():
    seen = []

    def quantizer(tensor, dtype, n_bits, clip, **options):
        seen.append((clip, options["mode"]))
        return explorer_quantize(tensor, dtype, n_bits, **options)

    clip = ExplorerControl("clip", "clip %", "slider", 100, low=50, high=100)
    explorer = QuantizationExplorer(controls=[*EXPLORER_CONTROLS, clip], quantizer=quantizer)
    explorer.build_widgets()
    set_controls(explorer, clip=90, mode="symmetric")
    assert seen == [(100, "asymmetric"), (90, "asymmetric"), (90, "symmetric")]
    assert explorer.compute(clip=70)["clip"] == 70


def test_an_older_four_value_quantizer_still_works():
    """A quantizer that returns (q, scale, zero point, dequantized) without a block size:
    per tensor, or a scale that broadcasts (per channel), is understood."""

    def per_row(tensor, dtype, n_bits, **options):
        q, scale = linear_q_symmetric_per_channel(tensor, dim=0, dtype=dtype, n_bits=n_bits)
        return q, scale, 0, linear_dequantization(q, scale, 0)

    numbers = QuantizationExplorer(quantizer=per_row).compute(n_bits=4)
    assert numbers["block_size"] == (1, 3) and numbers["n_scales"] == 3
    assert numbers["scale"].shape == (3, 1)

    def per_group(tensor, dtype, n_bits, **options):
        q, scale = linear_q_symmetric_per_group(tensor, 3, dtype, n_bits)
        return q, scale.reshape(1, -1), 0, linear_dequantization_per_group(q, scale, 3)

    numbers = QuantizationExplorer(quantizer=per_group).compute(tensor_name="random normal", size=6)
    assert "return a QuantizerResult with its block_size" in numbers["message"]


def test_the_quantizer_hands_over_its_block_size():
    tensor = examples.seeded_randn(4, 6, seed=2)
    result = explorer_quantize(tensor, torch.int8, 4, "asymmetric", "per group", group_size=3)
    assert isinstance(result, QuantizerResult)
    assert result.block_size == (1, 3) and tuple(result.scale.shape) == (4, 2)
    assert per_element(result.scale, tensor.shape, result.block_size).shape == tensor.shape


def test_the_package_re_exports_every_public_name_of_its_modules():
    """``support.explorer`` is a package of modules; ``from support.explorer import ...``
    still gives every public name they define (the very same object), as the single module
    did, and ``__all__`` lists only names it has."""
    from support import plots
    from support.explorer import compute, drawing, settings, widget

    missing = []
    for module in (settings, compute, drawing, widget):
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", module.__name__) == module.__name__
            imported = inspect.ismodule(value) or value is getattr(helper, name, None)
            imported = imported or value is getattr(plots, name, None)
            imported = imported or name == "TYPE_CHECKING"
            if name.startswith("_") or not defined_here or imported:
                continue
            if getattr(explorer_module, name, None) is not value:
                missing.append(f"{module.__name__}.{name}")
    assert missing == []
    assert all(hasattr(explorer_module, name) for name in explorer_module.__all__)
    assert explorer_module.TENSOR_SOURCES is settings.TENSOR_SOURCES


def test_explore_returns_the_widget_box():
    box = explore()
    assert type(box).__name__ == "VBox"
    assert "qe-explorer" in box._dom_classes
    controls, numbers, image = box.children
    assert [w.description for w in controls.children] == [c.label for c in EXPLORER_CONTROLS]
    assert "qe-mse" in numbers.value and bytes(image.value).startswith(PNG_SIGNATURE)


def test_importing_helper_does_not_import_ipywidgets():
    code = "import sys, helper; print('ipywidgets' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_memory_text_names_the_course_lesson_for_packing():
    html = QuantizationExplorer.html(QuantizationExplorer().compute("int8", 4))
    assert "course lesson L5, weight packing" in html
    assert "lesson 5 does" not in html


def test_packed_bytes_are_what_lesson_12_packs_row_by_row():
    """The 3x3 test tensor at 4 bits: 9 x 4 bits would round up to 5 bytes, but the packer
    pads every row of 3 values to 2 bytes: 6 bytes, exactly what pack_weights returns."""
    explorer = QuantizationExplorer()
    numbers = explorer.compute("int8", 4)
    q = explorer_quantize(torch.tensor(TEST_TENSOR), torch.int8, 4).quantized
    packed = helper.pack_weights(helper.to_offset_binary(q, 4), 4, pad=True)
    assert numbers["bytes_packed"] == packed.numel() == 6 != math.ceil(q.numel() * 4 / 8)
    html = QuantizationExplorer.html(numbers)
    assert '<span class="qe-bytes-packed">6</span> bytes' in html
    assert "every row padded to whole bytes (3 rows &times; 2 bytes" in html
    # 2 bits: 4 per byte, a row of 64 is 16 bytes
    assert explorer.compute("uint8", 2, "random normal", 64, 0)["bytes_packed"] == 64 * 16


@pytest.mark.parametrize(("dtype_name", "n_bits"), [("int8", 3), ("int8", 5), ("int16", 12)])
def test_widths_the_packer_refuses_are_not_packable(dtype_name, n_bits):
    levels = torch.zeros(3, 3, dtype=torch.uint8)
    with pytest.raises(ValueError):
        helper.pack_weights(levels, n_bits, pad=True)
    numbers = QuantizationExplorer().compute(dtype_name, n_bits)
    assert numbers["bytes_packed"] is None
    html = QuantizationExplorer.html(numbers)
    assert '<span class="qe-bytes-packed">not packable</span>' in html
    assert "packs 1, 2, 4 or 8 bits per value" in html


def test_values_as_wide_as_their_dtype_need_no_packing():
    numbers = QuantizationExplorer().compute("int16", 16)
    assert numbers["bytes_packed"] == numbers["bytes_after"] == 18
    assert "nothing to pack" in QuantizationExplorer.html(numbers)


@pytest.mark.parametrize(("dtype_name", "low", "unreachable"), [("int8", -7, -8), ("uint8", 1, 0)])
def test_symmetric_mode_says_which_level_it_cannot_reach(dtype_name, low, unreachable):
    """Clipped or min-max, the symmetric grid has 15 of the 16 codes at 4 bits: the MSE-optimal
    range uses all 15, and the explorer says the 16th cannot be reached."""
    explorer = QuantizationExplorer()
    settings = dict(mode="symmetric", range_method="MSE-optimal")
    numbers = explorer.compute(dtype_name, 4, "random normal", 64, 0, **settings)
    q = explorer_quantize(
        explorer.tensor("random normal", 64, 0), EXPLORER_DTYPES[dtype_name], 4, **settings
    ).quantized
    used = set(q.flatten().tolist())
    assert numbers["levels_used"] == len(used) == 15 and unreachable not in used
    assert numbers["unreachable_level"] == unreachable
    html = QuantizationExplorer.html(numbers)
    assert '<span class="qe-levels">15 of 16</span>' in html
    assert (
        f'<small class="qe-levels-note">the 16th level, {unreachable}, cannot be reached: the '
        f"symmetric grid has 15, {low}..{low + 14}</small>"
    ) in html
    asymmetric = explorer.compute(dtype_name, 4, "random normal", 64, 0)
    assert asymmetric["unreachable_level"] is None
    assert "qe-levels-note" not in QuantizationExplorer.html(asymmetric)


def test_a_quantizer_of_ones_own_gets_no_unreachable_level():
    explorer = QuantizationExplorer(quantizer=lambda *args, **kw: explorer_quantize(*args, **kw))
    numbers = explorer.compute("int8", 4, mode="symmetric")
    assert numbers["unreachable_level"] is None


# -- the shared heatmap code still draws plot_quantization_errors as before -------------------


def test_plot_quantization_errors_is_unchanged_by_the_shared_panels():
    tensor = torch.tensor(TEST_TENSOR)
    scale, zero_point = get_q_scale_and_zero_point(tensor)
    quantized = linear_q_with_scale_and_zero_point(tensor, scale, zero_point)
    dequantized = linear_dequantization(quantized, scale, zero_point)
    figure = helper.plot_quantization_errors(tensor, quantized, dequantized)
    assert isinstance(figure, Figure) and plt.get_fignums() == []
    panels = [ax for ax in figure.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "Original tensor",
        "Quantized (int8, [-128, 127])",
        "Dequantized tensor",
        "Absolute error |original - dequantized|",
    ]
    assert [ax.texts[0].get_text() for ax in panels] == ["191.6", "-23", "193.3", "1.656"]
    assert all(len(ax.texts) == 9 for ax in panels)
    low, high = panels[0].images[0].get_clim()
    assert low == -184.0 and high == pytest.approx(dequantized.max().item())
    assert panels[1].images[0].get_clim() == (-128.0, 127.0)


# -- the grids of lesson 14: float8 e4m3fn, float8 e5m2 and NF4 in the dtype menu ------------

GRIDS = {"float8 e4m3fn": "e4m3fn", "float8 e5m2": "e5m2", "nf4": "nf4"}
GRID_WIDTH = {"float8 e4m3fn": 8, "float8 e5m2": 8, "nf4": 4}


def local_step_mse(tensor, grid, scale, block_size) -> float:
    """The estimate written out another way: for every value, the two grid values around r/s
    (numpy's searchsorted on the sorted grid), their gap times s, squared, over 12; the mean."""
    values = helper.grid_values(grid).double().numpy()
    s = per_element(scale.double(), tensor.shape, block_size).flatten().numpy()
    x = tensor.double().flatten().numpy() / s
    total = 0.0
    for xi, si in zip(x, s, strict=True):
        k = min(max(int(np.searchsorted(values, xi, side="left")), 1), len(values) - 1)
        total += (si * (values[k] - values[k - 1])) ** 2 / 12
    return total / len(x)


def test_the_dtype_menu_offers_the_grids_after_the_integers(explorer):
    menu = explorer.widgets["dtype"]
    assert tuple(menu.options) == (*EXPLORER_DTYPES, "float8 e4m3fn", "float8 e5m2", "nf4")
    assert explorer_module.EXPLORER_GRIDS == GRIDS


@pytest.mark.parametrize(("granularity", "group_size"), GRANULARITY_CASES)
@pytest.mark.parametrize(
    ("tensor_name", "size"),
    [(DEFAULT_TENSOR, 3), (WIDE, 0), ("normal with one outlier", 12), ("all positive", 6)],
)
@pytest.mark.parametrize("entry", list(GRIDS))
def test_grids_compute_what_helper_computes(
    sources, entry, tensor_name, size, granularity, group_size
):
    explorer = QuantizationExplorer(sources=sources)
    numbers = explorer.compute(
        entry, GRID_WIDTH[entry], tensor_name, size, 1, granularity=granularity,
        group_size=group_size,
    )  # fmt: skip
    assert numbers["message"] is None, numbers["message"]
    tensor = sources[tensor_name](1, size)
    grid = GRIDS[entry]
    block_size, *_ = blockwise(tensor, torch.int8, 8, "symmetric", granularity, group_size)
    codes, scale = helper.quantize_to_grid(tensor, grid, block_size)
    deq = helper.dequantize_from_grid(codes, scale, grid, block_size)
    assert numbers["grid"] == grid and numbers["block_size"] == block_size
    assert numbers["n_scales"] == scale.numel() and numbers["zero_point"] is None
    if scale.numel() == 1:
        assert numbers["scale"] == scale.item()
    else:
        assert torch.equal(numbers["scale"], scale)
    assert numbers["mse"] == quantization_error(tensor, deq).item()
    assert numbers["max_error"] == (deq - tensor).abs().max().item()
    assert numbers["theory_mse"] == pytest.approx(
        local_step_mse(tensor, grid, scale, block_size), rel=1e-9
    )
    n_values, levels = tensor.numel(), len(helper.grid_values(grid))
    assert (numbers["q_min"], numbers["q_max"], numbers["levels"]) == (0, levels - 1, levels)
    assert numbers["levels_used"] == len(set(codes.flatten().tolist()))
    assert numbers["bytes_after"] == n_values  # one byte per code
    assert numbers["bytes_params"] == 4 * scale.numel()  # float32 scales, no zero points
    want_packed = lesson_12_packed_bytes(tensor, GRID_WIDTH[entry], 8)
    assert numbers["bytes_packed"] == want_packed
    assert numbers["unreachable_level"] is None and numbers["clip_range"] is None


@pytest.mark.parametrize("grid", ["e4m3fn", "e5m2"])
@pytest.mark.parametrize(("granularity", "group_size"), GRANULARITY_CASES)
def test_float8_entries_round_trip_as_pytorchs_cast(grid, granularity, group_size):
    """The explorer's float8 round trip is PyTorch's: every block divided by its scale, cast to
    the float8 dtype and back, times the scale."""
    tensor = examples.varied_rows_weight(6, 12, 2)
    result = explorer_quantize(tensor, grid, 8, granularity=granularity, group_size=group_size)
    s = per_element(result.scale, tensor.shape, result.block_size)
    cast = (tensor / s).to(helper.FLOAT8_FORMATS[grid].dtype).float() * s
    assert torch.equal(result.dequantized, cast)


def test_a_float8_torch_dtype_names_its_grid():
    explorer = QuantizationExplorer()
    by_dtype = explorer.compute(torch.float8_e5m2, 8, "random normal", 8)
    by_name = explorer.compute("float8 e5m2", 8, "random normal", 8)
    assert by_dtype["message"] is None and by_dtype["mse"] == by_name["mse"]
    assert by_dtype["grid"] == "e5m2"


def test_the_grids_mode_does_not_change_the_result():
    explorer = QuantizationExplorer()
    for entry in GRIDS:
        numbers = [
            explorer.compute(entry, None, "random normal", 16, mode=mode) for mode in EXPLORER_MODES
        ]
        assert numbers[0]["mse"] == numbers[1]["mse"] and numbers[0]["n_bits"] == GRID_WIDTH[entry]


def test_the_step_estimate_holds_for_normal_values_on_every_grid():
    explorer = QuantizationExplorer()
    for entry in GRIDS:
        numbers = explorer.compute(entry, GRID_WIDTH[entry], "random normal", 64)
        assert numbers["estimate"] == "applies", numbers["estimate_note"]
        assert "step\u00b2/12 applies" in numbers["estimate_note"]


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"dtype": "nf4", "n_bits": 8}, "n_bits=8 does not fit nf4: it is a fixed 4-bit format"),
        ({"dtype": "float8 e5m2", "n_bits": 4}, "pass n_bits=8 (or None)"),
        ({"dtype": "float8 e4m3fn", "n_bits": True}, "n_bits=True does not fit float8 e4m3fn"),
        ({"dtype": "float8 e4m3fn", "n_bits": 8.0}, "n_bits=8.0 does not fit float8 e4m3fn"),
        ({"dtype": "nf4", "n_bits": 4, "mode": "sideways"}, "unknown mode 'sideways'"),
        (
            {"dtype": "nf4", "n_bits": 4, "mode": "symmetric", "range_method": "MSE-optimal"},
            "the range 'MSE-optimal' applies to integer dtypes only",
        ),
        ({"dtype": "nf4", "n_bits": 4, "range_method": "p99"}, "unknown range 'p99'"),
        ({"dtype": "float8 e4m3fn", "granularity": "per row"}, "unknown granularity"),
        (
            {"dtype": "float8 e4m3fn", "granularity": "per group", "group_size": 2},
            "group_size=2 does not divide",
        ),
        ({"dtype": "float8"}, "choose one of int8, uint8, int16, float8 e4m3fn, float8 e5m2, nf4"),
        ({"dtype": torch.float16}, "floating-point type"),
    ],
)
def test_bad_grid_settings_give_a_message(settings, text):
    numbers = QuantizationExplorer().compute(**settings)
    assert text in numbers["message"], numbers["message"]


def test_explorer_quantize_to_grid_names_an_unknown_grid():
    with pytest.raises(ValueError, match="unknown grid 'e3m4': choose one of 'e4m3fn', 'e5m2'"):
        explorer_module.explorer_quantize_to_grid(torch.ones(2, 2), "e3m4")
    with pytest.raises(ValueError, match=r"unknown grid \['nf4'\]"):
        explorer_module.explorer_quantize_to_grid(torch.ones(2, 2), ["nf4"])


def test_a_grid_pins_the_bits_and_greys_out_mode_and_range(explorer):
    slider, mode, ranges = (explorer.widgets[k] for k in ("n_bits", "mode", "range_method"))
    set_controls(explorer, n_bits=5, mode="symmetric", range_method="percentile 99")
    assert "Symmetric mode only" in ranges.tooltip and "Integer dtypes only" in ranges.tooltip
    assert "pinned" in slider.tooltip and "Integer dtypes only" in mode.tooltip
    for entry in GRIDS:
        set_controls(explorer, dtype=entry)
        width = GRID_WIDTH[entry]
        assert (slider.value, slider.max, slider.disabled) == (width, width, True)
        assert mode.disabled and ranges.disabled
        settings = explorer.settings
        assert (settings["n_bits"], settings["range_method"]) == (width, "min-max")
        html = explorer.numbers_widget.value
        assert f"The bits slider is pinned to {width}" in html
        assert "the mode and the range menu apply to integer dtypes only" in html
        assert "qe-message" not in html and "qe-clip-range" not in html
    set_controls(explorer, dtype="int16")  # back: the bits, mode and range from before
    assert (slider.value, slider.max, slider.disabled) == (5, 16, False)
    assert not mode.disabled and not ranges.disabled
    assert explorer.settings["range_method"] == "percentile 99"
    assert explorer.redraw()["clip_range"] is not None


def test_choosing_a_grid_redraws_once(explorer, monkeypatch):
    calls = []
    render = explorer.render
    monkeypatch.setattr(explorer, "render", lambda **kw: calls.append(kw) or render(**kw))
    set_controls(explorer, dtype="nf4")  # pins the bits and greys out the mode: one redraw
    set_controls(explorer, dtype="int8")
    assert len(calls) == 2


@pytest.mark.parametrize("entry", list(GRIDS))
def test_the_grids_numbers_show_and_update(explorer, entry):
    set_controls(explorer, tensor_name="random normal", size=16, dtype=entry)
    shown = []
    for granularity in ("per tensor", "per channel (rows)"):
        set_controls(explorer, granularity=granularity)
        numbers = explorer.compute(**explorer.settings)
        html = explorer.numbers_widget.value
        assert f'<span class="qe-mse">{format_number(numbers["mse"])}</span>' in html
        theory = format_number(numbers["theory_mse"])
        assert f'<span class="qe-theory-mse">{theory}</span>' in html
        assert "step\u00b2/12 (estimate)" in html and "s\u00b2/12 (estimate)" not in html
        levels = f"{numbers['levels_used']:,} of {numbers['levels']:,}"
        assert f'<span class="qe-levels">{levels}</span>' in html
        assert '<span class="qe-zero-point">none' in html and "zero point:" not in html
        assert f"<b>{entry}</b> is " in html and "qe-estimate" in html
        shown.append(numbers["mse"])
    assert shown[0] != shown[1]
    stored = "uint8 codes" if entry == "nf4" else entry
    assert f"bytes stored as {stored} " in html


def test_the_nf4_note_says_its_scale_is_the_absmax_and_float8s_its_largest_value():
    explorer = QuantizationExplorer()
    html = explorer.html(explorer.compute("nf4", 4))
    assert "s = max|block| (its largest grid value is 1: QLoRA's absmax)" in html
    html = explorer.html(explorer.compute("float8 e4m3fn", 8))
    assert "s = max|block| / 448" in html and "253 finite values from -448 to 448" in html
    html = explorer.html(explorer.compute("float8 e5m2", 8))
    assert "s = max|block| / 57344" in html and "247 finite values" in html


def grid_lines(artist) -> list[float]:
    return sorted(segment[0][0] for segment in artist.get_segments())


def test_the_histogram_draws_every_nf4_level():
    explorer = QuantizationExplorer()
    numbers, _ = explorer.render(tensor_name="random normal", size=32, dtype="nf4")
    drawing = explorer._drawing
    red, green = drawing.grids
    want = (numbers["scale"] * helper.nf4_levels().double()).tolist()
    assert grid_lines(red) == pytest.approx(want, rel=1e-12) and green.get_segments() == []
    assert drawing.hist_ax.get_title() == "1,024 values, 16 grid values"
    legend = [t.get_text() for t in drawing.hist_ax.get_legend().get_texts()]
    assert "levels r = s \u00b7 grid value" in legend
    assert "Grid value q" not in drawing.suptitle.get_text()
    assert drawing.suptitle.get_text().startswith("random normal, nf4, absmax scale, per tensor:")


@pytest.mark.parametrize("grid", ["e4m3fn", "e5m2"])
def test_the_histogram_draws_float8_values_at_least_3_px_apart(grid):
    explorer = QuantizationExplorer()
    entry = f"float8 {grid}"
    numbers, _ = explorer.render(tensor_name="random normal", size=64, dtype=entry)
    drawing = explorer._drawing
    red = drawing.grids[0]
    drawn = grid_lines(red)
    values = (numbers["scale"] * helper.float8_grid(grid).double()).tolist()
    assert set(drawn) <= set(values) and 0.0 in drawn and len(drawn) < len(values)
    assert drawn[0] == values[0] and drawn[-1] == values[-1]  # the ends are always drawn
    low, high = drawing.hist_ax.get_xlim()
    pixels = np.diff(drawn) * drawing.hist_ax.bbox.width / (high - low)
    assert pixels.min() >= explorer_module.MIN_GRID_GAP_PX
    # the values left out lie closer than 3 px to the one drawn before them, going out from 0
    per_pixel = (high - low) / drawing.hist_ax.bbox.width
    for value in set(values) - set(drawn):
        inner = max((d for d in drawn if abs(d) <= abs(value) and d * value >= 0), key=abs)
        assert abs(value - inner) < explorer_module.MIN_GRID_GAP_PX * per_pixel
    title = drawing.hist_ax.get_title()
    assert (
        title
        == f"4,096 values, {len(values)} grid values, {len(drawn)} drawn (at least 3 px apart)"
    )


def test_per_channel_grids_draw_the_widest_and_the_finest():
    explorer = QuantizationExplorer()
    numbers, _ = explorer.render(
        tensor_name="random normal", size=64, dtype="nf4", granularity="per channel (rows)"
    )
    red, green = explorer._drawing.grids
    levels = helper.nf4_levels().double()
    scales = numbers["scale"].flatten().double()
    assert grid_lines(red) == pytest.approx((scales.max() * levels).tolist(), rel=1e-12)
    assert grid_lines(green) == pytest.approx((scales.min() * levels).tolist(), rel=1e-12)
    title = explorer._drawing.hist_ax.get_title()
    assert "16 grid values per grid, all drawn" in title
    assert "64 grids (one per row): widest and finest drawn, 62 not drawn" in title


def test_the_panels_show_the_grid_values_of_the_codes():
    explorer = QuantizationExplorer()
    numbers, _ = explorer.render(dtype="float8 e4m3fn")
    panel = explorer._drawing.panels[1]
    assert panel.ax.get_title() == "Grid value q, float8 e4m3fn"
    tensor = torch.tensor(TEST_TENSOR)
    on_grid = (tensor / numbers["scale"]).to(torch.float8_e4m3fn).float()  # PyTorch's cast
    assert [t.get_text() for t in panel.texts] == [f"{v:.4g}" for v in on_grid.flatten().tolist()]
    assert panel.texts[2].get_text() == "448"  # the largest value lands on the largest level


def test_the_grids_reuse_the_figure_and_their_states_come_back_from_saved_pixels(monkeypatch):
    explorer = QuantizationExplorer()
    explorer.build_widgets()
    figure = explorer.figure
    for entry in GRIDS:
        set_controls(explorer, dtype=entry)
        assert explorer.figure is figure
    drawing = explorer._drawing
    drawn = []
    draw_artist = drawing.figure.draw_artist
    monkeypatch.setattr(drawing.figure, "draw_artist", lambda a: drawn.append(a) or draw_artist(a))
    hits = drawing.saved.hits
    for entry in GRIDS:
        set_controls(explorer, dtype=entry)
    assert drawn == [] and drawing.saved.hits == hits + len(GRIDS) * len(drawing.regions)


def test_lesson_03s_comparison_of_the_grids_holds():
    """Lesson 03's "What to look for", step 7: on random normal values (size 64, seed 0) float8
    e4m3fn's MSE is larger than int8's at 8 bits, and nf4's smaller than int8's at 4 bits, in
    either mode."""
    explorer = QuantizationExplorer()

    def mse(dtype, n_bits, mode="asymmetric"):
        return explorer.compute(dtype, n_bits, "random normal", 64, 0, mode=mode)["mse"]

    for mode in EXPLORER_MODES:
        assert mse("float8 e4m3fn", 8) > mse("int8", 8, mode)
        assert mse("nf4", 4) < mse("int8", 4, mode)


def test_a_background_that_comes_back_is_put_back_not_drawn_again():
    """The histogram's legend names one grid or two, an integer grid or a float8 or NF4 one:
    each is another background, saved under its key; going back and forth draws each once."""
    explorer = QuantizationExplorer()
    cycle = [
        {"dtype": "int8", "n_bits": 4},
        {"dtype": "nf4", "n_bits": 4},
        {"dtype": "nf4", "n_bits": 4, "granularity": "per channel (rows)"},
        {"dtype": "int8", "n_bits": 4, "granularity": "per channel (rows)"},
    ]
    for state in cycle:  # four legends; the x range grows to NF4's +-max|r| and stays
        explorer.render(tensor_name="random normal", size=64, **state)
    drawing = explorer._drawing
    assert drawing.full_draws == 4
    pictures = [explorer.render(tensor_name="random normal", size=64, **s)[1] for s in cycle]
    assert drawing.full_draws == 5  # the first legend once more, over the wider x range
    for state, picture in zip(cycle, pictures, strict=True):
        _, png = explorer.render(tensor_name="random normal", size=64, **state)
        assert png == picture and drawing.full_draws == 5
        assert np.array_equal(decoded(png), drawing.full_render()[:, :, :3]), state
