"""Tests for the checkers of lesson 01: check_quantize and check_dequantization.

The learner-style functions below are written here, independently of the ``Mistake`` functions
in exercises.py, the way a learner might write them: each classic mistake must be rejected and
named (``report.mistake``), with its own hint in the report; each correct variant (torch ops or
Python floats, tensors or numbers returned) must pass; the handed-out stub is "not attempted";
a filled-in body without ``return`` is "no return".
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_changed_in_place, assert_passed, assert_rejected_as

import helper
from support.exercises import (
    DEQUANTIZE_MISTAKES,
    QUANTIZE_MISTAKES,
    check_dequantization,
    check_quantize,
)
from support.exercises.lesson01 import DEQUANTIZE_RECIPE, QUANTIZE_RECIPE


def assert_unrecognised(report, mistakes, recipe) -> None:
    """A wrong answer that no known mistake explains: the report shows the first failing case
    and the lesson's recipe, and no hint at all: neither a mistake's nor a case's."""
    text = repr(report)
    assert report.status == "failed" and report.mistake is None, text
    assert "It looks like your function" not in text
    assert "The first case that fails:" in text and f"recipe: {recipe}" in text
    for mistake in mistakes:
        assert mistake.hint not in text, mistake.description
    for _, _, hint in report.results:
        assert f"hint: {hint}" not in text


# =============================================================================================
# check_quantize
# =============================================================================================


def quantize_stub(tensor, scale, zero_point, dtype=torch.int8):
    # Your code here
    return None


def quantize_forgot_return(tensor, scale, zero_point, dtype=torch.int8):
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    q = torch.clamp(torch.round(tensor / scale) + zero_point, q_min, q_max).to(dtype)  # noqa: F841


def quantize_left_the_stub_return(tensor, scale, zero_point, dtype=torch.int8):
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    q = torch.clamp(torch.round(tensor / scale) + zero_point, q_min, q_max).to(dtype)  # noqa: F841
    return None


# --- correct variants ------------------------------------------------------------------------


def quantize_step_by_step(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    in_steps = tensor / scale
    rounded = torch.round(in_steps)
    shifted = rounded + zero_point
    clamped = shifted.clamp(info.min, info.max)
    return clamped.to(dtype)


def quantize_course_order(tensor, scale, zero_point, dtype=torch.int8):
    """The course rounds r / s + z; with the checker's even zero points that is the same."""
    info = torch.iinfo(dtype)
    return torch.round(tensor / scale + zero_point).clamp(min=info.min, max=info.max).type(dtype)


def quantize_times_inverse_scale(tensor, scale, zero_point, dtype=torch.int8):
    """Multiplying by 1 / s, as PyTorch's kernels do."""
    info = torch.iinfo(dtype)
    q = (tensor * (1.0 / scale)).round_().add_(zero_point)
    return torch.clamp(q, info.min, info.max).to(dtype)


def quantize_python_floats(tensor, scale, zero_point, dtype=torch.int8):
    """Element by element with Python's round (also half to even) and min/max."""
    info = torch.iinfo(dtype)
    values = [
        min(max(round(x / scale) + zero_point, info.min), info.max)
        for x in tensor.flatten().tolist()
    ]
    return torch.tensor(values, dtype=dtype).reshape(tensor.shape)


def quantize_in_float64(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return (tensor.double() / scale).round().add(zero_point).clamp(info.min, info.max).to(dtype)


@pytest.mark.parametrize(
    "function",
    [
        quantize_step_by_step,
        quantize_course_order,
        quantize_times_inverse_scale,
        quantize_python_floats,
        quantize_in_float64,
        helper.linear_q_with_scale_and_zero_point,
    ],
)
def test_quantize_correct_variants_pass(function):
    assert_passed(check_quantize(function))


def test_quantize_stub_is_not_attempted():
    report = check_quantize(quantize_stub)
    assert report.status == "not attempted"
    assert "not attempted yet" in repr(report) and report.passed == 0


@pytest.mark.parametrize("function", [quantize_forgot_return, quantize_left_the_stub_return])
def test_quantize_body_without_return_is_told_to_return(function):
    report = check_quantize(function)
    assert report.status == "no return"
    assert "Did you forget `return`?" in repr(report)


# --- classic mistakes ------------------------------------------------------------------------


def quantize_without_cast(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor / scale) + zero_point, info.min, info.max)


def quantize_with_int(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor / scale) + zero_point, info.min, info.max).int()


