"""Tests for the checkers of lessons 01 and 02: check_quantize, check_dequantization and
check_scale_and_zero_point, and the mechanism they share (run_checks and its diagnosis).

The learner-style functions below are written here, independently of the ``Mistake`` functions
in exercises.py, the way a learner might write them: each classic mistake must be rejected and
named (``report.mistake``), with its own hint in the report; each correct variant (torch ops or
Python floats, tensors or numbers returned) must pass; the handed-out stub is "not attempted";
a filled-in body without ``return`` is "no return".
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from test_exercises_contract import assert_names_mistake

import helper
from support.exercises import (
    DEQUANTIZE_MISTAKES,
    QUANTIZE_MISTAKES,
    SCALE_AND_ZERO_POINT_MISTAKES,
    CheckCase,
    check_dequantization,
    check_quantize,
    check_scale_and_zero_point,
    run_checks,
)


def assert_rejected_as(report, words, hint_words=()):
    """The report failed, names the mistake whose description contains ``words``, and shows
    that mistake's hint (and not the per-case hints)."""
    assert_names_mistake(report, words)
    text = repr(report)
    for word in hint_words:
        assert word in report.mistake.hint
    for _, problem, hint in report.results:
        if problem is not None:
            assert f"         hint: {hint}" not in text  # the case hints give way
    return text


def assert_passed(report):
    """Every case passed and the report says so."""
    text = repr(report)
    assert report.status == "passed", text
    assert report.passed == len(report.results)
    assert f"{report.passed} of {report.passed} checks passed" in text and "Well done!" in text


# =============================================================================================
# check_quantize (lesson 01)
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


def test_quantize_unknown_mistake_gets_the_case_hints():
    """A wrong answer that is no known mistake is shown case by case, with the case hints."""

    def off_by_one(tensor, scale, zero_point, dtype=torch.int8):
        info = torch.iinfo(dtype)
        q = torch.round(tensor / scale) + zero_point + 1
        return q.clamp(info.min, info.max).to(dtype)

    report = check_quantize(off_by_one)
    text = repr(report)
    assert report.status == "failed" and report.mistake is None
    assert "It looks like" not in text
    assert "hint: q = clamp(round(r / s) + z, q_min, q_max), then .to(dtype)." in text
    assert "[FAIL] the lesson's test tensor" in text and "expected" in text


# =============================================================================================
# check_dequantization (lesson 01)
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


def raises(*args, **kwargs):
    raise RuntimeError("boom")


def test_function_that_raises_is_reported_not_crashing():
    for check in (check_quantize, check_dequantization, check_scale_and_zero_point):
        report = check(raises)
        assert report.status == "failed" and report.passed == 0
        assert "raised RuntimeError: boom" in repr(report)


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

    assert_passed(check_dequantization(dequantize_then_overwrite))
    assert_passed(check_dequantization(dequantize_float_first))


# =============================================================================================
# check_scale_and_zero_point (lesson 02)
# =============================================================================================


def scale_and_zero_point_stub(tensor, dtype):
    # Your code here
    return None


def scale_and_zero_point_forgot_return(tensor, dtype):
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (q_max - q_min), torch.finfo(torch.float32).eps)
    zero_point = q_min - round(r_min / scale)  # noqa: F841


# --- correct variants ------------------------------------------------------------------------

EPS = torch.finfo(torch.float32).eps


def scale_and_zero_point_python(tensor, dtype):
    """The lesson's answer: Python floats, range including 0, eps floor, dtype's range."""
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    r_min = min(tensor.min().item(), 0.0)
    r_max = max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (q_max - q_min), EPS)
    return scale, q_min - round(r_min / scale)


def scale_and_zero_point_rounding_the_whole(tensor, dtype):
    """round(q_min - r_min / s) instead of q_min - round(r_min / s): the same number."""
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    return scale, int(round(info.min - r_min / scale))


