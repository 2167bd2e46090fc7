"""Lesson 05, granularity: the three functions the course has its learners write (L3-C, L3-D).

* ``my_linear_q_symmetric_per_channel(r_tensor, dim, dtype)`` returning ``(q, scale)``, checked
  by ``check_linear_q_symmetric_per_channel`` against ``helper.linear_q_symmetric_per_channel``;
* ``my_linear_q_symmetric_per_group(tensor, group_size, dtype)`` returning ``(q, scale)``,
  checked by ``check_linear_q_symmetric_per_group`` against ``helper.linear_q_symmetric_per_group``;
* ``my_linear_dequantization_per_group(quantized_tensor, scale, group_size)``, checked by
  ``check_linear_dequantization_per_group`` against ``helper.linear_dequantization_per_group``.

The return values are the course's: per channel, a float32 scale of shape ``(rows, 1)`` for
``dim=0`` and ``(1, columns)`` for ``dim=1``; per group, ``q`` in the tensor's shape and a scale
of shape ``(numel // group_size, 1)``, one row per group in reading order.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from helper import (
    dtype_name,
    linear_dequantization,
    linear_dequantization_per_group,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
)
from support.examples import TEST_TENSOR_VALUES as _TEST_TENSOR
from support.examples import seeded_randn, varied_rows_weight
from support.exercises.core import (
    CheckCase,
    CheckReport,
    _range_of,
    expect_close,
    mistakes_from_rows,
    run_checks,
    shown,
)

__all__ = [
    "PER_CHANNEL_MISTAKES",
    "PER_CHANNEL_RECIPE",
    "check_linear_q_symmetric_per_channel",
    "PER_GROUP_MISTAKES",
    "PER_GROUP_RECIPE",
    "check_linear_q_symmetric_per_group",
    "DEQUANTIZE_PER_GROUP_MISTAKES",
    "DEQUANTIZE_PER_GROUP_RECIPE",
    "check_linear_dequantization_per_group",
]

_EPS = torch.finfo(torch.float32).eps

# ---------------------------------------------------------------------------------------------
# The check shared by both quantizers: a pair (q, scale)
# ---------------------------------------------------------------------------------------------


def _expect_q_and_scale(
    expected_q: torch.Tensor, expected_scale: torch.Tensor, empty: torch.Tensor, what: str
) -> Callable[[Any], str | None]:
    """A check that a ``(quantized_tensor, scale)`` result is ``(expected_q, expected_scale)``:
    the scale a float tensor of exactly the expected shape, ``q`` exact in dtype, shape and
    values. Where ``empty`` (shaped like the scale) is True the block is all zeros, and any
    positive, finite scale is right. ``what`` says what one scale belongs to ("row", ...)."""

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (quantized_tensor, scale), got {shown(result)}"
        q, scale = result
        if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
            kind = dtype_name(scale.dtype) if isinstance(scale, torch.Tensor) else type(scale)
            return f"the scale must be a float tensor, one value per {what}; got {kind}"
        if scale.shape != expected_scale.shape:
            return (
                f"the scale has shape {tuple(scale.shape)}, expected "
                f"{tuple(expected_scale.shape)}: one scale per {what}, in the course's shape"
            )
        values = scale.double().flatten()
        bad = ~(torch.isfinite(values) & (values > 0))
        if bool(bad.any()):
            where = int(bad.nonzero()[0])
            return f"every scale must be positive and finite; scale {where} is {values[where]:.6g}"
        want = expected_scale.double().flatten()
        close = torch.isclose(values, want, rtol=1e-6, atol=0.0) | empty.flatten()
        if not bool(close.all()):
            where = int((~close).nonzero()[0])
            return f"scale {where} is {values[where]:.6g}, expected {want[where]:.6g}"
        if not isinstance(q, torch.Tensor):
            return f"the quantized tensor must be a tensor, got {type(q).__name__}"
        if q.dtype != expected_q.dtype:
            return f"expected dtype {dtype_name(expected_q.dtype)}, got {dtype_name(q.dtype)}"
        if q.shape != expected_q.shape:
            return (
                f"the quantized tensor has shape {tuple(q.shape)}, expected "
                f"{tuple(expected_q.shape)} (the input's shape)"
            )
        if not torch.equal(q, expected_q):
            where = (q.long() - expected_q.long()).abs().flatten().argmax()
            index = tuple(int(i) for i in torch.unravel_index(where, q.shape))
            got, want = q[index].item(), expected_q[index].item()
            return f"quantized element {index} is {got}, expected {want}"
        return None

    check.expected = (expected_q, expected_scale)
    return check


def _scale_as_float32(function: Callable) -> Callable:
    """``function`` with a float64 scale in its result turned into float32, so that a right
    or wrong answer computed in float64 is recognised like its float32 twin. ``wraps`` keeps
    the learner's source visible (the not-attempted test and the argument names read it)."""

    @functools.wraps(function)
    def normalized(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, tuple | list) and len(result) == 2:
            q, scale = result
            if isinstance(scale, torch.Tensor) and scale.dtype == torch.float64:
                return q, scale.to(torch.float32)
        return result

    return normalized


