"""Lesson 05, granularity: ``check_per_row_quantization``.

The learner writes ``my_quantize_per_row(weight)`` returning ``(q, scale)``, symmetric int8
quantization with one scale per row, checked against
``helper.linear_q_symmetric_per_channel(weight, dim=0)``.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from helper import dtype_name, linear_q_symmetric_per_channel
from support.examples import TEST_TENSOR_VALUES as _TEST_TENSOR
from support.examples import varied_rows_weight
from support.exercises.core import (
    CheckCase,
    CheckReport,
    expect_integers,
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "PER_ROW_MISTAKES",
    "check_per_row_quantization",
]


def _per_row_reference(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``helper.linear_q_symmetric_per_channel(weight, dim=0)``."""
    return linear_q_symmetric_per_channel(weight, dim=0)


def _expect_per_row(weight: torch.Tensor) -> Callable[[Any], str | None]:
    """A check that a ``(quantized_tensor, scale)`` result is symmetric int8 quantization with
    one scale per row, the scale shaped ``(rows, 1)``. For an all-zero row any positive,
    finite scale is right (every value is 0 whatever the scale)."""
    expected_q, expected_scale = _per_row_reference(weight)
    check_q = expect_integers(expected_q)
    zero_rows = ~weight.bool().any(dim=1, keepdim=True)

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (quantized_tensor, scale), got {type(result).__name__}"
        q, scale = result
        if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
            kind = dtype_name(scale.dtype) if isinstance(scale, torch.Tensor) else type(scale)
            return f"the scale must be a float tensor, one value per row; got {kind}"
        if scale.shape != expected_scale.shape:
            return (
                f"the scale has shape {tuple(scale.shape)}, expected "
                f"{tuple(expected_scale.shape)}: one scale per row, kept as a column"
            )
        values = scale.double()
        bad = ~(torch.isfinite(values) & (values > 0))
        if bool(bad.any()):
            row = int(bad.flatten().nonzero()[0])
            return f"every scale must be positive and finite; row {row}'s is {values[row, 0]:.6g}"
        close = torch.isclose(values, expected_scale.double(), rtol=1e-6, atol=0.0) | zero_rows
        if not bool(close.all()):
            row = int((~close).flatten().nonzero()[0])
            return (
                f"the scale of row {row} is {values[row, 0]:.6g}, expected "
                f"{expected_scale[row, 0]:.6g}"
            )
        problem = check_q(q)
        return None if problem is None else f"quantized tensor: {problem}"

    return check


