"""Lesson 10, accuracy you can see: ``check_fake_quantize_per_group``.

The learner writes ``my_fake_quantize(weight, n_bits, group_size)``: symmetric quantization at
``n_bits`` with one scale per group of ``group_size`` consecutive weights of each row,
dequantized at once, so the result is a float tensor of the weight's shape (what
``fake_quantize_linears`` puts back into a model). Every case avoids exact rounding ties, so
float32 and float64 ways of computing it give the same levels.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from helper import fake_quantize
from support.examples import TEST_TENSOR_VALUES as _TEST_TENSOR
from support.examples import varied_rows_weight
from support.exercises.core import (
    CheckCase,
    CheckReport,
    expect_close,
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "FAKE_GROUPS_MISTAKES",
    "check_fake_quantize_per_group",
]


def _fake_groups_reference(weight: torch.Tensor, n_bits: int, group_size: int) -> torch.Tensor:
    """``helper.fake_quantize(weight, n_bits, "per_group", group_size)``."""

    return fake_quantize(weight, n_bits, "per_group", group_size=group_size)


def _fake_groups_variant(
    weight: torch.Tensor,
    n_bits: int,
    group_size: int,
    *,
    q_max: Callable[[int], int] = lambda n: 2 ** (n - 1) - 1,
    magnitude: bool = True,
    blocks: str = "groups",
    keepdim: bool = True,
    floor: bool = True,
    rounding: Callable = torch.round,
    clamp: bool = True,
    dequantize: bool = True,
    reshape_back: bool = True,
) -> torch.Tensor:
    """The right answer, or one classic mistake, depending on the keywords. ``blocks`` is
    ``"groups"`` (right), ``"columns"`` (groups cut down the columns), ``"rows"`` (one scale
    per row), ``"tensor"`` (one scale) or ``"swapped"`` (``reshape(group_size, -1)``: blocks
    of ``numel / group_size`` weights)."""
    top = q_max(n_bits)
    if blocks == "swapped":
        grouped = weight.reshape(group_size, -1)
    elif blocks == "columns":
        grouped = weight.T.reshape(-1, group_size)
    elif blocks == "rows":
        grouped = weight.reshape(weight.shape[0], -1)
    elif blocks == "tensor":
        grouped = weight.reshape(1, -1)
    else:
        grouped = weight.reshape(-1, group_size)
    values = grouped.abs() if magnitude else grouped
    scale = values.amax(dim=-1, keepdim=keepdim) / top
    if floor:
        scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = rounding(grouped / scale)
    if clamp:
        q = q.clamp(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
    result = q * scale if dequantize else q
    if not reshape_back:
        return result
    if blocks == "columns":
        return result.reshape(weight.shape[1], weight.shape[0]).T
    return result.reshape(weight.shape)


_Q_MAX_HINT = (
    "the largest level of a signed n-bit integer is q_max = 2 ** (n_bits - 1) - 1: 127 at 8 "
    "bits, 7 at 4 bits, 1 at 2 bits. The scale is each group's largest magnitude / q_max, and "
    "the clamp range is [-2 ** (n_bits - 1), q_max]."
)

_ALWAYS_127 = "always divides by 127: it ignores n_bits (the course's helper does the same)"
_ALWAYS_127_HINT = (
    _Q_MAX_HINT + " With 127 at every bit width, a 4-bit or 2-bit weight keeps 8-bit "
    "precision, and the accuracy you measure is not the low-bit one."
)
_UNSIGNED = "takes q_max = 2 ** n_bits - 1, the largest *unsigned* n-bit number"
_UNSIGNED_HINT = (
    _Q_MAX_HINT + " 2 ** n_bits - 1 (15 at 4 bits) is the top of an unsigned range; "
    "symmetric signed levels reach half of that."
)
_NO_ABS_HINT = (
    "the scale must also cover the most negative value: take each group's largest "
    "*magnitude*, grouped.abs().amax(dim=-1, keepdim=True)."
)
_DEQUANTIZE_HINT = (
    "fake quantization returns real values: multiply the rounded levels back by their "
    "scale, q * scale, so the result can replace the float weight."
)

# One row per classic mistake: (description, what differs from the right answer, hint).
_FAKE_GROUPS_ROWS = (
    (_ALWAYS_127, dict(q_max=lambda n: 127, clamp=False), _ALWAYS_127_HINT),
    (_ALWAYS_127, dict(q_max=lambda n: 127, clamp=True), _ALWAYS_127_HINT),
    (_UNSIGNED, dict(q_max=lambda n: 2**n - 1, clamp=False), _UNSIGNED_HINT),
    (_UNSIGNED, dict(q_max=lambda n: 2**n - 1, clamp=True), _UNSIGNED_HINT),
    (
        "takes q_max = 2 ** (n_bits - 1), one level too many (like dividing by 128 at 8 bits)",
        dict(q_max=lambda n: 2 ** (n - 1)),
        _Q_MAX_HINT,
    ),
    (
        "takes q_max = 2 ** (n_bits - 1), one level too many, and does not clamp",
        dict(q_max=lambda n: 2 ** (n - 1), clamp=False),
        _Q_MAX_HINT,
    ),
    (
        "takes each group's largest value instead of its largest magnitude (no abs)",
        dict(magnitude=False),
        _NO_ABS_HINT,
    ),
    (
        "takes each group's largest value instead of its largest magnitude (no abs)",
        dict(magnitude=False, clamp=False),
        _NO_ABS_HINT,
    ),
    (
        "cuts the groups down the columns instead of along each row",
        dict(blocks="columns"),
        "a group is group_size consecutive weights of one *row* (the input features of one "
        "output): weight.reshape(-1, group_size) cuts each row into groups, because a row's "
        "elements are next to each other in memory. weight.T.reshape(...) groups columns.",
    ),
    (
        "cuts the weight with reshape(group_size, -1): group_size blocks of numel / "
        "group_size weights, not groups of group_size",
        dict(blocks="swapped"),
        "the group size is the length of the *last* dimension: weight.reshape(-1, "
        "group_size) gives one group of group_size weights per row of the view. "
        "reshape(group_size, -1) makes group_size long blocks that run across the rows "
        "(on a 2x6 weight in groups of 3: three blocks of 4).",
    ),
    (
        "uses one scale per row: it ignores group_size",
        dict(blocks="rows"),
        "cut every row into groups of group_size first, grouped = weight.reshape(-1, "
        "group_size), and take the largest magnitude of each group (dim=-1).",
    ),
    (
        "uses one scale for the whole tensor",
        dict(blocks="tensor"),
        "every group needs its own scale: grouped.abs().amax(dim=-1, keepdim=True) on "
        "grouped = weight.reshape(-1, group_size), not the whole tensor's maximum.",
    ),
    (
        "leaves out keepdim=True, so the scales line up with the wrong axis",
        dict(keepdim=False),
        "pass keepdim=True: amax(dim=-1) has shape (groups,), and broadcasting lines that up "
        "with the *last* axis, the elements of a group. Shape (groups, 1) gives every group "
        "its own scale.",
    ),
    (
        "has no floor under the scale: an all-zero group gets scale 0 and 0 / 0 = NaN",
        dict(floor=False),
        "floor the scale at a tiny positive number, scale.clamp(min=torch.finfo(torch.float32)"
        ".eps): a group of zeros then comes back as zeros.",
    ),
    (
        "cuts off the fraction instead of rounding",
        dict(rounding=torch.trunc),
        "round to the nearest level with torch.round; torch.trunc and .to(torch.int8) drop "
        "the fraction (0.9 -> 0).",
    ),
    ("returns the integer levels: it never dequantizes", dict(dequantize=False), _DEQUANTIZE_HINT),
    (
        "returns the integer levels as int8: it never dequantizes",
        lambda weight, n_bits, group_size: _fake_groups_variant(
            weight, n_bits, group_size, dequantize=False
        ).to(torch.int8),
        _DEQUANTIZE_HINT,
    ),
    (
        "returns the groups, shape (groups, group_size), not the weight's shape",
        dict(reshape_back=False),
        "finish with .reshape(weight.shape): the result must fit where the weight was.",
    ),
)
FAKE_GROUPS_MISTAKES = mistakes_from_rows(_FAKE_GROUPS_ROWS, _fake_groups_variant)


def _float64_as_float32(function: Callable) -> Callable:
    """``function`` with a float64 result turned into float32, so that an answer computed in
    float64 is recognised like its float32 twin. ``wraps`` keeps the learner's source
    visible to the not-attempted test."""

    @functools.wraps(function)
    def normalized(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, torch.Tensor) and result.dtype == torch.float64:
            return result.to(torch.float32)
        return result

    return normalized


def check_fake_quantize_per_group(function: Callable) -> CheckReport:
    """Exercise of lesson 10: ``my_fake_quantize(weight, n_bits, group_size)`` returning the
    weight after a symmetric round trip at ``n_bits`` with one scale per group of
    ``group_size`` consecutive weights of each row: a float tensor of the weight's shape.

    The reference is ``helper.fake_quantize(weight, n_bits, "per_group", group_size)``. The
    cases tell the classic mistakes apart: a 2x8 weight in groups of 4 at 4 bits (a group
    whose largest magnitude is negative; 4 groups of 4, so a missing ``keepdim`` runs without
    an error), a realistic 4x8 weight at 2 bits (where ``q_max`` is 1), the test tensor at 8
    bits in groups of 3 (one group per row), and a weight with an all-zero group at 3 bits
    (where ``reshape(group_size, -1)`` differs from both the groups and the rows).
    """

    small = torch.tensor(
        [
            [0.31, -0.92, 0.18, 0.55, 0.07, 0.12, -0.04, 0.09],
            [-0.66, 0.23, 0.41, -0.13, 1.37, -0.48, 0.86, 0.29],
        ]
    )
    realistic = varied_rows_weight(4, 8, seed=1)
    test = torch.tensor(_TEST_TENSOR)
    pruned = torch.tensor(
        [[0.0, 0.0, 0.0, 0.52, -0.37, 0.14], [0.21, -0.08, 0.33, 0.6, 0.45, -0.7]]
    )
    general = (
        "grouped = weight.reshape(-1, group_size); scale = grouped.abs().amax(dim=-1, "
        "keepdim=True) / (2 ** (n_bits - 1) - 1), floored at eps; q = torch.round(grouped / "
        "scale).clamp(-2 ** (n_bits - 1), 2 ** (n_bits - 1) - 1); return (q * scale)"
        ".reshape(weight.shape)."
    )
    specs = [
        ("a 2x8 weight, 4 bits, groups of 4", (small, 4, 4), general),
        (
            "a realistic 4x8 weight, varied_rows_weight(4, 8, seed=1), 2 bits, groups of 4",
            (realistic, 2, 4),
            "at 2 bits q_max = 2 ** (2 - 1) - 1 = 1: each weight becomes -scale, 0 or scale.",
        ),
        ("the lesson's test tensor, 8 bits, groups of 3 (one per row)", (test, 8, 3), general),
        (
            "a 2x6 weight whose first group is all zeros, 3 bits, groups of 3",
            (pruned, 3, 3),
            "an all-zero group has largest magnitude 0: floor the scale so that 0 / scale is "
            "0, not NaN.",
        ),
    ]
    cases = [
        CheckCase(text, args, expect_close(_fake_groups_reference(*args)), hint)
        for text, args, hint in specs
    ]
    wrapped = _float64_as_float32(function) if callable(function) else function
    return run_checks(
        "Fake quantization per group", wrapped, cases, FAKE_GROUPS_MISTAKES, recipe=general
    )