# ---------------------------------------------------------------------------------------------
# Per channel
# ---------------------------------------------------------------------------------------------


def _per_channel_variant(
    r_tensor: torch.Tensor,
    dim: int,
    dtype: torch.dtype = torch.int8,
    *,
    reduce: str = "other",
    magnitude: bool = True,
    keepdim: bool = True,
    late_view: bool = False,
    use_max: bool = False,
    steps: Callable[[int, int], float] | None = None,
    own_range: bool = True,
    cast_to: torch.dtype | None = None,
    floor: bool = True,
    rounding: Callable = torch.round,
    clamp: bool = True,
    cast: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The right answer, or one classic mistake, depending on the keywords.

    ``reduce``: ``"other"`` (right: the maximum runs over the other dimension, ``1 - dim``),
    ``"same"`` (over ``dim`` itself) or ``"tensor"`` (one maximum for all). ``late_view``: the
    scale is computed without ``keepdim`` and only the returned one is reshaped. ``use_max``:
    ``.max(dim=...)``, a (values, indices) pair, divided as if it were a tensor. ``steps(q_min,
    q_max)`` is the divisor (right: ``q_max``); ``own_range=False`` uses int8's range whatever
    ``dtype`` is, and ``cast_to`` the dtype of the cast (right: ``dtype``).
    """
    q_min, q_max = _range_of(dtype) if own_range else (-128, 127)
    values = r_tensor.abs() if magnitude else r_tensor
    if reduce == "tensor":
        largest = values.amax()
    else:
        along = 1 - dim if reduce == "other" else dim
        if use_max:
            largest = values.max(dim=along, keepdim=keepdim)  # (values, indices): not a tensor
        else:
            largest = values.amax(dim=along, keepdim=keepdim and not late_view)
    scale = largest / (q_max if steps is None else steps(q_min, q_max))
    if floor:
        scale = scale.clamp(min=_EPS)
    q = rounding(r_tensor / scale)
    if clamp:
        q = q.clamp(q_min, q_max)
    if cast:
        q = q.to(dtype if cast_to is None else cast_to)
    if late_view:
        scale = scale.reshape([-1 if d == dim else 1 for d in range(r_tensor.dim())])
    return q, scale


_DIM_HINT = (
    "`dim` names the dimension that keeps one scale per index: dim=0 means one scale per row, "
    "so the maximum runs across the columns, amax(dim=1, keepdim=True); dim=1 means one per "
    "column, amax(dim=0, keepdim=True). Reduce over the *other* dimension, 1 - dim."
)
_KEEPDIM_HINT = (
    "keep the reduced dimension: amax(dim=1, keepdim=True) has shape (rows, 1), which "
    "broadcasts along each row. Without keepdim the shape is (rows,), and broadcasting lines "
    "that up with the *last* dimension: column j is divided by row j's scale, or the shapes "
    "do not fit at all. For dim=1, keepdim gives the course's (1, columns)."
)
_LATE_VIEW_HINT = (
    "the scale you return has the right shape, but the one you divided by did not: reshape "
    "(or keepdim=True) *before* r_tensor / scale. A (rows,) scale in the division lines up with "
    "the columns, so the integers are wrong even though the returned scale looks right."
)
_MAX_PAIR_HINT = (
    "tensor.max(dim=1) returns a pair, (values, indices), not a tensor: take .values (or use "
    "amax(dim=1, keepdim=True), which returns only the values). If you did not call .max, look "
    "for the value in the division that is not a tensor."
)
_ABSMAX_HINT = (
    "the scale must also cover the most negative value: take the largest *magnitude*, "
    "r_tensor.abs().amax(...). A row such as [0.5, -2.0, 1.1, 0.3] needs 2.0, not 1.1."
)
_BY_128_HINT = (
    "divide by q_max = torch.iinfo(dtype).max, 127 for int8: the largest magnitude must land "
    "on 127. Divided by 128 it lands on 128, which int8 cannot store."
)
_BY_127_5_HINT = (
    "127.5 is PyTorch's symmetric divisor (lesson 04, section 7). The course, helper.py and this "
    "exercise divide by q_max = 127, so that the largest magnitude lands exactly on 127; with "
    "127.5 it lands on the tie 127.5 and comes back half a step short."
)
_DTYPE_HINT = (
    "use the dtype you are given: q_max = torch.iinfo(dtype).max (32767 for int16), and cast "
    "with .to(dtype). 127 and int8 are only the default."
)
_FLOOR_HINT = (
    "floor the scale at a tiny positive number, scale.clamp(min=torch.finfo(torch.float32).eps), "
    "as helper.py and PyTorch do: an all-zero row (a pruned channel) has max|r| = 0, and "
    "0 / 0 = NaN, which no integer can hold."
)
_TRUNC_HINT = (
    "round with torch.round before casting; .to(dtype) and torch.trunc drop the fraction "
    "(3.9 -> 3)."
)
_CAST_HINT = "finish with .to(dtype): the quantized tensor is stored as integers."


def _divisor_rows(description: str, hint: str, *steps: Callable) -> tuple:
    """Rows for a wrong divisor: each way of computing it (``steps(q_min, q_max)``, e.g.
    ``q_max + 1``, or the literal 128 whatever the dtype), with the clamp to the dtype's
    range, with int8's clamp, and with none (the wrong divisor can push a value past q_max)."""
    return tuple(
        (description, dict(steps=step, **extra), hint)
        for step in steps
        for extra in (dict(), dict(own_range=False), dict(clamp=False))
    )


def _with_and_without_clamp(description: str, how: dict, hint: str) -> tuple:
    """Two rows for a mistake whose result a clamp to the dtype's range can change: with the
    clamp and without it."""
    return ((description, how, hint), (description, dict(how, clamp=False), hint))


_BY_128_ROWS = _divisor_rows(
    "divides by 128 instead of q_max = 127",
    _BY_128_HINT,
    lambda q_min, q_max: q_max + 1,
    lambda q_min, q_max: 128,
)
_BY_127_5_ROWS = _divisor_rows(
    "divides by 127.5, PyTorch's symmetric divisor, instead of q_max = 127",
    _BY_127_5_HINT,
    lambda q_min, q_max: (q_max - q_min) / 2,
    lambda q_min, q_max: 127.5,
)

# The mistakes of the per-channel step, made in the per-channel exercise or inside the
# per-group one: (description, what differs from the right answer, hint). Where a clamp
# changes the result, the mistake has a row with and one without it.
_CHANNEL_STEP_ROWS = (
    *_with_and_without_clamp(
        "leaves out keepdim=True (or a view): the scale does not broadcast back",
        dict(keepdim=False),
        _KEEPDIM_HINT,
    ),
    *_with_and_without_clamp(
        "divides by the scale without keepdim and reshapes only the scale it returns",
        dict(late_view=True),
        _LATE_VIEW_HINT,
    ),
    (
        "divides the result of .max(dim=...), a (values, indices) pair",
        dict(use_max=True),
        _MAX_PAIR_HINT,
    ),
    *_with_and_without_clamp(
        "takes the largest value instead of the largest magnitude (no abs)",
        dict(magnitude=False),
        _ABSMAX_HINT,
    ),
    *_BY_128_ROWS,
    *_BY_127_5_ROWS,
    (
        "ignores `dtype`: it uses int8's q_max = 127 for every dtype",
        dict(own_range=False),
        _DTYPE_HINT,
    ),
    (
        "ignores `dtype`: it uses int8's q_max = 127 for every dtype",
        dict(own_range=False, cast_to=torch.int8),
        _DTYPE_HINT,
    ),
)
_PER_CHANNEL_ROWS = (
    (
        "takes the maximum along `dim` itself, so dim=0 gets one scale per column",
        dict(reduce="same"),
        _DIM_HINT,
    ),
    (
        "takes the maximum along `dim` itself, so dim=0 gets one scale per column",
        dict(reduce="same", keepdim=False),
        _DIM_HINT,
    ),
    *_CHANNEL_STEP_ROWS,
    (
        "uses one scale for the whole tensor (per tensor, not per channel)",
        dict(reduce="tensor"),
        "take one maximum per channel, r_tensor.abs().amax(dim=1 - dim, keepdim=True), not the "
        "maximum of the whole tensor.",
    ),
    (
        "has no floor under the scale: an all-zero row gets scale 0",
        dict(floor=False),
        _FLOOR_HINT,
    ),
    ("cuts off the fraction instead of rounding", dict(rounding=torch.trunc), _TRUNC_HINT),
    ("returns floats: it never casts to the integer dtype", dict(cast=False), _CAST_HINT),
)
PER_CHANNEL_MISTAKES = mistakes_from_rows(_PER_CHANNEL_ROWS, _per_channel_variant)

#: The lesson's method, shown when a run fails and no known mistake explains it.
PER_CHANNEL_RECIPE = (
    "dim=0: one scale per row, scale = r_tensor.abs().amax(dim=1, keepdim=True) / q_max "
    "(dim=1: amax(dim=0, keepdim=True), one per column), with q_max = torch.iinfo(dtype).max "
    "and the scale floored at torch.finfo(torch.float32).eps; q = torch.round(r_tensor / "
    "scale).clamp(q_min, q_max).to(dtype); return (q, scale)."
)


def check_linear_q_symmetric_per_channel(function: Callable) -> CheckReport:
    """Exercise of lesson 05: ``my_linear_q_symmetric_per_channel(r_tensor, dim, dtype)`` for
    ``dim`` 0 or 1 of a 2-D tensor, returning ``(q, scale)`` as the course does: a float
    scale of shape ``(rows, 1)`` for ``dim=0``, ``(1, columns)`` for ``dim=1``, floored at
    float32's eps.

    The reference is ``helper.linear_q_symmetric_per_channel``. The cases tell the classic
    mistakes apart: the square test tensor along both dims (a missing ``keepdim`` runs there
    without an error), non-square weights along both dims whose largest magnitude is
    negative, a weight with an all-zero row, and int16. No value lies near a rounding tie, so
    a float64 computation gives the same integers.
    """
    test = torch.tensor(_TEST_TENSOR)
    negative_rows = torch.tensor([[0.5, -2.0, 1.1, 0.3], [-0.1, 0.35, 0.05, -0.2]])
    negative_columns = torch.tensor([[0.5, -0.1], [-2.0, 0.35], [1.1, 0.05], [0.3, -0.2]])
    pruned = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.3, -3.0, 0.7, 2.2]])
    specs = [
        ("the test tensor, dim=0 (one scale per row)", test, 0, torch.int8),
        ("the test tensor, dim=1 (one scale per column)", test, 1, torch.int8),
        (
            "a 2x4 weight, dim=0: row 0 reaches furthest on the negative side",
            negative_rows,
            0,
            torch.int8,
        ),
        (
            "a 4x2 weight, dim=1: column 0 reaches furthest on the negative side",
            negative_columns,
            1,
            torch.int8,
        ),
        ("a 2x4 weight whose row 0 is all zeros (a pruned channel), dim=0", pruned, 0, torch.int8),
        (
            "a realistic 4x8 weight, dim=0, dtype=torch.int16",
            varied_rows_weight(4, 8, seed=0),
            0,
            torch.int16,
        ),
    ]
    cases = []
    for text, tensor, dim, dtype in specs:
        q, scale = linear_q_symmetric_per_channel(tensor, dim, dtype)
        empty = tensor.abs().amax(dim=1 - dim, keepdim=True) == 0
        check = _expect_q_and_scale(q, scale, empty, "row" if dim == 0 else "column")
        cases.append(CheckCase(text, (tensor, dim, dtype), check, PER_CHANNEL_RECIPE))
    wrapped = _scale_as_float32(function) if callable(function) else function
    return run_checks(
        "Per-channel quantization",
        wrapped,
        cases,
        PER_CHANNEL_MISTAKES,
        recipe=PER_CHANNEL_RECIPE,
    )


