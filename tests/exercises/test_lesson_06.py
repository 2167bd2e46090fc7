"""Tests for lesson 06 (weights and activations): the checker ``check_w8a32``.

The learner-style functions below are written here, independently of the checker's own
``Mistake`` functions: each classic mistake must be rejected and named, every correct
variant must pass. The functions the lesson adds to helper.py (``sqnr_db_per_row``,
``plot_output_sqnr``) and the lesson's facts about W8A32 and W8A8 are tested in
tests/helper/test_10_weights_and_activations.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    assert_changed_in_place,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
    case_status,
)

import helper
from support.exercises import W8A32_MISTAKES, check_w8a32
from support.exercises.lesson06 import W8A32_RECIPE

# ------------------------------------------------------------------------------------------
# Learner-style implementations of my_w8a32(input, q_w, s_w, z_w)
# ------------------------------------------------------------------------------------------


def w8a32_lesson_answer(input, q_w, s_w, z_w):
    weight = s_w * (q_w.float() - z_w)
    return F.linear(input, weight)


def w8a32_matmul(input, q_w, s_w, z_w):
    weight = (q_w.to(input.dtype) - z_w) * s_w
    return input @ weight.T


def w8a32_helper_dequantization(input, q_w, s_w, z_w):
    return F.linear(input, helper.linear_dequantization(q_w, s_w, z_w))


def w8a32_scale_after_as_a_row(input, q_w, s_w, z_w):
    """Scaling after F.linear is right once the scale lies along the output's last axis."""
    row = torch.as_tensor(s_w, dtype=torch.float32).reshape(-1)
    return F.linear(input, q_w.float() - z_w) * row


def w8a32_in_float64(input, q_w, s_w, z_w):
    return F.linear(input.double(), torch.as_tensor(s_w).double() * (q_w.double() - z_w))


def w8a32_int8_into_linear(input, q_w, s_w, z_w):
    return F.linear(input, q_w) * s_w


def w8a32_scale_and_zero_point_after(input, q_w, s_w, z_w):
    casted_weights = q_w.to(input.dtype)
    output = F.linear(input, casted_weights) * s_w + z_w
    return output


def w8a32_course_l3e(input, q_w, s_w, z_w):
    """The course's L3-E function, as the course wrote it: dequantize first, as q * s + z."""
    assert input.dtype == torch.float32
    assert q_w.dtype == torch.int8
    dequantized_weight = q_w.to(torch.float32) * s_w + z_w
    output = torch.nn.functional.linear(input, dequantized_weight)
    return output


def w8a32_scale_after_reshaped(input, q_w, s_w, z_w):
    """The course's L4 recipe (scale after F.linear) with the scale laid along the outputs."""
    return F.linear(input, q_w.float() - z_w) * s_w.reshape(-1)


def w8a32_scale_after_flattened(input, q_w, s_w, z_w):
    """The same with .view(-1): an (out, 1) scale becomes (out,)."""
    output = F.linear(input, q_w.to(torch.float32) - z_w)
    return output * s_w.view(-1)


def w8a32_in_float16(input, q_w, s_w, z_w):
    """Everything in float16, returned as float16."""
    weight = s_w * (q_w.float() - z_w)
    return F.linear(input.half(), weight.half())


def w8a32_in_float16_back_to_float32(input, q_w, s_w, z_w):
    """float16 from the integers on, converted back at the end."""
    weight = (s_w * (q_w.to(torch.float16) - z_w)).to(torch.float16)
    return F.linear(input.to(torch.float16), weight).to(torch.float32)


def w8a32_in_bfloat16(input, q_w, s_w, z_w):
    weight = s_w * (q_w.float() - z_w)
    return F.linear(input.bfloat16(), weight.bfloat16()).float()


def w8a32_weight_rounded_to_float16(input, q_w, s_w, z_w):
    """Only the dequantized weight passes through float16 (to save memory, say)."""
    weight = (s_w * (q_w.float() - z_w)).half()
    return F.linear(input, weight.float())


def w8a32_scale_after(input, q_w, s_w, z_w):
    return F.linear(input, q_w.to(torch.float32) - z_w) * s_w


def w8a32_scale_after_without_zero_point(input, q_w, s_w, z_w):
    output = F.linear(input, q_w.float())
    return output * s_w


def w8a32_q_times_s_plus_z(input, q_w, s_w, z_w):
    weight = q_w.float() * s_w + z_w
    return F.linear(input, weight)


def w8a32_no_parentheses(input, q_w, s_w, z_w):
    return F.linear(input, s_w * q_w.float() - z_w)


def w8a32_subtracts_in_int8(input, q_w, s_w, z_w):
    difference = (q_w - z_w).float()
    return F.linear(input, difference * s_w)


def w8a32_transposed(input, q_w, s_w, z_w):
    weight = s_w * (q_w.float() - z_w)
    return F.linear(input, weight.T)