def quantize_with_long(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor / scale) + zero_point, info.min, info.max).long()


def quantize_without_clamp(tensor, scale, zero_point, dtype=torch.int8):
    return (torch.round(tensor / scale) + zero_point).to(dtype)


def quantize_clamp_after_cast(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return (torch.round(tensor / scale) + zero_point).to(dtype).clamp(info.min, info.max)


def quantize_int8_limits(tensor, scale, zero_point, dtype=torch.int8):
    return torch.clamp(torch.round(tensor / scale) + zero_point, -128, 127).to(dtype)


def quantize_int8_everything(tensor, scale, zero_point, dtype=torch.int8):
    q_min, q_max = torch.iinfo(torch.int8).min, torch.iinfo(torch.int8).max
    return torch.clamp(torch.round(tensor / scale) + zero_point, q_min, q_max).to(torch.int8)


def quantize_cast_to_int8(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor / scale) + zero_point, info.min, info.max).to(torch.int8)


def quantize_half_up(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.floor(tensor / scale + 0.5) + zero_point, info.min, info.max).to(dtype)


def quantize_truncating_cast(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    steps = (tensor / scale).to(torch.int32)  # drops the fraction
    return (steps + zero_point).clamp(info.min, info.max).to(dtype)


def quantize_floor(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.floor(tensor / scale) + zero_point, info.min, info.max).to(dtype)


def quantize_times_scale(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor * scale) + zero_point, info.min, info.max).to(dtype)


def quantize_no_zero_point(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor / scale), info.min, info.max).to(dtype)


