"""Tests for lesson 05 (granularity): its three checkers, one per function the course has its
learners write, ``check_linear_q_symmetric_per_channel``, ``check_linear_q_symmetric_per_group``
and ``check_linear_dequantization_per_group``.

The checkers run on learner-style functions written here, independently of the checkers' own
Mistake functions: differently written correct solutions (the course's loop over
``select``, one ``amax``, float64, ``.max(...).values``, the helper itself), one function per
classic mistake, which the report must name with its hint, and wrong answers no known mistake
explains, whose report must show the first failing case and the recipe and no hint at all.
The helper.py functions the lesson uses are tested in tests/helper/test_09_granularity.py;
the numbers the lesson states about real weights in tests/test_lesson_05_facts.py.
"""

from __future__ import annotations

import pytest
import torch
from conftest import (
    assert_changed_in_place,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
)

import helper
from support.examples import TEST_TENSOR_VALUES
from support.exercises import (
    DEQUANTIZE_PER_GROUP_MISTAKES,
    PER_CHANNEL_MISTAKES,
    PER_GROUP_MISTAKES,
    check_linear_dequantization_per_group,
    check_linear_q_symmetric_per_channel,
    check_linear_q_symmetric_per_group,
)
from support.exercises.lesson05 import (
    DEQUANTIZE_PER_GROUP_RECIPE,
    PER_CHANNEL_RECIPE,
    PER_GROUP_RECIPE,
)

EPS = torch.finfo(torch.float32).eps


# ==========================================================================================
# Per channel: my_linear_q_symmetric_per_channel(r_tensor, dim, dtype=torch.int8)
# ==========================================================================================

# ------------------------------------------------------------------------------------------
# Correct, written in different ways
# ------------------------------------------------------------------------------------------


def channel_lesson_solution(r_tensor, dim, dtype=torch.int8):
    """The lesson's solution: one amax over the other dimension, keepdim=True."""
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    scale = r_tensor.abs().amax(dim=1 - dim, keepdim=True) / q_max
    scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = torch.round(r_tensor / scale).clamp(q_min, q_max).to(dtype)
    return q, scale


def channel_course_loop(r_tensor, dim, dtype=torch.int8):
    """The course's way: a loop over the channels with select, then a view of the scales."""
    q_max = torch.iinfo(dtype).max
    output_dim = r_tensor.shape[dim]
    scale = torch.zeros(output_dim)
    for index in range(output_dim):
        sub_tensor = r_tensor.select(dim, index)
        scale[index] = max(sub_tensor.abs().max().item() / q_max, 1e-7)
    scale_shape = [1] * r_tensor.dim()
    scale_shape[dim] = -1
    scale = scale.view(scale_shape)
    q = helper.linear_q_with_scale_and_zero_point(r_tensor, scale, 0, dtype)
    return q, scale


def channel_float64_max_values(r_tensor, dim, dtype=torch.int8):
    """float64, .max(...).values with unsqueeze, torch.maximum for the floor."""
    info = torch.iinfo(dtype)
    r = r_tensor.double()
    largest = r.abs().max(dim=1 - dim).values.unsqueeze(1 - dim)
    scale = torch.maximum(largest / info.max, torch.tensor(1e-9, dtype=torch.float64))
    return (r / scale).round().clamp(info.min, info.max).to(dtype), scale


def channel_if_else(r_tensor, dim, dtype=torch.int8):
    """One branch per dim, a where() for the all-zero rows, no clamp (never needed)."""
    q_max = torch.iinfo(dtype).max
    if dim == 0:
        largest = r_tensor.abs().max(dim=1, keepdim=True)[0]
    else:
        largest = r_tensor.abs().max(dim=0, keepdim=True)[0]
    scale = torch.where(largest > 0, largest / q_max, torch.ones_like(largest))
    return (r_tensor / scale).round().to(dtype), scale


CHANNEL_CORRECT = [
    channel_lesson_solution,
    channel_course_loop,
    channel_float64_max_values,
    channel_if_else,
    helper.linear_q_symmetric_per_channel,
]

# ------------------------------------------------------------------------------------------
# Classic mistakes, each with the words the report must name
# ------------------------------------------------------------------------------------------


