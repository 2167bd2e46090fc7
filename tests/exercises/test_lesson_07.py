"""Tests for lesson 07 (an 8-bit linear layer): its checker, check_w8_a16_forward.

The checker is run on learner-style functions written here, independently of the checker's
own Mistake functions: the stub, a body without ``return``, correct variants (scale after the
product or dequantize first, float32 or float64, ``F.linear`` or ``@``, helper's own
function), each classic mistake, and functions that raise. A last test pins a fact the
lesson's prose is built on, with plain torch; the facts about helper's layer (the bfloat16
wrap, the float16 overflow, the float32 scales) are in tests/helper/test_11_layers.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_changed_in_place, assert_names_mistake, assert_passed
from torch import nn

import helper
from support.exercises import W8A16_MISTAKES, check_w8_a16_forward

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def forward_correct(weight, input, scales, bias=None):
    """The lesson's solution."""
    output = F.linear(input.float(), weight.float()) * scales
    if bias is not None:
        output = output + bias.float()
    return output.to(input.dtype)


def forward_dequantize_first(weight, input, scales, bias=None):
    """Dequantize the weight (rows times scales), then F.linear with the bias."""
    w = weight.to(torch.float32) * scales.unsqueeze(1)
    b = None if bias is None else bias.reshape(-1).to(torch.float32)
    return F.linear(input.to(torch.float32), w, b).to(input.dtype)


def forward_float64_matmul(weight, input, scales, bias=None):
    """In float64, with @ and .T and a (1, out) view of the scales."""
    y = (input.double() @ weight.double().T) * scales.double().view(1, -1)
    if bias is not None:
        y += bias.double().view(-1)
    return y.type(input.dtype)


def forward_dequantize_in_input_dtype(weight, input, scales, bias=None):
    """Dequantized in float32, then everything in the input's dtype: small weights, no
    overflow, so this is right too."""
    w = (weight.float() * scales[:, None]).to(input.dtype)
    y = input @ w.t()
    if bias is not None:
        y = y + bias.to(input.dtype).flatten()
    return y


def forward_helper(weight, input, scales, bias=None):
    return helper.w8_a16_forward(weight, input, scales, bias)


def forward_int8_weight(weight, input, scales, bias=None):
    y = F.linear(input, weight) * scales
    if bias is not None:
        y = y + bias
    return y


def forward_scales_as_column(weight, input, scales, bias=None):
    y = torch.matmul(input.float(), weight.float().T) * scales.view(-1, 1)
    if bias is not None:
        y = y + bias
    return y.to(input.dtype)


def forward_no_bias(weight, input, scales, bias=None):
    return (input.double() @ weight.double().T * scales.double()).to(input.dtype)


def forward_bias_always(weight, input, scales, bias=None):
    return (F.linear(input.float(), weight.float()) * scales + bias).to(input.dtype)


def forward_bias_always_converted(weight, input, scales, bias=None):
    y = F.linear(input.float(), weight.float()) * scales
    return (y + bias.to(torch.float32)).to(input.dtype)


def forward_divides(weight, input, scales, bias=None):
    y = (input.float() @ weight.float().T) / scales
    if bias is not None:
        y = y + bias
    return y.to(input.dtype)


def forward_scales_along_columns(weight, input, scales, bias=None):
    w = weight.float() * scales.unsqueeze(0)
    y = F.linear(input.float(), w)
    if bias is not None:
        y = y + bias
    return y.to(input.dtype)


def forward_not_transposed(weight, input, scales, bias=None):
    y = torch.matmul(input.float(), weight.float()) * scales
    if bias is not None:
        y = y + bias
    return y.to(input.dtype)


def forward_float32_result(weight, input, scales, bias=None):
    y = F.linear(input.to(torch.float32), weight.to(torch.float32)) * scales
    if bias is not None:
        y = y + bias
    return y


