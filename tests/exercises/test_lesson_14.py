"""Tests for lesson 14's checker, check_decode_e4m3fn: the learner writes
my_decode_e4m3fn(byte), the value of one float8 e4m3fn code from its sign, exponent and
mantissa fields.

The checker runs on learner-style functions written here, independently of the checker's own
Mistake functions: the stub, a body without return, correct variants (bit operations, a string
of bits, a lookup through PyTorch's dtype, a table), and each classic mistake, which must be
named with its hint; wrong answers no mistake explains get the neutral report.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_names_mistake, assert_neutral_report, assert_passed

from support.exercises import DECODE_E4M3FN_MISTAKES, check_decode_e4m3fn
from support.exercises.lesson14 import DECODE_E4M3FN_RECIPE

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def decode_stub(byte):
    # Your code here
    return None


def decode_no_return(byte):
    sign = byte >> 7
    value = 2.0 ** (((byte >> 3) & 15) - 7)
    value = -value if sign else value


def decode_correct(byte):
    """The lesson's solution: shifts and masks."""
    sign = byte >> 7
    e = (byte >> 3) & 0b1111
    m = byte & 0b111
    if e == 0b1111 and m == 0b111:
        return math.nan
    if e == 0:
        value = 2.0 ** (1 - 7) * (m / 8)
    else:
        value = 2.0 ** (e - 7) * (1 + m / 8)
    return -value if sign else value


def decode_correct_from_string(byte):
    """A string of bits, int(..., 2), and the sign as a power of -1."""
    bits = format(byte, "08b")
    sign, exponent, mantissa = int(bits[0]), int(bits[1:5], 2), int(bits[5:], 2)
    if bits[1:] == "1111111":
        return float("nan")
    if exponent == 0:
        return (-1) ** sign * mantissa * 2.0**-9
    return (-1) ** sign * (8 + mantissa) * 2.0 ** (exponent - 10)


def decode_correct_with_torch(byte):
    """PyTorch's own reading of the byte, returned as a 0-d float tensor."""
    return torch.tensor([byte], dtype=torch.uint8).view(torch.float8_e4m3fn).float()[0]


_TABLE = [decode_correct(b) for b in range(256)]


def decode_correct_table(byte):
    """A lookup into a table built once (math.ldexp for the powers of two)."""
    return _TABLE[byte]


def decode_correct_ldexp(byte):
    e, m = (byte >> 3) & 15, byte & 7
    if (byte & 0x7F) == 0x7F:
        return math.nan
    magnitude = math.ldexp(m, -9) if e == 0 else math.ldexp(8 + m, e - 10)
    return math.copysign(magnitude, -1.0 if byte & 0x80 else 1.0)


def _fields(byte):
    return byte >> 7, (byte >> 3) & 15, byte & 7


def decode_bias_8(byte):
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    value = 2.0 ** (1 - 8) * m / 8 if e == 0 else 2.0 ** (e - 8) * (1 + m / 8)
    return -value if sign else value


def decode_bias_15(byte):
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    value = 2.0 ** (-14) * m / 8 if e == 0 else 2.0 ** (e - 15) * (1 + m / 8)
    return -value if sign else value


def decode_always_implicit_one(byte):
    """The normal formula for every code, NaN apart."""
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    return (-1) ** sign * 2.0 ** (e - 7) * (1 + m / 8)


def decode_implicit_one_zero_apart(byte):
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    if byte in (0x00, 0x80):
        return 0.0
    return (-1) ** sign * 2.0 ** (e - 7) * (1 + m / 8)


def decode_flushes_subnormals(byte):
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    if e == 0:
        return 0.0
    return (-1) ** sign * 2.0 ** (e - 7) * (1 + m / 8)


def decode_subnormal_exponent_minus_7(byte):
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    value = 2.0**-7 * (m / 8) if e == 0 else 2.0 ** (e - 7) * (1 + m / 8)
    return -value if sign else value


def decode_no_nan(byte):
    sign, e, m = _fields(byte)
    value = 2.0**-6 * m / 8 if e == 0 else 2.0 ** (e - 7) * (1 + m / 8)
    return -value if sign else value


def decode_ieee_special_values(byte):
    sign, e, m = _fields(byte)
    if e == 15:
        return (-math.inf if sign else math.inf) if m == 0 else math.nan
    value = 2.0**-6 * m / 8 if e == 0 else 2.0 ** (e - 7) * (1 + m / 8)
    return -value if sign else value


def decode_exponent_15_is_nan(byte):
    sign, e, m = _fields(byte)
    if e == 15:
        return float("nan")
    value = 2.0**-6 * m / 8 if e == 0 else 2.0 ** (e - 7) * (1 + m / 8)
    return -value if sign else value


def decode_ignores_sign(byte):
    _, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    return 2.0**-6 * m / 8 if e == 0 else 2.0 ** (e - 7) * (1 + m / 8)


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


def test_the_stub_is_not_attempted_yet():
    report = check_decode_e4m3fn(decode_stub)
    assert report.status == "not attempted"
    assert "not attempted yet" in repr(report)


def test_a_body_without_return_is_reported_as_such():
    report = check_decode_e4m3fn(decode_no_return)
    assert report.status == "no return"
    assert "Did you forget `return`?" in repr(report)


