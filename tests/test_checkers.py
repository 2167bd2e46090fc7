"""Tests for the exercise checkers: check_dequantization and check_scale_and_zero_point.

Each checker is run on learner-style functions written here: a stub (not attempted), correct
solutions, the typical mistakes (including the course's own original code), and functions
that raise, return odd things or modify their inputs.
"""

from __future__ import annotations

import torch

import helper
from exercises import (
    CheckCase,
    check_dequantization,
    check_scale_and_zero_point,
    run_checks,
)

# ------------------------------------------------------------------------------------------
# Learner-style implementations
# ------------------------------------------------------------------------------------------


def dequantize_stub(quantized_tensor, scale, zero_point):
    """The exercise as handed out: the body is still empty."""


def dequantize_correct(quantized_tensor, scale, zero_point):
    """The lesson's answer: convert to float before subtracting."""
    return scale * (quantized_tensor.float() - zero_point)


def dequantize_in_integer_dtype(quantized_tensor, scale, zero_point):
    """The L2-A pitfall: q - z in int8/uint8 wraps around (127 - (-70) = 197 -> -59)."""
    return scale * (quantized_tensor - zero_point)


def dequantize_without_scale(quantized_tensor, scale, zero_point):
    """Forgets to multiply by the scale."""
    return quantized_tensor.float() - zero_point


def dequantize_returns_integers(quantized_tensor, scale, zero_point):
    """Rounds the result back to integers."""
    return (scale * (quantized_tensor.float() - zero_point)).round().to(torch.int32)


def raises(*args, **kwargs):
    """A function whose body crashes."""
    raise RuntimeError("boom")


def scale_and_zero_point_stub(tensor, dtype=torch.int8):
    """The exercise as handed out."""
    return None


def scale_and_zero_point_correct(tensor, dtype=torch.int8):
    """A correct solution: range including 0, eps floor, dtype's own range."""
    info = torch.iinfo(dtype)
    r_min = min(tensor.min().item(), 0.0)
    r_max = max(tensor.max().item(), 0.0)
    scale = max((r_max - r_min) / (info.max - info.min), torch.finfo(torch.float32).eps)
    zero_point = info.min - round(r_min / scale)
    return scale, zero_point


def scale_and_zero_point_with_tensors(tensor, dtype=torch.int8):
    """A correct solution that returns 0-dim float64 tensors instead of Python numbers."""
    info = torch.iinfo(dtype)
    values = tensor.double()
    r_min = torch.clamp(values.min(), max=0.0)
    r_max = torch.clamp(values.max(), min=0.0)
    scale = torch.clamp((r_max - r_min) / (info.max - info.min), min=torch.finfo().eps)
    return scale, info.min - torch.round(r_min / scale)


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


def scale_and_zero_point_int8_always(tensor, dtype=torch.int8):
    """Ignores dtype: uses the int8 range for every dtype."""
    return scale_and_zero_point_correct(tensor, torch.int8)


# ------------------------------------------------------------------------------------------
# check_dequantization
# ------------------------------------------------------------------------------------------


def failing_cases(report):
    """The (description, problem, hint) triples of the cases that failed."""
    return [case for case in report.results if case[1] is not None]


def assert_hints_shown(report):
    """The report text marks every failing case and shows its problem and its hint."""
    text = repr(report)
    for description, problem, hint in failing_cases(report):
        assert hint
        assert f"[FAIL] {description}: {problem}" in text
        assert f"hint: {hint}" in text


def test_dequantization_stub_is_not_attempted():
    """A function that returns None is 'not attempted', and the report says so."""
    report = check_dequantization(dequantize_stub)
    assert report.status == "not attempted"
    assert "not attempted" in repr(report)
    assert report.passed == 0


def test_dequantization_correct_solutions_pass():
    """The lesson's answer and helper's own function pass every case."""
    for function in (dequantize_correct, helper.linear_dequantization):
        report = check_dequantization(function)
        assert report.status == "passed", repr(report)
        assert report.passed == len(report.results) == 3
        assert "3 of 3 checks passed" in repr(report) and "Well done" in repr(report)


def test_dequantization_in_integer_dtype_fails_with_the_float_hint():
    """Subtracting in int8 without .float() fails, and the hint says to convert first."""
    report = check_dequantization(dequantize_in_integer_dtype)
    assert report.status == "failed"
    failed = failing_cases(report)
    assert failed
    assert any("int8 values at the ends" in description for description, _, _ in failed)
    assert_hints_shown(report)
    assert any(".float()" in hint for _, _, hint in failed)


def test_dequantization_without_scale_fails_everywhere():
    """Forgetting the scale fails all three cases, with the expected value in the message."""
    report = check_dequantization(dequantize_without_scale)
    assert report.status == "failed"
    assert len(failing_cases(report)) == 3
    assert "expected" in failing_cases(report)[0][1]
    assert_hints_shown(report)


def test_dequantization_integer_result_fails():
    """A result that is not a float tensor is reported as such."""
    report = check_dequantization(dequantize_returns_integers)
    assert report.status == "failed"
    assert all("float tensor" in problem for _, problem, _ in failing_cases(report))


def test_dequantization_function_that_raises_is_reported_not_crashing():
    """An exception in the learner's code becomes a failed case with its message."""
    report = check_dequantization(raises)
    assert report.status == "failed"
    assert all(problem == "raised RuntimeError: boom" for _, problem, _ in report.results)
    assert "raised RuntimeError: boom" in repr(report)