def channel_along_dim_itself(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().amax(dim=dim, keepdim=True) / info.max).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_no_keepdim(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().amax(dim=1 - dim) / info.max).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_no_keepdim_no_clamp(r_tensor, dim, dtype=torch.int8):
    scale = torch.clamp(r_tensor.abs().amax(dim=1 - dim) / torch.iinfo(dtype).max, min=EPS)
    return (r_tensor / scale).round().to(dtype), scale


def channel_reshapes_only_the_returned_scale(r_tensor, dim, dtype=torch.int8):
    """The keepdim workaround applied too late: the division used the (n,) scale."""
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().amax(dim=1 - dim) / info.max).clamp(min=EPS)
    q = torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype)
    if dim == 0:
        return q, scale.view(-1, 1)
    return q, scale.view(1, -1)


def channel_max_pair(r_tensor, dim, dtype=torch.int8):
    """.max(dim=...) returns (values, indices): the division raises a TypeError."""
    largest = r_tensor.abs().max(dim=1 - dim, keepdim=True)
    scale = largest / torch.iinfo(dtype).max
    return torch.round(r_tensor / scale).to(dtype), scale


def channel_max_pair_inline(r_tensor, dim, dtype=torch.int8):
    """The same pair used as the divisor of the tensor itself."""
    q = torch.round(127 * r_tensor / torch.max(r_tensor.abs(), dim=1 - dim, keepdim=True))
    return q.to(dtype), None


def channel_by_127_5(r_tensor, dim, dtype=torch.int8):
    """PyTorch's divisor from lesson 04."""
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().amax(dim=1 - dim, keepdim=True) / 127.5).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_by_128_no_clamp(r_tensor, dim, dtype=torch.int8):
    scale = (r_tensor.abs().amax(dim=1 - dim, keepdim=True) / 128).clamp(min=EPS)
    return torch.round(r_tensor / scale).to(dtype), scale


def channel_by_127_5_int8_clamp(r_tensor, dim, dtype=torch.int8):
    scale = torch.clamp(r_tensor.abs().amax(dim=1 - dim, keepdim=True) / 127.5, min=EPS)
    return torch.round(r_tensor / scale).clamp(-128, 127).to(dtype), scale


def channel_ignores_dtype(r_tensor, dim, dtype=torch.int8):
    scale = (r_tensor.abs().amax(dim=1 - dim, keepdim=True) / 127).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(-128, 127).to(torch.int8), scale


