"""Bad input to helper.py's public functions: one table, one test.

Every row is a call, the exception it must raise (``TypeError`` or ``ValueError``, as helper.py's
module docstring promises) and a phrase (a regular expression) that the message must contain,
so that the message says what was wrong. The rows are grouped by the section of helper.py the
called function belongs to; a row's id is the section's number and a short name, e.g.
``04-nan_quantization``. Tests of a function's other edge cases, and bad-input tests that check
more than the error (for instance that nothing was changed by the failed call), stay in the
section's own test file.
"""

from __future__ import annotations

import functools
import json
import math
import os
import struct
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from conftest import (
    CLIPPING_FUNCTIONS,
    GROUP_TENSOR,
    TEST_TENSOR,
    Outer,
    seeded_int8,
    tiny_mlp,
    u8,
    varied_rows_mlp,
)
from torch import nn

from helper import (
    PackedLinearLayer,
    W8A16LinearLayer,
    absmax_mse_optimal,
    absmax_percentile,
    aciq_clip_gaussian,
    aciq_mse_gaussian,
    bits_per_weight,
    block_range,
    block_shapes,
    choose_qparams_affine,
    clipping_absmax,
    clipping_mse_curve,
    dequantize_affine,
    dequantize_from_grid,
    fake_quantize,
    fake_quantize_clipped,
    fake_quantize_linears,
    fake_quantize_ste,
    fake_quantize_ste_blockwise,
    float8_from_bits,
    float8_grid,
    from_offset_binary,
    get_q_range,
    get_q_scale_and_zero_point,
    get_q_scale_symmetric,
    granularity_block_size,
    layer_names,
    linear_dequantization,
    linear_dequantization_per_group,
    linear_q_symmetric,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
    linear_q_with_scale_and_zero_point,
    linear_quantization,
    pack_weights,
    packed_weight_bytes,
    plot_accuracy_vs_bits,
    plot_clipping_curves,
    plot_clipping_ranges,
    plot_granularity_tradeoff,
    plot_output_sqnr,
    plot_packed_bits,
    plot_quantization_errors,
    qparams_from_range,
    quantization_error,
    quantize_affine,
    quantize_blockwise,
    quantize_clipped,
    quantize_to_grid,
    quantized_linear_W8A8_without_bias,
    quantized_linear_W8A32_without_bias,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
    scale_and_zero_point_from_range,
    to_offset_binary,
    unpack_weights,
    w8_a16_forward,
)
from support import models
from support.examples import seeded_randn, varied_rows_weight
from support.exercises import check_quantize, core
from support.explorer import TENSOR_SOURCES, QuantizationExplorer, estimate_check

# ------------------------------------------------------------------------------------------
# Inputs the rows share
# ------------------------------------------------------------------------------------------

NAN = torch.tensor([1.0, float("nan"), 3.0])
POS_INF = torch.tensor([1.0, float("inf")])
NEG_INF = torch.tensor([-float("inf"), 1.0])
EMPTY = torch.empty(0)
Q8 = torch.tensor([1, 2, 3], dtype=torch.int8)

NAN_ROW = torch.tensor([[1.0, float("nan"), 3.0, 4.0]])
INF_2X2 = torch.tensor([[1.0, 2.0], [float("-inf"), 4.0]])
Q33 = torch.ones(3, 3, dtype=torch.int8)
Q66 = torch.ones(6, 6, dtype=torch.int8)
ONES31 = torch.ones(3, 1)

#: The course's tensor, quantized and dequantized (for the plot's rows).
TEST_Q, TEST_SCALE, TEST_ZERO_POINT = linear_quantization(TEST_TENSOR)
TEST_DEQ = linear_dequantization(TEST_Q, TEST_SCALE, TEST_ZERO_POINT)

#: int8 weights (3 out, 4 in) and activations (batch 2) for the linear layers' rows.
QW = seeded_int8(3, 4, seed=24)
QX = seeded_int8(2, 4, seed=25)

#: Lesson 10's small weight, and lesson 13's 8x12 weight with rows of very different sizes.
W = torch.tensor([[0.9, -0.2, 0.5, 0.1], [0.03, -0.01, 0.02, 0.0]])
WEIGHT = varied_rows_weight(8, 12, seed=5)


def rows(*groups: dict) -> dict:
    """One section's rows, from groups of rows; a name in two groups (which would silently hide
    a row) is an error."""
    merged = {}
    for group in groups:
        assert merged.keys().isdisjoint(group), sorted(merged.keys() & group.keys())
        merged.update(group)
    return merged


def eight_zeros_but(value: int) -> torch.Tensor:
    """Eight uint8 zeros, but ``value`` at position 5."""
    values = torch.zeros(8, dtype=torch.uint8)
    values[5] = value
    return values


# ------------------------------------------------------------------------------------------
# 1. Integer dtypes and their ranges
# ------------------------------------------------------------------------------------------

RANGES = {
    "float_range": (lambda: get_q_range(torch.float32), TypeError, "integer target dtype"),
    "qint8_target": (lambda: get_q_range(torch.qint8), TypeError, "not supported"),
    "dtype_string": (lambda: get_q_range("int8"), TypeError, "torch dtype"),
    "n_bits_1": (lambda: get_q_range(torch.int8, 1), ValueError, "does not fit"),
    "n_bits_17": (lambda: get_q_range(torch.int16, 17), ValueError, "2 to 16"),
    "n_bits_float": (lambda: get_q_range(torch.int8, 4.0), TypeError, "whole number"),
    "n_bits_bool": (lambda: get_q_range(torch.int8, True), TypeError, "whole number"),
    "n_bits_str": (lambda: get_q_range(torch.int8, "4"), TypeError, "whole number"),
}


# ------------------------------------------------------------------------------------------
# 3. Scale and zero point
# ------------------------------------------------------------------------------------------

SCALE_AND_ZERO_POINT = {
    "nan_scale_zero_point": (lambda: get_q_scale_and_zero_point(NAN), ValueError, "NaN"),
    "neg_inf": (lambda: get_q_scale_and_zero_point(NEG_INF), ValueError, "infinite"),
    "empty_2d": (lambda: get_q_scale_and_zero_point(torch.empty(3, 0)), ValueError, "empty"),
    "list_scale_zp": (lambda: get_q_scale_and_zero_point([1.0]), TypeError, "torch.tensor"),
}


# ------------------------------------------------------------------------------------------
# 4. Quantize
# ------------------------------------------------------------------------------------------

QUANTIZE = {
    "nan_quantization": (lambda: linear_quantization(NAN), ValueError, "contains NaN"),
    "nan_with_scale": (
        lambda: linear_q_with_scale_and_zero_point(NAN, 1.0, 0),
        ValueError,
        "NaN",
    ),
    "pos_inf": (lambda: linear_quantization(POS_INF), ValueError, "infinite"),
    "inf_with_scale": (
        lambda: linear_q_with_scale_and_zero_point(NEG_INF, 1.0, 0),
        ValueError,
        "infinite",
    ),
    "empty": (lambda: linear_quantization(EMPTY), ValueError, "empty"),
    "float_target": (lambda: linear_quantization(TEST_TENSOR, torch.float16), TypeError, "float"),
    "int32_target": (lambda: linear_quantization(TEST_TENSOR, torch.int32), TypeError, "not supp"),
    "n_bits_9": (lambda: linear_quantization(TEST_TENSOR, torch.int8, 9), ValueError, "2 to 8"),
    "list_input": (lambda: linear_quantization([1.0, 2.0]), TypeError, "must be a torch.Tensor"),
    "complex_input": (
        lambda: linear_quantization(torch.ones(2, dtype=torch.complex64)),
        TypeError,
        "real numbers",
    ),
    "bool_input": (
        lambda: linear_quantization(torch.ones(2, dtype=torch.bool)),
        TypeError,
        "real numbers",
    ),
    "scale_zero": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 0.0, 0),
        ValueError,
        "positive, finite",
    ),
    "scale_negative": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, -3.5, 0),
        ValueError,
        "positive, finite",
    ),
    "scale_nan": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, float("nan"), 0),
        ValueError,
        "positive, finite",
    ),
    "scale_tensor_zero": (
        lambda: linear_q_with_scale_and_zero_point(
            TEST_TENSOR, torch.tensor([[1.0], [0.0], [1.0]]), 0
        ),
        ValueError,
        "positive, finite",
    ),
    "scale_wrong_shape": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, torch.ones(4, 1), 0),
        ValueError,
        "does not fit",
    ),
    "scale_string": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, "3.5", 0),
        TypeError,
        "scale must be a number",
    ),
    "scale_underflows_float32": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 1e-50, 0),
        ValueError,
        "too small",
    ),
    "zero_point_fraction": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -70.5),
        ValueError,
        "whole number",
    ),
    "zero_point_string": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, "-70"),
        TypeError,
        "zero_point must be a whole number",
    ),
    "zero_point_tensor_fraction": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, torch.tensor(0.5)),
        ValueError,
        "whole number",
    ),
    "zero_point_above_int8": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, 128),
        ValueError,
        r"outside the quantized range \[-128, 127\]",
    ),
    "zero_point_below_uint8": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -1, torch.uint8),
        ValueError,
        r"outside the quantized range \[0, 255\]",
    ),
    "zero_point_outside_n_bits": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, 8, torch.int8, 4),
        ValueError,
        r"\[-8, 7\]",
    ),
    "zero_point_tensor_outside": (
        lambda: linear_q_with_scale_and_zero_point(
            TEST_TENSOR, 3.5, torch.tensor([[0], [300], [0]]), torch.int16, 8
        ),
        ValueError,
        "zero point 300 is outside",
    ),
    "range_too_wide_float64": (
        lambda: linear_quantization(torch.tensor([-1e308, 1e308], dtype=torch.float64)),
        ValueError,
        "too wide",
    ),
}


