"""Tests for lesson 15's checker, check_fake_quantize_ste: the learner writes
my_fake_quantize_ste(r, scale, zero_point, q_min, q_max), the fake quantizer
s * (clamp(round(r / s) + z, q_min, q_max) - z) with a straight-through estimator.

The checker runs on learner-style functions written here, independently of the checker's own
Mistake functions: the stub, a body without return, correct variants (the lesson's four
steps, the STE written another way, a custom autograd.Function, a mask, PyTorch's own op), each
classic mistake, which must be named with its hint, and wrong answers that are none of them.
"""

from __future__ import annotations

import pytest
import torch
from conftest import (
    assert_changed_in_place,
    assert_leaves_the_random_state_alone,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
)

from support.exercises import STE_MISTAKES, check_fake_quantize_ste
from support.exercises.lesson15 import STE_RECIPE, _ste_cases

# ------------------------------------------------------------------------------------------
# Learner-style answers: correct
# ------------------------------------------------------------------------------------------


def ste_correct(r, scale, zero_point, q_min, q_max):
    """The lesson's four steps."""
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    q = torch.clamp(x + zero_point, q_min, q_max)
    return (q - zero_point) * scale


def ste_correct_other_spelling(r, scale, zero_point, q_min, q_max):
    """The STE as round(x).detach() + (x - x.detach()), torch.clip, float64 inside. (Without
    the parentheses, (round(x) + x) - x can miss round(x) in the last bit: 7.3 in float64
    comes out just above 7, and the clamp clips it.)"""
    x = r.double() / scale + zero_point
    x = x.round().detach() + (x - x.detach())
    q = torch.clip(x, min=q_min, max=q_max)
    return ((q - zero_point) * scale).to(r.dtype)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def ste_correct_autograd_function(r, scale, zero_point, q_min, q_max):
    """A custom autograd.Function whose backward is the identity."""
    q = torch.clamp(_RoundSTE.apply(r / scale) + zero_point, q_min, q_max)
    return scale * (q - zero_point)


def ste_correct_mask(r, scale, zero_point, q_min, q_max):
    """The values computed without a graph, the gradient put back through a mask."""
    with torch.no_grad():
        level = torch.round(r / scale) + zero_point
        values = (level.clamp(q_min, q_max) - zero_point) * scale
        mask = ((level >= q_min) & (level <= q_max)).to(r.dtype)
    return values + (r - r.detach()) * mask


def ste_correct_pytorch(r, scale, zero_point, q_min, q_max):
    """PyTorch's own fake quantizer (it multiplies by 1 / s; the cases have no near-ties)."""
    return torch.fake_quantize_per_tensor_affine(r, scale, zero_point, q_min, q_max)


# ------------------------------------------------------------------------------------------
# Learner-style answers: the classic mistakes
# ------------------------------------------------------------------------------------------


def ste_plain_round(r, scale, zero_point, q_min, q_max):
    q = torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max)
    return (q - zero_point) * scale


def ste_integer_levels(r, scale, zero_point, q_min, q_max):
    """Integer levels, as in lesson 01: right values, but .to(int32) leaves the graph."""
    q = torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max).to(torch.int32)
    return (q - zero_point) * scale


def ste_no_grad(r, scale, zero_point, q_min, q_max):
    with torch.no_grad():
        return ste_correct(r, scale, zero_point, q_min, q_max)


def ste_detached_result(r, scale, zero_point, q_min, q_max):
    return ste_correct(r, scale, zero_point, q_min, q_max).detach()


def ste_new_tensor(r, scale, zero_point, q_min, q_max):
    values = [
        scale * (min(max(round(v / scale) + zero_point, q_min), q_max) - zero_point)
        for v in r.detach().flatten().tolist()
    ]
    return torch.tensor(values).reshape(r.shape)


def ste_through_everything(r, scale, zero_point, q_min, q_max):
    """The STE around the whole fake quantizer: the gradient passes clipped values too."""
    fake = (torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max) - zero_point) * scale
    return r + (fake - r).detach()


