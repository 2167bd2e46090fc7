"""Lesson 06, weights and activations: ``check_w8a32``.

The learner writes ``my_w8a32(input, q_w, s_w, z_w)``, a linear layer without bias whose weight
is stored as integers, checked against ``helper.quantized_linear_W8A32_without_bias``.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "W8A32_MISTAKES",
    "W8A32_RECIPE",
    "check_w8a32",
]


_DEQUANTIZE_FIRST = (
    "Dequantize the weight first, in float, then multiply: "
    "F.linear(input, s_w * (q_w.float() - z_w))."
)
_SIXTEEN_BIT_HINT = (
    "this layer is W8A32: dequantize into float32 (q_w.float(), or q_w.to(torch.float32) as "
    "the course writes it) and keep the input float32. float16 keeps about 3 significant "
    "digits and stops at 65,504 (a larger output becomes inf); bfloat16 keeps 2 to 3 digits. "
    "Lesson 07 builds a layer with 16-bit activations on purpose, and measures what it costs."
)


_FLOAT16_DESCRIPTION = (
    "computes in float16: its outputs carry float16's rounding, and 93,956.7 overflows to inf "
    "(float16 stops at 65,504)"
)


def _in_float16(x, q_w, s_w, z_w):
    """The layer computed in float16: the dequantized weight and the input rounded to it."""
    weight = torch.as_tensor(s_w) * (q_w.float() - torch.as_tensor(z_w))
    return _linear(x.half(), weight.half())


# One row per classic mistake: (description, the wrong layer, hint).
_W8A32_ROWS = (
    (
        "passes the int8 weight straight to F.linear",
        lambda x, q_w, s_w, z_w: _linear(x, q_w) * s_w,
        "F.linear (and @) refuses to mix an int8 weight with a float input. " + _DEQUANTIZE_FIRST,
    ),
    (
        "applies the scale and the zero point to F.linear's output: "
        "F.linear(input, q_w.float()) * s_w + z_w",
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
        "broadcasts to the wrong shape or fails. Scaling after F.linear is right only with the "
        "scale laid along that axis, shape (out,) or (1, out), as the course's L4 "
        "w8_a16_forward takes it. " + _DEQUANTIZE_FIRST,
    ),
    (
        "multiplies F.linear's output by s_w.reshape(-1) (or .view(-1), .flatten()): right per "
        "channel, but a per-tensor s_w is a Python float, which has no such method",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float() - z_w) * s_w.reshape(-1),
        "a scale per output row may be applied after F.linear once it lies along the output's "
        "last axis, but s_w is also a plain number here. Use torch.as_tensor(s_w).reshape(-1), "
        "or dequantize first, which works for a number and an (out, 1) tensor alike: "
        "F.linear(input, s_w * (q_w.float() - z_w)).",
    ),
    (
        "multiplies by the scale after F.linear and leaves out the zero point",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float()) * s_w,
        "a per-channel scale of shape (out, 1) must multiply the weight's rows, before F.linear, "
        "and the zero point must be subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    (
        "dequantizes as q_w * s_w + z_w, as the course's L3-E code does",
        lambda x, q_w, s_w, z_w: _linear(x, q_w.float() * s_w + z_w),
        "the dequantize formula is s * (q - z): the zero point is subtracted from q, in integer "
        "steps, before scaling. q * s + z agrees with it only when z = 0, the only case the "
        "course runs.",
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
    (_FLOAT16_DESCRIPTION, _in_float16, _SIXTEEN_BIT_HINT),
    (_FLOAT16_DESCRIPTION, lambda *args: _in_float16(*args).float(), _SIXTEEN_BIT_HINT),
    (
        "computes (or rounds the weight or the input) in a 16-bit float type: its outputs are off "
        "by 16-bit rounding",
        lambda x, q_w, s_w, z_w: _linear(x, (s_w * (q_w.float() - z_w)).half().float()),
        _SIXTEEN_BIT_HINT,
    ),
)
W8A32_MISTAKES = mistakes_from_rows(_W8A32_ROWS)
_FLOAT16, _SIXTEEN_BIT = W8A32_MISTAKES[-3], W8A32_MISTAKES[-1]

#: The lesson's method, shown when a run fails and no known mistake explains it.
W8A32_RECIPE = (
    "dequantize the weight first, in float32: W = s_w * (q_w.float() - z_w) (an (out, 1) "
    "scale multiplies the weight's rows); then y = F.linear(input, W)."
)

#: float16's largest finite number.
_FLOAT16_MAX = torch.finfo(torch.float16).max


def _sixteen_bit_kind(results: list, expected: list[torch.Tensor]) -> Mistake | None:
    """Which 16-bit mistake, if any, every case's result shows: each is a float tensor of the
    expected shape, within 16-bit rounding (1%) of the expected output where that is below
    65,504, and, where it is above, ``inf`` of the same sign (float16) or close (another
    16-bit type, or a weight rounded to 16 bits)."""
    overflowed = False
    for result, want in zip(results, expected, strict=True):
        if not isinstance(result, torch.Tensor) or not result.is_floating_point():
            return None
        if result.shape != want.shape or result.is_meta:
            return None
        got, want = result.detach().double(), want.double()
        big = want.abs() > _FLOAT16_MAX
        tolerance = 1e-2 * float(want.abs().max()) + 1e-6
        if bool(big.any()):
            infinite = torch.isinf(got[big]) & (got[big].sign() == want[big].sign())
            if bool(infinite.all()):
                overflowed = True
            elif not bool(((got[big] - want[big]).abs() <= tolerance).all()):
                return None
        small = got[~big]
        if not bool(torch.isfinite(small).all()):
            return None
        if not bool(((small - want[~big]).abs() <= tolerance).all()):
            return None
    return _FLOAT16 if overflowed else _SIXTEEN_BIT


def _w8a32_cases() -> list[CheckCase]:
    """The cases of ``check_w8a32``: inputs that tell the classic mistakes apart."""

    course = torch.tensor([1.0, 2.0, 3.0])  # the course's input, 1-D
    weight = torch.tensor(_COURSE_WEIGHT)
    wide = torch.tensor([[0.5, -1.2, 2.0], [-0.03, 0.02, 0.01], [1.5, 0.4, -0.9], [0.2, 0.1, 0.3]])
    batch = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
    large = torch.tensor([10000.0, 20000.0, 30000.0])  # exact in float16, its output is not
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
        (
            "the course weight on a large token [10000, 20000, 30000]: an output of 93,956.7",
            large,
        )
        + (*linear_q_symmetric(weight), 0),
    ]
    return [
        CheckCase(
            text,
            (x, q, s, z),
            expect_close(quantized_linear_W8A32_without_bias(x, q, s, z)),
            W8A32_RECIPE,
        )
        for text, x, q, s, z in specs
    ]


def _recording(check: Callable, results: list, index: int) -> Callable:
    """``check`` that also keeps the result it was given in ``results[index]``."""

    def recorded(result: Any) -> str | None:
        results[index] = result
        return check(result)

    recorded.expected = check.expected
    return recorded


def check_w8a32(function: Callable) -> CheckReport:
    """Exercise of lesson 06: ``my_w8a32(input, q_w, s_w, z_w)``, a linear layer without bias
    whose weight is stored as integers, with a per-tensor or per-channel scale.

    The reference is ``quantized_linear_W8A32_without_bias``. The cases: the course example
    (1-D input, per-tensor scale), the same weight per channel (a scale applied after
    ``F.linear`` broadcasts to 3x3), a batch with a non-square weight (a transposed weight or a
    late scale fails outright), an asymmetric weight whose ``q_w - z_w`` leaves int8,
    per-channel zero points, and a large token whose output passes float16's 65,504.

    A function that computes in 16 bits rarely matches the float16 mistake to the last bit
    (the order of its roundings differs), so when no known mistake matches exactly, the
    results are compared with the expected ones at 16-bit precision (``_sixteen_bit_kind``).
    """
    cases = _w8a32_cases()
    results: list = [None] * len(cases)
    for index, case in enumerate(cases):
        case.check = _recording(case.check, results, index)
    report = run_checks("W8A32 linear layer", function, cases, W8A32_MISTAKES, W8A32_RECIPE)
    if report.status == "failed" and report.mistake is None:
        expected = [case.check.expected for case in cases]
        report.mistake = _sixteen_bit_kind(results, expected)
        if report.mistake is not None:
            report.diagnosis = []
    return report
