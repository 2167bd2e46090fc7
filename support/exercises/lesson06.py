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
    Mistake,
    _linear,
    expect_close,
    run_checks,
)

__all__ = [
    "W8A32_MISTAKES",
    "check_w8a32",
]


def _w8a32_course_code(x, q_w, s_w, z_w):
    return _linear(x, q_w.float()) * s_w + z_w


def _w8a32_scale_after(x, q_w, s_w, z_w):
    return _linear(x, q_w.float() - z_w) * s_w


def _w8a32_scale_after_no_zero_point(x, q_w, s_w, z_w):
    return _linear(x, q_w.float()) * s_w


def _w8a32_int8_weight(x, q_w, s_w, z_w):
    return _linear(x, q_w) * s_w


def _w8a32_q_times_s_plus_z(x, q_w, s_w, z_w):
    return _linear(x, q_w.float() * s_w + z_w)


def _w8a32_s_times_q_minus_z(x, q_w, s_w, z_w):
    return _linear(x, s_w * q_w.float() - z_w)


def _w8a32_int8_subtraction(x, q_w, s_w, z_w):
    return _linear(x, s_w * (q_w - z_w))


def _w8a32_transposed(x, q_w, s_w, z_w):
    return x @ (s_w * (q_w.float() - z_w))


def _w8a32_no_zero_point(x, q_w, s_w, z_w):
    return _linear(x, s_w * q_w.float())


def _w8a32_adds_zero_point(x, q_w, s_w, z_w):
    return _linear(x, s_w * (q_w.float() + z_w))


def _w8a32_divides(x, q_w, s_w, z_w):
    return _linear(x, (q_w.float() - z_w) / s_w)


_DEQUANTIZE_FIRST = (
    "Dequantize the weight first, in float, then multiply: "
    "F.linear(input, s_w * (q_w.float() - z_w))."
)

W8A32_MISTAKES = (
    Mistake(
        "passes the int8 weight straight to F.linear",
        _w8a32_int8_weight,
        "F.linear (and @) refuses to mix an int8 weight with a float input. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "is the course's code: F.linear(input, q_w.float()) * s_w + z_w",
        _w8a32_course_code,
        "that is right only for one per-tensor scale and z_w = 0. A per-channel scale of shape "
        "(out, 1) multiplied after F.linear broadcasts against the (batch, out) output along "
        "the wrong axis, and z_w belongs inside, subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "multiplies by the scale after F.linear",
        _w8a32_scale_after,
        "a per-channel scale has shape (out, 1): one value per row of the weight. After "
        "F.linear the output channels lie along the last axis, so (batch, out) * (out, 1) "
        "broadcasts to the wrong shape or fails. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "multiplies by the scale after F.linear and leaves out the zero point",
        _w8a32_scale_after_no_zero_point,
        "a per-channel scale of shape (out, 1) must multiply the weight's rows, before F.linear, "
        "and the zero point must be subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "dequantizes as q_w * s_w + z_w",
        _w8a32_q_times_s_plus_z,
        "the dequantize formula is s * (q - z): the zero point is subtracted from q, in integer "
        "steps, before scaling. q * s + z only agrees when z = 0.",
    ),
    Mistake(
        "multiplies before subtracting (s_w * q_w - z_w)",
        _w8a32_s_times_q_minus_z,
        "the scale multiplies the difference: s_w * (q_w.float() - z_w), with parentheses.",
    ),
    Mistake(
        "subtracts the zero point in int8",
        _w8a32_int8_subtraction,
        "convert first, q_w.float() - z_w: int8 arithmetic wraps around silently "
        "(127 - (-5) = 132 is stored as -124).",
    ),
    Mistake(
        "uses the weight transposed",
        _w8a32_transposed,
        "the weight is (out_features, in_features): F.linear(input, w) computes input @ w.T. "
        "input @ w (without .T) mixes up the two axes.",
    ),
    Mistake(
        "leaves out the zero point",
        _w8a32_no_zero_point,
        "subtract the zero point from q_w before scaling: s_w * (q_w.float() - z_w).",
    ),
    Mistake(
        "adds the zero point",
        _w8a32_adds_zero_point,
        "subtract it: q_w = z_w must stand for the real weight 0.",
    ),
    Mistake(
        "divides by the scale",
        _w8a32_divides,
        "multiply by the scale to dequantize: one step of q_w is worth s_w in real units.",
    ),
)


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