# ------------------------------------------------------------------------------------------
# 5. Dequantize
# ------------------------------------------------------------------------------------------

DEQUANTIZE = {
    "empty_dequantize": (
        lambda: linear_dequantization(torch.empty(0, dtype=torch.int8), 1.0, 0),
        ValueError,
        "empty",
    ),
    "list_dequantize": (lambda: linear_dequantization([1, 2], 1.0, 0), TypeError, "torch.Tensor"),
    "scale_inf": (
        lambda: linear_dequantization(Q8, float("inf"), 0),
        ValueError,
        "positive, finite",
    ),
    "scale_grows_shape": (
        lambda: linear_dequantization(Q8, torch.ones(2, 3), 0),
        ValueError,
        "does not fit",
    ),
    "zero_point_nan": (
        lambda: linear_dequantization(Q8, 3.5, float("nan")),
        ValueError,
        "whole number",
    ),
    "dequantize_float": (
        lambda: linear_dequantization(TEST_TENSOR, 3.5, -70),
        TypeError,
        "needs the integer tensor",
    ),
    "dequantize_bool": (
        lambda: linear_dequantization(torch.ones(2, dtype=torch.bool), 1.0, 0),
        TypeError,
        "bool",
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
}


# ------------------------------------------------------------------------------------------
# 6. Quantization error
# ------------------------------------------------------------------------------------------

ERROR = {
    "nan_error": (lambda: quantization_error(NAN, torch.ones(3)), ValueError, "NaN"),
    "error_shapes": (
        lambda: quantization_error(TEST_TENSOR, TEST_TENSOR.flatten()),
        ValueError,
        r"shape \(3, 3\) but dequantized_tensor has shape \(9,\)",
    ),
    "error_list": (lambda: quantization_error([1.0], torch.ones(1)), TypeError, "torch.Tensor"),
}


# ------------------------------------------------------------------------------------------
# 7. Plots
# ------------------------------------------------------------------------------------------

PLOTS = {
    # tensors of different shapes cannot be compared cell by cell
    "errors_q_of_another_shape": (
        lambda: plot_quantization_errors(TEST_TENSOR, TEST_Q.flatten(), TEST_DEQ),
        ValueError,
        "must have one shape",
    ),
    "errors_dequantized_of_another_shape": (
        lambda: plot_quantization_errors(TEST_TENSOR, TEST_Q, TEST_DEQ[:2]),
        ValueError,
        "must have one shape",
    ),
    # the dequantized floats passed as the quantized panel
    "errors_float_as_quantized": (
        lambda: plot_quantization_errors(TEST_TENSOR, TEST_DEQ, TEST_DEQ),
        TypeError,
        "integer tensor",
    ),
}


# ------------------------------------------------------------------------------------------
# 8. Symmetric mode
# ------------------------------------------------------------------------------------------

SYMMETRIC = {
    "nan_symmetric_per_tensor": (lambda: get_q_scale_symmetric(NAN_ROW), ValueError, "NaN"),
    "inf_symmetric": (lambda: linear_q_symmetric(INF_2X2), ValueError, "infinite"),
    "n_bits_one": (lambda: linear_q_symmetric(TEST_TENSOR, torch.int8, 1), ValueError, "2 to 8"),
}


# ------------------------------------------------------------------------------------------
# 9. Granularity: one mechanism
# ------------------------------------------------------------------------------------------

GRANULARITY = {
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
    # linear_dequantization_per_group: one scale per group
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
    "nan_per_group": (lambda: linear_q_symmetric_per_group(NAN_ROW, 2), ValueError, "NaN"),
    "nan_per_channel": (lambda: linear_q_symmetric_per_channel(NAN_ROW, 1), ValueError, "NaN"),
    "nan_block_range": (lambda: block_range(NAN_ROW, (1, 4)), ValueError, "NaN"),
    "nan_quantize_affine": (
        lambda: quantize_affine(NAN_ROW, (1, 2), torch.ones(1, 2), 0),
        ValueError,
        "NaN",
    ),
    "nan_with_r_range": (
        lambda: quantize_blockwise(NAN_ROW, (1, 2), r_range=torch.ones(1, 2)),
        ValueError,
        "NaN",
    ),
    "inf_per_channel": (lambda: linear_q_symmetric_per_channel(INF_2X2, 0), ValueError, "infinite"),
    "inf_per_group": (lambda: quantize_blockwise(INF_2X2, (1, 1)), ValueError, "infinite"),
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
    # bits_per_weight (lesson 05)
    "bits_per_weight_block_not_dividing": (
        lambda: bits_per_weight((4, 6), (1, 4)),
        ValueError,
        "does not divide",
    ),
    "bits_per_weight_n_bits_0": (
        lambda: bits_per_weight((4, 6), (1, 3), n_bits=0),
        ValueError,
        "n_bits",
    ),
    "bits_per_weight_negative_scale_bits": (
        lambda: bits_per_weight((4, 6), (1, 3), scale_bits=-1),
        ValueError,
        "scale_bits",
    ),
    "bits_per_weight_fractional_zero_point_bits": (
        lambda: bits_per_weight((4, 6), (1, 3), zero_point_bits=1.5),
        ValueError,
        "zero_point_bits",
    ),
    "bits_per_weight_0d": (lambda: bits_per_weight((), ()), ValueError, "no elements"),
    # plot_granularity_tradeoff (lesson 05)
    "tradeoff_no_points": (lambda: plot_granularity_tradeoff([]), ValueError, "empty"),
    "tradeoff_zero_mse": (
        lambda: plot_granularity_tradeoff([("per tensor", 8, 8.0, 0.0)]),
        ValueError,
        "positive",
    ),
    "tradeoff_nan_mse": (
        lambda: plot_granularity_tradeoff([("x", 8, 8.0, math.nan)]),
        ValueError,
        "finite",
    ),
}


# ------------------------------------------------------------------------------------------
# 10. Weights and activations
# ------------------------------------------------------------------------------------------

WEIGHTS_AND_ACTIVATIONS = {
    "w8a32_int_input": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4, dtype=torch.int64), QW, 1.0, 0),
        TypeError,
        "input must be a float tensor, got int64",
    ),
    "w8a32_list_input": (
        lambda: quantized_linear_W8A32_without_bias([1.0] * 4, QW, 1.0, 0),
        TypeError,
        "input must be a float tensor, got list",
    ),
    "w8a32_in_features": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(2, 3), QW, 1.0, 0),
        ValueError,
        "its last dimension must be 4",
    ),
    "w8a32_0d_input": (
        lambda: quantized_linear_W8A32_without_bias(torch.tensor(1.0), QW, 1.0, 0),
        ValueError,
        "last dimension",
    ),
    "w8a32_float_weight": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4), QW.float(), 1.0, 0),
        TypeError,
        "needs the integer tensor",
    ),
    "w8a32_1d_weight": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4), QW[0], 1.0, 0),
        ValueError,
        "2-D",
    ),
    "w8a32_per_group_scale": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4), QW, torch.ones(6, 1), 0),
        ValueError,
        "linear_dequantization_per_group",
    ),
    "w8a32_scale_wrong_rows": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4), QW, torch.ones(2, 1), 0),
        ValueError,
        "does not fit",
    ),
    "w8a32_zero_scale": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4), QW, 0.0, 0),
        ValueError,
        "positive, finite",
    ),
    "w8a32_fractional_zero_point": (
        lambda: quantized_linear_W8A32_without_bias(torch.ones(4), QW, 1.0, 0.5),
        ValueError,
        "whole number",
    ),
    "w8a8_in_features": (
        lambda: quantized_linear_W8A8_without_bias(QX[:, :3], 1.0, 0, QW, 1.0, 0),
        ValueError,
        "must share in_features",
    ),
    "w8a8_1d_activations": (
        lambda: quantized_linear_W8A8_without_bias(QX[0], 1.0, 0, QW, 1.0, 0),
        ValueError,
        "must share in_features",
    ),
    "w8a8_float_activations": (
        lambda: quantized_linear_W8A8_without_bias(QX.float(), 1.0, 0, QW, 1.0, 0),
        TypeError,
        "needs the integer tensor",
    ),
    "w8a8_scale_along_in_features": (
        lambda: quantized_linear_W8A8_without_bias(QX, 1.0, 0, QW, torch.ones(1, 4), 0),
        ValueError,
        "does not fit",
    ),
    "w8a8_activation_scale_wrong_rows": (
        lambda: quantized_linear_W8A8_without_bias(QX, torch.ones(3, 1), 0, QW, 1.0, 0),
        ValueError,
        "does not fit",
    ),
    "w8a8_negative_scale": (
        lambda: quantized_linear_W8A8_without_bias(QX, -1.0, 0, QW, 1.0, 0),
        ValueError,
        "positive, finite",
    ),
    "w8a8_zero_point_fraction": (
        lambda: quantized_linear_W8A8_without_bias(QX, 1.0, 0, QW, 1.0, torch.full((3, 1), 0.5)),
        ValueError,
        "whole number",
    ),
    # plot_output_sqnr (lesson 06)
    "output_sqnr_1d_reference": (
        lambda: plot_output_sqnr(torch.ones(3), {"a": torch.ones(3)}),
        ValueError,
        "2-D",
    ),
    "output_sqnr_no_outputs": (lambda: plot_output_sqnr(torch.ones(2, 3), {}), TypeError, "dict"),
}