def test_dequantization_odd_return_values_are_failures():
    """A string or a tensor of the wrong shape is a failed case, not a crash."""
    assert check_dequantization(lambda q, s, z: "done").status == "failed"
    report = check_dequantization(lambda q, s, z: torch.zeros(2))
    assert report.status == "failed"
    assert "expected shape" in failing_cases(report)[0][1]


def test_dequantization_mutating_function_still_passes_and_leaves_cases_intact():
    """A function that overwrites its input after answering cannot spoil later cases."""

    def dequantize_then_overwrite(quantized_tensor, scale, zero_point):
        result = dequantize_correct(quantized_tensor, scale, zero_point)
        quantized_tensor.fill_(0)
        return result

    assert check_dequantization(dequantize_then_overwrite).status == "passed"
    assert check_dequantization(dequantize_correct).status == "passed"


# ------------------------------------------------------------------------------------------
# check_scale_and_zero_point
# ------------------------------------------------------------------------------------------

CASE_NAMES = ("test tensor, int8", "test tensor, uint8", "one-signed", "constant", "all-zero")


def case_status(report):
    """{case name: passed?} for the five scale and zero point cases."""
    assert len(report.results) == len(CASE_NAMES)
    return {
        name: problem is None
        for name, (_, problem, _) in zip(CASE_NAMES, report.results, strict=True)
    }


def test_scale_and_zero_point_stub_is_not_attempted():
    """A stub returning None is 'not attempted'."""
    report = check_scale_and_zero_point(scale_and_zero_point_stub)
    assert report.status == "not attempted"
    assert "not attempted" in repr(report)


def test_scale_and_zero_point_correct_solutions_pass():
    """A solution written here, one returning tensors, and helper's own function all pass."""
    for function in (
        scale_and_zero_point_correct,
        scale_and_zero_point_with_tensors,
        helper.get_q_scale_and_zero_point,
    ):
        report = check_scale_and_zero_point(function)
        assert report.status == "passed", repr(report)
        assert report.passed == 5 and "Well done" in repr(report)


def test_course_original_code_fails_only_the_edge_cases():
    """The course's code passes the test tensor but fails one-signed, constant and all-zero."""
    report = check_scale_and_zero_point(scale_and_zero_point_course_original)
    assert report.status == "failed"
    assert case_status(report) == {
        "test tensor, int8": True,
        "test tensor, uint8": True,
        "one-signed": False,
        "constant": False,
        "all-zero": False,
    }
    problems = {name: result[1] for name, result in zip(CASE_NAMES, report.results, strict=True)}
    assert problems["one-signed"].startswith("scale ")
    assert "ZeroDivisionError" in problems["constant"]
    assert "ZeroDivisionError" in problems["all-zero"]
    assert "2 of 5 checks passed" in repr(report)
    assert_hints_shown(report)
    hints = {name: result[2] for name, result in zip(CASE_NAMES, report.results, strict=True)}
    assert "r_min" in hints["one-signed"]  # extend the range to include 0
    assert "eps" in hints["all-zero"]  # floor the scale


def test_int8_range_for_every_dtype_fails_uint8_only():
    """Ignoring dtype fails exactly the uint8 case, with the iinfo hint."""
    report = check_scale_and_zero_point(scale_and_zero_point_int8_always)
    assert report.status == "failed"
    status = case_status(report)
    assert status.pop("test tensor, uint8") is False
    assert all(status.values())
    assert_hints_shown(report)
    assert "iinfo" in report.results[1][2]


def test_scale_and_zero_point_function_that_raises_is_reported():
    """Every case of a crashing function is a failure with the exception in its message."""
    report = check_scale_and_zero_point(raises)
    assert report.status == "failed"
    assert report.passed == 0
    assert all("RuntimeError" in problem for _, problem, _ in report.results)


def test_scale_and_zero_point_odd_results_are_failures_not_crashes():
    """(scale, None), NaN, a string or a vector scale are failed cases, never an exception."""
    for result in [
        (1.0, None),
        (1.0, float("nan")),
        ("a", 0),
        (1.0, "x"),
        (torch.ones(2), 0),
        (1.0, 2.5),
        3.0,
    ]:
        report = check_scale_and_zero_point(lambda tensor, dtype, result=result: result)
        assert report.status == "failed", result
        assert report.passed == 0, result


def test_zero_point_outside_the_range_is_rejected():
    """A scale that is right but a zero point outside [q_min, q_max] fails with the range."""

    def clipped_wrongly(tensor, dtype=torch.int8):
        scale, zero_point = scale_and_zero_point_correct(tensor, dtype)
        return scale, zero_point + 1000

    report = check_scale_and_zero_point(clipped_wrongly)
    assert report.status == "failed" and report.passed == 0
    assert "is outside [-128, 127]" in report.results[0][1]


def test_scale_and_zero_point_mutating_function_does_not_spoil_later_cases():
    """Two cases share the test tensor: zeroing it after answering must not break the second."""

    def answer_then_zero_the_input(tensor, dtype=torch.int8):
        result = scale_and_zero_point_correct(tensor, dtype)
        tensor.zero_()
        return result

    report = check_scale_and_zero_point(answer_then_zero_the_input)
    assert report.status == "passed", repr(report)


# ------------------------------------------------------------------------------------------
# run_checks itself
# ------------------------------------------------------------------------------------------


def test_run_checks_rejects_a_non_callable():
    """Passing the result instead of the function is a TypeError with a clear message."""
    import pytest

    with pytest.raises(TypeError, match="pass your function itself"):
        check_dequantization(dequantize_correct(torch.ones(1, dtype=torch.int8), 1.0, 0))


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

    report = run_checks("sum", sum_then_clear, cases)
    assert report.status == "passed", repr(report)
    assert torch.equal(shared, torch.arange(4.0))
