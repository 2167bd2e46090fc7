"""Lesson 06, weights and activations: ``check_w8a32``.

The learner writes ``my_w8a32(input, q_w, s_w, z_w)``, a linear layer without bias whose weight
is stored as integers, checked against ``helper.quantized_linear_W8A32_without_bias``.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helper import (
    linear_q_symmetric,
    linear_q_symmetric_per_channel,
    linear_quantization,
    quantize_blockwise,
    quantized_linear_W8A32_without_bias,
)
from support.exercises.core import (
    _COURSE_WEIGHT,
    CheckCase,
    CheckReport,
    _linear,
    expect_close,
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "W8A32_MISTAKES",
    "check_w8a32",
]


_DEQUANTIZE_FIRST = (
    "Dequantize the weight first, in float, then multiply: "
    "F.linear(input, s_w * (q_w.float() - z_w))."
)

# One row per classic mistake: (description, the wrong layer, hint).
_W8A32_ROWS = (
    (
        "passes the int8 weight straight to F.linear",
        lambda x, q_w, s_w, z_w: _linear(x, q_w) * s_w,
        "F.linear (and @) refuses to mix an int8 weight with a float input. " + _DEQUANTIZE_FIRST,
    ),
    (
        "is the course's code: F.linear(input, q_w.float()) * s_w + z_w",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float()) * s_w + z_w,
        "that is right only for one per-tensor scale and z_w = 0. A per-channel scale of shape "
        "(out, 1) multiplied after F.linear broadcasts against the (batch, out) output along "
        "the wrong axis, and z_w belongs inside, subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    (
        "multiplies by the scale after F.linear",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float() - z_w) * s_w,
        "a per-channel scale has shape (out, 1): one value per row of the weight. After "
        "F.linear the output channels lie along the last axis, so (batch, out) * (out, 1) "
        "broadcasts to the wrong shape or fails. " + _DEQUANTIZE_FIRST,
    ),
    (
        "multiplies by the scale after F.linear and leaves out the zero point",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float()) * s_w,
        "a per-channel scale of shape (out, 1) must multiply the weight's rows, before F.linear, "
        "and the zero point must be subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    (
        "dequantizes as q_w * s_w + z_w",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float() * s_w + z_w),
        "the dequantize formula is s * (q - z): the zero point is subtracted from q, in integer "
        "steps, before scaling. q * s + z only agrees when z = 0.",
    ),
    (
        "multiplies before subtracting (s_w * q_w - z_w)",
        lambda x, q_w, s_w, z_w: _linear(x, s_w * q_w.float() - z_w),
        "the scale multiplies the difference: s_w * (q_w.float() - z_w), with parentheses.",
    ),
    (
        "subtracts the zero point in int8",
        lambda x, q_w, s_w, z_w: _linear(x, s_w * (q_w - z_w)),
        "convert first, q_w.float() - z_w: int8 arithmetic wraps around silently "
        "(127 - (-5) = 132 is stored as -124).",
    ),
    (
        "uses the weight transposed",
        lambda x, q_w, s_w, z_w: x @ (s_w * (q_w.float() - z_w)),
        "the weight is (out_features, in_features): F.linear(input, w) computes input @ w.T. "
        "input @ w (without .T) mixes up the two axes.",
    ),
    (
        "leaves out the zero point",
        lambda x, q_w, s_w, z_w: _linear(x, s_w * q_w.float()),
        "subtract the zero point from q_w before scaling: s_w * (q_w.float() - z_w).",
    ),
    (
        "adds the zero point",
        lambda x, q_w, s_w, z_w: _linear(x, s_w * (q_w.float() + z_w)),
        "subtract it: q_w = z_w must stand for the real weight 0.",
    ),
    (
        "divides by the scale",
        lambda x, q_w, s_w, z_w: _linear(x, (q_w.float() - z_w) / s_w),
        "multiply by the scale to dequantize: one step of q_w is worth s_w in real units.",
    ),
)
W8A32_MISTAKES = mistakes_from_rows(_W8A32_ROWS)


def _w8a32_cases() -> list[CheckCase]:
    """The cases of ``check_w8a32``: inputs that tell the classic mistakes apart."""

    course = torch.tensor([1.0, 2.0, 3.0])  # the course's input, 1-D
    weight = torch.tensor(_COURSE_WEIGHT)
    wide = torch.tensor([[0.5, -1.2, 2.0], [-0.03, 0.02, 0.01], [1.5, 0.4, -0.9], [0.2, 0.1, 0.3]])
    batch = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
    q_a, s_a, z_a = linear_quantization(weight)  # asymmetric: z_a = -5, q_a reaches 127
    q_g, s_g, z_g = quantize_blockwise(wide, (1, 3))  # one scale and zero point per row
    specs = [
        ("the course example: input [1, 2, 3], one per-tensor scale", course)
        + (*linear_q_symmetric(weight), 0),
        ("the course example with per-channel scales of shape (3, 1)", course)
        + (*linear_q_symmetric_per_channel(weight, dim=0), 0),
        ("a batch of 2, a 4x3 weight, per-channel scales of shape (4, 1)", batch)
        + (*linear_q_symmetric_per_channel(wide, dim=0), 0),
        (f"the course weight, asymmetric: z_w = {z_a} and q_w reaches 127", course[None])
        + (q_a, s_a, z_a),
        ("a batch of 2, a 4x3 weight, per-channel scales and zero points (4, 1)", batch)
        + (q_g, s_g.to(torch.float32), z_g),
    ]
    general = "y = F.linear(input, s_w * (q_w.float() - z_w)): dequantize first, then multiply."
    return [
        CheckCase(
            text,
            (x, q, s, z),
            expect_close(quantized_linear_W8A32_without_bias(x, q, s, z)),
            general,
        )
        for text, x, q, s, z in specs
    ]


def check_w8a32(function: Callable) -> CheckReport:
    """Exercise of lesson 06: ``my_w8a32(input, q_w, s_w, z_w)``, a linear layer without bias
    whose weight is stored as integers, with a per-tensor or per-channel scale.

    The reference is ``quantized_linear_W8A32_without_bias``. The cases: the course example
    (1-D input, per-tensor scale), the same weight per channel (a scale applied after
    ``F.linear`` broadcasts to 3x3), a batch with a non-square weight (a transposed weight or a
    late scale fails outright), an asymmetric weight whose ``q_w - z_w`` leaves int8, and
    per-channel zero points.
    """
    return run_checks("W8A32 linear layer", function, _w8a32_cases(), W8A32_MISTAKES)