# ------------------------------------------------------------------------------------------
# 11. An 8-bit layer for any model, and fake quantization
# ------------------------------------------------------------------------------------------

LAYERS = rows(
    # w8_a16_forward: an (out, 1) scale would silently broadcast a (batch, out) output to
    # (out, out); the input here has batch == out, where the silent broadcast would even "work"
    {
        f"forward_scales_{'x'.join(map(str, shape)) or '0d'}": (
            lambda shape=shape: w8_a16_forward(
                seeded_int8(8, 4), seeded_randn(8, 4, seed=1), torch.full(shape, 0.1)
            ),
            ValueError,
            r"scales must have shape \(8,\)",
        )
        for shape in [(8, 1), (4,), (9,), (), (8, 2), (1, 4)]
    },
    {
        f"forward_scales_{name}": (
            lambda scales=scales: w8_a16_forward(seeded_int8(3, 4), torch.ones(2, 4), scales),
            TypeError,
            "scales must be a float tensor",
        )
        for name, scales in {
            "int32": torch.ones(3, dtype=torch.int32),
            "int8": torch.ones(3, dtype=torch.int8),
            "list": [0.1, 0.1, 0.1],
            "float": 0.1,
            "None": None,
        }.items()
    },
    {
        f"forward_weight_{name}": (
            lambda weight=weight: w8_a16_forward(weight, torch.ones(2, 4), torch.ones(3)),
            TypeError,
            "weight",
        )
        for name, weight in {
            "float32": torch.ones(3, 4),  # the float weight instead of the quantized one
            "int16": torch.ones(3, 4, dtype=torch.int16),
            "uint8": torch.ones(3, 4, dtype=torch.uint8),
            "1-D": torch.ones(12, dtype=torch.int8),  # not 2-D
            "3-D": torch.ones(1, 3, 4, dtype=torch.int8),
        }.items()
    },
    {
        "forward_int64_input": (
            lambda: w8_a16_forward(
                seeded_int8(3, 4), torch.ones(2, 4, dtype=torch.int64), torch.ones(3)
            ),
            TypeError,
            "input must be a float tensor",
        ),
        "forward_input_of_5_features": (
            lambda: w8_a16_forward(seeded_int8(3, 4), torch.ones(2, 5), torch.ones(3)),
            ValueError,
            "last dimension must be 4",
        ),
        "forward_0d_input": (
            lambda: w8_a16_forward(seeded_int8(3, 4), torch.tensor(1.0), torch.ones(3)),
            ValueError,
            "last dimension must be 4",
        ),
    },
    {
        f"forward_bias_{name}": (
            lambda bias=bias: w8_a16_forward(
                seeded_int8(3, 4), torch.ones(2, 4), torch.ones(3), bias
            ),
            ValueError,
            r"bias must have shape \(3,\) or \(1, 3\)",
        )
        for name, bias in {
            "4": torch.ones(4),
            "3x1": torch.ones(3, 1),
            "2x3": torch.ones(2, 3),
        }.items()
    },
    {
        f"forward_bias_{name}": (
            lambda bias=bias: w8_a16_forward(
                seeded_int8(3, 4), torch.ones(2, 4), torch.ones(3), bias
            ),
            TypeError,
            "bias must be a float tensor",
        )
        for name, bias in {
            "list": [0.0, 0.0, 0.0],
            "int64": torch.ones(3, dtype=torch.int64),
        }.items()
    },
    # W8A16LinearLayer
    {
        f"layer_dtype_{name}": (
            lambda dtype=dtype: W8A16LinearLayer(4, 2, dtype=dtype),
            TypeError,
            "dtype",
        )
        for name, dtype in {
            "int8": torch.int8,
            "int64": torch.int64,
            "string": "float32",
            "python_float": float,
        }.items()
    },
    {
        # layer_names (lesson 08)
        "layer_names_of_a_list": (lambda: layer_names([nn.Linear(2, 2)]), TypeError, "nn.Module"),
        "layer_names_class_as_a_string": (
            lambda: layer_names(Outer(), "Linear"),
            TypeError,
            "layer_class",
        ),
        "layer_names_empty_tuple": (lambda: layer_names(Outer(), ()), TypeError, "layer_class"),
        # fake_quantize (lesson 10)
        "fake_quantize_group_not_dividing": (
            lambda: fake_quantize(W, granularity="per_group", group_size=3),
            ValueError,
            "does not divide",
        ),
        "fake_quantize_group_size_missing": (
            lambda: fake_quantize(W, granularity="per_group"),
            TypeError,
            "group_size",
        ),
        "fake_quantize_unknown_granularity": (
            lambda: fake_quantize(W, granularity="per_row"),
            ValueError,
            "unknown granularity",
        ),
        "fake_quantize_n_bits_0": (lambda: fake_quantize(W, n_bits=0), ValueError, "n_bits"),
        # fake_quantize_linears (lesson 10)
        "fake_quantize_linears_unknown_layer": (
            lambda: fake_quantize_linears(tiny_mlp(), layers=["nope"]),
            ValueError,
            "no nn.Linear named 'nope'",
        ),
        "fake_quantize_linears_layers_as_a_string": (
            lambda: fake_quantize_linears(tiny_mlp(), layers="0"),
            TypeError,
            "list of names",
        ),
        "fake_quantize_linears_group_not_dividing": (
            lambda: fake_quantize_linears(tiny_mlp(), 4, "per_group", 8),
            ValueError,
            "does not divide",
        ),
        "fake_quantize_linears_not_a_model": (
            lambda: fake_quantize_linears("model"),
            TypeError,
            "torch.nn.Module",
        ),
        # plot_accuracy_vs_bits (lesson 10)
        "accuracy_plot_no_counts": (lambda: plot_accuracy_vs_bits({}, 360), TypeError, "non-empty"),
        "accuracy_plot_no_test_images": (
            lambda: plot_accuracy_vs_bits({"a": {8: 1}}, 0),
            ValueError,
            "n_test",
        ),
        "accuracy_plot_more_right_than_images": (
            lambda: plot_accuracy_vs_bits({"a": {8: 361}}, 360),
            ValueError,
            "not in 0..360",
        ),
    },
)


