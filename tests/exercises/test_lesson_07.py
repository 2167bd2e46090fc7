"""Tests for lesson 07 (an 8-bit linear layer): its two checkers, check_w8_a16_forward (the
first step) and check_w8a16_layer (the class).

The checkers are run on learner-style answers written here, independently of the checkers'
own Mistake functions: the stubs, correct variants, each classic mistake, answers that are no
known mistake (the neutral report with the recipe, no hint), and answers that change their
input. The facts the lesson states about the bfloat16 wrap and the float32 scales are in
tests/test_lesson_07_facts.py; those about helper's layer in tests/helper/test_11_layers.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    assert_changed_in_place,
    assert_leaves_the_random_state_alone,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
)
from torch import nn

import helper
from support.exercises import (
    W8A16_LAYER_MISTAKES,
    W8A16_MISTAKES,
    check_w8_a16_forward,
    check_w8a16_layer,
)

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


def forward_in_float16(weight, input, scales, bias=None):
    """Everything made float16 first, to save memory."""
    y = F.linear(input.half(), weight.half()) * scales.half()
    if bias is not None:
        y = y + bias.half()
    return y.to(input.dtype)


def forward_bias_before_scaling(weight, input, scales, bias=None):
    y = F.linear(input.float(), weight.float())
    if bias is not None:
        y = y + bias.float().reshape(-1)
    return (y * scales).to(input.dtype)


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
        (forward_in_float16, "computes in float16"),
        (forward_bias_before_scaling, "adds the bias before multiplying by the scales"),
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


def forward_off_by_one(weight, input, scales, bias=None):
    return forward_correct(weight, input, scales, bias) + 1


def forward_squared_scales(weight, input, scales, bias=None):
    return forward_correct(weight, input, scales * scales, bias)


def forward_first_row_only(weight, input, scales, bias=None):
    y = forward_correct(weight, input, scales, bias)
    return torch.zeros_like(y) + y[..., :1]


@pytest.mark.parametrize(
    "function",
    [forward_off_by_one, forward_squared_scales, forward_first_row_only],
    ids=lambda f: f.__name__,
)
def test_an_unknown_forward_mistake_gets_the_neutral_report(function):
    """No known mistake matches: the first failing case, what was expected and what came
    back, and the recipe; no hint, neither the cases' nor another mistake's."""
    assert_neutral_report(
        check_w8_a16_forward(function),
        "Multiply in float32",
        W8A16_MISTAKES,
        "The first case that fails: the course's 3x3 weight",
        "got: tensor(",
    )


def test_checker_does_not_modify_the_learners_inputs():
    """Each call gets copies: a function that zeroes its inputs cannot spoil later cases."""

    def destructive(weight, input, scales, bias=None):
        result = forward_correct(weight.clone(), input.clone(), scales.clone(), bias)
        input.zero_()
        scales.zero_()
        return result

    assert_changed_in_place(check_w8_a16_forward(destructive), "input")


# ------------------------------------------------------------------------------------------
# Learner-style classes for check_w8a16_layer
# ------------------------------------------------------------------------------------------


class StubLayer(nn.Module):
    """The class as the notebook hands it out."""

    def __init__(self, in_features, out_features, bias=True, dtype=torch.float32):
        super().__init__()
        # Your code here

    def quantize(self, weights):
        # Your code here
        pass

    def forward(self, input):
        # Your code here
        return None


class LessonLayer(nn.Module):
    """The lesson's solution: buffers, a float32 division, a clamp, helper's forward."""

    def __init__(self, in_features, out_features, bias=True, dtype=torch.float32):
        super().__init__()
        self.register_buffer(
            "int8_weights", torch.zeros((out_features, in_features), dtype=torch.int8)
        )
        self.register_buffer("scales", torch.ones(out_features, dtype=torch.float32))
        if bias:
            self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype))
        else:
            self.bias = None

    def quantize(self, weights):
        w = weights.float()
        scales = w.abs().amax(dim=1) / 127
        self.int8_weights = torch.round(w / scales[:, None]).clamp(-128, 127).to(torch.int8)
        self.scales = scales

    def forward(self, input):
        return helper.w8_a16_forward(self.int8_weights, input, self.scales, self.bias)


class CourseWithFixes(nn.Module):
    """The course's class (random buffers, scales in dtype, a None buffer for no bias, its own
    forward) with a float32 division and a clamp: bfloat16 scales are accepted."""

    def __init__(self, in_features, out_features, bias=True, dtype=torch.float32):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        q = torch.randint(-128, 127, (out_features, in_features), generator=generator)
        self.register_buffer("int8_weights", q.to(torch.int8))
        self.register_buffer("scales", torch.ones(out_features, dtype=dtype))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights):
        w_fp32 = weights.clone().to(torch.float32)
        scales = (w_fp32.abs().max(dim=-1).values / 127).to(weights.dtype)
        q = torch.round(w_fp32 / scales.float().unsqueeze(1))
        self.int8_weights = q.clamp(-128, 127).to(torch.int8)
        self.scales = scales

    def forward(self, input):
        return forward_correct(self.int8_weights, input, self.scales.float(), self.bias)


class CopiesIntoBuffers(nn.Module):
    """quantize copies into the buffers it made; an (out,) bias; a dequantize-first forward."""

    def __init__(self, in_features, out_features, bias=True, dtype=torch.float32):
        super().__init__()
        self.register_buffer("int8_weights", torch.empty(out_features, in_features).char())
        self.register_buffer("scales", torch.empty(out_features))
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype) if bias else None)

    def quantize(self, weights):
        w = weights.detach().to(torch.float64)
        scales = w.abs().max(dim=1).values / 127
        self.scales.copy_(scales)
        q = (w / self.scales.double().view(-1, 1)).round().clamp(-128, 127)
        self.int8_weights.copy_(q)

    def forward(self, input):
        return forward_dequantize_first(self.int8_weights, input, self.scales, self.bias)


def make_layer(**changes):
    """LessonLayer with one thing changed, written out as a learner would (see each class)."""
    return type("Layer", (LessonLayer,), changes)


def _init_int8_parameter(self, in_features, out_features, bias=True, dtype=torch.float32):
    nn.Module.__init__(self)
    self.int8_weights = nn.Parameter(torch.zeros(out_features, in_features, dtype=torch.int8))
    self.register_buffer("scales", torch.ones(out_features))
    self.register_buffer("bias", torch.zeros(1, out_features, dtype=dtype) if bias else None)


def _init_frozen_parameter(self, in_features, out_features, bias=True, dtype=torch.float32):
    nn.Module.__init__(self)
    zeros = torch.zeros(out_features, in_features, dtype=torch.int8)
    self.int8_weights = nn.Parameter(zeros, requires_grad=False)
    self.register_buffer("scales", torch.ones(out_features))
    self.register_buffer("bias", torch.zeros(1, out_features, dtype=dtype) if bias else None)


def _quantize_frozen_parameter(self, weights):
    w = weights.float()
    scales = w.abs().amax(dim=1) / 127
    q = torch.round(w / scales[:, None]).clamp(-128, 127).to(torch.int8)
    self.int8_weights = nn.Parameter(q, requires_grad=False)
    self.scales = scales


def _init_float_weights(self, in_features, out_features, bias=True, dtype=torch.float32):
    nn.Module.__init__(self)
    self.register_buffer("int8_weights", torch.zeros(out_features, in_features, dtype=dtype))
    self.register_buffer("scales", torch.ones(out_features))
    self.register_buffer("bias", torch.zeros(1, out_features, dtype=dtype) if bias else None)


def _quantize_float_weights(self, weights):
    w = weights.float()
    scales = w.abs().amax(dim=1) / 127
    self.int8_weights = torch.round(w / scales[:, None]).clamp(-128, 127)
    self.scales = scales


def _quantize_keepdim(self, weights):
    scales = weights.float().abs().amax(dim=1, keepdim=True) / 127
    self.int8_weights = torch.round(weights.float() / scales).clamp(-128, 127).to(torch.int8)
    self.scales = scales


def _quantize_columns(self, weights):
    scales = weights.float().abs().amax(dim=0) / 127
    self.int8_weights = torch.round(weights.float() / scales).clamp(-128, 127).to(torch.int8)
    self.scales = scales


def _quantize_as_the_course(self, weights):
    w_fp32 = weights.clone().to(torch.float32)
    scales = w_fp32.abs().max(dim=-1).values / 127
    scales = scales.to(weights.dtype)
    self.int8_weights = torch.round(weights / scales.unsqueeze(1)).to(torch.int8)
    self.scales = scales


def _quantize_bfloat16_division_clamped(self, weights):
    scales = (weights.float().abs().amax(dim=1) / 127).to(weights.dtype)
    self.int8_weights = (weights / scales[:, None]).round().clamp(-128, 127).to(torch.int8)
    self.scales = scales


def _init_course_scales(self, in_features, out_features, bias=True, dtype=torch.float32):
    LessonLayer.__init__(self, in_features, out_features, bias, dtype)
    self.scales = torch.ones(out_features, dtype=dtype)


def _init_bias_attribute(self, in_features, out_features, bias=True, dtype=torch.float32):
    nn.Module.__init__(self)
    self.register_buffer("int8_weights", torch.zeros(out_features, in_features, dtype=torch.int8))
    self.register_buffer("scales", torch.ones(out_features))
    self.bias = torch.zeros(1, out_features, dtype=dtype) if bias else None


def _init_bias_always(self, in_features, out_features, bias=True, dtype=torch.float32):
    nn.Module.__init__(self)
    self.register_buffer("int8_weights", torch.zeros(out_features, in_features, dtype=torch.int8))
    self.register_buffer("scales", torch.ones(out_features))
    self.register_buffer("bias", torch.zeros(1, out_features, dtype=dtype))


def _quantize_transposed(self, weights):
    LessonLayer.quantize(self, weights)
    self.int8_weights = self.int8_weights.t().contiguous()


def _quantize_locally(self, weights):
    w = weights.float()
    scales = w.abs().amax(dim=1) / 127
    int8_weights = torch.round(w / scales[:, None]).clamp(-128, 127).to(torch.int8)
    return int8_weights, scales


def _forward_without_bias(self, input):
    return helper.w8_a16_forward(self.int8_weights, input, self.scales)


LAYER_MISTAKEN = [
    (
        make_layer(__init__=_init_int8_parameter),
        "keeps the int8 weights in an nn.Parameter",
    ),
    (
        make_layer(__init__=_init_frozen_parameter, quantize=_quantize_frozen_parameter),
        "keeps the int8 weights in an nn.Parameter",
    ),
    (
        make_layer(__init__=_init_float_weights, quantize=_quantize_float_weights),
        "keeps the weights as floats",
    ),
    (make_layer(quantize=_quantize_keepdim), "stores the scales with shape (out, 1)"),
    (make_layer(quantize=_quantize_columns), "takes the scales along the input features"),
    (
        make_layer(__init__=_init_course_scales, quantize=_quantize_as_the_course),
        "divides in the weights' dtype (bfloat16) and casts without a clamp",
    ),
    (
        make_layer(__init__=_init_course_scales, quantize=_quantize_bfloat16_division_clamped),
        "divides in the weights' dtype (bfloat16): the quotient is rounded",
    ),
    (make_layer(__init__=_init_bias_attribute), "keeps the bias as a plain attribute"),
    (make_layer(__init__=_init_bias_always), "registers a bias even when bias=False"),
    (make_layer(quantize=_quantize_transposed), "stores the quantized weights transposed"),
    (make_layer(quantize=_quantize_locally), "does not store the quantized weights"),
    (make_layer(forward=_forward_without_bias), "forgets the bias in forward"),
]


def assert_names_the_class_mistake(report, words):
    """The report failed and names the known mistake (speaking of a class) with its hint."""
    text = repr(report)
    assert report.status == "failed" and report.mistake is not None, text
    assert report.mistake.description.startswith(words), report.mistake.description
    assert f"It looks like your class {report.mistake.description}." in text
    assert f"hint: {report.mistake.hint}" in text


# ------------------------------------------------------------------------------------------
# check_w8a16_layer
# ------------------------------------------------------------------------------------------


def test_the_class_stub_is_not_attempted_yet():
    report = check_w8a16_layer(StubLayer)
    assert report.status == "not attempted"
    assert repr(report).startswith("W8A16 layer: not attempted yet. Your class's methods")


@pytest.mark.parametrize(
    "layer_class",
    [LessonLayer, CourseWithFixes, CopiesIntoBuffers, helper.W8A16LinearLayer],
    ids=lambda c: c.__name__,
)
def test_correct_layers_pass(layer_class):
    """Buffers made empty or random, float32 or bfloat16 scales, a None bias buffer or
    attribute, helper's forward or the learner's own, and helper's class itself."""
    assert_passed(check_w8a16_layer(layer_class), cases=4)