def quantize_minus_zero_point(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.clamp(torch.round(tensor / scale) - zero_point, info.min, info.max).to(dtype)


@pytest.mark.parametrize(
    ("function", "words", "hint_words"),
    [
        (quantize_without_cast, "never casts", [".to(dtype)"]),
        (quantize_with_int, ".int()", [".to(dtype)"]),
        (quantize_with_long, ".long()", [".to(dtype)"]),
        (quantize_without_clamp, "without clamping", ["before", "138.0"]),
        (quantize_clamp_after_cast, "without clamping", ["after the cast is too late"]),
        (quantize_int8_limits, "clamps to the int8 range", ["torch.iinfo(dtype)"]),
        (quantize_int8_everything, "casts to int8 whatever", ["torch.iinfo(dtype)", ".to(dtype)"]),
        (quantize_cast_to_int8, "casts to int8 whatever the dtype", [".to(dtype)"]),
        (quantize_half_up, "rounds halves up", ["even"]),
        (quantize_truncating_cast, "cuts off the fraction", ["torch.round"]),
        (quantize_floor, "rounds down", ["torch.round"]),
        (quantize_times_scale, "multiplies by the scale", ["divide"]),
        (quantize_no_zero_point, "leaves out the zero point", ["add the zero point"]),
        (quantize_minus_zero_point, "subtracts the zero point", ["adds z"]),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_quantize_classic_mistakes_are_named(function, words, hint_words):
    assert_rejected_as(check_quantize(function), words, hint_words)


def test_quantize_mistakes_are_told_apart():
    """Every mistake fails some case and no two mistakes give the same results everywhere,
    so each diagnosis is the intended one."""
    for mistake in QUANTIZE_MISTAKES:
        report = check_quantize(mistake.function)
        assert report.status == "failed" and report.mistake is mistake, mistake.description


def test_quantize_checker_covers_the_lesson_cases():
    """The cases: the test tensor, saturation at both ends, exact ties, and uint8."""
    descriptions = " | ".join(d for d, _, _ in check_quantize(quantize_step_by_step).results)
    for words in ("test tensor", "both ends", "exact ties", "uint8"):
        assert words in descriptions


# --- wrong answers that no known mistake explains -------------------------------------------


def quantize_off_by_one(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    q = torch.round(tensor / scale) + zero_point + 1
    return q.clamp(info.min, info.max).to(dtype)


def quantize_ceil(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return (torch.ceil(tensor / scale) + zero_point).clamp(info.min, info.max).to(dtype)


def quantize_narrow_range(tensor, scale, zero_point, dtype=torch.int8):
    """Clamps to [q_min + 1, q_max], the symmetric lessons' narrow range."""
    info = torch.iinfo(dtype)
    return (torch.round(tensor / scale) + zero_point).clamp(info.min + 1, info.max).to(dtype)


def quantize_shifts_before_dividing(tensor, scale, zero_point, dtype=torch.int8):
    info = torch.iinfo(dtype)
    return torch.round((tensor + zero_point) / scale).clamp(info.min, info.max).to(dtype)


@pytest.mark.parametrize(
    "function",
    [quantize_off_by_one, quantize_ceil, quantize_narrow_range, quantize_shifts_before_dividing],
    ids=lambda f: f.__name__,
)
def test_quantize_unknown_mistake_gets_the_first_failing_case_and_the_recipe(function):
    report = check_quantize(function)
    assert_unrecognised(report, QUANTIZE_MISTAKES, QUANTIZE_RECIPE)
    text = repr(report)
    assert "  input: " in text and "  expected: " in text and "  got: " in text


# =============================================================================================
# check_dequantization
# =============================================================================================


def dequantize_stub(quantized_tensor, scale, zero_point):
    # Your code here
    return None


def dequantize_forgot_return(quantized_tensor, scale, zero_point):
    result = scale * (quantized_tensor.float() - zero_point)  # noqa: F841


def dequantize_float_first(quantized_tensor, scale, zero_point):
    return scale * (quantized_tensor.float() - zero_point)


def dequantize_in_int32(quantized_tensor, scale, zero_point):
    return (quantized_tensor.to(torch.int32) - zero_point) * scale


def dequantize_distributed(quantized_tensor, scale, zero_point):
    """s * q - s * z: multiplying by a Python float makes float32 first, so nothing wraps."""
    return scale * quantized_tensor - scale * zero_point


def dequantize_float64(quantized_tensor, scale, zero_point):
    return scale * (quantized_tensor.double() - zero_point)


def dequantize_python_floats(quantized_tensor, scale, zero_point):
    values = [scale * (q - zero_point) for q in quantized_tensor.flatten().tolist()]
    return torch.tensor(values).reshape(quantized_tensor.shape)


@pytest.mark.parametrize(
    "function",
    [
        dequantize_float_first,
        dequantize_in_int32,
        dequantize_distributed,
        dequantize_float64,
        dequantize_python_floats,
        helper.linear_dequantization,
    ],
)
def test_dequantization_correct_variants_pass(function):
    assert_passed(check_dequantization(function))


def test_dequantization_stub_and_missing_return():
    assert check_dequantization(dequantize_stub).status == "not attempted"
    report = check_dequantization(dequantize_forgot_return)
    assert report.status == "no return"
    assert "Did you forget `return`?" in repr(report)


def dequantize_in_int8(quantized_tensor, scale, zero_point):
    return scale * (quantized_tensor - zero_point)


def dequantize_float_too_late(quantized_tensor, scale, zero_point):
    return (quantized_tensor - zero_point).float() * scale


def dequantize_precedence_slip(quantized_tensor, scale, zero_point):
    return scale * quantized_tensor.float() - zero_point


def dequantize_divides(quantized_tensor, scale, zero_point):
    return (quantized_tensor.float() - zero_point) / scale


def dequantize_adds_zero_point(quantized_tensor, scale, zero_point):
    return scale * (quantized_tensor.float() + zero_point)


def dequantize_no_scale(quantized_tensor, scale, zero_point):
    return quantized_tensor.float() - zero_point


def dequantize_no_zero_point(quantized_tensor, scale, zero_point):
    return quantized_tensor.float() * scale


@pytest.mark.parametrize(
    ("function", "words", "hint_words"),
    [
        (dequantize_in_int8, "in the integer dtype", [".float()", "wraps around"]),
        (dequantize_float_too_late, "in the integer dtype", [".float()"]),
        (dequantize_precedence_slip, "multiplies before subtracting", ["parentheses"]),
        (dequantize_divides, "divides by the scale", ["multiply by the scale"]),
        (dequantize_adds_zero_point, "adds the zero point", ["subtract the zero point"]),
        (dequantize_no_scale, "forgets the scale", ["multiply"]),
        (dequantize_no_zero_point, "forgets the zero point", ["subtract"]),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_dequantization_classic_mistakes_are_named(function, words, hint_words):
    text = assert_rejected_as(check_dequantization(function), words, hint_words)
    if function is not dequantize_in_int8 and function is not dequantize_float_too_late:
        assert "convert to float first" not in text  # issue 6: they all got this hint


def test_dequantization_mistakes_are_told_apart():
    for mistake in DEQUANTIZE_MISTAKES:
        report = check_dequantization(mistake.function)
        assert report.status == "failed" and report.mistake is mistake, mistake.description


def test_int8_subtraction_wraps_at_the_top_and_at_the_bottom():
    """The int8 mistake fails the case with z < 0 (wraps at the top) and the case with z > 0
    (wraps at the bottom), and passes neither by luck."""
    report = check_dequantization(dequantize_in_int8)
    problems = {description: problem for description, problem, _ in report.results}
    top = next(p for d, p in problems.items() if "top of the range" in d)
    bottom = next(p for d, p in problems.items() if "bottom of the range" in d)
    assert top is not None and bottom is not None


def test_dequantization_integer_result_fails_with_a_message():
    def rounds_back(quantized_tensor, scale, zero_point):
        return (scale * (quantized_tensor.float() - zero_point)).round().to(torch.int32)

    report = check_dequantization(rounds_back)
    assert report.status == "failed" and report.mistake is None
    assert all("float tensor" in problem for _, problem, _ in report.results)


def dequantize_rounds_the_result(quantized_tensor, scale, zero_point):
    return torch.round(scale * (quantized_tensor.float() - zero_point))


def dequantize_in_float16(quantized_tensor, scale, zero_point):
    return scale * (quantized_tensor.half() - zero_point)


def dequantize_absolute_steps(quantized_tensor, scale, zero_point):
    return scale * (quantized_tensor.float() - zero_point).abs()


@pytest.mark.parametrize(
    "function",
    [dequantize_rounds_the_result, dequantize_in_float16, dequantize_absolute_steps],
    ids=lambda f: f.__name__,
)
def test_dequantization_unknown_mistake_gets_the_first_failing_case_and_the_recipe(function):
    report = check_dequantization(function)
    assert_unrecognised(report, DEQUANTIZE_MISTAKES, DEQUANTIZE_RECIPE)
    assert "differs at" in repr(report)  # a float tensor of the right shape: positions marked


def test_dequantization_odd_return_values_are_failures():
    assert check_dequantization(lambda q, s, z: "done").status == "failed"
    report = check_dequantization(lambda q, s, z: torch.zeros(2))
    assert report.status == "failed"
    assert "expected shape" in report.results[0][1]


def test_a_function_that_overwrites_its_input_cannot_spoil_later_cases():
    def dequantize_then_overwrite(quantized_tensor, scale, zero_point):
        result = dequantize_float_first(quantized_tensor, scale, zero_point)
        quantized_tensor.fill_(0)
        return result

    assert_changed_in_place(check_dequantization(dequantize_then_overwrite), "quantized_tensor")
    assert_passed(check_dequantization(dequantize_float_first))


# =============================================================================================
# The stubs as the notebook hands them out
# =============================================================================================


def test_stored_notebook_outputs_match_the_stubs():
    """The stubs as the lesson hands them out report "not attempted", word for word."""
    assert repr(check_quantize(quantize_stub)).startswith("Quantize: not attempted yet.")
    assert repr(check_dequantization(dequantize_stub)).startswith(
        "Dequantization: not attempted yet."
    )