# ------------------------------------------------------------------------------------------
# 12. Weight packing
# ------------------------------------------------------------------------------------------

PACKING = rows(
    # widths that do not divide 8
    {
        f"{name}_bits_{bits}": (call, ValueError, "divides 8")
        for bits in [0, 3, 5, 6, 7, 16, -2]
        for name, call in {
            "pack": lambda bits=bits: pack_weights(u8([1, 0, 1, 0, 1, 0, 1, 0]), bits),
            "unpack": lambda bits=bits: unpack_weights(u8([1]), bits),
        }.items()
    },
    {
        f"pack_bits_{name}": (
            lambda bits=bits: pack_weights(u8([1, 0, 3, 2]), bits),
            TypeError,
            "bits must be a whole number",
        )
        for name, bits in {"float": 2.0, "string": "2", "None": None, "bool": True}.items()
    },
    # values that do not fit in the width
    {
        f"pack_{bad}_in_{bits}_bits": (
            lambda bits=bits, bad=bad: pack_weights(eight_zeros_but(bad), bits),
            ValueError,
            rf"holds {bad}, which does not fit in {bits} bits",
        )
        for bits, bad in [(1, 2), (2, 4), (2, 255), (4, 16)]
    },
    # signed integers point to offset binary; floats and bools are refused
    {
        f"pack_{str(dtype).removeprefix('torch.')}": (
            lambda dtype=dtype: pack_weights(torch.tensor([1, 0, -1, 1], dtype=dtype), 2),
            TypeError,
            "to_offset_binary",
        )
        for dtype in [torch.int8, torch.int16, torch.int32, torch.int64]
    },
    {
        f"pack_{str(dtype).removeprefix('torch.')}": (
            lambda dtype=dtype: pack_weights(torch.tensor([1, 0, 1, 1], dtype=dtype), 2),
            TypeError,
            "uint8",
        )
        for dtype in [torch.float32, torch.float16, torch.bool]
    },
    {
        "pack_float_says_quantize_first": (
            lambda: pack_weights(torch.tensor([0.5, 1.0]), 4),
            TypeError,
            "quantize it first",
        ),
        "pack_a_list": (lambda: pack_weights([1, 0, 3, 2], 2), TypeError, "torch.Tensor"),
        "pack_0d": (
            lambda: pack_weights(torch.tensor(3, dtype=torch.uint8), 2),
            ValueError,
            "0-dim",
        ),
        "unpack_int16": (
            lambda: unpack_weights(torch.tensor([177], dtype=torch.int16), 2),
            TypeError,
            "pack_weights returned",
        ),
        "unpack_a_number": (lambda: unpack_weights(177, 2), TypeError, "torch.Tensor"),
        "unpack_shape_a_number": (
            lambda: unpack_weights(u8([177]), 2, shape=4),
            TypeError,
            "shape must be a tuple",
        ),
        "unpack_shape_of_floats": (
            lambda: unpack_weights(u8([177]), 2, shape=(4.0,)),
            TypeError,
            "shape must be a tuple",
        ),
        # offset binary
        "offset_binary_8_in_4_bits": (
            lambda: to_offset_binary(torch.tensor([8], dtype=torch.int8), 4),
            ValueError,
            r"outside the signed 4-bit range \[-8, 7\]",
        ),
        "offset_binary_minus_3_in_2_bits": (
            lambda: to_offset_binary(torch.tensor([-3, 0], dtype=torch.int8), 2),
            ValueError,
            "holds -3",
        ),
        "offset_binary_float": (
            lambda: to_offset_binary(torch.tensor([0.5]), 4),
            TypeError,
            "needs the integer tensor",
        ),
        "offset_binary_9_bits": (
            lambda: to_offset_binary(torch.tensor([0], dtype=torch.int8), 9),
            ValueError,
            "from 1 to 8",
        ),
        "from_offset_binary_int8": (
            lambda: from_offset_binary(torch.tensor([1], dtype=torch.int8), 4),
            TypeError,
            "uint8",
        ),
        "from_offset_binary_4_in_2_bits": (
            lambda: from_offset_binary(u8([4]), 2),
            ValueError,
            "not a 2-bit offset-binary value",
        ),
        # plot_packed_bits
        "plot_2d": (lambda: plot_packed_bits(u8([[1, 0, 3, 2]]), 2), ValueError, "1-D"),
        "plot_too_many_values": (
            lambda: plot_packed_bits(torch.zeros(64, dtype=torch.uint8), 2),
            ValueError,
            "too many",
        ),
        "plot_value_too_large": (
            lambda: plot_packed_bits(u8([4, 0, 0, 0]), 2),
            ValueError,
            "does not fit",
        ),
    },
    # the packed layer
    {
        f"layer_n_bits_{n_bits}": (
            lambda n_bits=n_bits: PackedLinearLayer(4, 2, n_bits=n_bits),
            ValueError,
            "n_bits must be 2, 4 or 8",
        )
        for n_bits in (1, 3, 16, True)
    },
    {
        "layer_int8_dtype": (
            lambda: PackedLinearLayer(4, 2, dtype=torch.int8),
            TypeError,
            "float dtype",
        ),
        "layer_quantize_a_transposed_weight": (
            lambda: PackedLinearLayer(4, 2).quantize(torch.zeros(4, 2)),
            ValueError,
            "do not fit this layer",
        ),
        # replace_linear_with_target_and_quantize wants a class: the subclasses are the way
        "partial_is_not_a_class": (
            lambda: replace_linear_with_target_and_quantize(
                models.digits_classifier(), functools.partial(PackedLinearLayer, n_bits=2)
            ),
            TypeError,
            "target_class",
        ),
    },
)


# ------------------------------------------------------------------------------------------
# 13. Choosing the range
# ------------------------------------------------------------------------------------------