@pytest.mark.parametrize(
    ("layer_class", "words"), LAYER_MISTAKEN, ids=lambda v: v if isinstance(v, str) else ""
)
def test_classic_layer_mistakes_are_rejected_and_named(layer_class, words):
    assert_names_the_class_mistake(check_w8a16_layer(layer_class), words)


def test_every_layer_mistake_is_covered_by_a_learner_class_here():
    reports = [check_w8a16_layer(layer_class) for layer_class, _ in LAYER_MISTAKEN]
    assert {id(report.mistake) for report in reports} == {id(m) for m in W8A16_LAYER_MISTAKES}


def test_the_layer_case_messages_say_what_is_wrong():
    report = check_w8a16_layer(LAYER_MISTAKEN[0][0])
    assert report.results[0][1].startswith("raised RuntimeError: Only Tensors of floating")
    report = check_w8a16_layer(make_layer(__init__=_init_bias_attribute))
    assert (
        report.results[0][1] == "after __init__: bias is a plain attribute, not a registered buffer"
    )
    report = check_w8a16_layer(
        make_layer(quantize=_quantize_as_the_course, __init__=_init_course_scales)
    )
    assert report.results[2][1] == (
        "after quantize: int8_weights: element (0, 0) is -128, expected 127"
    )


def _quantize_two_steps_off(self, weights):
    LessonLayer.quantize(self, weights)
    self.int8_weights = (self.int8_weights.int() // 2 * 2).to(torch.int8)


def _forward_doubled(self, input):
    return 2 * helper.w8_a16_forward(self.int8_weights, input, self.scales, self.bias)


def _init_bias_of_ones(self, in_features, out_features, bias=True, dtype=torch.float32):
    LessonLayer.__init__(self, in_features, out_features, bias, dtype)
    if bias:
        self.bias = torch.ones(1, out_features, dtype=torch.float64)


@pytest.mark.parametrize(
    "layer_class",
    [
        make_layer(quantize=_quantize_two_steps_off),
        make_layer(forward=_forward_doubled),
        make_layer(__init__=_init_bias_of_ones),
    ],
    ids=["even-integers", "doubled-output", "float64-bias"],
)
def test_unknown_layer_mistakes_get_the_neutral_report(layer_class):
    assert_neutral_report(
        check_w8a16_layer(layer_class),
        "__init__: register_buffer int8_weights",
        W8A16_LAYER_MISTAKES,
        "The first case that fails: a float32 layer, 6 -> 4",
        "expected: {int8_weights: buffer int8 (4, 6)",
    )


def test_a_quantize_that_changes_its_weights_fails_naming_them():
    def _quantize_in_place(self, weights):
        scales = weights.float().abs().amax(dim=1) / 127
        weights.div_(scales[:, None].to(weights.dtype))  # saves memory, spoils the caller's
        self.int8_weights = weights.round().clamp(-128, 127).to(torch.int8)
        self.scales = scales

    report = check_w8a16_layer(make_layer(quantize=_quantize_in_place))
    assert_changed_in_place(report, "weights")


def test_the_layer_checker_leaves_the_random_number_generator_alone():
    assert_leaves_the_random_state_alone(lambda: check_w8a16_layer(LessonLayer))


def test_the_layer_checker_wants_a_class():
    with pytest.raises(TypeError, match="pass your class itself"):
        check_w8a16_layer(LessonLayer(2, 2))


# ------------------------------------------------------------------------------------------
# The facts the lesson's prose rests on
# ------------------------------------------------------------------------------------------


def test_an_int8_parameter_cannot_require_a_gradient():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        nn.Parameter(torch.zeros(2, 2, dtype=torch.int8))