def scale_and_zero_point_float32_tensors(tensor, dtype):
    """Torch ops in the tensor's float32, returning 0-dim tensors."""
    info = torch.iinfo(dtype)
    r_min = torch.clamp(tensor.min(), max=0.0)
    r_max = torch.clamp(tensor.max(), min=0.0)
    scale = torch.clamp((r_max - r_min) / (info.max - info.min), min=EPS)
    return scale, info.min - torch.round(r_min / scale)


def scale_and_zero_point_float64_tensors(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, r_max = torch.aminmax(tensor.double())
    r_min, r_max = torch.minimum(r_min, torch.zeros(())), torch.maximum(r_max, torch.zeros(()))
    scale = torch.maximum((r_max - r_min) / (info.max - info.min), torch.tensor(EPS))
    zero_point = (info.min - torch.round(r_min / scale)).to(torch.int64)
    return scale, zero_point


def scale_and_zero_point_from_the_top(tensor, dtype):
    """The zero point from r_max: z = q_max - round(r_max / s), the same grid."""
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    return scale, info.max - round(r_max / scale)


def scale_and_zero_point_torch_observer(tensor, dtype):
    """PyTorch's MinMaxObserver: float32 scale, int32 zero point, as 1-element tensors."""
    quantized_dtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}[dtype]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whatever this PyTorch says about its observers
        observer = torch.ao.quantization.MinMaxObserver(dtype=quantized_dtype)
        observer(tensor)
        return observer.calculate_qparams()


@pytest.mark.parametrize(
    "function",
    [
        scale_and_zero_point_python,
        scale_and_zero_point_rounding_the_whole,
        scale_and_zero_point_float32_tensors,
        scale_and_zero_point_float64_tensors,
        scale_and_zero_point_from_the_top,
        scale_and_zero_point_torch_observer,
        helper.get_q_scale_and_zero_point,
    ],
)
def test_scale_and_zero_point_correct_variants_pass(function):
    assert_passed(check_scale_and_zero_point(function))


def test_scale_and_zero_point_stub_and_missing_return():
    assert check_scale_and_zero_point(scale_and_zero_point_stub).status == "not attempted"
    report = check_scale_and_zero_point(scale_and_zero_point_forgot_return)
    assert report.status == "no return"
    assert "Did you forget `return`?" in repr(report)


# --- classic mistakes ------------------------------------------------------------------------


def scale_and_zero_point_course_original(tensor, dtype=torch.int8):
    """The course's L2-B code: no 0 in the range, zero point clipped, no eps floor."""
    q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max
    r_min, r_max = tensor.min().item(), tensor.max().item()
    scale = (r_max - r_min) / (q_max - q_min)
    zero_point = q_min - (r_min / scale)
    if zero_point < q_min:
        zero_point = q_min
    elif zero_point > q_max:
        zero_point = q_max
    else:
        zero_point = int(round(zero_point))
    return scale, zero_point


def scale_and_zero_point_textbook_with_floor(tensor, dtype):
    """Remembers the floor, forgets to include 0 (and does not clip)."""
    info = torch.iinfo(dtype)
    r_min, r_max = tensor.min().item(), tensor.max().item()
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    return scale, info.min - round(r_min / scale)


def scale_and_zero_point_textbook(tensor, dtype):
    """Neither 0 in the range nor a floor (and no clipping)."""
    info = torch.iinfo(dtype)
    r_min, r_max = tensor.min().item(), tensor.max().item()
    scale = (r_max - r_min) / (info.max - info.min)
    return scale, info.min - round(r_min / scale)


def scale_and_zero_point_textbook_clipped(tensor, dtype):
    """Clips the zero point into range instead of including 0 (keeps the floor)."""
    info = torch.iinfo(dtype)
    r_min, r_max = tensor.min().item(), tensor.max().item()
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    zero_point = info.min - round(r_min / scale)
    return scale, max(info.min, min(info.max, zero_point))


def scale_and_zero_point_no_r_max(tensor, dtype):
    """Issue 6: leaves out r_max = max(r_max, 0)."""
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.min().item(), 0.0), tensor.max().item()
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    return scale, info.min - round(r_min / scale)