CHOOSING_THE_RANGE = rows(
    {
        f"percentile_of_{value}": (
            lambda value=value: absmax_percentile(WEIGHT, (1, 12), value),
            ValueError,
            r"percentile must be in \(0, 100\]",
        )
        for value in [0, -1.0, 100.5, math.nan, math.inf]
    },
    {
        f"percentile_{name}": (
            lambda value=value: absmax_percentile(WEIGHT, (1, 12), value),
            TypeError,
            "percentile must be a number",
        )
        for name, value in {"bool": True, "string": "99", "None": None}.items()
    },
    # n_bits out of range or not a whole number, for every function that takes it
    {
        f"{name}_n_bits_{n_bits}": (lambda call=call, n_bits=n_bits: call(n_bits), error, "n_bits")
        for name, call in {
            "search": lambda b: absmax_mse_optimal(WEIGHT, (1, 12), n_bits=b),
            "curve": lambda b: clipping_mse_curve(WEIGHT, (1, 12), [1.0], n_bits=b),
            "quantize": lambda b: quantize_clipped(WEIGHT, (1, 12), 1.0, n_bits=b),
            "midrise": lambda b: fake_quantize_clipped(
                WEIGHT, (1, 12), 1.0, n_bits=b, grid="midrise"
            ),
            "weight": lambda b: fake_quantize(WEIGHT, b, absmax=1.0),
        }.items()
        for n_bits, error in [(1, ValueError), (9, ValueError), (2.5, TypeError), (True, TypeError)]
    },
    # empty, NaN and infinite tensors, and a list instead of a tensor, for every function
    {
        f"{name}_{kind}": (lambda function=function, bad=bad: function(bad), error, phrase)
        for name, function in CLIPPING_FUNCTIONS.items()
        for kind, bad, error, phrase in [
            ("empty", torch.empty(0, 3), ValueError, "empty"),
            ("nan", torch.tensor([[1.0, math.nan], [0.0, 2.0]]), ValueError, "NaN"),
            ("infinite", torch.tensor([[1.0, -math.inf], [0.0, 2.0]]), ValueError, "infinite"),
            ("list", [1.0, 2.0], TypeError, "torch.Tensor"),
        ]
    },
    {
        "unknown_method": (
            lambda: clipping_absmax(WEIGHT, (1, 12), "max"),
            ValueError,
            "unknown method 'max'",
        ),
        "unknown_grid": (
            lambda: fake_quantize_clipped(WEIGHT, (1, 12), 1.0, grid="uniform"),
            ValueError,
            "grid",
        ),
        "absmax_of_the_wrong_shape": (
            lambda: quantize_clipped(WEIGHT, (1, 12), torch.ones(3), n_bits=4),
            ValueError,
            "shape",
        ),
        "negative_absmax": (
            lambda: quantize_clipped(WEIGHT, (1, 12), -1.0, n_bits=4),
            ValueError,
            ">= 0",
        ),
        "nan_absmax": (
            lambda: quantize_clipped(WEIGHT, (1, 12), math.nan, n_bits=4),
            ValueError,
            "finite",
        ),
        "absmax_a_string": (
            lambda: quantize_clipped(WEIGHT, (1, 12), "1", n_bits=4),
            TypeError,
            "absmax",
        ),
        "no_ratios": (
            lambda: clipping_mse_curve(WEIGHT, (1, 12), [], n_bits=4),
            ValueError,
            "ratios",
        ),
        "ratio_0": (
            lambda: clipping_mse_curve(WEIGHT, (1, 12), [0.0], n_bits=4),
            ValueError,
            "positive",
        ),
        "n_grid_0": (
            lambda: absmax_mse_optimal(WEIGHT, (1, 12), n_bits=4, n_grid=0),
            ValueError,
            "n_grid",
        ),
        "negative_n_refine": (
            lambda: absmax_mse_optimal(WEIGHT, (1, 12), n_bits=4, n_refine=-1),
            ValueError,
            "n_ref",
        ),
        "block_not_dividing": (
            lambda: absmax_percentile(WEIGHT, (1, 5)),
            ValueError,
            "does not divide",
        ),
        "aciq_0_bits": (lambda: aciq_clip_gaussian(0), ValueError, "n_bits"),
        # fake_quantize_linears with a range method
        "linears_unknown_layer": (
            lambda: fake_quantize_linears(varied_rows_mlp(), 4, layers=["3"]),
            ValueError,
            "no nn.Linear named '3'",
        ),
        "linears_layers_as_a_string": (
            lambda: fake_quantize_linears(varied_rows_mlp(), 4, layers="0"),
            TypeError,
            "list of names",
        ),
        # the plots
        "curves_no_bit_widths": (
            lambda: plot_clipping_curves(WEIGHT, n_bits=()),
            ValueError,
            "at least one",
        ),
        "curves_1_bit": (lambda: plot_clipping_curves(WEIGHT, n_bits=(1,)), ValueError, "n_bits"),
        "ranges_plot_no_ranges": (
            lambda: plot_clipping_ranges(WEIGHT, {}),
            TypeError,
            "non-empty dict",
        ),
        "ranges_plot_0_bins": (
            lambda: plot_clipping_ranges(WEIGHT, {"a": 1.0}, bins=0),
            ValueError,
            "bins",
        ),
    },
)


# ------------------------------------------------------------------------------------------
# The bad-input sweep's findings (issue 16), one row per finding
# ------------------------------------------------------------------------------------------
# A row here is either (call, exception, phrase), as above, or (call, answer): ``answer``
# takes what ``call()`` returned and says whether it is the right answer. The findings span
# helper.py, support.models, the checkers and damaged files, so the ids start with "16-".


def answer_close(expected, rtol=1e-6):
    """A right-answer test: the result is close to ``expected`` (and finite)."""
    return lambda got: (
        bool(torch.isfinite(torch.as_tensor(got)).all())
        and torch.allclose(
            torch.as_tensor(got, dtype=torch.float64),
            torch.as_tensor(expected, dtype=torch.float64),
            rtol=rtol,
            atol=0,
        )
    )


def warned(call, phrase):
    """``call()``'s warnings: the row's answer checks that one of them contains ``phrase``."""

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [str(w.message) for w in caught]

    return run, lambda messages: any(phrase in message for message in messages)


def kept_whole(model_builder, layers_class=nn.Linear):
    """Call replace_linear_with_target_and_quantize on a model whose second layer has a NaN;
    return the model after the refused call (every layer must still be ``layers_class``)."""

    def run():
        model = model_builder()
        with torch.no_grad():
            model[2].weight[0, 0] = float("nan")
        with pytest.raises(ValueError, match="NaN"):
            replace_linear_with_target_and_quantize(model, W8A16LinearLayer)
        return model

    return run, lambda model: all(type(m) is layers_class for m in (model[0], model[2]))


def attention_layer_works():
    """A transformer layer with W8A16: its attention's out_proj stays nn.Linear (attention reads
    ``out_proj.weight`` directly) and the forward pass runs."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    replace_linear_with_target_and_quantize(layer, W8A16LinearLayer)
    out = layer(torch.randn(3, 1, 8, generator=torch.Generator().manual_seed(1)))
    return layer, out


@functools.cache
def saved_tiny_file() -> Path:
    """A quantized tiny MLP saved with save_quantized, in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="bad-input-"))
    model = tiny_mlp()
    replace_linear_with_target_and_quantize(model, W8A16LinearLayer)
    models.save_quantized(model, folder / "tiny.safetensors")
    return folder / "tiny.safetensors"


def tiny_skeleton() -> nn.Module:
    with torch.device("meta"):
        return replace_linear_with_target(tiny_mlp(), W8A16LinearLayer, [])


def damaged(kind: str) -> Path:
    """A copy of the saved tiny model, damaged in one of the ways the sweep tried."""
    data = saved_tiny_file().read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8 : 8 + length]), data[8 + length :]
    names = sorted(k for k in header if k != "__metadata__")

    def with_header(new_header):
        raw = json.dumps(new_header).encode()
        return struct.pack("<Q", len(raw)) + raw + body

    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "junk_appended":
        data = data + b"junk" * 10
    elif kind == "bad_header_json":
        data = data[:8] + b"{" * length + body
    elif kind == "impossible_shape":
        header[names[0]]["shape"] = [10**6, 10**6]
        data = with_header(header)
    elif kind == "overlapping_offsets":
        header[names[1]]["data_offsets"] = header[names[0]]["data_offsets"]
        data = with_header(header)
    elif kind == "removed_key":
        del header[names[-1]]
        data = with_header(header)
    path = saved_tiny_file().parent / f"{kind}.safetensors"
    path.write_bytes(data)
    return path


def fifo_path() -> Path:
    path = saved_tiny_file().parent / "a-fifo"
    if not path.exists():
        os.mkfifo(path)
    return path


@functools.cache
def minilm():
    return models.load_minilm()


def changed_minilm_file(name):
    """verify_minilm_weights with the expected hash of ``name`` changed (as if the file had
    changed on disk)."""

    def run():
        with mock.patch.dict(models.MINILM_FILES, {name: "0" * 64}):
            models.verify_minilm_weights()

    return run


def explorer(extra_sources=None):
    """A QuantizationExplorer (no widgets), with ``extra_sources`` beside the built-in ones."""
    return QuantizationExplorer(sources={**TENSOR_SOURCES, **(extra_sources or {})})


def endless(tensor, scale, zero_point, dtype=torch.int8):
    while True:
        pass


def checker_stops_an_endless_loop():
    with mock.patch.object(core, "TIME_LIMIT_SECONDS", 0.3):
        return check_quantize(endless)


TINY = torch.randn(1000, generator=torch.Generator().manual_seed(0))
HUGE_F64 = torch.tensor([[1e300, 1.0], [2.0, 3.0]], dtype=torch.float64)
Q2 = torch.tensor([1, 2], dtype=torch.int8)
W22, X12 = torch.ones(2, 2, dtype=torch.int8), torch.ones(1, 2)
DIGITS_X, DIGITS_Y = torch.eye(5), torch.tensor([0, 1, 2, 3, 0])