@pytest.mark.parametrize(
    "function",
    [
        decode_correct,
        decode_correct_from_string,
        decode_correct_with_torch,
        decode_correct_table,
        decode_correct_ldexp,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_decode_e4m3fn(function), cases=14)


def test_the_cases_agree_with_pytorch():
    """The checker's expected values are PyTorch's own reading of each code."""
    for _, problem, _ in check_decode_e4m3fn(decode_correct_with_torch).results:
        assert problem is None


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (decode_bias_8, "bias 8"),
        (decode_bias_15, "bias 15"),
        (decode_always_implicit_one, "0x00 is not even zero"),
        (decode_implicit_one_zero_apart, "only 0x00 and 0x80 zero"),
        (decode_flushes_subnormals, "flushes the subnormals"),
        (decode_subnormal_exponent_minus_7, "exponent -bias = -7"),
        (decode_no_nan, "480"),
        (decode_ieee_special_values, "IEEE 754"),
        (decode_exponent_15_is_nan, "every code with exponent field 1111 NaN"),
        (decode_ignores_sign, "ignores the sign bit"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    assert_names_mistake(check_decode_e4m3fn(function), words)


def test_every_mistake_has_its_own_description_and_is_tested_here():
    descriptions = [mistake.description for mistake in DECODE_E4M3FN_MISTAKES]
    assert len(set(descriptions)) == len(descriptions) == 10


def test_no_mistake_passes_and_no_two_mistakes_agree_on_every_case():
    outcomes = []
    for mistake in DECODE_E4M3FN_MISTAKES:
        report = check_decode_e4m3fn(mistake.function)
        assert report.status == "failed", mistake.description
        outcomes.append(tuple(problem for _, problem, _ in report.results))
    assert len(set(outcomes)) == len(outcomes)


def test_the_nan_mistake_fails_only_the_two_nan_codes():
    report = check_decode_e4m3fn(decode_no_nan)
    failed = [(description, problem) for description, problem, _ in report.results if problem]
    assert [d[:4] for d, _ in failed] == ["0x7F", "0xFF"]
    assert failed[0][1] == "got 480, expected nan"
    assert failed[1][1] == "got -480, expected nan"


def test_negative_zero_and_positive_zero_both_pass_for_0x80():
    def positive_zero(byte):
        return 0.0 if byte == 0x80 else decode_correct(byte)

    assert_passed(check_decode_e4m3fn(positive_zero), cases=14)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ("1.0", "expected a number, got str"),
        (True, "expected a number, got bool"),
        (torch.ones(2), "expected one number, got a tensor of shape (2,)"),
    ],
    ids=["string", "bool", "tensor"],
)
def test_odd_results_are_failures_not_crashes(result, words):
    report = check_decode_e4m3fn(lambda byte: result)
    assert report.status == "failed"
    assert words in report.results[0][1]


# ------------------------------------------------------------------------------------------
# Wrong answers that no known mistake explains
# ------------------------------------------------------------------------------------------


def decode_mantissa_over_7(byte):
    """Divides the mantissa by 7 (its largest value) instead of 8."""
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    value = 2.0**-6 * m / 7 if e == 0 else 2.0 ** (e - 7) * (1 + m / 7)
    return -value if sign else value


def decode_fields_swapped(byte):
    """Reads the mantissa from the high bits and the exponent from the low bits."""
    sign, m, e = byte >> 7, (byte >> 4) & 7, byte & 15
    if e == 15 and m == 7:
        return math.nan
    value = 2.0**-6 * m / 8 if e == 0 else 2.0 ** (e - 7) * (1 + m / 8)
    return -value if sign else value


def decode_nan_as_zero(byte):
    """Returns 0 for the NaN codes."""
    value = decode_correct(byte)
    return 0.0 if math.isnan(value) else value


def decode_bias_6(byte):
    sign, e, m = _fields(byte)
    if e == 15 and m == 7:
        return math.nan
    value = 2.0**-5 * m / 8 if e == 0 else 2.0 ** (e - 6) * (1 + m / 8)
    return -value if sign else value


@pytest.mark.parametrize(
    "function",
    [decode_mantissa_over_7, decode_fields_swapped, decode_nan_as_zero, decode_bias_6],
    ids=lambda f: f.__name__,
)
def test_unrecognised_wrong_answers_get_the_neutral_report(function):
    report = check_decode_e4m3fn(function)
    assert_neutral_report(report, DECODE_E4M3FN_RECIPE, DECODE_E4M3FN_MISTAKES, "  got: ")


def test_the_neutral_report_shows_the_code_and_both_values():
    text = repr(check_decode_e4m3fn(decode_mantissa_over_7))
    assert "The first case that fails: 0x4B = 0 1001 011: a normal number" in text
    assert "  input: 75" in text and "  expected: 5.5" in text


def test_an_error_in_the_learners_function_is_reported_per_case():
    def crashes_on_nan(byte):
        if byte in (0x7F, 0xFF):
            raise ValueError("no NaN here")
        return decode_correct(byte)

    report = check_decode_e4m3fn(crashes_on_nan)
    failed = [problem for _, problem, _ in report.results if problem]
    assert failed == ["raised ValueError: no NaN here"] * 2