def ste_clamp_first(r, scale, zero_point, q_min, q_max):
    """Clamps r / s + z, then rounds with the STE: the mask is on the unrounded value."""
    x = torch.clamp(r / scale + zero_point, q_min, q_max)
    x = x + (torch.round(x) - x).detach()
    return (x - zero_point) * scale


def ste_no_zero_point(r, scale, zero_point, q_min, q_max):
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    return torch.clamp(x, q_min, q_max) * scale


def ste_never_subtracts_zero_point(r, scale, zero_point, q_min, q_max):
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    return torch.clamp(x + zero_point, q_min, q_max) * scale


def ste_multiplies_to_quantize(r, scale, zero_point, q_min, q_max):
    x = r * scale
    x = x + (torch.round(x) - x).detach()
    return (torch.clamp(x + zero_point, q_min, q_max) - zero_point) * scale


def ste_divides_to_dequantize(r, scale, zero_point, q_min, q_max):
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    return (torch.clamp(x + zero_point, q_min, q_max) - zero_point) / scale


def ste_no_clamp(r, scale, zero_point, q_min, q_max):
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    return x * scale


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        ste_correct,
        ste_correct_other_spelling,
        ste_correct_autograd_function,
        ste_correct_mask,
        ste_correct_pytorch,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_fake_quantize_ste(function), cases=5)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (ste_plain_round, "without the straight-through estimator"),
        (ste_integer_levels, "cut off from the graph"),
        (ste_no_grad, "cut off from the graph"),
        (ste_detached_result, "cut off from the graph"),
        (ste_new_tensor, "cut off from the graph"),
        (ste_through_everything, "passes the gradient through the clipped values"),
        (ste_clamp_first, "mask on r / s + z"),
        (ste_no_zero_point, "ignores the zero point"),
        (ste_never_subtracts_zero_point, "never subtracts it"),
        (ste_multiplies_to_quantize, "multiplies by the scale to quantize"),
        (ste_divides_to_dequantize, "divides by the scale to dequantize"),
        (ste_no_clamp, "never clamps"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    assert_names_mistake(check_fake_quantize_ste(function), words)


def test_every_mistake_has_its_own_description():
    descriptions = [mistake.description for mistake in STE_MISTAKES]
    assert len(set(descriptions)) == len(descriptions) == 9


def test_the_stub_is_not_attempted_yet():
    def my_fake_quantize_ste(r, scale, zero_point, q_min, q_max):
        # Your code here
        return None

    report = check_fake_quantize_ste(my_fake_quantize_ste)
    assert report.status == "not attempted"
    assert "not attempted yet" in repr(report)


def test_a_body_without_return_is_reported():
    def forgot_return(r, scale, zero_point, q_min, q_max):
        x = r / scale
        x = x + (torch.round(x) - x).detach()

    report = check_fake_quantize_ste(forgot_return)
    assert report.status == "no return"
    assert "returns None" in repr(report)


def test_the_checker_calls_backward_and_says_when_no_gradient_arrives():
    report = check_fake_quantize_ste(ste_detached_result)
    assert all("no gradient reaches the input" in problem for _, problem, _ in report.results)


def test_only_the_gradient_fails_for_the_mask_on_the_unrounded_value():
    report = check_fake_quantize_ste(ste_clamp_first)
    for _, problem, _ in report.results:
        assert problem.startswith("gradient of output.sum() with respect to r: ")


def test_a_tuple_is_reported_as_not_a_tensor():
    def pair(r, scale, zero_point, q_min, q_max):
        return ste_correct(r, scale, zero_point, q_min, q_max), scale

    report = check_fake_quantize_ste(pair)
    assert report.status == "failed"
    assert "expected a tensor (the fake-quantized values), got tuple" in report.results[0][1]


def test_a_function_that_changes_r_in_place_fails_naming_it():
    def destructive(r, scale, zero_point, q_min, q_max):
        result = ste_correct(r, scale, zero_point, q_min, q_max)
        with torch.no_grad():
            r.mul_(2)
        return result

    assert_changed_in_place(check_fake_quantize_ste(destructive), "r")


def test_passing_something_that_is_not_a_function_raises():
    with pytest.raises(TypeError, match="pass your function itself"):
        check_fake_quantize_ste(None)


def test_the_checker_leaves_the_random_state_alone():
    assert_leaves_the_random_state_alone(lambda: check_fake_quantize_ste(ste_correct))


def test_no_case_has_r_over_s_near_a_half_way_point():
    """So r / s and PyTorch's r * (1 / s) round alike on every case."""
    for _, (r, scale, _, _, _), _ in _ste_cases():
        ratio = r.detach().double() / scale
        assert ((ratio - ratio.floor() - 0.5).abs() > 1e-3).all()
        ratio32 = r.detach() * (1 / torch.tensor(scale))
        assert torch.equal(torch.round(r.detach() / scale), torch.round(ratio32))


def test_every_case_has_values_the_mask_on_the_unrounded_value_gets_wrong_and_clipped_ones():
    for description, (r, scale, zero_point, q_min, q_max), _ in _ste_cases():
        level = r.detach().double() / scale + zero_point
        rounded = torch.round(level)
        inside = (rounded >= q_min) & (rounded <= q_max)
        assert (inside & ((level < q_min) | (level > q_max))).any(), description
        assert (~inside).any(), description


# ------------------------------------------------------------------------------------------
# Wrong answers that no known mistake explains
# ------------------------------------------------------------------------------------------


def ste_floor(r, scale, zero_point, q_min, q_max):
    """Rounds down, with the STE."""
    x = r / scale
    x = x + (torch.floor(x) - x).detach()
    return (torch.clamp(x + zero_point, q_min, q_max) - zero_point) * scale


def ste_narrow_range(r, scale, zero_point, q_min, q_max):
    """Leaves out the lowest level."""
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    return (torch.clamp(x + zero_point, q_min + 1, q_max) - zero_point) * scale


def ste_returns_levels(r, scale, zero_point, q_min, q_max):
    """Returns the levels q instead of the dequantized values."""
    x = r / scale
    x = x + (torch.round(x) - x).detach()
    return torch.clamp(x + zero_point, q_min, q_max)


def ste_doubled_gradient(r, scale, zero_point, q_min, q_max):
    """The right values, a gradient of 2 inside the grid."""
    with torch.no_grad():
        level = torch.round(r / scale) + zero_point
        values = (level.clamp(q_min, q_max) - zero_point) * scale
        mask = ((level >= q_min) & (level <= q_max)).to(r.dtype)
    return values + 2 * (r - r.detach()) * mask


@pytest.mark.parametrize(
    "function",
    [ste_floor, ste_narrow_range, ste_returns_levels, ste_doubled_gradient],
    ids=lambda f: f.__name__,
)
def test_unknown_mistake_gets_the_first_failing_case_and_the_recipe(function):
    report = check_fake_quantize_ste(function)
    assert_neutral_report(report, STE_RECIPE, STE_MISTAKES)


def ste_forward_off_by_a_hair(r, scale, zero_point, q_min, q_max):
    """(round(x) + x) - x in float64: not always exactly round(x), so a level at the top of
    the grid can come out a hair above q_max and be clipped, losing its gradient."""
    x = r.double() / scale + zero_point
    x = x.round().detach() + x - x.detach()
    return ((torch.clamp(x, q_min, q_max) - zero_point) * scale).to(r.dtype)


def test_a_forward_value_a_hair_off_round_is_caught_by_its_gradient():
    report = check_fake_quantize_ste(ste_forward_off_by_a_hair)
    assert_neutral_report(report, STE_RECIPE, STE_MISTAKES)
    assert "gradient of output.sum() with respect to r" in repr(report)


def test_the_neutral_report_shows_values_and_gradient_expected():
    text = repr(check_fake_quantize_ste(ste_doubled_gradient))
    assert "expected: STEOutcome(values=tensor(" in text and "gradient=tensor(" in text
    assert "gradient of output.sum() with respect to r: element 2 is 2" in text