SWEEP_FINDINGS = rows(
    # 1-3: models' silent answers
    {
        "accuracy_labels_n_by_1": (
            lambda: models.accuracy(nn.Identity(), DIGITS_X, DIGITS_Y[:, None]),
            ValueError,
            r"y must hold one integer label per row of x",
        ),
        "accuracy_right_labels": (
            lambda: models.accuracy(nn.Identity(), DIGITS_X, DIGITS_Y),
            lambda got: got == 0.8,
        ),
        "embed_one_string_is_one_sentence": (
            lambda: models.embed(minilm(), "one sentence"),
            lambda got: tuple(got.shape) == (1, 384),
        ),
        "hub_flag_a_string": (
            lambda: models.load_hub_model(allow_download="False"),
            TypeError,
            "allow_download must be True or False",
        ),
    },
    # 4: replacing is atomic
    {
        "replace_atomic_nan_in_second_layer": kept_whole(
            lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        )
    },
    # 5: ranges
    {
        "qparams_reversed_range": (
            lambda: qparams_from_range(torch.tensor(5.0), torch.tensor(-5.0), -128, 127),
            ValueError,
            "r_min is larger than r_max",
        ),
        "scale_and_zero_point_reversed_range": (
            lambda: scale_and_zero_point_from_range(10, -10, -128, 127),
            ValueError,
            "r_min is larger than r_max",
        ),
        "qparams_q_min_above_q_max": (
            lambda: qparams_from_range(-1.0, 1.0, 127, -128),
            ValueError,
            "q_min must be less than q_max",
        ),
        "qparams_q_min_fraction": (
            lambda: qparams_from_range(-1.0, 1.0, -128.5, 127),
            TypeError,
            "q_min and q_max must be whole numbers",
        ),
        "qparams_q_min_equals_q_max": (
            lambda: qparams_from_range(-1.0, 1.0, 5, 5),
            ValueError,
            "q_min must be less than q_max, got 5 and 5",
        ),
        "choose_qparams_negative_absmax": (
            lambda: choose_qparams_affine(torch.ones(2, 2), (1, 2), r_range=-torch.ones(2, 1)),
            ValueError,
            "absmax r_range must hold finite numbers >= 0.*negative",
        ),
        "symmetric_a_string": (
            lambda: choose_qparams_affine(torch.ones(2, 2), (1, 2), symmetric="no"),
            TypeError,
            "symmetric must be True or False",
        ),
    },
    # 6: w8_a16_forward checks values
    {
        f"w8a16_scale_{label}": (
            lambda value=value: w8_a16_forward(W22, X12, torch.tensor([value, 1.0])),
            ValueError,
            "every scale must be a positive, finite number",
        )
        for label, value in [("nan", math.nan), ("negative", -1.0), ("zero", 0.0)]
    },
    {
        "w8a16_nan_bias": (
            lambda: w8_a16_forward(W22, X12, torch.ones(2), torch.tensor([math.nan, 0.0])),
            ValueError,
            "bias holds NaN",
        ),
    },
    # 7: integer wrap-around
    {
        "dequantize_zero_point_1e20_tensor": (
            lambda: linear_dequantization(Q2, 3.5, torch.tensor(1e20)),
            ValueError,
            r"zero point must be a whole number below 2\*\*53",
        ),
        "dequantize_zero_point_1e20_number": (
            lambda: linear_dequantization(Q2, 3.5, 1e20),
            ValueError,
            r"zero_point 1e\+20 is too large",
        ),
        "w8a8_zero_point_1e20": (
            lambda: quantized_linear_W8A8_without_bias(
                torch.ones(1, 2, dtype=torch.int8), 1.0, torch.tensor(1e20), W22, 1.0, 0
            ),
            ValueError,
            r"zero point must be a whole number below 2\*\*53",
        ),
        "w8a8_int64_sum_would_wrap": (
            lambda: quantized_linear_W8A8_without_bias(
                torch.full((1, 4), 2**40), 1.0, 0, torch.full((2, 4), 2**40), 1.0, 0
            ),
            ValueError,
            r"reaches 2\*\*63",
        ),
        "w8a8_int64_within_the_limit_is_exact": (
            lambda: quantized_linear_W8A8_without_bias(
                torch.full((1, 4), 2**20), 1.0, 0, torch.full((2, 4), 2**20), 1.0, 0
            ),
            answer_close(torch.full((1, 2), 4.0 * 2**40), rtol=0),
        ),
    },
    # 8: overflow on finite inputs: the right answer, or a refusal that gives the limit
    {
        "fake_quantize_float32_max": (
            lambda: fake_quantize(torch.tensor([[3.4e38, -3.4e38]])),
            answer_close(torch.tensor([[3.4e38, -3.4e38]])),
        ),
        "per_channel_float64_1e300": (
            lambda: linear_q_symmetric_per_channel(HUGE_F64, 0),
            ValueError,
            "the scale does not fit in float32",
        ),
        "per_group_float64_1e300": (
            lambda: linear_q_symmetric_per_group(HUGE_F64, 2),
            ValueError,
            "the scale does not fit in float32",
        ),
        "quantization_error_1e20": (
            lambda: quantization_error(torch.tensor([1e20, 0.0]), torch.zeros(2)),
            answer_close(5e39),
        ),
        "quantization_error_1e-25": (
            lambda: quantization_error(torch.tensor([1e-25, 0.0]), torch.zeros(2)),
            answer_close(5e-51, rtol=1e-5),
        ),
        "clipping_curve_1e38": (
            lambda: clipping_mse_curve(torch.tensor([1e38, -1e38, 1.0]), (3,), [1.0]),
            lambda got: bool(torch.isfinite(got).all()),
        ),
    },
    # 9: tiny magnitudes: the answer scales with the tensor, and the floor warns
    {
        "mse_optimal_of_1e-7_times_a_tensor": (
            lambda: absmax_mse_optimal(TINY * 1e-7, (1000,), n_bits=4) / 1e-7,
            answer_close(absmax_mse_optimal(TINY, (1000,), n_bits=4), rtol=1e-4),
        ),
        "floor_warns_at_1e-8": warned(
            lambda: linear_q_symmetric(TINY * 1e-8), "gets the smallest scale, SCALE_EPS"
        ),
    },
    # 10: ACIQ's arguments
    {
        f"aciq_n_bits_{label}": (
            lambda value=value: aciq_clip_gaussian(value),
            ValueError,
            "n_bits must be a whole number from 1 to 64",
        )
        for label, value in [
            ("0", 0),
            ("-3", -3),
            ("2.5", 2.5),
            ("True", True),
            ("nan", math.nan),
            ("tensor", torch.tensor(4)),
        ]
    },
    {
        "aciq_mse_negative_alpha": (
            lambda: aciq_mse_gaussian(-1.0, 4),
            ValueError,
            "alpha must be a finite number",
        ),
        "aciq_clip_negative_sigma": (
            lambda: aciq_clip_gaussian(4, -1.0),
            ValueError,
            "sigma must be a finite number > 0",
        ),
        "aciq_clip_33_bits": (
            lambda: aciq_clip_gaussian(33),
            lambda got: math.isfinite(got) and got > aciq_clip_gaussian(16) > 0,
        ),
    },
    # 11: one-line checks
    {
        "bits_per_weight_negative_shape": (
            lambda: bits_per_weight((-4, 8), (1, 8)),
            ValueError,
            "shape must hold whole numbers >= 0",
        ),
        "bits_per_weight_fractional_shape": (
            lambda: bits_per_weight((4.9, 8), (1, 8)),
            ValueError,
            "shape must hold whole numbers >= 0",
        ),
        "granularity_block_size_fractional_shape": (
            lambda: granularity_block_size((4.7, 6)),
            ValueError,
            "shape must hold whole numbers >= 0",
        ),
        "packed_weight_bytes_negative_scale_bytes": (
            lambda: packed_weight_bytes((4, 4), 4, scale_bytes=-4),
            ValueError,
            "scale_bytes must be a whole number >= 0",
        ),
        "packed_layer_in_features_string": (
            lambda: PackedLinearLayer("6", 3),
            TypeError,
            "in_features must be a whole number >= 1",
        ),
        "packed_layer_bias_string": (
            lambda: PackedLinearLayer(6, 3, bias="no"),
            TypeError,
            "bias must be True or False",
        ),
        "digits_split_negative_test_size": (
            lambda: models.load_digits_split(test_size=-5),
            ValueError,
            "test_size must be a whole number",
        ),
        "train_zero_epochs": (
            lambda: models.train_digits_classifier(epochs=0),
            ValueError,
            "epochs must be a whole number >= 1",
        ),
        "pair_similarities_unnormalized": (
            lambda: models.pair_similarities(torch.full((2, 4), 2.5), ["a", "b"], [("a", "b")]),
            ValueError,
            "not normalized",
        ),
        "accuracy_of_nothing": (
            lambda: models.accuracy(nn.Identity(), DIGITS_X[:0], DIGITS_Y[:0]),
            ValueError,
            "x is empty",
        ),
        "plot_accuracy_nan_count": (
            lambda: plot_accuracy_vs_bits({"a": {4: math.nan}}, 10),
            ValueError,
            "nan is not in 0..10",
        ),
        "plot_accuracy_negative_count": (
            lambda: plot_accuracy_vs_bits({"a": {4: -1}}, 10),
            ValueError,
            "-1 is not in 0..10",
        ),
        "plot_ranges_negative_alpha": (
            lambda: plot_clipping_ranges(WEIGHT, {"a": -1.0}),
            ValueError,
            "pass a finite number >= 0",
        ),
        "plot_ranges_nan_alpha": (
            lambda: plot_clipping_ranges(WEIGHT, {"a": math.nan}),
            ValueError,
            "pass a finite number >= 0",
        ),
    },
    # raw errors: meta tensors, other devices, numpy integers, None
    {
        "meta_tensor_quantized": (
            lambda: linear_quantization(torch.ones(3, device="meta")),
            ValueError,
            "needs real weights",
        ),
        "meta_model_replaced_and_quantized": (
            lambda: replace_linear_with_target_and_quantize(
                nn.Sequential(nn.Linear(2, 2, device="meta")), W8A16LinearLayer
            ),
            ValueError,
            "needs real weights.*replace_linear_with_target",
        ),
        "meta_skeleton_forward_gives_shapes": (
            lambda: tiny_skeleton()(torch.empty(5, 8, device="meta")),
            lambda out: out.is_meta and tuple(out.shape) == (5, 2),
        ),
        "numpy_integers_in_a_block_size": (
            lambda: quantize_blockwise(GROUP_TENSOR, (np.int64(1), np.int64(3)))[0],
            lambda q: torch.equal(q, quantize_blockwise(GROUP_TENSOR, (1, 3))[0]),
        ),
        "none_block_size": (
            lambda: quantize_blockwise(GROUP_TENSOR, None),
            TypeError,
            "block_size must be a tuple",
        ),
        "none_shape": (
            lambda: granularity_block_size(None),
            TypeError,
            "shape must be a tuple",
        ),
        "none_names": (
            lambda: replace_linear_with_target(nn.Linear(2, 2), W8A16LinearLayer, None),
            TypeError,
            "must be a list of names",
        ),
        "none_ratios": (
            lambda: clipping_mse_curve(torch.ones(3), (3,), None),
            TypeError,
            "ratios must be a sequence of numbers",
        ),
        "none_in_features": (
            lambda: W8A16LinearLayer(None, 3),
            TypeError,
            "in_features must be a whole number >= 1",
        ),
        "none_path": (
            lambda: models.save_quantized(nn.Sequential(), None),
            TypeError,
            "path must be a file name",
        ),
        "none_model": (
            lambda: fake_quantize_linears(None),
            TypeError,
            "model must be a torch.nn.Module",
        ),
        "multihead_attention_out_proj_kept": (
            attention_layer_works,
            lambda got: (
                type(got[0].self_attn.out_proj) is not W8A16LinearLayer
                and isinstance(got[0].linear1, W8A16LinearLayer)
                and bool(torch.isfinite(got[1]).all())
            ),
        ),
    },
    # files
    {
        f"file_{kind}": (
            lambda kind=kind: models.load_quantized(tiny_skeleton(), damaged(kind)),
            ValueError,
            f"{kind}.safetensors (is damaged|does not fit)",
        )
        for kind in [
            "truncated",
            "junk_appended",
            "bad_header_json",
            "impossible_shape",
            "overlapping_offsets",
            "removed_key",
        ]
    },
    {
        "file_fifo": (
            lambda: models.load_quantized(tiny_skeleton(), fifo_path()),
            ValueError,
            "is not a file",
        ),
        "file_save_to_none_writes_nothing": (
            lambda: (
                pytest.raises(TypeError, models.save_quantized, nn.Sequential(), None),
                Path("None").exists(),
            )[1],
            lambda exists: exists is False,
        ),
        "file_intact_loads": (
            lambda: models.load_quantized(tiny_skeleton(), saved_tiny_file()),
            lambda model: isinstance(model[0], W8A16LinearLayer) and not model[0].scales.is_meta,
        ),
    },
    # MiniLM: every file is hashed, at every load
    {
        f"minilm_changed_{name.split('/')[-1].split('.')[0]}": (
            changed_minilm_file(name),
            ValueError,
            f"missing or changed: {name}",
        )
        for name in ["1_Pooling/config.json", "tokenizer.json", "modules.json"]
    },
    # the checkers
    {
        "checker_endless_loop_is_stopped": (
            checker_stops_an_endless_loop,
            lambda report: (
                report.status == "failed"
                and "still running after 0.3 s, so the checker stopped it" in repr(report)
            ),
        ),
    },
    # the explorer: compute never raises for bad settings, and says what was wrong
    {
        "explorer_n_bits_none_is_the_full_width": (
            lambda: explorer().compute(n_bits=None),
            lambda numbers: (
                numbers["message"] is None and (numbers["q_min"], numbers["q_max"]) == (-128, 127)
            ),
        ),
        "explorer_source_returning_a_list": (
            lambda: explorer({"a list": lambda seed, size: [1.0, 2.0]}).compute(
                tensor_name="a list"
            ),
            lambda numbers: "a source must return a float torch.Tensor" in numbers["message"],
        ),
        "explorer_source_returning_none": (
            lambda: explorer({"nothing": lambda seed, size: None}).compute(tensor_name="nothing"),
            lambda numbers: "returned None" in numbers["message"],
        ),
        "explorer_seed_2_to_the_64": (
            lambda: explorer().compute(tensor_name="random normal", seed=2**64),
            lambda numbers: "seed must be a whole number from 0 to 2**64 - 1" in numbers["message"],
        ),
        "explorer_estimate_with_zero_theory": (
            lambda: estimate_check(0.1, 0.0, 100, 0.1, 10),
            lambda got: got[0] == "does not apply" and "no estimate" in got[1],
        ),
    },
    # misleading messages
    {
        "complex_dtype_named": (
            lambda: get_q_range(torch.complex64),
            TypeError,
            "complex64 is a complex type",
        ),
        "empty_scale_named": (
            lambda: linear_dequantization(Q2, torch.tensor([]), 0),
            ValueError,
            "scale is an empty tensor",
        ),
    },
)


