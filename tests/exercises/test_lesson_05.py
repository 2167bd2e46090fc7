"""Tests for lesson 05 (granularity): its checker, check_per_row_quantization.

The checker is run on learner-style functions written here, independently of the checker's
own Mistake functions: the stub, correct variants (float32 or float64, torch.clamp or
torch.maximum for the floor, amax or max(...).values), each classic mistake, and functions
that raise or forget to return. The helper.py functions the lesson adds, bits_per_weight and
plot_granularity_tradeoff, are tested in tests/helper/test_09_granularity.py.
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_changed_in_place, assert_names_mistake, assert_passed

import helper
from support.exercises import PER_ROW_MISTAKES, check_per_row_quantization

EPS = torch.finfo(torch.float32).eps

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def per_row_correct(weight):
    """The lesson's solution."""
    scale = weight.abs().amax(dim=1, keepdim=True) / 127
    scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = torch.round(weight / scale).to(torch.int8)
    return q, scale


def per_row_correct_float64_max_values(weight):
    """Computed in float64, with .max(dim=1).values[:, None] and torch.maximum for the floor,
    and a clamp that never changes anything."""
    absmax = weight.double().abs().max(dim=1).values[:, None]
    scale = torch.maximum(absmax / 127.0, torch.tensor(1e-7, dtype=torch.float64))
    q = (weight.double() / scale).round().clamp(-128, 127).to(torch.int8)
    return q, scale


def per_row_correct_other_floor(weight):
    """A different tiny floor: an all-zero row may have any positive scale."""
    scale = torch.clamp(weight.abs().amax(dim=-1, keepdim=True) / 127, min=1e-12)
    return (weight / scale).round().to(torch.int8), scale


def per_row_correct_helper(weight):
    """helper's own function, with dim=0."""
    return helper.linear_q_symmetric_per_channel(weight, dim=0)


def per_row_correct_list(weight):
    """Returns a list instead of a tuple."""
    q, scale = per_row_correct(weight)
    return [q, scale]


def per_row_max_not_absmax(weight):
    scale = (weight.amax(dim=1, keepdim=True) / 127).clamp(min=EPS)
    return torch.round(weight / scale).to(torch.int8), scale


def per_row_max_not_absmax_clamped(weight):
    scale = (weight.max(dim=1, keepdim=True).values / 127).clamp(min=EPS)
    return torch.round(weight / scale).clamp(-128, 127).to(torch.int8), scale


def per_row_no_keepdim(weight):
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=EPS)
    return torch.round(weight / scale).to(torch.int8), scale


def per_row_no_keepdim_clamped(weight):
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=EPS)
    return torch.clamp(torch.round(weight / scale), -128, 127).to(torch.int8), scale


def per_row_wrong_dim(weight):
    scale = (weight.abs().amax(dim=0, keepdim=True) / 127).clamp(min=EPS)
    return torch.round(weight / scale).to(torch.int8), scale


def per_row_per_tensor(weight):
    scale = (weight.abs().max() / 127).clamp(min=EPS)
    return torch.round(weight / scale).to(torch.int8), scale


def per_row_by_128(weight):
    scale = (weight.abs().amax(dim=1, keepdim=True) / 128).clamp(min=EPS)
    return torch.round(weight / scale).to(torch.int8), scale


def per_row_by_128_clamped(weight):
    scale = (weight.abs().amax(dim=1, keepdim=True) / 128).clamp(min=EPS)
    return torch.round(weight / scale).clamp(-128, 127).to(torch.int8), scale


def per_row_no_floor(weight):
    scale = weight.abs().amax(dim=1, keepdim=True) / 127
    return torch.round(weight / scale).to(torch.int8), scale


def per_row_truncates(weight):
    scale = (weight.abs().amax(dim=1, keepdim=True) / 127).clamp(min=EPS)
    return (weight / scale).to(torch.int8), scale


def per_row_no_cast(weight):
    scale = (weight.abs().amax(dim=1, keepdim=True) / 127).clamp(min=EPS)
    return torch.round(weight / scale), scale


def per_row_swapped(weight):
    """Returns (scale, q)."""
    q, scale = per_row_correct(weight)
    return scale, q


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        per_row_correct,
        per_row_correct_float64_max_values,
        per_row_correct_other_floor,
        per_row_correct_helper,
        per_row_correct_list,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_per_row_quantization(function), cases=4)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (per_row_max_not_absmax, "largest magnitude"),
        (per_row_max_not_absmax_clamped, "largest magnitude"),
        (per_row_no_keepdim, "keepdim"),
        (per_row_no_keepdim_clamped, "keepdim"),
        (per_row_wrong_dim, "one scale per column"),
        (per_row_per_tensor, "whole tensor"),
        (per_row_by_128, "128"),
        (per_row_by_128_clamped, "128"),
        (per_row_no_floor, "no floor"),
        (per_row_truncates, "cuts off the fraction"),
        (per_row_no_cast, "never casts"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    report = check_per_row_quantization(function)
    assert_names_mistake(report, words)


def test_mistakes_that_only_differ_by_a_clamp_share_their_description():
    """Two checker entries per mistake where clamping matters, one message each."""
    descriptions = [m.description for m in PER_ROW_MISTAKES]
    assert len(set(descriptions)) >= 9
    assert (
        descriptions.count(
            "takes each row's largest value instead of its largest magnitude (no abs)"
        )
        == 2
    )


def test_missing_keepdim_reports_the_scale_shape_on_the_square_tensor():
    report = check_per_row_quantization(per_row_no_keepdim)
    description, problem, _ = report.results[0]
    assert "test tensor" in description
    assert "shape (3,), expected (3, 1)" in problem


def test_no_floor_fails_only_the_all_zero_row():
    report = check_per_row_quantization(per_row_no_floor)
    failed = [description for description, problem, _ in report.results if problem]
    assert failed == ["a 2x4 weight whose row 0 is all zeros (a pruned output channel)"]
    assert "positive and finite" in report.results[3][1]


def test_max_instead_of_absmax_passes_the_test_tensor_but_not_the_negative_row():
    """The test tensor's rows all peak on the positive side: the other cases are needed."""
    report = check_per_row_quantization(per_row_max_not_absmax_clamped)
    assert report.results[0][1] is None
    assert report.results[1][1] is not None and "row 0" in report.results[1][1]


def test_swapped_pair_fails_without_crashing():
    report = check_per_row_quantization(per_row_swapped)
    assert report.status == "failed"
    assert "scale must be a float tensor" in report.results[0][1]


def test_checker_does_not_modify_the_learners_inputs():
    """Each call gets copies: a function that zeroes its input cannot spoil later cases."""

    def destructive(weight):
        result = per_row_correct(weight.clone())
        weight.zero_()
        return result

    assert_changed_in_place(check_per_row_quantization(destructive), "weight")


# ------------------------------------------------------------------------------------------
# helper.bits_per_weight
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# helper.plot_granularity_tradeoff
# ------------------------------------------------------------------------------------------