# ---------------------------------------------------------------------------------------------
# Per group
# ---------------------------------------------------------------------------------------------


def _per_group_variant(
    tensor: torch.Tensor,
    group_size: int,
    dtype: torch.dtype = torch.int8,
    *,
    groups: str = "rows",
    group_dim: int = 0,
    scale_shape: str = "course",
    view_back: bool = True,
    **channel: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The right answer, or one classic mistake, depending on the keywords.

    ``groups``: ``"rows"`` (right: ``tensor.view(-1, group_size)``), ``"columns"`` (groups cut
    down the columns, from the transposed tensor) or ``"reshape_first"``
    (``tensor.view(group_size, -1)``). ``group_dim``: the ``dim`` of the per-channel step on
    that view (right: 0). ``scale_shape``: ``"course"`` (right: ``(n_groups, 1)``),
    ``"blocks"`` ``(rows, groups per row, 1)``, ``"grid"`` ``(rows, groups per row)`` or
    ``"flat"`` ``(n_groups,)``. ``view_back=False`` returns ``q`` in the view's shape.
    ``channel``: keywords of ``_per_channel_variant`` for the per-channel step.
    """
    if groups == "columns":
        view = tensor.T.reshape(-1, group_size)
    elif groups == "reshape_first":
        view = tensor.reshape(group_size, -1)
    else:
        view = tensor.reshape(-1, group_size)
    q, scale = _per_channel_variant(view, group_dim, dtype, **channel)
    if view_back:
        q = q.reshape(tensor.T.shape).T if groups == "columns" else q.reshape(tensor.shape)
    rows = tensor.shape[0]
    if scale_shape == "blocks":
        scale = scale.reshape(rows, -1, 1)
    elif scale_shape == "grid":
        scale = scale.reshape(rows, -1)
    elif scale_shape == "flat":
        scale = scale.reshape(-1)
    return q, scale


_GROUP_SHAPE_HINT = (
    "return the course's shape, one scale per group in a single column: (numel // group_size, "
    "1), scale.reshape(-1, 1). Row i of it belongs to row i of tensor.view(-1, group_size): "
    "that is how linear_dequantization_per_group pairs them up."
)
_COLUMNS_HINT = (
    "a group is group_size consecutive elements of a *row*: tensor.view(-1, group_size) cuts "
    "each row into pieces in reading order. Transposing first cuts the groups down the columns."
)
_RESHAPE_FIRST_HINT = (
    "view(-1, group_size), not view(group_size, -1): you want rows of group_size elements (one "
    "group each), not group_size rows of numel / group_size elements."
)

# Groups cut the wrong way: rows of both per-group tables (``groups`` is a keyword of both
# variants).
_GROUPING_ROWS = (
    (
        "cuts the groups down the columns instead of along the rows",
        dict(groups="columns"),
        _COLUMNS_HINT,
    ),
    (
        "reshapes to (group_size, -1) instead of (-1, group_size)",
        dict(groups="reshape_first"),
        _RESHAPE_FIRST_HINT,
    ),
)

_PER_GROUP_ROWS = (
    *_GROUPING_ROWS,
    (
        "quantizes the (groups, group_size) view per column (dim=1) instead of per row",
        dict(group_dim=1),
        "on tensor.view(-1, group_size) each *row* is a group, so quantize it per channel along "
        "dim 0: one scale per row of the view, shape (numel // group_size, 1).",
    ),
    (
        "returns the scales in shape (rows, groups per row, 1) instead of (number of groups, 1)",
        dict(scale_shape="blocks"),
        _GROUP_SHAPE_HINT,
    ),
    (
        "returns the scales in shape (rows, groups per row) instead of (number of groups, 1)",
        dict(scale_shape="grid"),
        _GROUP_SHAPE_HINT,
    ),
    (
        "returns the scales in shape (number of groups,) instead of (number of groups, 1)",
        dict(scale_shape="flat"),
        _GROUP_SHAPE_HINT,
    ),
    (
        "returns the quantized tensor in the groups' shape: it never views it back",
        dict(view_back=False),
        "finish with q.view(tensor.shape): the quantized tensor has the input's shape; only the "
        "scale keeps the (number of groups, 1) shape.",
    ),
    *_CHANNEL_STEP_ROWS,
    (
        "has no floor under the scale: an all-zero group gets scale 0",
        dict(floor=False),
        _FLOOR_HINT,
    ),
)
PER_GROUP_MISTAKES = mistakes_from_rows(_PER_GROUP_ROWS, _per_group_variant)

#: The lesson's method, shown when a run fails and no known mistake explains it.
PER_GROUP_RECIPE = (
    "view the tensor as rows of group_size elements, tensor.view(-1, group_size); quantize that "
    "view per channel along dim 0 (one scale per row of the view: shape (numel // group_size, "
    "1)); view q back to the tensor's shape; return (q, scale)."
)


def _group_tensors() -> dict[str, torch.Tensor]:
    """The tensors the two per-group checkers share (seeded: the same on every CPU)."""
    pruned = seeded_randn(3, 4, seed=3)
    pruned[1, 2:] = 0.0  # one all-zero group of 2
    return {
        "6x6": seeded_randn(6, 6, seed=0),
        "2x8": varied_rows_weight(2, 8, seed=1),
        "4x6": seeded_randn(4, 6, seed=2),
        "pruned": pruned,
    }


def _per_group_specs() -> list[tuple[str, torch.Tensor, int, torch.dtype]]:
    """``(description, tensor, group_size, dtype)`` for both per-group checkers."""
    t = _group_tensors()
    return [
        ("the lesson's 6x6 tensor in groups of 3 (12 groups)", t["6x6"], 3, torch.int8),
        ("a 2x8 weight in groups of 4: the view (4, 4) is square", t["2x8"], 4, torch.int8),
        ("a 4x6 tensor in groups of 2 (12 groups of 2)", t["4x6"], 2, torch.int8),
        ("a 3x4 tensor in groups of 2, one of them all zeros", t["pruned"], 2, torch.int8),
        ("the 6x6 tensor in groups of 2, dtype=torch.int16", t["6x6"], 2, torch.int16),
    ]


def check_linear_q_symmetric_per_group(function: Callable) -> CheckReport:
    """Exercise of lesson 05: ``my_linear_q_symmetric_per_group(tensor, group_size, dtype)``
    returning ``(q, scale)`` as the course does: ``q`` in the tensor's shape, a float scale of
    shape ``(numel // group_size, 1)``, one per group of ``group_size`` consecutive elements of
    a row, floored at float32's eps.

    The reference is ``helper.linear_q_symmetric_per_group``. The cases: the lesson's 6x6 tensor
    in groups of 3, a 2x8 weight in groups of 4 (its grouped view is square, so a scale that
    does not broadcast back gives wrong values instead of an error), a 4x6 tensor in groups of
    2, a tensor with an all-zero group, and int16.
    """
    cases = []
    for text, tensor, group_size, dtype in _per_group_specs():
        q, scale = linear_q_symmetric_per_group(tensor, group_size, dtype)
        empty = tensor.reshape(-1, group_size).abs().amax(dim=1, keepdim=True) == 0
        check = _expect_q_and_scale(q, scale, empty, "group")
        cases.append(CheckCase(text, (tensor, group_size, dtype), check, PER_GROUP_RECIPE))
    wrapped = _scale_as_float32(function) if callable(function) else function
    return run_checks(
        "Per-group quantization", wrapped, cases, PER_GROUP_MISTAKES, recipe=PER_GROUP_RECIPE
    )


# ---------------------------------------------------------------------------------------------
# Dequantize per group
# ---------------------------------------------------------------------------------------------


def _dequantize_per_group_variant(
    quantized_tensor: torch.Tensor,
    scale: torch.Tensor,
    group_size: int,
    *,
    groups: str | None = "rows",
    via_helper: bool = False,
    flat_scale: bool = False,
    divide: bool = False,
    view_back: bool = True,
) -> torch.Tensor:
    """The right answer, or one classic mistake, depending on the keywords.

    ``groups``: ``"rows"`` (right: ``quantized_tensor.view(-1, group_size)``), ``"columns"``,
    ``"reshape_first"`` (``view(group_size, -1)``) or ``None`` (no view: the whole tensor times
    the scale, by hand or, ``via_helper``, with ``helper.linear_dequantization``).
    """
    if groups is None:
        if via_helper:
            return linear_dequantization(quantized_tensor, scale, 0)
        return scale * quantized_tensor.float()
    if groups == "columns":
        view = quantized_tensor.T.reshape(-1, group_size)
    elif groups == "reshape_first":
        view = quantized_tensor.reshape(group_size, -1)
    else:
        view = quantized_tensor.reshape(-1, group_size)
    s = scale.reshape(-1) if flat_scale else scale
    back = view.float() / s if divide else s * view.float()
    if view_back:
        shape = quantized_tensor.shape
        back = back.reshape(shape[::-1]).T if groups == "columns" else back.reshape(shape)
    return back


_NO_GROUPS_HINT = (
    "the scale has one row per *group*, not per row of the tensor, so it cannot multiply the "
    "tensor as it is: view it as rows of one group each first, quantized_tensor.view(-1, "
    "group_size), dequantize that, and view the result back."
)

_DEQUANTIZE_PER_GROUP_ROWS = (
    (
        "multiplies the whole tensor by the per-group scale without cutting it into groups",
        dict(groups=None),
        _NO_GROUPS_HINT,
    ),
    (
        "calls linear_dequantization on the whole tensor without cutting it into groups",
        dict(groups=None, via_helper=True),
        _NO_GROUPS_HINT,
    ),
    *_GROUPING_ROWS,
    (
        "flattens the scale to shape (number of groups,), which does not broadcast back",
        dict(flat_scale=True),
        "keep the scale as a column, (number of groups, 1): against the (groups, group_size) "
        "view it then multiplies each row by its own scale. A flat (groups,) scale lines up "
        "with the view's *columns*, or does not fit at all.",
    ),
    (
        "returns the result in the groups' shape: it never views it back",
        dict(view_back=False),
        "finish with .view(quantized_tensor.shape): the dequantized tensor has the quantized "
        "tensor's shape.",
    ),
    (
        "divides by the scale",
        dict(divide=True),
        "multiply by the scale to dequantize: one integer step is worth s in real units, "
        "r' = s * q.",
    ),
)
DEQUANTIZE_PER_GROUP_MISTAKES = mistakes_from_rows(
    _DEQUANTIZE_PER_GROUP_ROWS, _dequantize_per_group_variant
)

#: The lesson's method, shown when a run fails and no known mistake explains it.
DEQUANTIZE_PER_GROUP_RECIPE = (
    "view the integers as rows of one group each, quantized_tensor.view(-1, group_size); "
    "dequantize that with linear_dequantization(rows, scale, 0), each row times its own scale in "
    "float; view the result back to quantized_tensor.shape."
)


def check_linear_dequantization_per_group(function: Callable) -> CheckReport:
    """Exercise of lesson 05: ``my_linear_dequantization_per_group(quantized_tensor, scale,
    group_size)``, a float tensor in ``quantized_tensor``'s shape.

    The reference is ``helper.linear_dequantization_per_group``; the inputs are what
    ``helper.linear_q_symmetric_per_group`` makes of the quantizer's cases (the all-zero group
    and int16 included).
    """
    cases = []
    for text, tensor, group_size, dtype in _per_group_specs():
        q, scale = linear_q_symmetric_per_group(tensor, group_size, dtype)
        check = expect_close(linear_dequantization_per_group(q, scale, group_size))
        cases.append(CheckCase(text, (q, scale, group_size), check, DEQUANTIZE_PER_GROUP_RECIPE))
    return run_checks(
        "Per-group dequantization",
        function,
        cases,
        DEQUANTIZE_PER_GROUP_MISTAKES,
        recipe=DEQUANTIZE_PER_GROUP_RECIPE,
    )