# ------------------------------------------------------------------------------------------
# 14. Number formats as grids
# ------------------------------------------------------------------------------------------

CODES = torch.tensor([[0, 5, 15]], dtype=torch.uint8)

NUMBER_FORMATS = rows(
    {
        f"format_{name}": (lambda fmt=fmt: float8_grid(fmt), ValueError, "fmt must be one of")
        for name, fmt in {"e4m3": "e4m3", "int8": torch.int8, "none": None, "upper": "E5M2"}.items()
    },
    {
        f"code_{name}": (lambda byte=byte: float8_from_bits(byte, "e5m2"), error, phrase)
        for name, (byte, error, phrase) in {
            "256": (256, ValueError, "from 0 to 255"),
            "negative": (-1, ValueError, r"byte & 0xFF \(255\)"),
            "float": (1.5, TypeError, "whole number from 0 to 255"),
            "bool": (True, TypeError, "whole number from 0 to 255"),
            "string": ("0x7F", TypeError, "whole number from 0 to 255"),
        }.items()
    },
    {
        f"grid_{name}": (
            lambda grid=grid: quantize_to_grid(TEST_TENSOR, grid, (3, 3)),
            error,
            phrase,
        )
        for name, (grid, error, phrase) in {
            "unknown_name": ("fp4", ValueError, "grid must be one of"),
            "list": ([0.0, 1.0], TypeError, "a 1-D tensor of values"),
            "unsorted": (torch.tensor([1.0, 0.0, -1.0]), ValueError, "increasing order"),
            "repeated": (torch.tensor([-1.0, 0.0, 0.0, 1.0]), ValueError, "each once"),
            "nan": (torch.tensor([-1.0, math.nan]), ValueError, "finite values"),
            "zeros": (torch.tensor([0.0, 0.0]), ValueError, "increasing order"),
            "int": (torch.tensor([-1, 0, 1]), ValueError, "1-D float tensor"),
            "2d": (torch.zeros(2, 2), ValueError, "1-D float tensor"),
            "too_many": (torch.linspace(-1, 1, 257), ValueError, "2 to 256 values"),
        }.items()
    },
    {
        "quantize_nan": (
            lambda: quantize_to_grid(torch.tensor([1.0, math.nan]), "nf4", (2,)),
            ValueError,
            "NaN",
        ),
        "quantize_scale_beyond_float32": (
            lambda: quantize_to_grid(torch.tensor([1e300, 1.0], dtype=torch.float64), "nf4", (2,)),
            ValueError,
            "does not fit in float32",
        ),
        "quantize_bad_block": (
            lambda: quantize_to_grid(TEST_TENSOR, "nf4", (2, 3)),
            ValueError,
            "block",
        ),
        "dequantize_values_not_codes": (
            lambda: dequantize_from_grid(torch.tensor([[0.5, 1.0, 2.0]]), 1.0, "nf4", (1, 3)),
            TypeError,
            "pass the uint8 indices",
        ),
        "dequantize_code_outside_grid": (
            lambda: dequantize_from_grid(torch.tensor([[0, 5, 16]]), 1.0, "nf4", (1, 3)),
            ValueError,
            "0 to 15",
        ),
        "dequantize_scale_shape": (
            lambda: dequantize_from_grid(CODES, torch.ones(2), "nf4", (1, 3)),
            ValueError,
            r"shape \(1, 1\)",
        ),
        "dequantize_scale_zero": (
            lambda: dequantize_from_grid(CODES, 0.0, "nf4", (1, 3)),
            ValueError,
            "positive, finite",
        ),
        "dequantize_scale_string": (
            lambda: dequantize_from_grid(CODES, "1", "nf4", (1, 3)),
            TypeError,
            "scale must be a number or a tensor",
        ),
        # odd but valid: a float64 grid, int codes, a one-element scale
        "dequantize_int64_codes": (
            lambda: dequantize_from_grid(CODES.long(), torch.tensor(2.0), "nf4", (1, 3)),
            lambda out: out.tolist() == [[-2.0, -0.3695468008518219, 2.0]],
        ),
    },
)


