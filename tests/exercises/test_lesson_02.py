"""Tests for the checker of lesson 02: check_scale_and_zero_point.

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
from conftest import assert_changed_in_place, assert_passed, assert_rejected_as

import helper
from support.exercises import SCALE_AND_ZERO_POINT_MISTAKES, check_scale_and_zero_point
from support.exercises.lesson02 import SCALE_AND_ZERO_POINT_RECIPE


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

    assert_changed_in_place(check_scale_and_zero_point(answer_then_zero_the_input), "tensor")


def test_stored_notebook_outputs_match_the_stubs():
    """The stub as the lesson hands it out reports "not attempted", word for word."""
    assert repr(check_scale_and_zero_point(scale_and_zero_point_stub)).startswith(
        "Scale and zero point: not attempted yet."
    )


# --- wrong answers that no known mistake explains -------------------------------------------


def scale_over_q_max(tensor, dtype):
    """Divides the range by q_max (127) instead of q_max - q_min (255)."""
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / info.max, EPS)
    return scale, info.min - round(r_min / scale)


def symmetric_instead(tensor, dtype):
    """Lesson 04's symmetric range here: z in the middle, scale 2 max|r| / 255."""
    info = torch.iinfo(dtype)
    scale = max(2 * tensor.abs().max().item() / (info.max - info.min), EPS)
    return scale, 0 if info.min < 0 else 128


def mean_instead_of_min(tensor, dtype):
    info = torch.iinfo(dtype)
    r_min, r_max = min(tensor.mean().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (info.max - info.min), EPS)
    return scale, info.min - round(r_min / scale)


@pytest.mark.parametrize(
    "function", [scale_over_q_max, symmetric_instead, mean_instead_of_min], ids=lambda f: f.__name__
)
def test_unknown_mistake_gets_the_first_failing_case_and_the_recipe(function):
    report = check_scale_and_zero_point(function)
    text = repr(report)
    assert report.status == "failed" and report.mistake is None, text
    assert "It looks like your function" not in text
    assert "The first case that fails:" in text
    assert f"recipe: {SCALE_AND_ZERO_POINT_RECIPE}" in text
    assert "  expected: (" in text  # the expected (scale, zero_point) pair
    for mistake in SCALE_AND_ZERO_POINT_MISTAKES:
        assert mistake.hint not in text, mistake.description
    for _, _, hint in report.results:
        assert f"hint: {hint}" not in text


def test_a_huge_wrong_result_is_shown_short():
    """The report never prints a learner's result in full."""
    report = check_scale_and_zero_point(lambda tensor, dtype: list(range(10**6)))
    assert report.status == "failed" and len(repr(report)) < 5_000
