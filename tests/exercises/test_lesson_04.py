"""Tests for lesson 04's exercise checker, check_linear_q_symmetric.

The checker runs on learner-style functions written here, independently of the mistakes in
exercises.py: the stub, a body without ``return``, several correct solutions, and one
function per classic mistake, which the report must name (with its hint). The lesson's plot,
helper.plot_symmetric_vs_asymmetric, is tested in tests/helper/test_08_symmetric.py.
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
from support.exercises import SYMMETRIC_MISTAKES, check_linear_q_symmetric
from support.exercises.lesson04 import SYMMETRIC_RECIPE

EPS = torch.finfo(torch.float32).eps

# ------------------------------------------------------------------------------------------
# Learner-style solutions
# ------------------------------------------------------------------------------------------


def stub(tensor, dtype=torch.int8):
    # Your code here
    return None


def correct_python_numbers(tensor, dtype=torch.int8):
    """The lesson's solution: Python numbers for the scale."""
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    zero_point = 0 if q_min < 0 else (q_min + q_max + 1) // 2
    scale = max(tensor.abs().max().item() / (q_max - zero_point), EPS)
    q = torch.round(tensor / scale) + zero_point
    return q.clamp(q_min, q_max).to(dtype), scale


def correct_tensor_ops(tensor, dtype=torch.int8):
    """Tensors all the way: the scale is a 0-dim float32 tensor, floored with clamp."""
    info = torch.iinfo(dtype)
    zero_point = 128 if dtype == torch.uint8 else 0
    scale = torch.clamp(tensor.abs().amax() / (info.max - zero_point), min=EPS)
    q = torch.clamp(torch.round(tensor / scale) + zero_point, info.min, info.max)
    return q.to(dtype), scale


def correct_with_helper_quantize(tensor, dtype=torch.int8):
    """Computes the scale and reuses lesson 01's quantizer."""
    signed = torch.iinfo(dtype).min < 0
    zero_point = 0 if signed else 128
    scale = tensor.abs().max().item() / (torch.iinfo(dtype).max - zero_point)
    if scale == 0:
        scale = 1e-7
    return helper.linear_q_with_scale_and_zero_point(tensor, scale, zero_point, dtype), scale


def correct_without_clamp(tensor, dtype=torch.int8):
    """No clamp: harmless here, because |r / s| never exceeds q_max - z."""
    zero_point = 0 if dtype == torch.int8 else 128
    scale = max(tensor.abs().max().item() / 127, 1e-8)
    return (torch.round(tensor / scale) + zero_point).to(dtype), scale


def correct_in_float64(tensor, dtype=torch.int8):
    """Divides in float64 and returns the scale as a 1-element tensor."""
    info = torch.iinfo(dtype)
    zero_point = 0 if info.min < 0 else 128
    r = tensor.double()
    scale = (r.abs().max() / (info.max - zero_point)).clamp(min=EPS).reshape(1)
    q = (torch.round(r / scale) + zero_point).clamp(info.min, info.max)
    return q.to(dtype), scale


CORRECT = [
    correct_python_numbers,
    correct_tensor_ops,
    correct_with_helper_quantize,
    correct_without_clamp,
    correct_in_float64,
    helper.linear_q_symmetric,
]

# ------------------------------------------------------------------------------------------
# Learner-style mistakes, each paired with (part of) the description the report must give
# ------------------------------------------------------------------------------------------


def _zero_point(dtype):
    return 0 if torch.iinfo(dtype).min < 0 else 128


def no_cast(tensor, dtype=torch.int8):
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / (torch.iinfo(dtype).max - z), EPS)
    info = torch.iinfo(dtype)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max), scale