# ------------------------------------------------------------------------------------------
# 15. Quantization-aware training
# ------------------------------------------------------------------------------------------

R = torch.tensor([0.5, -1.0, 2.0])

QAT = rows(
    {
        f"ste_{name}": (call, error, phrase)
        for name, (call, error, phrase) in {
            "list": (lambda: fake_quantize_ste([0.5], 0.1, 0, -8, 7), TypeError, "torch.Tensor"),
            "nan": (
                lambda: fake_quantize_ste(torch.tensor([math.nan]), 0.1, 0, -8, 7),
                ValueError,
                "NaN",
            ),
            "scale_zero": (
                lambda: fake_quantize_ste(R, 0.0, 0, -8, 7),
                ValueError,
                "scale must be positive",
            ),
            "scale_negative": (
                lambda: fake_quantize_ste(R, torch.tensor([-0.1]), 0, -8, 7),
                ValueError,
                "scale must be positive",
            ),
            "scale_nan": (
                lambda: fake_quantize_ste(R, math.nan, 0, -8, 7),
                ValueError,
                "scale must be finite",
            ),
            "scale_shape": (
                lambda: fake_quantize_ste(R, torch.ones(2), 0, -8, 7),
                ValueError,
                "does not broadcast",
            ),
            "scale_string": (
                lambda: fake_quantize_ste(R, "0.1", 0, -8, 7),
                TypeError,
                "scale must be a number",
            ),
            "zero_point_fraction": (
                lambda: fake_quantize_ste(R, 0.1, 0.5, -8, 7),
                ValueError,
                "whole number from q_min",
            ),
            "zero_point_outside": (
                lambda: fake_quantize_ste(R, 0.1, 9, -8, 7),
                ValueError,
                "whole number from q_min",
            ),
            "levels_swapped": (
                lambda: fake_quantize_ste(R, 0.1, 0, 7, -8),
                ValueError,
                "q_min must be below q_max",
            ),
            "level_float": (
                lambda: fake_quantize_ste(R, 0.1, 0, -8, 7.5),
                TypeError,
                "q_max must be a whole number",
            ),
        }.items()
    },
    {
        f"blockwise_{name}": (call, error, phrase)
        for name, (call, error, phrase) in {
            "bits_1": (
                lambda: fake_quantize_ste_blockwise(TEST_TENSOR, (1, 3), 1),
                ValueError,
                "from 2 to 8",
            ),
            "bits_9": (
                lambda: fake_quantize_ste_blockwise(TEST_TENSOR, (1, 3), 9),
                ValueError,
                "from 2 to 8",
            ),
            "scale_shape": (
                lambda: fake_quantize_ste_blockwise(TEST_TENSOR, (1, 3), 4, torch.ones(2)),
                ValueError,
                r"shape \(3, 1\)",
            ),
            "scale_list": (
                lambda: fake_quantize_ste_blockwise(TEST_TENSOR, (1, 3), 4, [1.0, 1.0, 1.0]),
                TypeError,
                "float tensor with one scale per block",
            ),
            "scale_zero": (
                lambda: fake_quantize_ste_blockwise(TEST_TENSOR, (1, 3), 4, torch.zeros(3, 1)),
                ValueError,
                "smaller learning rate",
            ),
        }.items()
    },
    {
        # odd but valid: a float16 tensor keeps its gradient, computed in float32
        "ste_float16_trains": (
            lambda: _ste_grad(torch.tensor([0.26, 9.0], dtype=torch.float16)),
            lambda grad: grad.tolist() == [1.0, 0.0] and grad.dtype == torch.float16,
        ),
        "layer_scales_wrong_shape": (
            lambda: W8A16LinearLayer(3, 2).quantize(torch.ones(2, 3), torch.ones(2, 1)),
            ValueError,
            "use scales.reshape",
        ),
        "layer_scales_zero": (
            lambda: PackedLinearLayer(4, 2, n_bits=2).quantize(torch.ones(2, 4), torch.zeros(2)),
            ValueError,
            "positive, finite",
        ),
    },
)


def _ste_grad(leaf: torch.Tensor) -> torch.Tensor:
    """The gradient ``fake_quantize_ste`` gives a float16 leaf (scale 0.5, levels -8..7)."""
    leaf = leaf.clone().requires_grad_()
    fake_quantize_ste(leaf, 0.5, 0, -8, 7).sum().backward()
    return leaf.grad


# ------------------------------------------------------------------------------------------
# The table and its test
# ------------------------------------------------------------------------------------------

SECTIONS = {
    1: RANGES,
    3: SCALE_AND_ZERO_POINT,
    4: QUANTIZE,
    5: DEQUANTIZE,
    6: ERROR,
    7: PLOTS,
    8: SYMMETRIC,
    9: GRANULARITY,
    10: WEIGHTS_AND_ACTIVATIONS,
    11: LAYERS,
    12: PACKING,
    13: CHOOSING_THE_RANGE,
    14: NUMBER_FORMATS,
    15: QAT,
}

#: ``"NN-name"`` -> (call, exception type, phrase of the message), section by section.
BAD_INPUT = {
    f"{number:02d}-{name}": row for number, rows in SECTIONS.items() for name, row in rows.items()
} | {f"16-{name}": row for name, row in SWEEP_FINDINGS.items()}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_raises_a_clear_error(case):
    """Bad input raises the documented exception type, with a message that says what is wrong;
    odd but valid input (a two-item row) gets the right answer."""
    if len(BAD_INPUT[case]) == 2:
        call, is_right = BAD_INPUT[case]
        assert is_right(call())
        return
    call, exception, phrase = BAD_INPUT[case]
    with pytest.raises(exception, match=phrase):
        call()