def forward_in_input_dtype(weight, input, scales, bias=None):
    casted = weight.to(input.dtype)
    y = F.linear(input, casted) * scales.to(input.dtype)
    if bias is not None:
        y = y + bias.to(input.dtype)
    return y


def forward_course(weight, input, scales, bias=None):
    """The course's code, as a learner copies it from the video."""
    casted_weights = weight.to(input.dtype)
    output = F.linear(input, casted_weights) * scales
    if bias is not None:
        output = output + bias
    return output


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        forward_correct,
        forward_dequantize_first,
        forward_float64_matmul,
        forward_dequantize_in_input_dtype,
        forward_helper,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_w8_a16_forward(function), cases=5)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (forward_int8_weight, "int8 weight straight to F.linear"),
        (forward_scales_as_column, "scales of shape (out, 1)"),
        (forward_no_bias, "leaves out the bias"),
        (forward_bias_always, "even when there is none"),
        (forward_bias_always_converted, "even when there is none"),
        (forward_divides, "divides by the scales"),
        (forward_scales_along_columns, "along its columns"),
        (forward_not_transposed, "without transposing"),
        (forward_float32_result, "returns float32"),
        (forward_in_input_dtype, "in the input's dtype"),
        (forward_course, "the course's code"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    report = check_w8_a16_forward(function)
    assert_names_mistake(report, words)


def test_every_mistake_fails_and_is_recognised_as_itself():
    """Each Mistake fails some case and no earlier Mistake shadows it (two entries that
    differ only by the exception they raise share one description)."""
    for mistake in W8A16_MISTAKES:
        report = check_w8_a16_forward(mistake.function)
        assert report.status == "failed", mistake.description
        assert report.mistake.description == mistake.description


def test_a_scale_column_gives_a_square_output_for_one_token():
    report = check_w8_a16_forward(forward_scales_as_column)
    description, problem, _ = report.results[0]
    assert "[[1, 2, 3]]" in description
    assert "expected shape (1, 3), got (3, 3)" in problem
    assert "raised RuntimeError" in report.results[1][1]  # a batch of 2 does not broadcast


def test_the_float16_case_reports_the_overflow():
    report = check_w8_a16_forward(forward_in_input_dtype)
    failed = [(d, p) for d, p, _ in report.results if p is not None]
    assert len(failed) == 1
    description, problem = failed[0]
    assert "float16" in description and "65504" in description
    assert "inf or NaN" in problem


def test_a_float32_result_is_reported_as_the_wrong_dtype():
    report = check_w8_a16_forward(forward_float32_result)
    problems = [p for _, p, _ in report.results if p is not None]
    assert problems == [
        "expected dtype bfloat16 (the input's), got float32",
        "expected dtype float16 (the input's), got float32",
    ]


def test_a_forgotten_bias_passes_only_the_case_without_bias():
    report = check_w8_a16_forward(forward_no_bias)
    assert [p is None for _, p, _ in report.results] == [True, False, False, False, False]


def test_an_unknown_mistake_gets_the_case_hints():
    """Off by a constant: no known mistake, so every failing case shows its own hint."""

    def off_by_one(weight, input, scales, bias=None):
        return forward_correct(weight, input, scales, bias) + 1

    report = check_w8_a16_forward(off_by_one)
    assert report.status == "failed" and report.mistake is None
    assert "hint: y = (input @ weight.T) * scales + bias" in repr(report)


def test_checker_does_not_modify_the_learners_inputs():
    """Each call gets copies: a function that zeroes its inputs cannot spoil later cases."""

    def destructive(weight, input, scales, bias=None):
        result = forward_correct(weight.clone(), input.clone(), scales.clone(), bias)
        input.zero_()
        scales.zero_()
        return result

    assert_changed_in_place(check_w8_a16_forward(destructive), "input")


# ------------------------------------------------------------------------------------------
# The facts the lesson's prose rests on
# ------------------------------------------------------------------------------------------


def test_an_int8_parameter_cannot_require_a_gradient():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        nn.Parameter(torch.zeros(2, 2, dtype=torch.int8))
