"""Tests for lesson 10 (accuracy you can see): its checker, check_fake_quantize_per_group.

The checker is run on learner-style functions written here, independently of the checker's
own Mistake functions: the stub, correct variants, each classic mistake, and functions that
raise or forget to return. The helper.py functions the lesson adds (fake_quantize,
fake_quantize_linears, linears_bits_per_weight, plot_accuracy_vs_bits) and the numbers the
notebook prints are tested in tests/helper/test_11_layers.py; predict and plot_digits in
tests/test_models.py.
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
from support.exercises import FAKE_GROUPS_MISTAKES, check_fake_quantize_per_group

EPS = torch.finfo(torch.float32).eps

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def fq_correct(weight, n_bits, group_size):
    """The lesson's solution."""
    q_max = 2 ** (n_bits - 1) - 1
    groups = weight.reshape(-1, group_size)
    scale = groups.abs().amax(dim=-1, keepdim=True) / q_max
    scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = torch.round(groups / scale).clamp(-(2 ** (n_bits - 1)), q_max)
    return (q * scale).reshape(weight.shape)


def fq_correct_float64_view(weight, n_bits, group_size):
    """In float64, through a (rows, groups, group_size) view, max(...).values and no clamp
    (|w / s| never passes q_max)."""
    rows, columns = weight.shape
    view = weight.double().reshape(rows, columns // group_size, group_size)
    top = 2 ** (n_bits - 1) - 1
    scale = torch.maximum(view.abs().max(dim=2, keepdim=True).values / top, torch.tensor(1e-9))
    return ((view / scale).round() * scale).reshape(rows, columns)


def fq_correct_unflatten(weight, n_bits, group_size):
    """unflatten, torch.where for the floor, and an int8 round trip of the levels."""
    groups = weight.unflatten(-1, (-1, group_size))
    absmax = groups.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(absmax > 0, absmax / (2 ** (n_bits - 1) - 1), torch.ones_like(absmax))
    levels = (groups / scale).round().clamp(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
    return (levels.to(torch.int8).float() * scale).flatten(-2)


def fq_correct_helper(weight, n_bits, group_size):
    return helper.fake_quantize(weight, n_bits, "per_group", group_size=group_size)


def fq_correct_blockwise(weight, n_bits, group_size):
    block = helper.granularity_block_size(weight.shape, "per_group", group_size=group_size)
    q, s, z = helper.quantize_blockwise(weight, block, n_bits=n_bits, symmetric=True)
    return helper.dequantize_affine(q, block, s, z)


def _levels(groups, scale, n_bits, clamp=True):
    q = torch.round(groups / scale)
    return q.clamp(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1) if clamp else q


def fq_always_127(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 127).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_always_127_clamped(weight, n_bits, group_size):
    """Ignores n_bits but clamps to its range: at 4 bits everything beyond 7 saturates."""
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 127).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_unsigned_q_max(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2**n_bits - 1)).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_one_level_too_many(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 2 ** (n_bits - 1)).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_one_level_too_many_no_clamp(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 2 ** (n_bits - 1)).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_no_abs(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_no_abs_no_clamp(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.max(dim=-1, keepdim=True).values / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_groups_down_columns(weight, n_bits, group_size):
    groups = weight.t().reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    back = _levels(groups, scale, n_bits) * scale
    return back.reshape(weight.shape[1], weight.shape[0]).t()


def fq_reshape_group_size_first(weight, n_bits, group_size):
    """The arguments of reshape swapped: group_size blocks instead of groups of group_size."""
    blocks = weight.reshape(group_size, -1)
    q_max = 2 ** (n_bits - 1) - 1
    scale = (blocks.abs().amax(dim=1, keepdim=True) / q_max).clamp(min=EPS)
    return (_levels(blocks, scale, n_bits) * scale).reshape(weight.shape)


def fq_per_row(weight, n_bits, group_size):
    scale = (weight.abs().amax(dim=1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(weight, scale, n_bits) * scale


def fq_per_tensor(weight, n_bits, group_size):
    scale = (weight.abs().max() / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(weight, scale, n_bits) * scale


def fq_no_keepdim(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_no_floor(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_truncates(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (torch.trunc(groups / scale) * scale).reshape(weight.shape)


def fq_returns_levels(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(groups, scale, n_bits).reshape(weight.shape)


def fq_returns_int8(weight, n_bits, group_size):
    return fq_returns_levels(weight, n_bits, group_size).to(torch.int8)


def fq_no_reshape_back(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(groups, scale, n_bits) * scale


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        fq_correct,
        fq_correct_float64_view,
        fq_correct_unflatten,
        fq_correct_helper,
        fq_correct_blockwise,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_fake_quantize_per_group(function), cases=4)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (fq_always_127, "ignores n_bits"),
        (fq_always_127_clamped, "ignores n_bits"),
        (fq_unsigned_q_max, "unsigned"),
        (fq_one_level_too_many, "one level too many"),
        (fq_one_level_too_many_no_clamp, "does not clamp"),
        (fq_no_abs, "largest magnitude"),
        (fq_no_abs_no_clamp, "largest magnitude"),
        (fq_groups_down_columns, "down the columns"),
        (fq_reshape_group_size_first, "reshape(group_size, -1)"),
        (fq_per_row, "one scale per row"),
        (fq_per_tensor, "whole tensor"),
        (fq_no_keepdim, "keepdim"),
        (fq_no_floor, "no floor"),
        (fq_truncates, "cuts off the fraction"),
        (fq_returns_levels, "never dequantizes"),
        (fq_returns_int8, "as int8"),
        (fq_no_reshape_back, "not the weight's shape"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    report = check_fake_quantize_per_group(function)
    assert_names_mistake(report, words)


def test_reshape_group_size_first_is_named_not_sent_to_the_floor():
    """Once, this answer got the all-zero case's hint "floor the scale": it fails that case
    (three blocks of 4 on a 2x6 weight), but not for want of a floor."""
    report = check_fake_quantize_per_group(fq_reshape_group_size_first)
    text = repr(report)
    assert_names_mistake(report, "reshape(group_size, -1)")
    assert "floor" not in report.mistake.hint and "eps" not in text


def unknown_no_quantization(weight, n_bits, group_size):
    """Returns the weight as it is (a copy): nothing quantized."""
    return weight.clone()


def unknown_floor_rounding(weight, n_bits, group_size):
    """torch.floor instead of torch.round: negative levels one step too low."""
    q_max = 2 ** (n_bits - 1) - 1
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / q_max).clamp(min=EPS)
    q = torch.floor(groups / scale).clamp(-(2 ** (n_bits - 1)), q_max)
    return (q * scale).reshape(weight.shape)


def unknown_mean_magnitude_scale(weight, n_bits, group_size):
    """The scale from the mean magnitude of a group instead of its largest."""
    q_max = 2 ** (n_bits - 1) - 1
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().mean(dim=-1, keepdim=True) / q_max).clamp(min=EPS)
    q = torch.round(groups / scale).clamp(-(2 ** (n_bits - 1)), q_max)
    return (q * scale).reshape(weight.shape)


def unknown_half_step_up(weight, n_bits, group_size):
    """Dequantizes to the middle of each step, (q + 0.5) * scale, instead of q * scale."""
    q_max = 2 ** (n_bits - 1) - 1
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / q_max).clamp(min=EPS)
    q = torch.round(groups / scale).clamp(-(2 ** (n_bits - 1)), q_max)
    return ((q + 0.5) * scale).reshape(weight.shape)


@pytest.mark.parametrize(
    "function",
    [
        unknown_no_quantization,
        unknown_floor_rounding,
        unknown_mean_magnitude_scale,
        unknown_half_step_up,
    ],
    ids=lambda f: f.__name__,
)
def test_an_unrecognised_answer_gets_the_first_failing_case_and_the_recipe(function):
    """No known mistake matches: the report shows the first failing case, what was expected
    and what came back, and the lesson's recipe; no hint of any mistake or case."""
    assert_neutral_report(
        check_fake_quantize_per_group(function),
        "grouped = weight.reshape(-1, group_size)",
        FAKE_GROUPS_MISTAKES,
    )


def test_a_mistake_in_float64_is_recognised_like_its_float32_twin():
    def always_127_float64(weight, n_bits, group_size):
        return fq_always_127(weight.double(), n_bits, group_size)

    report = check_fake_quantize_per_group(always_127_float64)
    assert report.mistake is not None and "ignores n_bits" in report.mistake.description


def test_the_mistakes_have_distinct_messages_where_they_differ():
    descriptions = [mistake.description for mistake in FAKE_GROUPS_MISTAKES]
    assert len(set(descriptions)) >= 13


def test_ignoring_n_bits_passes_only_the_8_bit_case():
    """The case at 8 bits is right for the 127 mistake: the other bit widths are needed."""
    report = check_fake_quantize_per_group(fq_always_127)
    passed = [description for description, problem, _ in report.results if problem is None]
    assert passed == ["the lesson's test tensor, 8 bits, groups of 3 (one per row)"]


def test_no_floor_fails_only_the_all_zero_group():
    report = check_fake_quantize_per_group(fq_no_floor)
    failed = [description for description, problem, _ in report.results if problem]
    assert failed == ["a 2x6 weight whose first group is all zeros, 3 bits, groups of 3"]


def test_missing_keepdim_runs_silently_on_four_groups_of_four():
    """2x8 in groups of 4 is a 4x4 view: the wrong broadcast raises nothing there."""
    report = check_fake_quantize_per_group(fq_no_keepdim)
    description, problem, _ = report.results[0]
    assert "2x8" in description and problem is not None and "raised" not in problem
    assert "raised RuntimeError" in report.results[1][1]


def test_integer_result_is_reported_as_not_a_float_tensor():
    report = check_fake_quantize_per_group(fq_returns_int8)
    assert "expected a float tensor, got int8" in report.results[0][1]


def test_checker_does_not_modify_the_learners_inputs():
    def destructive(weight, n_bits, group_size):
        result = fq_correct(weight.clone(), n_bits, group_size)
        weight.zero_()
        return result

    assert_changed_in_place(check_fake_quantize_per_group(destructive), "weight")


# ------------------------------------------------------------------------------------------
# helper.fake_quantize
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# helper.fake_quantize_linears, linears_bits_per_weight, predict
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# The plots
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# The numbers the notebook prints, and why they are the same on every CPU
# ------------------------------------------------------------------------------------------
