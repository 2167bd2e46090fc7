"""Lesson 07, an 8-bit linear layer (W8A16): ``check_w8_a16_forward``.

The learner writes ``w8_a16_forward(weight, input, scales, bias=None)``: int8 weight (out,
in), float32 scales (out,) as ``W8A16LinearLayer`` stores them, a float input of any dtype.
The bfloat16 and float16 cases use small dyadic numbers, so every float32 or float64 way of
computing them is exact and rounds to the same 16-bit result.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from helper import dtype_name, linear_q_symmetric_per_channel, w8_a16_forward
from support.exercises.core import (
    _COURSE_WEIGHT,
    CheckCase,
    CheckReport,
    _linear,
    _worst,
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "W8A16_MISTAKES",
    "check_w8_a16_forward",
]


def _float32_product(weight, input, scales):
    """The right product: F.linear in float32, each output times its row's scale."""
    return _linear(input.float(), weight.float()) * scales


def _input_dtype_product(weight, input, scales):
    """The course's product: F.linear in the input's dtype, then the scales."""
    return _linear(input, weight.to(input.dtype)) * scales


def _w8a16_variant(
    weight,
    input,
    scales,
    bias=None,
    *,
    product=_float32_product,
    add_bias="if given",
    bias_float=True,
    cast=True,
):
    """The right forward pass, or one classic mistake, depending on the keywords: ``product``
    makes the scaled output, ``add_bias`` is ``"if given"``, ``"never"`` or ``"always"`` (even
    ``None``), ``bias_float`` converts the bias to float32 before adding it, and ``cast``
    returns the input's dtype."""
    output = product(weight, input, scales)
    if add_bias == "always" or (add_bias == "if given" and bias is not None):
        output = output + (bias.float() if bias_float else bias)
    return output.to(input.dtype) if cast else output


_W8A16_RECIPE = (
    "Multiply in float32, then scale each output by its own row's scale and add the bias: "
    "(F.linear(input.float(), weight.float()) * scales + bias).to(input.dtype)."
)
_BIAS_OPTIONAL = (
    "bias=None means the layer has no bias: add it only `if bias is not None`. " + _W8A16_RECIPE
)

# One row per classic mistake: (description, what differs from the right forward pass, hint).
_W8A16_ROWS = (
    (
        "passes the int8 weight straight to F.linear",
        dict(product=lambda w, x, s: _linear(x, w) * s, bias_float=False, cast=False),
        "F.linear (and @) refuses to mix an int8 weight with a float input: convert it with "
        "weight.float() first. " + _W8A16_RECIPE,
    ),
    (
        "multiplies the output by scales of shape (out, 1)",
        dict(product=lambda w, x, s: _linear(x.float(), w.float()) * s[:, None]),
        "after the product the output channels lie along the LAST axis of the (batch, out) "
        "output, so the scales must keep their shape (out,). A (out, 1) scale broadcasts a "
        "single token's output to (out, out), and fails for a batch. " + _W8A16_RECIPE,
    ),
    (
        "leaves out the bias",
        dict(add_bias="never"),
        "add the bias after scaling: it is a float value per output, not scaled. " + _BIAS_OPTIONAL,
    ),
    (
        "adds the bias even when there is none (bias=None)",
        dict(add_bias="always", bias_float=False),
        _BIAS_OPTIONAL,
    ),
    ("adds the bias even when there is none (bias=None)", dict(add_bias="always"), _BIAS_OPTIONAL),
    (
        "divides by the scales",
        dict(product=lambda w, x, s: _linear(x.float(), w.float()) / s),
        "multiply: one step of the int8 weight is worth `scale` in real units, so the product "
        "of integers is `1 / scale` times too large until you multiply by the scale.",
    ),
    (
        "multiplies the weight by the scales along its columns (the input features)",
        dict(product=lambda w, x, s: _linear(x.float(), w.float() * s)),
        "weight * scales broadcasts the (out,) scales along the weight's last axis, its "
        "in_features: scale o multiplies column o. Each scale belongs to a ROW: either "
        "weight.float() * scales[:, None] before the product, or the output times scales after.",
    ),
    (
        "multiplies by the weight without transposing it",
        dict(product=lambda w, x, s: (x.float() @ w.float()) * s),
        "the weight is (out_features, in_features): F.linear(input, w) computes input @ w.T. "
        "input @ w mixes up the two axes (and fails unless the weight is square).",
    ),
    (
        "returns float32 for a bfloat16 or float16 input",
        dict(cast=False),
        "a layer must hand the next layer the dtype it was given: end with `.to(input.dtype)`.",
    ),
    (
        "multiplies in the input's dtype (weight.to(input.dtype)): in float16 the product "
        "overflows to inf",
        dict(product=_input_dtype_product, bias_float=False),
        "the integer product x @ W_int8.T is 1 / scale times larger than the output, and "
        "float16 stops at 65504: it becomes inf before the scale can shrink it. Multiply in "
        "float32 (input.float(), weight.float()), then cast the result to input.dtype.",
    ),
    (
        "is the course's code: F.linear(input, weight.to(input.dtype)) * scales + bias",
        dict(product=_input_dtype_product, bias_float=False, cast=False),
        "two problems: in float16 the integer product overflows to inf before the scales "
        "shrink it, and float32 scales turn a bfloat16 result into float32. " + _W8A16_RECIPE,
    ),
)
W8A16_MISTAKES = mistakes_from_rows(_W8A16_ROWS, _w8a16_variant)