def channel_no_floor(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = r_tensor.abs().amax(dim=1 - dim, keepdim=True) / info.max
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_max_not_absmax(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = (r_tensor.amax(dim=1 - dim, keepdim=True) / info.max).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_per_tensor(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().max() / info.max).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_truncates(r_tensor, dim, dtype=torch.int8):
    scale = (r_tensor.abs().amax(dim=1 - dim, keepdim=True) / torch.iinfo(dtype).max).clamp(min=EPS)
    return (r_tensor / scale).to(dtype), scale


def channel_no_cast(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().amax(dim=1 - dim, keepdim=True) / info.max).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max), scale


CHANNEL_MISTAKEN = [
    (channel_along_dim_itself, "along `dim` itself"),
    (channel_no_keepdim, "leaves out keepdim"),
    (channel_no_keepdim_no_clamp, "leaves out keepdim"),
    (channel_reshapes_only_the_returned_scale, "reshapes only the scale it returns"),
    (channel_max_pair, "a (values, indices) pair"),
    (channel_max_pair_inline, "a (values, indices) pair"),
    (channel_by_127_5, "127.5"),
    (channel_by_128_no_clamp, "divides by 128"),
    (channel_by_127_5_int8_clamp, "127.5"),
    (channel_ignores_dtype, "ignores `dtype`"),
    (channel_no_floor, "no floor"),
    (channel_max_not_absmax, "largest value instead of the largest magnitude"),
    (channel_per_tensor, "one scale for the whole tensor"),
    (channel_truncates, "cuts off the fraction"),
    (channel_no_cast, "never casts"),
]

# ------------------------------------------------------------------------------------------
# Wrong answers no known mistake explains
# ------------------------------------------------------------------------------------------


def channel_scale_from_the_mean(r_tensor, dim, dtype=torch.int8):
    info = torch.iinfo(dtype)
    scale = (r_tensor.abs().mean(dim=1 - dim, keepdim=True) / info.max).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_asymmetric_range(r_tensor, dim, dtype=torch.int8):
    """(max - min) / 255 per channel, with zero point 0."""
    info = torch.iinfo(dtype)
    spread = r_tensor.amax(dim=1 - dim, keepdim=True) - r_tensor.amin(dim=1 - dim, keepdim=True)
    scale = (spread / (info.max - info.min)).clamp(min=EPS)
    return torch.round(r_tensor / scale).clamp(info.min, info.max).to(dtype), scale


def channel_returns_inverse_scale(r_tensor, dim, dtype=torch.int8):
    q, scale = channel_lesson_solution(r_tensor, dim, dtype)
    return q, 1 / scale


CHANNEL_UNRECOGNISED = [
    channel_scale_from_the_mean,
    channel_asymmetric_range,
    channel_returns_inverse_scale,
]


def test_per_channel_a_changed_input_fails_naming_it():
    def divides_in_place(r_tensor, dim, dtype=torch.int8):
        q, scale = channel_lesson_solution(r_tensor.clone(), dim, dtype)
        r_tensor.div_(scale)
        return q, scale

    assert_changed_in_place(check_linear_q_symmetric_per_channel(divides_in_place), "r_tensor")


def test_per_channel_missing_keepdim_is_caught_by_the_square_tensor_and_the_shape():
    """On the square test tensor, dim=0 without keepdim runs and gives wrong integers (the
    report says where); on the 2x4 weight it raises; for dim=1 the integers are right and
    only the scale's shape differs from the course's (1, columns)."""
    results = check_linear_q_symmetric_per_channel(channel_no_keepdim).results
    assert "shape (3,), expected (3, 1)" in results[0][1]
    assert "shape (3,), expected (1, 3)" in results[1][1]
    assert results[2][1].startswith("raised RuntimeError")
    late = check_linear_q_symmetric_per_channel(channel_reshapes_only_the_returned_scale).results
    assert late[0][1].startswith("quantized element") and late[1][1] is None


def test_per_channel_dim_1_of_the_test_tensor_gives_the_course_column_scales():
    """The convention in numbers: dim=1 gives (1, 3) scales, column 0's from 191.6."""
    _, scale = channel_lesson_solution(torch.tensor(TEST_TENSOR_VALUES), 1)
    assert scale.shape == (1, 3)
    assert torch.allclose(scale, torch.tensor([[191.6, 684.6, 728.6]]) / 127)


# ==========================================================================================
# Per group: my_linear_q_symmetric_per_group(tensor, group_size, dtype=torch.int8)
# ==========================================================================================


def group_course_way(tensor, group_size, dtype=torch.int8):
    """The course's way: view(-1, group_size), per channel along dim 0, view back."""
    t_shape = tensor.shape
    assert t_shape[1] % group_size == 0
    grouped = tensor.view(-1, group_size)
    quantized_tensor, scale = helper.linear_q_symmetric_per_channel(grouped, dim=0, dtype=dtype)
    return quantized_tensor.view(t_shape), scale


def group_by_hand(tensor, group_size, dtype=torch.int8):
    """One amax over each row of the grouped view, written out."""
    info = torch.iinfo(dtype)
    rows = tensor.reshape(-1, group_size)
    scale = (rows.abs().amax(dim=1, keepdim=True) / info.max).clamp(min=EPS)
    q = torch.round(rows / scale).clamp(info.min, info.max).to(dtype)
    return q.reshape(tensor.shape), scale


def group_three_d_view(tensor, group_size, dtype=torch.int8):
    """helper.py's way (section 5): a (rows, groups, size) view, scales reshaped at the end."""
    info = torch.iinfo(dtype)
    view = tensor.reshape(tensor.shape[0], -1, group_size).double()
    scale = torch.clamp(view.abs().amax(dim=-1, keepdim=True) / info.max, min=1e-10)
    q = (view / scale).round().clamp(info.min, info.max).to(dtype)
    return q.reshape(tensor.shape), scale.reshape(-1, 1)


GROUP_CORRECT = [
    group_course_way,
    group_by_hand,
    group_three_d_view,
    helper.linear_q_symmetric_per_group,
]


def _per_row_of(view, dtype, divisor=None, floor=True, clamp=True):
    """Quantize each row of ``view`` (written for the mistakes below)."""
    info = torch.iinfo(dtype)
    scale = view.abs().amax(dim=1, keepdim=True) / (info.max if divisor is None else divisor)
    if floor:
        scale = scale.clamp(min=EPS)
    q = torch.round(view / scale)
    if clamp:
        q = q.clamp(info.min, info.max)
    return q.to(dtype), scale


def group_down_the_columns(tensor, group_size, dtype=torch.int8):
    q, scale = _per_row_of(tensor.t().reshape(-1, group_size), dtype)
    return q.reshape(tensor.shape[1], tensor.shape[0]).t(), scale


def group_reshape_size_first(tensor, group_size, dtype=torch.int8):
    q, scale = _per_row_of(tensor.reshape(group_size, -1), dtype)
    return q.reshape(tensor.shape), scale


def group_per_column_of_the_view(tensor, group_size, dtype=torch.int8):
    q, scale = helper.linear_q_symmetric_per_channel(tensor.view(-1, group_size), 1, dtype)
    return q.view(tensor.shape), scale


def group_scales_in_blocks(tensor, group_size, dtype=torch.int8):
    q, scale = group_by_hand(tensor, group_size, dtype)
    return q, scale.reshape(tensor.shape[0], -1, 1)


def group_scales_as_a_grid(tensor, group_size, dtype=torch.int8):
    info = torch.iinfo(dtype)
    view = tensor.reshape(tensor.shape[0], -1, group_size)
    scale = (view.abs().amax(dim=-1) / info.max).clamp(min=EPS)
    q = torch.round(view / scale.unsqueeze(-1)).clamp(info.min, info.max).to(dtype)
    return q.reshape(tensor.shape), scale


def group_scales_flat(tensor, group_size, dtype=torch.int8):
    q, scale = group_by_hand(tensor, group_size, dtype)
    return q, scale.flatten()


def group_never_views_back(tensor, group_size, dtype=torch.int8):
    return helper.linear_q_symmetric_per_channel(tensor.view(-1, group_size), dim=0, dtype=dtype)


def group_no_keepdim(tensor, group_size, dtype=torch.int8):
    info = torch.iinfo(dtype)
    rows = tensor.view(-1, group_size)
    scale = (rows.abs().amax(dim=1) / info.max).clamp(min=EPS)
    q = torch.round(rows / scale).clamp(info.min, info.max).to(dtype)
    return q.view(tensor.shape), scale


def group_reshapes_only_the_returned_scale(tensor, group_size, dtype=torch.int8):
    info = torch.iinfo(dtype)
    rows = tensor.view(-1, group_size)
    scale = (rows.abs().amax(dim=1) / info.max).clamp(min=EPS)
    q = torch.round(rows / scale).clamp(info.min, info.max).to(dtype)
    return q.view(tensor.shape), scale.unsqueeze(1)


def group_max_pair(tensor, group_size, dtype=torch.int8):
    rows = tensor.view(-1, group_size)
    scale = rows.abs().max(dim=1, keepdim=True) / 127
    return torch.round(rows / scale).to(dtype).view(tensor.shape), scale


def group_max_not_absmax(tensor, group_size, dtype=torch.int8):
    rows = tensor.view(-1, group_size)
    info = torch.iinfo(dtype)
    scale = (rows.amax(dim=1, keepdim=True) / info.max).clamp(min=EPS)
    return torch.round(rows / scale).clamp(info.min, info.max).to(dtype).view(tensor.shape), scale


def group_by_128(tensor, group_size, dtype=torch.int8):
    q, scale = _per_row_of(tensor.view(-1, group_size), dtype, divisor=torch.iinfo(dtype).max + 1)
    return q.view(tensor.shape), scale


def group_by_127_5(tensor, group_size, dtype=torch.int8):
    q, scale = _per_row_of(tensor.view(-1, group_size), dtype, divisor=127.5)
    return q.view(tensor.shape), scale


def group_ignores_dtype(tensor, group_size, dtype=torch.int8):
    q, scale = _per_row_of(tensor.view(-1, group_size), torch.int8)
    return q.view(tensor.shape), scale


def group_no_floor(tensor, group_size, dtype=torch.int8):
    q, scale = _per_row_of(tensor.view(-1, group_size), dtype, floor=False)
    return q.view(tensor.shape), scale


GROUP_MISTAKEN = [
    (group_down_the_columns, "down the columns"),
    (group_reshape_size_first, "(group_size, -1)"),
    (group_per_column_of_the_view, "per column (dim=1)"),
    (group_scales_in_blocks, "(rows, groups per row, 1)"),
    (group_scales_as_a_grid, "(rows, groups per row)"),
    (group_scales_flat, "(number of groups,)"),
    (group_never_views_back, "never views it back"),
    (group_no_keepdim, "leaves out keepdim"),
    (group_reshapes_only_the_returned_scale, "reshapes only the scale it returns"),
    (group_max_pair, "a (values, indices) pair"),
    (group_max_not_absmax, "largest value instead of the largest magnitude"),
    (group_by_128, "divides by 128"),
    (group_by_127_5, "127.5"),
    (group_ignores_dtype, "ignores `dtype`"),
    (group_no_floor, "no floor"),
]


def group_whole_rows(tensor, group_size, dtype=torch.int8):
    """Ignores group_size: one scale per row of the tensor."""
    return helper.linear_q_symmetric_per_channel(tensor, dim=0, dtype=dtype)


def group_mean_scale(tensor, group_size, dtype=torch.int8):
    info = torch.iinfo(dtype)
    rows = tensor.view(-1, group_size)
    scale = (rows.abs().mean(dim=1, keepdim=True) / info.max).clamp(min=EPS)
    q = torch.round(rows / scale).clamp(info.min, info.max).to(dtype)
    return q.view(tensor.shape), scale


def group_scale_times_two(tensor, group_size, dtype=torch.int8):
    q, scale = group_by_hand(tensor, group_size, dtype)
    return q, 2 * scale


GROUP_UNRECOGNISED = [group_whole_rows, group_mean_scale, group_scale_times_two]


def test_per_group_a_changed_input_fails_naming_it():
    def scales_in_place(tensor, group_size, dtype=torch.int8):
        q, scale = group_by_hand(tensor.clone(), group_size, dtype)
        tensor.view(-1, group_size).div_(scale)
        return q, scale

    assert_changed_in_place(check_linear_q_symmetric_per_group(scales_in_place), "tensor")


def test_per_group_scale_of_the_wrong_shape_is_reported_with_both_shapes():
    problem = check_linear_q_symmetric_per_group(group_scales_in_blocks).results[0][1]
    assert "shape (6, 2, 1), expected (12, 1)" in problem


# ==========================================================================================
# Dequantize per group: my_linear_dequantization_per_group(quantized_tensor, scale, group_size)
# ==========================================================================================


def dequantize_course_way(quantized_tensor, scale, group_size):
    q_shape = quantized_tensor.shape
    rows = quantized_tensor.view(-1, group_size)
    return helper.linear_dequantization(rows, scale, 0).view(q_shape)


def dequantize_by_hand(quantized_tensor, scale, group_size):
    rows = quantized_tensor.reshape(-1, group_size).to(torch.float32)
    return (rows * scale).reshape(quantized_tensor.shape)


def dequantize_repeat_interleave(quantized_tensor, scale, group_size):
    """Each scale repeated over its group, laid out like the tensor."""
    per_element = scale.repeat_interleave(group_size, dim=1).reshape(quantized_tensor.shape)
    return quantized_tensor.double() * per_element.double()


DEQUANTIZE_CORRECT = [
    dequantize_course_way,
    dequantize_by_hand,
    dequantize_repeat_interleave,
    helper.linear_dequantization_per_group,
]


def dequantize_no_groups(quantized_tensor, scale, group_size):
    return scale * quantized_tensor.float()


def dequantize_helper_no_groups(quantized_tensor, scale, group_size):
    return helper.linear_dequantization(quantized_tensor, scale, 0)


def dequantize_down_the_columns(quantized_tensor, scale, group_size):
    rows = quantized_tensor.t().reshape(-1, group_size).float() * scale
    return rows.reshape(quantized_tensor.shape[1], -1).t()


def dequantize_reshape_size_first(quantized_tensor, scale, group_size):
    return (quantized_tensor.view(group_size, -1).float() * scale).view(quantized_tensor.shape)


def dequantize_flat_scale(quantized_tensor, scale, group_size):
    rows = quantized_tensor.view(-1, group_size).float()
    return (rows * scale.flatten()).view(quantized_tensor.shape)


def dequantize_never_views_back(quantized_tensor, scale, group_size):
    return helper.linear_dequantization(quantized_tensor.view(-1, group_size), scale, 0)


def dequantize_divides(quantized_tensor, scale, group_size):
    return (quantized_tensor.view(-1, group_size) / scale).view(quantized_tensor.shape)


DEQUANTIZE_MISTAKEN = [
    (dequantize_no_groups, "multiplies the whole tensor"),
    (dequantize_helper_no_groups, "calls linear_dequantization on the whole tensor"),
    (dequantize_down_the_columns, "down the columns"),
    (dequantize_reshape_size_first, "(group_size, -1)"),
    (dequantize_flat_scale, "flattens the scale"),
    (dequantize_never_views_back, "never views it back"),
    (dequantize_divides, "divides by the scale"),
]


def dequantize_in_int8(quantized_tensor, scale, group_size):
    """Rounds the products back to integers."""
    rows = quantized_tensor.view(-1, group_size) * scale
    return rows.round().view(quantized_tensor.shape)


def dequantize_adds_the_scale(quantized_tensor, scale, group_size):
    return (quantized_tensor.view(-1, group_size) + scale).view(quantized_tensor.shape)


def dequantize_first_scale_for_all(quantized_tensor, scale, group_size):
    return scale[0] * quantized_tensor.float()


DEQUANTIZE_UNRECOGNISED = [
    dequantize_in_int8,
    dequantize_adds_the_scale,
    dequantize_first_scale_for_all,
]


def test_dequantize_per_group_a_changed_input_fails_naming_it():
    def scales_in_place(quantized_tensor, scale, group_size):
        result = dequantize_by_hand(quantized_tensor, scale, group_size)
        scale.mul_(2)
        return result

    assert_changed_in_place(check_linear_dequantization_per_group(scales_in_place), "scale")


# ==========================================================================================
# What every one of the three checkers must do
# ==========================================================================================

#: name -> (checker, its cases, correct answers, (mistake, words), unrecognised, recipe,
#: the checker's own mistakes)
EXERCISES = {
    "per channel": (
        check_linear_q_symmetric_per_channel,
        6,
        CHANNEL_CORRECT,
        CHANNEL_MISTAKEN,
        CHANNEL_UNRECOGNISED,
        PER_CHANNEL_RECIPE,
        PER_CHANNEL_MISTAKES,
    ),
    "per group": (
        check_linear_q_symmetric_per_group,
        5,
        GROUP_CORRECT,
        GROUP_MISTAKEN,
        GROUP_UNRECOGNISED,
        PER_GROUP_RECIPE,
        PER_GROUP_MISTAKES,
    ),
    "dequantize per group": (
        check_linear_dequantization_per_group,
        5,
        DEQUANTIZE_CORRECT,
        DEQUANTIZE_MISTAKEN,
        DEQUANTIZE_UNRECOGNISED,
        DEQUANTIZE_PER_GROUP_RECIPE,
        DEQUANTIZE_PER_GROUP_MISTAKES,
    ),
}


def _each(position: int) -> list:
    """``(exercise, item)`` for every item of column ``position`` of ``EXERCISES``."""
    return [(name, item) for name, row in EXERCISES.items() for item in row[position]]


def _ids(value) -> str:
    """Test ids: the exercise's name or the learner function's."""
    if isinstance(value, tuple):
        value = value[0]
    return value if isinstance(value, str) else getattr(value, "__name__", "")


@pytest.mark.parametrize(("exercise", "function"), _each(2), ids=_ids)
def test_correct_solutions_pass(exercise, function):
    """Differently written right answers pass every case."""
    check, cases = EXERCISES[exercise][:2]
    assert_passed(check(function), cases=cases)


@pytest.mark.parametrize(("exercise", "mistaken"), _each(3), ids=_ids)
def test_classic_mistakes_are_named_with_their_hint(exercise, mistaken):
    function, words = mistaken
    assert_names_mistake(EXERCISES[exercise][0](function), words)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_mistake_of_the_checker_is_exercised(exercise):
    """The learner-style functions above cover every Mistake of each checker."""
    check, _, _, mistaken, _, _, mistakes = EXERCISES[exercise]
    named = {check(function).mistake.description for function, _ in mistaken}
    assert named == {mistake.description for mistake in mistakes}


@pytest.mark.parametrize(("exercise", "function"), _each(4), ids=_ids)
def test_unrecognised_mistakes_get_the_first_failing_case_and_the_recipe(exercise, function):
    check, _, _, _, _, recipe, mistakes = EXERCISES[exercise]
    assert_neutral_report(check(function), recipe, mistakes)