def _per_row_variant(
    weight: torch.Tensor,
    *,
    magnitude: bool = True,
    dim: int | None = 1,
    keepdim: bool = True,
    q_max: int = 127,
    floor: bool = True,
    rounding: Callable = torch.round,
    clamp: bool = True,
    cast: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The right answer, or one classic mistake, depending on the keywords (``dim=None``:
    one scale for the whole tensor)."""
    values = weight.abs() if magnitude else weight
    largest = values.amax() if dim is None else values.amax(dim=dim, keepdim=keepdim)
    scale = largest / q_max
    if floor:
        scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = rounding(weight / scale)
    if clamp:
        q = q.clamp(-128, 127)
    return (q.to(torch.int8) if cast else q), scale


_ABSMAX_HINT = (
    "the scale must also cover the most negative value: take each row's largest *magnitude*, "
    "weight.abs().amax(dim=1, keepdim=True). A row such as [0.5, -2.0, 1.0] needs 2.0, not 1.0."
)
_KEEPDIM_HINT = (
    "pass keepdim=True: amax(dim=1) has shape (rows,), and broadcasting lines that up with the "
    "*last* dimension, so column j is divided by row j's scale (or the shapes do not fit). "
    "Shape (rows, 1) lines up with the rows."
)
_BY_128_HINT = (
    "divide by q_max = 127: the largest magnitude must land on 127, the largest int8 value. "
    "Divided by 128 it lands on 128, which int8 cannot store."
)

# One row per classic mistake: (description, what differs from the right answer, hint).
_PER_ROW_ROWS = (
    (
        "takes each row's largest value instead of its largest magnitude (no abs)",
        dict(magnitude=False, clamp=False),
        _ABSMAX_HINT,
    ),
    (
        "takes each row's largest value instead of its largest magnitude (no abs)",
        dict(magnitude=False),
        _ABSMAX_HINT,
    ),
    (
        "leaves out keepdim=True, so the scales line up with the columns",
        dict(keepdim=False, clamp=False),
        _KEEPDIM_HINT,
    ),
    (
        "leaves out keepdim=True, so the scales line up with the columns",
        dict(keepdim=False),
        _KEEPDIM_HINT,
    ),
    (
        "reduces along dim 0: one scale per column instead of one per row",
        dict(dim=0),
        "one scale per row means taking the maximum *across the columns*: "
        "amax(dim=1, keepdim=True). amax(dim=0) runs down each column and gives one scale per "
        "column, shape (1, columns).",
    ),
    (
        "uses one scale for the whole tensor (per tensor, not per row)",
        dict(dim=None),
        "take the maximum of every row separately, weight.abs().amax(dim=1, keepdim=True), "
        "not the maximum of the whole tensor.",
    ),
    (
        "divides by 128 instead of q_max = 127 (and the 128 wraps around in int8)",
        dict(q_max=128, clamp=False),
        _BY_128_HINT,
    ),
    ("divides by 128 instead of q_max = 127", dict(q_max=128), _BY_128_HINT),
    (
        "has no floor under the scale: an all-zero row gets scale 0 and 0 / 0 = NaN",
        dict(floor=False),
        "floor the scale at a tiny positive number, scale.clamp(min=torch.finfo(torch.float32)"
        ".eps), as helper.py and PyTorch do: an all-zero row (a pruned channel) then quantizes "
        "to zeros.",
    ),
    (
        "cuts off the fraction instead of rounding",
        dict(rounding=torch.trunc),
        "round with torch.round before casting; .to(torch.int8) and torch.trunc drop the "
        "fraction (3.9 -> 3).",
    ),
    (
        "returns floats: it never casts to int8",
        dict(cast=False),
        "finish with .to(torch.int8): the quantized tensor is stored as integers.",
    ),
)
PER_ROW_MISTAKES = mistakes_from_rows(_PER_ROW_ROWS, _per_row_variant)


def _scale_as_float32(function: Callable) -> Callable:
    """``function`` with a float64 scale in its result turned into float32, so that a right
    or wrong answer computed in float64 is recognised like its float32 twin. ``wraps`` keeps
    the learner's source visible to the not-attempted test."""

    @functools.wraps(function)
    def normalized(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, tuple | list) and len(result) == 2:
            q, scale = result
            if isinstance(scale, torch.Tensor) and scale.dtype == torch.float64:
                return q, scale.to(torch.float32)
        return result

    return normalized


def check_per_row_quantization(function: Callable) -> CheckReport:
    """Exercise of lesson 05: ``my_quantize_per_row(weight)`` returning ``(q, scale)``:
    symmetric int8 quantization with one scale per row (output channel), ``scale`` of shape
    ``(rows, 1)``, floored at float32's eps.

    The reference is ``linear_q_symmetric_per_channel(weight, dim=0)``. The cases tell the
    classic mistakes apart: the square test tensor (a missing ``keepdim`` runs there without
    an error), a row whose largest magnitude is negative, a realistic 4x8 weight whose rows
    have very different ranges, and a weight with an all-zero row. No value lies near a
    rounding tie, so a float64 computation gives the same integers.
    """

    test = torch.tensor(_TEST_TENSOR)
    negative = torch.tensor([[0.5, -2.0, 1.1, 0.3], [-0.1, 0.35, 0.05, -0.2]])
    realistic = varied_rows_weight(4, 8, seed=0)
    pruned = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.3, -3.0, 0.7, 2.2]])
    general = (
        "scale = weight.abs().amax(dim=1, keepdim=True) / 127, floored at "
        "torch.finfo(torch.float32).eps; q = torch.round(weight / scale).to(torch.int8)."
    )
    specs = [
        ("the lesson's test tensor, 3x3", test, general),
        (
            "a 2x4 weight whose row 0 reaches furthest on the negative side (-2.0)",
            negative,
            _ABSMAX_HINT,
        ),
        ("a realistic 4x8 weight, varied_rows_weight(4, 8, seed=0)", realistic, general),
        (
            "a 2x4 weight whose row 0 is all zeros (a pruned output channel)",
            pruned,
            "an all-zero row has absmax 0: floor the scale so that 0 / scale is 0, not NaN.",
        ),
    ]
    cases = [
        CheckCase(text, (weight,), _expect_per_row(weight), hint) for text, weight, hint in specs
    ]
    wrapped = _scale_as_float32(function) if callable(function) else function
    return run_checks("Per-row quantization", wrapped, cases, PER_ROW_MISTAKES)