def max_not_absmax(tensor, dtype=torch.int8):
    z = _zero_point(dtype)
    info = torch.iinfo(dtype)
    scale = max(tensor.max().item() / (info.max - z), EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def pytorch_127_5(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / ((info.max - info.min) / 2), EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def divides_by_128(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / 128, EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def divides_by_255(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / 255, EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def signed_formula_for_uint8(tensor, dtype=torch.int8):
    """s = max|r| / q_max with the dtype's own q_max (255 for uint8) and z = 0."""
    info = torch.iinfo(dtype)
    scale = max(tensor.abs().max().item() / info.max, EPS)
    return torch.round(tensor / scale).clamp(info.min, info.max).to(dtype), scale


def int8_formula_for_uint8(tensor, dtype=torch.int8):
    """The int8 recipe copied as is: / 127 and no zero point, only the clamp follows dtype."""
    info = torch.iinfo(dtype)
    scale = max(tensor.abs().max().item() / 127, EPS)
    return torch.round(tensor / scale).clamp(info.min, info.max).to(dtype), scale


def midpoint_but_255(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / info.max, EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def no_floor(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = tensor.abs().max() / (info.max - z)  # 0 for an all-zero tensor
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def rounds_half_up(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / (info.max - z), EPS)
    q = torch.floor(tensor / scale + 0.5) + z
    return q.clamp(info.min, info.max).to(dtype), scale


def truncates(tensor, dtype=torch.int8):
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / (info.max - z), EPS)
    return ((tensor / scale).int() + z).clamp(info.min, info.max).to(dtype), scale


def casts_without_rounding(tensor, dtype=torch.int8):
    """The integers come from .to(dtype) alone, after the zero point is added."""
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / (info.max - z), EPS)
    return (tensor / scale + z).clamp(info.min, info.max).to(dtype), scale


def casts_without_rounding_or_clamp(tensor, dtype=torch.int8):
    """The same with no clamp (no value is out of range, so no cast is undefined here)."""
    z = 0 if dtype == torch.int8 else 128
    scale = torch.clamp(tensor.abs().max() / (torch.iinfo(dtype).max - z), min=EPS)
    return (tensor / scale + z).to(dtype), scale.item()


MISTAKEN = [
    (no_cast, "never casts"),
    (max_not_absmax, "max(r)"),
    (pytorch_127_5, "127.5"),
    (divides_by_128, "128 = 2**7"),
    (divides_by_255, "255 = q_max - q_min"),
    (signed_formula_for_uint8, "zero point 0 and s = max|r| / 255 for uint8"),
    (int8_formula_for_uint8, "int8 formula for uint8"),
    (midpoint_but_255, "midpoint zero point for uint8 but divides max|r| by 255"),
    (no_floor, "floor"),
    (rounds_half_up, "rounds halves up"),
    (truncates, "cuts off the fraction"),
    (casts_without_rounding, "never rounds: .to(dtype)"),
    (casts_without_rounding_or_clamp, "never rounds: .to(dtype)"),
]


# ------------------------------------------------------------------------------------------
# Wrong answers no known mistake explains: the report shows the first failing case and the
# recipe, and no hint that belongs to a mistake the learner did not make
# ------------------------------------------------------------------------------------------


def scale_from_the_mean(tensor, dtype=torch.int8):
    """The mean magnitude instead of the largest one."""
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().mean().item() / (info.max - z), EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def asymmetric_scale_with_zero_point_zero(tensor, dtype=torch.int8):
    """Lesson 02's scale, (r_max - r_min) / 255, with the symmetric zero point."""
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max((tensor.max() - tensor.min()).item() / 255, EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


def returns_the_inverse_scale(tensor, dtype=torch.int8):
    """Right integers, but the scale returned is 1 / s (what the integers are multiplied by)."""
    info = torch.iinfo(dtype)
    z = _zero_point(dtype)
    scale = max(tensor.abs().max().item() / (info.max - z), EPS)
    q = (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype)
    return q, 1 / scale


def one_step_too_high(tensor, dtype=torch.int8):
    """Adds 1 after rounding (a zero point of 1 by mistake)."""
    info = torch.iinfo(dtype)
    z = _zero_point(dtype) + 1
    scale = max(tensor.abs().max().item() / (info.max - z + 1), EPS)
    return (torch.round(tensor / scale) + z).clamp(info.min, info.max).to(dtype), scale


UNRECOGNISED = [
    scale_from_the_mean,
    asymmetric_scale_with_zero_point_zero,
    returns_the_inverse_scale,
    one_step_too_high,
]

# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", CORRECT, ids=lambda f: f.__name__)
def test_correct_solutions_pass(function):
    """Python numbers or tensors, float32 or float64, with or without the (idle) clamp."""
    assert_passed(check_linear_q_symmetric(function), cases=5)


@pytest.mark.parametrize("function, named", MISTAKEN, ids=lambda x: getattr(x, "__name__", ""))
def test_each_classic_mistake_is_named_with_its_hint(function, named):
    """Each mistake fails, the report names it, and its hint is shown."""
    report = check_linear_q_symmetric(function)
    assert_names_mistake(report, named)


@pytest.mark.parametrize("function", UNRECOGNISED, ids=lambda f: f.__name__)
def test_an_unrecognised_mistake_gets_the_first_failing_case_and_the_recipe(function):
    """No known mistake matches: the report shows the first failing case (input, expected,
    got) and the lesson's recipe, and no hint at all, so none that points at another mistake."""
    assert_neutral_report(check_linear_q_symmetric(function), SYMMETRIC_RECIPE, SYMMETRIC_MISTAKES)


def test_a_function_that_changes_its_tensor_fails_naming_it():
    """Quantizing the caller's tensor in place (tensor /= scale) fails, naming `tensor`."""

    def divides_in_place(tensor, dtype=torch.int8):
        q, scale = correct_python_numbers(tensor.clone(), dtype)
        tensor /= scale
        return q, scale

    assert_changed_in_place(check_linear_q_symmetric(divides_in_place), "tensor")


def test_every_mistake_in_the_checker_is_exercised():
    """The learner-style functions above cover every Mistake of the checker."""
    named = {check_linear_q_symmetric(f).mistake.description for f, _ in MISTAKEN}
    assert named == {mistake.description for mistake in SYMMETRIC_MISTAKES}


def test_the_mistaken_functions_fail_where_expected():
    """Spot checks that the cases do their job: which case catches which mistake."""
    failed = {
        f.__name__: [d for d, problem, _ in check_linear_q_symmetric(f).results if problem]
        for f, _ in MISTAKEN
    }
    assert failed["max_not_absmax"] == ["[-10, 3, 6], int8: the largest magnitude is negative"]
    assert failed["no_floor"] == ["an all-zero tensor, int8"]
    assert failed["signed_formula_for_uint8"] == [
        "the lesson's test tensor, uint8 (zero point 128)"
    ]
    assert failed["rounds_half_up"] == [
        "exact ties: [127, 0.5, 1.5, 2.5, -2.5, -126] (scale 1), int8"
    ]


def test_wrong_scale_is_reported_with_both_numbers():
    """The failure message gives the learner's scale and the expected one."""
    report = check_linear_q_symmetric(pytorch_127_5)
    problem = report.results[0][1]
    assert "scale 5.714509612" in problem and "expected 5.737007682" in problem


def test_swapped_pair_and_wrong_arity_are_explained():
    """(scale, q) instead of (q, scale), or a triple, get a plain message."""

    def swapped(tensor, dtype=torch.int8):
        q, scale = correct_python_numbers(tensor, dtype)
        return scale, q

    def triple(tensor, dtype=torch.int8):
        return (*correct_python_numbers(tensor, dtype), 0)

    report = check_linear_q_symmetric(swapped)
    assert report.status == "failed"
    assert "wrong way round" in report.results[0][1]
    report = check_linear_q_symmetric(triple)
    assert report.status == "failed"
    assert "expected a pair (quantized_tensor, scale)" in report.results[0][1]


def test_zero_scale_on_all_zero_tensor_is_rejected_but_any_positive_scale_passes():
    """For the all-zero tensor only the scale's sign matters (every value is 0)."""

    def tiny_floor(tensor, dtype=torch.int8):
        q, scale = correct_python_numbers(tensor, dtype)
        return q, (scale if tensor.any() else 1e-30)

    assert check_linear_q_symmetric(tiny_floor).status == "passed"
    report = check_linear_q_symmetric(no_floor)
    assert "positive, finite" in report.results[-1][1]


# ------------------------------------------------------------------------------------------
# The lesson's plot: helper.plot_symmetric_vs_asymmetric
# ------------------------------------------------------------------------------------------