def w8a32_without_zero_point(input, q_w, s_w, z_w):
    return F.linear(input, q_w.float() * s_w)


def w8a32_adds_zero_point(input, q_w, s_w, z_w):
    return F.linear(input, s_w * (q_w.float() + z_w))


def w8a32_divides(input, q_w, s_w, z_w):
    return F.linear(input, (q_w.float() - z_w) / s_w)


# ------------------------------------------------------------------------------------------
# check_w8a32
# ------------------------------------------------------------------------------------------

#: The checker's cases, in order (``case_status`` names each report's results by them).
CASES = (
    "course, per tensor",
    "course, per channel",
    "batch 4x3",
    "asymmetric",
    "zero points",
    "large token",
)


@pytest.mark.parametrize(
    "function",
    [
        w8a32_lesson_answer,
        w8a32_matmul,
        w8a32_helper_dequantization,
        w8a32_scale_after_as_a_row,
        w8a32_in_float64,
        helper.quantized_linear_W8A32_without_bias,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    """Dequantize-first, @ with .T, helper's dequantization, a scale laid along the output's
    last axis, float64 arithmetic and helper's own function all pass every case."""
    assert_passed(check_w8a32(function), cases=len(CASES))


@pytest.mark.parametrize(
    ("function", "description"),
    [
        (w8a32_int8_into_linear, "passes the int8 weight straight to F.linear"),
        (w8a32_scale_and_zero_point_after, "applies the scale and the zero point to F.linear's"),
        (w8a32_course_l3e, "dequantizes as q_w * s_w + z_w, as the course's L3-E code does"),
        (w8a32_scale_after_reshaped, "multiplies F.linear's output by s_w.reshape(-1)"),
        (w8a32_scale_after_flattened, "multiplies F.linear's output by s_w.reshape(-1)"),
        (w8a32_in_float16, "computes in float16"),
        (w8a32_in_float16_back_to_float32, "computes in float16"),
        (w8a32_in_bfloat16, "computes (or rounds the weight or the input) in a 16-bit"),
        (
            w8a32_weight_rounded_to_float16,
            "computes (or rounds the weight or the input) in a 16-bit",
        ),
        (w8a32_scale_after, "multiplies by the scale after F.linear"),
        (
            w8a32_scale_after_without_zero_point,
            "multiplies by the scale after F.linear and leaves out the zero point",
        ),
        (w8a32_q_times_s_plus_z, "dequantizes as q_w * s_w + z_w"),
        (w8a32_no_parentheses, "multiplies before subtracting"),
        (w8a32_subtracts_in_int8, "subtracts the zero point in int8"),
        (w8a32_transposed, "uses the weight transposed"),
        (w8a32_without_zero_point, "leaves out the zero point"),
        (w8a32_adds_zero_point, "adds the zero point"),
        (w8a32_divides, "divides by the scale"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_classic_mistakes_are_rejected_and_named(function, description):
    """Each mistake fails, the report names it (and no other) and shows its hint."""
    report = check_w8a32(function)
    assert_names_mistake(report, description, start=True)
    if description in ("multiplies by the scale after F.linear", "leaves out the zero point"):
        assert report.mistake.description == description


def test_every_checker_mistake_is_covered_by_a_learner_function_here():
    """The parametrized test above names each of the checker's mistakes at least once."""
    learner_functions = [
        w8a32_int8_into_linear,
        w8a32_scale_and_zero_point_after,
        w8a32_scale_after_reshaped,
        w8a32_in_float16,
        w8a32_in_bfloat16,
        w8a32_scale_after,
        w8a32_scale_after_without_zero_point,
        w8a32_q_times_s_plus_z,
        w8a32_no_parentheses,
        w8a32_subtracts_in_int8,
        w8a32_transposed,
        w8a32_without_zero_point,
        w8a32_adds_zero_point,
        w8a32_divides,
    ]
    named = {check_w8a32(f).mistake.description for f in learner_functions}
    assert named == {mistake.description for mistake in W8A32_MISTAKES}


def test_scaling_after_linear_passes_only_the_per_tensor_cases():
    """The lesson's pitfall: a late scale is right for one scale and fails per channel."""
    status = case_status(check_w8a32(w8a32_scale_after), CASES)
    assert status == {
        "course, per tensor": True,
        "course, per channel": False,
        "batch 4x3": False,
        "asymmetric": True,
        "zero points": False,
        "large token": True,
    }
    problems = [problem for _, problem, _ in check_w8a32(w8a32_scale_after).results]
    assert problems[1] == "expected shape (3,), got (3, 3)"  # (3,) output times (3, 1) scale
    assert problems[2].startswith("raised RuntimeError")  # (2, 4) times (4, 1)


def test_scale_and_zero_point_after_linear_is_right_for_one_scale_and_no_zero_point_only():
    """F.linear(x, q) * s + z passes the per-tensor cases with z = 0 and nothing else."""
    status = case_status(check_w8a32(w8a32_scale_and_zero_point_after), CASES)
    right = {"course, per tensor", "large token"}
    assert {name for name, passed in status.items() if passed} == right


def test_the_course_l3e_code_fails_only_where_the_zero_point_is_not_0():
    """The course's function dequantizes first; its one defect, q * s + z, shows only with a
    zero point: it passes the per-channel cases too."""
    status = case_status(check_w8a32(w8a32_course_l3e), CASES)
    assert {name for name, passed in status.items() if not passed} == {"asymmetric", "zero points"}


def test_scaling_after_linear_along_the_outputs_passes_per_channel_and_raises_on_a_float():
    """F.linear(x, q_w.float() - z_w) * s_w.reshape(-1) is right wherever s_w is a tensor;
    it raises an AttributeError only where s_w is a Python float (the per-tensor cases)."""
    report = check_w8a32(w8a32_scale_after_reshaped)
    status = case_status(report, CASES)
    per_tensor = {"course, per tensor", "asymmetric", "large token"}
    assert {name for name, passed in status.items() if not passed} == per_tensor
    for (_, problem, _), name in zip(report.results, CASES, strict=True):
        if name in per_tensor:
            assert "AttributeError: 'float' object has no attribute 'reshape'" in problem


def test_float16_overflows_on_the_large_token_and_is_named_though_not_matched_exactly():
    """A float16 layer: its results differ from the checker's own float16 function in the
    last bits, so it is recognised at 16-bit precision, by its inf on the large token."""
    report = check_w8a32(w8a32_in_float16_back_to_float32)
    assert report.mistake is not None and "float16" in report.mistake.description
    problem = dict(zip(CASES, (p for _, p, _ in report.results), strict=True))["large token"]
    assert "inf" in problem
    assert "The first case that fails" not in repr(report)


# ------------------------------------------------------------------------------------------
# Wrong answers no known mistake explains: the first failing case and the recipe, no hint
# ------------------------------------------------------------------------------------------


def w8a32_doubled(input, q_w, s_w, z_w):
    return 2 * F.linear(input, s_w * (q_w.float() - z_w))


def w8a32_plus_one(input, q_w, s_w, z_w):
    """A bias of 1 that the layer does not have."""
    return F.linear(input, s_w * (q_w.float() - z_w)) + 1.0


def w8a32_absolute(input, q_w, s_w, z_w):
    return F.linear(input, s_w * (q_w.float() - z_w)).abs()


def w8a32_no_scale(input, q_w, s_w, z_w):
    return F.linear(input, q_w.float() - z_w)


@pytest.mark.parametrize(
    "function",
    [w8a32_doubled, w8a32_plus_one, w8a32_absolute, w8a32_no_scale],
    ids=lambda f: f.__name__,
)
def test_unrecognised_mistakes_get_the_first_failing_case_and_the_recipe(function):
    assert_neutral_report(check_w8a32(function), W8A32_RECIPE, W8A32_MISTAKES)


def test_int8_subtraction_fails_exactly_where_int8_wraps():
    """q_w - z_w in int8 wraps only in the asymmetric case (127 - (-5) = 132 -> -124); the
    int64 per-channel zero points promote the subtraction and stay right."""
    status = case_status(check_w8a32(w8a32_subtracts_in_int8), CASES)
    assert [name for name, passed in status.items() if not passed] == ["asymmetric"]
    assert "z_w = -5" in check_w8a32(w8a32_subtracts_in_int8).results[3][0]


def test_mistakes_without_a_zero_point_problem_pass_the_symmetric_cases():
    """q * s + z, a missing or added zero point: right while z = 0, wrong once it is not."""
    for function in (w8a32_q_times_s_plus_z, w8a32_without_zero_point, w8a32_adds_zero_point):
        status = case_status(check_w8a32(function), CASES)
        assert status["course, per tensor"] and status["course, per channel"]
        assert status["batch 4x3"]
        assert not status["asymmetric"] and not status["zero points"]


def test_odd_results_are_failures_not_crashes():
    """Numbers, strings, integer tensors: failed cases, never an exception in the checker."""
    for result in (3.0, "done", torch.zeros(3, dtype=torch.int32), (torch.zeros(3),)):
        report = check_w8a32(lambda input, q_w, s_w, z_w, result=result: result)
        assert report.status == "failed"
        assert report.passed == 0


def test_checker_does_not_let_a_mutating_function_spoil_later_cases():
    """Each case gets fresh copies: zeroing q_w after answering changes nothing."""

    def answer_then_zero(input, q_w, s_w, z_w):
        result = w8a32_lesson_answer(input, q_w, s_w, z_w)
        q_w.zero_()
        input.zero_()
        return result

    assert_changed_in_place(check_w8a32(answer_then_zero), "input")


# ------------------------------------------------------------------------------------------
# The lesson's facts, checked outside the notebook
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# helper.sqnr_db_per_row and helper.plot_output_sqnr
# ------------------------------------------------------------------------------------------