def _expect_w8a16(
    weight: torch.Tensor, input: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None
) -> Callable[[Any], str | None]:
    """A check against ``helper.w8_a16_forward``: the input's dtype and shape, finite values,
    and each output within a few roundings of its dtype, measured against the sum of the
    magnitudes that make it up (so the order of the float operations does not matter)."""

    expected = w8_a16_forward(weight, input, scales, bias)
    magnitude = _linear(input.double().abs(), weight.double().abs()) * scales.double()
    if bias is not None:
        magnitude = magnitude + bias.double().abs().reshape(-1)
    tolerance = max(2 * torch.finfo(input.dtype).eps, 1e-5) * magnitude + 1e-6

    def check(result: Any) -> str | None:
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if result.dtype != expected.dtype:
            return (
                f"expected dtype {dtype_name(expected.dtype)} (the input's), got "
                f"{dtype_name(result.dtype)}"
            )
        if result.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(result.shape)}"
        if not bool(torch.isfinite(result).all()):
            bad = int((~torch.isfinite(result)).sum())
            return f"{bad} of the {result.numel()} outputs are inf or NaN; all should be finite"
        if bool(((result.double() - expected.double()).abs() > tolerance).any()):
            return _worst(result, expected)
        return None

    return check


def _w8a16_cases() -> list[CheckCase]:
    """The cases of ``check_w8_a16_forward``: inputs that tell the classic mistakes apart."""

    q_course, s_course = linear_q_symmetric_per_channel(torch.tensor(_COURSE_WEIGHT), dim=0)
    q_4x3 = torch.tensor(
        [[127, -40, 12], [-3, 64, -127], [90, 90, -90], [1, -127, 2]], dtype=torch.int8
    )
    s_4x3 = torch.tensor([0.0125, 0.03, 0.002, 0.1])
    dyadic_scales = torch.tensor([2**-6, 2**-5, 2**-8, 2**-4])
    q_big = torch.tensor(
        [[127, 127, 127], [-128, 64, 3], [5, -7, 100], [100, 100, -100]], dtype=torch.int8
    )
    batch = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
    specs = [
        (
            "the course's 3x3 weight, scales per row, input [[1, 2, 3]], no bias",
            (q_course, torch.tensor([[1.0, 2.0, 3.0]]), s_course.reshape(-1), None),
        ),
        (
            "a batch of 2, a 4x3 weight, a bias of shape (4,)",
            (q_4x3, batch, s_4x3, torch.tensor([0.5, -1.0, 0.25, 2.0])),
        ),
        (
            "a 3-D input (2 sequences of 2 tokens), as a model passes it, bias (1, 4)",
            (q_4x3, torch.stack([batch, batch.flip(0)]), s_4x3, torch.tensor([[1.0, 0, -1, 3]])),
        ),
        (
            "a bfloat16 input and bias (1, 4), float32 scales",
            (
                q_4x3,
                batch.to(torch.bfloat16),
                dyadic_scales,
                torch.tensor([[0.5, -1.0, 0.25, 2.0]], dtype=torch.bfloat16),
            ),
        ),
        (
            "a float16 input whose product with the int8 weight exceeds 65504 before scaling",
            (
                q_big,
                torch.tensor([[200.0, 180.0, 220.0], [1.0, -2.0, 0.5]], dtype=torch.float16),
                torch.tensor([2**-10, 2**-9, 2**-7, 2**-10]),
                torch.tensor([1.0, -0.5, 0.25, 0.0], dtype=torch.float16),
            ),
        ),
    ]
    general = (
        "y = (input @ weight.T) * scales + bias, computed in float32 and returned in "
        "input.dtype; compare with helper.w8_a16_forward."
    )
    return [CheckCase(text, args, _expect_w8a16(*args), general) for text, args in specs]


def check_w8_a16_forward(function: Callable) -> CheckReport:
    """Exercise of lesson 07: ``my_w8_a16_forward(weight, input, scales, bias=None)``, the
    forward pass of a W8A16 layer: int8 ``weight`` (out, in), float32 ``scales`` (out,),
    ``bias`` of shape (out,) or (1, out) or None, and a float input of any dtype.

    The reference is ``helper.w8_a16_forward``. The cases: the course's weight per row with
    one token and no bias (a (out, 1) scale gives a 3x3 output), a batch with a 4x3 weight (a
    transposed weight or column scales fail), a 3-D input, a bfloat16 input (the result must
    stay bfloat16) and a float16 input whose integer product overflows float16.
    """
    return run_checks("W8A16 forward", function, _w8a16_cases(), W8A16_MISTAKES)