def scale_and_zero_point_no_r_min(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, r_max = tensor.min().item(), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    return scale, info.min - round(r_min / scale)


def scale_and_zero_point_no_floor(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = (r_max - r_min) / (info.max - info.min)
    return scale, info.min - round(r_min / scale)


def _robust_scale(tensor, info):
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    return r_min, max((r_max - r_min) / (info.max - info.min), EPS)


def scale_and_zero_point_int_of_steps(tensor, dtype):
    """Issue 6: truncates r_min / s, q_min - int(r_min / s)."""
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, info.min - int(r_min / scale)


def scale_and_zero_point_floor_of_zero_point(tensor, dtype):
    """Issue 6: floors the zero point."""
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, math.floor(info.min - r_min / scale)


def scale_and_zero_point_floor_of_steps(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, info.min - math.floor(r_min / scale)


def scale_and_zero_point_floor_division(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, info.min - r_min // scale


def scale_and_zero_point_ceil_of_zero_point(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, math.ceil(info.min - r_min / scale)


def scale_and_zero_point_int_of_zero_point(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, int(info.min - r_min / scale)


def scale_and_zero_point_unrounded(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, info.min - r_min / scale


def scale_and_zero_point_plus_sign(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, scale = _robust_scale(tensor, info)
    return scale, info.min + round(r_min / scale)


def scale_and_zero_point_int8_only(tensor, dtype):
    info = torch.iinfo(torch.int8)
    r_min, scale = _robust_scale(tensor, info)
    return scale, info.min - round(r_min / scale)


def scale_and_zero_point_256_levels(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / 2**8, EPS)
    return scale, info.min - round(r_min / scale)


def scale_and_zero_point_swapped(tensor, dtype):
    scale, zero_point = scale_and_zero_point_python(tensor, dtype)
    return zero_point, scale


@pytest.mark.parametrize(
    ("function", "words", "hint_words"),
    [
        (scale_and_zero_point_course_original, "course's original code", ["min(r_min, 0)", "eps"]),
        (scale_and_zero_point_textbook, "to include 0, and has no floor", ["max(r_max, 0)", "eps"]),
        (scale_and_zero_point_textbook_with_floor, "does not extend the range", ["min(r_min, 0)"]),
        (scale_and_zero_point_textbook_clipped, "clips the zero point instead", ["clipping"]),
        (scale_and_zero_point_no_r_max, "extends r_min to 0 but not r_max", ["max(r_max, 0)"]),
        (scale_and_zero_point_no_r_min, "extends r_max to 0 but not r_min", ["min(r_min, 0)"]),
        (scale_and_zero_point_no_floor, "floor", ["torch.finfo(torch.float32).eps"]),
        (scale_and_zero_point_int_of_steps, "rounds the zero point down", ["round()"]),
        (scale_and_zero_point_floor_of_zero_point, "rounds the zero point down", ["round()"]),
        (scale_and_zero_point_floor_of_steps, "rounds the zero point up", ["round()"]),
        (scale_and_zero_point_floor_division, "rounds the zero point up", ["round()"]),
        (scale_and_zero_point_ceil_of_zero_point, "rounds the zero point up", ["round()"]),
        (scale_and_zero_point_int_of_zero_point, "cuts the fraction off", ["round()"]),
        (scale_and_zero_point_unrounded, "does not round the zero point", ["round it"]),
        (scale_and_zero_point_plus_sign, "instead of subtracting", ["q_min - r_min / scale"]),
        (scale_and_zero_point_int8_only, "int8 range whatever the dtype", ["torch.iinfo(dtype)"]),
        (scale_and_zero_point_256_levels, "256", ["q_max - q_min"]),
        (scale_and_zero_point_swapped, "returns (zero_point, scale)", ["scale first"]),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_scale_and_zero_point_classic_mistakes_are_named(function, words, hint_words):
    text = assert_rejected_as(check_scale_and_zero_point(function), words, hint_words)
    if function is not scale_and_zero_point_int8_only:
        assert "iinfo" not in text  # issue 6: the unrounded zero point was sent to iinfo


def test_scale_and_zero_point_mistakes_are_told_apart():
    """Two entries (q_min - math.floor(r_min / s) and q_min - r_min // s) are one mistake,
    written two ways that can differ in the last bit: they share a description."""
    for mistake in SCALE_AND_ZERO_POINT_MISTAKES:
        report = check_scale_and_zero_point(mistake.function)
        assert report.status == "failed", mistake.description
        assert report.mistake.description == mistake.description


def test_course_original_code_fails_only_the_edge_cases():
    """The course's code is right on tensors with both signs and fails one-signed, constant
    and all-zero tensors (a division by zero on the last two)."""
    report = check_scale_and_zero_point(scale_and_zero_point_course_original)
    failed = {description for description, problem, _ in report.results if problem is not None}
    assert all("test tensor" not in description for description in failed)
    assert any("one-signed" in description for description in failed)
    problems = {description: problem for description, problem, _ in report.results}
    assert "ZeroDivisionError" in problems["a constant tensor [5, 5, 5], int8"]
    assert "ZeroDivisionError" in problems["an all-zero tensor, int8"]


def test_scale_and_zero_point_odd_results_are_failures_not_crashes():
    """(scale, None), NaN, a string or a vector scale are failed cases, never an exception."""
    for result in [(1.0, None), (1.0, float("nan")), ("a", 0), (1.0, "x"), (torch.ones(2), 0), 3.0]:
        report = check_scale_and_zero_point(lambda tensor, dtype, result=result: result)
        assert report.status == "failed", result
        assert report.passed == 0, result


def test_zero_point_outside_the_range_is_rejected():
    def zero_point_too_large(tensor, dtype):
        scale, zero_point = scale_and_zero_point_python(tensor, dtype)
        return scale, zero_point + 1000

    report = check_scale_and_zero_point(zero_point_too_large)
    assert report.status == "failed" and report.passed == 0 and report.mistake is None
    assert "is outside [-128, 127]" in report.results[0][1]


def test_scale_and_zero_point_mutating_function_does_not_spoil_later_cases():
    """Two cases share the test tensor: zeroing it after answering must not break the second."""

    def answer_then_zero_the_input(tensor, dtype):
        result = scale_and_zero_point_python(tensor, dtype)
        tensor.zero_()
        return result

    assert_passed(check_scale_and_zero_point(answer_then_zero_the_input))


# =============================================================================================
# run_checks itself
# =============================================================================================


def test_run_checks_rejects_a_non_callable():
    """Passing the result instead of the function is a TypeError with a clear message."""
    with pytest.raises(TypeError, match="pass your function itself"):
        check_dequantization(dequantize_float_first(torch.ones(1, dtype=torch.int8), 1.0, 0))


def test_run_checks_passes_fresh_copies_of_arguments():
    """Each case gets deep copies: the caller's tensors are never modified."""
    shared = torch.arange(4.0)
    cases = [
        CheckCase(f"case {i}", (shared,), lambda r: None if r == 6.0 else f"got {r}", "hint")
        for i in range(2)
    ]

    def sum_then_clear(t):
        total = t.sum().item()
        t.zero_()
        return total

    assert run_checks("sum", sum_then_clear, cases).status == "passed"
    assert torch.equal(shared, torch.arange(4.0))


def test_stored_notebook_outputs_match_the_stubs():
    """The stubs as the lessons hand them out report "not attempted", word for word."""
    assert repr(check_quantize(quantize_stub)).startswith("Quantize: not attempted yet.")
    assert repr(check_dequantization(dequantize_stub)).startswith(
        "Dequantization: not attempted yet."
    )
    assert repr(check_scale_and_zero_point(scale_and_zero_point_stub)).startswith(
        "Scale and zero point: not attempted yet."
    )
