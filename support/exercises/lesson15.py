"""Lesson 15, quantization-aware training: ``check_fake_quantize_ste``.

The learner writes ``my_fake_quantize_ste(r, scale, zero_point, q_min, q_max)``: quantize,
then dequantize, ``s * (clamp(round(r / s) + z, q_min, q_max) - z)``, with a straight-through
estimator, so that the gradient with respect to ``r`` is 1 where the *rounded* level
``round(r / s) + z`` lies in ``[q_min, q_max]`` and 0 where the clamp clipped it. The reference
is ``helper.fake_quantize_ste``.

A checker must look at the gradient as well as the values, and the learner's function returns
only the values. So the checker calls the learner's function through ``_with_gradient``, which
calls it on an input that requires a gradient, runs ``backward`` (the gradient of
``output.sum()``) and hands the cases an ``STEOutcome``: the values and the gradient that
reached the input (``None`` if the output has no ``grad_fn``). The known mistakes go through
the same wrapper. Every case keeps ``r / s`` away from the half-way points between levels, so
``r / s`` and PyTorch's ``r * (1 / s)`` round alike.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from helper import fake_quantize_ste
from support.examples import seeded_randn
from support.exercises.core import (
    CheckCase,
    CheckReport,
    Mistake,
    expect_close,
    run_checks,
)

__all__ = [
    "STE_MISTAKES",
    "STE_RECIPE",
    "STEOutcome",
    "check_fake_quantize_ste",
]


class STEOutcome(NamedTuple):
    """What the checker compares: the values a function returns (detached) and the gradient
    of their sum with respect to the input, or ``None`` when the output has no ``grad_fn``."""

    values: torch.Tensor
    gradient: torch.Tensor | None


def _with_gradient(function: Callable) -> Callable:
    """``function`` called as the exercise calls it, then ``backward`` on the sum of its output.

    Returns what ``function`` returned if that is not a tensor (``None``, a tuple, ...), else an
    ``STEOutcome``. ``functools.wraps`` keeps the learner's source and argument names, so the
    report still recognises the untouched stub and names an argument changed in place."""

    @functools.wraps(function)
    def run(tensor, scale, zero_point, q_min, q_max):
        output = function(tensor, scale, zero_point, q_min, q_max)
        if not isinstance(output, torch.Tensor):
            return output
        if not output.requires_grad:  # detached, computed under no_grad, or a new tensor
            return STEOutcome(output.detach(), None)
        (gradient,) = torch.autograd.grad(output.sum(), tensor, allow_unused=True)
        return STEOutcome(output.detach(), gradient)

    return run


def _ste_variant(
    tensor: torch.Tensor,
    scale: Any,
    zero_point: Any,
    q_min: int,
    q_max: int,
    *,
    ste: str = "round",
    mask_on: str = "rounded",
    zero: str = "both",
    quantize: str = "divide",
    dequantize: str = "multiply",
    clamp: bool = True,
) -> torch.Tensor:
    """The right answer, or one classic mistake, depending on the keywords.

    ``ste``: ``"round"`` (the STE), ``"none"`` (plain ``torch.round``), ``"detached"`` (the
    right values, cut off from the graph) or ``"everywhere"`` (``r + (fq - r).detach()``);
    ``mask_on``: ``"rounded"`` or ``"unrounded"`` (clamp before the STE's round); ``zero``:
    ``"both"``, ``"none"`` or ``"added"`` (never subtracted); ``quantize`` ``"divide"`` or
    ``"multiply"``; ``dequantize`` ``"multiply"`` or ``"divide"``."""
    z = 0 if zero == "none" else zero_point
    x = tensor / scale if quantize == "divide" else tensor * scale
    if mask_on == "unrounded" and clamp:
        x = torch.clamp(x + z, q_min, q_max) - z
    if ste == "none":
        x = torch.round(x)
    else:
        x = x + (torch.round(x) - x).detach()
    q = x + z
    if clamp and mask_on == "rounded":
        q = torch.clamp(q, q_min, q_max)
    if zero != "added":
        q = q - z
    out = q * scale if dequantize == "multiply" else q / scale
    if ste == "detached":
        return out.detach()
    if ste == "everywhere":
        return tensor + (out - tensor).detach()
    return out


_STE_TRICK = (
    "The straight-through estimator: x = r / s, then x = x + (torch.round(x) - x).detach(). "
    "Forward, that is round(x); backward, the detached part counts as a constant, so the "
    "gradient passes through as if round were the identity."
)

# One row per classic mistake: (description, what differs from the right answer, hint).
_STE_ROWS = (
    (
        "rounds with plain torch.round, without the straight-through estimator, so the "
        "gradient is 0 everywhere",
        dict(ste="none"),
        "torch.round is a staircase: flat between the half-way points, so autograd gives it "
        "a gradient of 0 and nothing reaches the weights. " + _STE_TRICK,
    ),
    (
        "returns a tensor cut off from the graph (detached, computed under torch.no_grad(), "
        "or built anew): it has no grad_fn, so no gradient can flow back",
        dict(ste="detached"),
        "compute the output from r with torch operations only, and do not call .detach() on "
        "the result (only on the rounding correction inside the STE). " + _STE_TRICK,
    ),
    (
        "passes the gradient through the clipped values too (r + (fake_quantized - "
        "r).detach() gives a gradient of 1 everywhere)",
        dict(ste="everywhere"),
        "apply the STE to the rounding only, and clamp afterwards with torch.clamp: a clamp "
        "that clips passes a gradient of 0, so a value beyond the grid stops learning, as in "
        "torch.fake_quantize_per_tensor_affine. Putting the whole fake quantizer inside the "
        "detached part makes the gradient 1 even where the value was clipped.",
    ),
    (
        "takes the mask on r / s + z before rounding (it clamps before the STE's round), so "
        "a value that rounds onto the end level gets no gradient",
        dict(mask_on="unrounded"),
        "round first, then clamp: q = torch.clamp(x_ste + z, q_min, q_max) with x_ste the "
        "STE-rounded r / s. The mask is on the rounded level: r / s + z = q_max + 0.4 rounds "
        "to q_max, inside the grid, and keeps its gradient (PyTorch's fake-quantize ops agree).",
    ),
    (
        "ignores the zero point",
        dict(zero="none"),
        "add the zero point before clamping and subtract it after: q = clamp(round(r / s) + "
        "z, q_min, q_max), then s * (q - z). Only with z = 0 may you leave it out.",
    ),
    (
        "adds the zero point but never subtracts it: it dequantizes s * q instead of s * (q - z)",
        dict(zero="added"),
        "dequantize with s * (q - z): the level z stands for the value 0.",
    ),
    (
        "multiplies by the scale to quantize (r * s) instead of dividing (r / s)",
        dict(quantize="multiply"),
        "quantizing divides by the step: r / s counts how many steps r is from 0. "
        "Dequantizing multiplies back: s * (q - z).",
    ),
    (
        "divides by the scale to dequantize ((q - z) / s) instead of multiplying",
        dict(dequantize="divide"),
        "dequantizing multiplies by the step: s * (q - z). Quantizing is the one that "
        "divides, r / s.",
    ),
    (
        "never clamps to [q_min, q_max]: values beyond the grid are not clipped",
        dict(clamp=False),
        "clamp the rounded level with torch.clamp(x + z, q_min, q_max): the grid has only the "
        "levels q_min..q_max, and the clamp is also what gives clipped values a gradient of 0.",
    ),
)

#: The known mistakes, each called through ``_with_gradient`` as the learner's function is.
STE_MISTAKES = tuple(
    Mistake(description, _with_gradient(functools.partial(_ste_variant, **how)), hint)
    for description, how, hint in _STE_ROWS
)

#: The lesson's method, shown when a wrong answer matches none of the mistakes above.
STE_RECIPE = (
    "x = r / scale; x = x + (torch.round(x) - x).detach() (forward round, backward the "
    "identity); q = torch.clamp(x + zero_point, q_min, q_max) (gradient 0 where it clips); "
    "return (q - zero_point) * scale."
)


def _levels(values: Sequence[float], scale: float, zero_point: int) -> torch.Tensor:
    """The float32 tensor whose ``r / s + z`` are ``values`` (computed in float64)."""
    levels = torch.tensor(values, dtype=torch.float64)
    return ((levels - zero_point) * scale).float()


def _ste_cases() -> list[tuple[str, tuple, str]]:
    """(description, (r, scale, zero_point, q_min, q_max), hint): no r / s near a half-way
    point; in every case some values round onto an end level from beyond it, and some are
    clipped."""
    seeded = (seeded_randn(6, 8, seed=15) * 1.5).requires_grad_(True)
    return [
        (
            "4 bits (levels -8..7), scale 0.1, zero point 0: r / s from -12 to 9.4",
            (
                _levels(
                    [-12.0, -8.6, -8.3, -3.3, -0.2, 0.3, 2.7, 6.6, 7.3, 7.7, 9.4], 0.1, 0
                ).requires_grad_(True),
                0.1,
                0,
                -8,
                7,
            ),
            "r / s = 7.3 rounds to 7, inside the grid: gradient 1; 7.7 rounds to 8 and is "
            "clipped to 7: gradient 0.",
        ),
        (
            "8 bits unsigned (levels 0..255), scale 0.05, zero point 100: r / s + z from -7.4 "
            "to 262.3",
            (
                _levels(
                    [-7.4, -0.3, 3.6, 99.7, 100.2, 180.6, 255.4, 255.6, 262.3], 0.05, 100
                ).requires_grad_(True),
                0.05,
                100,
                0,
                255,
            ),
            "with a zero point: q = clamp(round(r / s) + z, q_min, q_max), and the value is "
            "s * (q - z).",
        ),
        (
            "2 bits (levels -2..1), scale 0.5, zero point 0: the layers' 2-bit grid",
            (
                _levels(
                    [-3.1, -2.4, -1.6, -0.7, -0.2, 0.4, 0.8, 1.3, 1.6, 2.2], 0.5, 0
                ).requires_grad_(True),
                0.5,
                0,
                -2,
                1,
            ),
            "at 2 bits only the levels -2, -1, 0 and 1 exist: r / s = 1.3 rounds to 1 "
            "(gradient 1), 1.6 rounds to 2 and is clipped (gradient 0).",
        ),
        (
            "a 6x8 tensor of seeded normal values (x 1.5), scale 0.25, zero point -3, levels -8..7",
            (seeded, 0.25, -3, -8, 7),
            "work element by element with torch operations; the shape stays (6, 8).",
        ),
        (
            "int8 (levels -128..127), scale 0.3, zero point 5: r / s + z from -130.6 to 140.3",
            (
                _levels(
                    [-130.6, -128.3, -50.2, 0.4, 60.7, 127.2, 127.6, 140.3], 0.3, 5
                ).requires_grad_(True),
                0.3,
                5,
                -128,
                127,
            ),
            "r / s + z = -128.3 rounds to -128, inside the grid (gradient 1); -130.6 is "
            "clipped (gradient 0).",
        ),
    ]


def _expect_fake_quantized(tensor, scale, zero_point, q_min, q_max):
    """A check that the values and the gradient are ``helper.fake_quantize_ste``'s."""
    leaf = tensor.detach().clone().requires_grad_(True)
    values = fake_quantize_ste(leaf, scale, zero_point, q_min, q_max)
    (gradient,) = torch.autograd.grad(values.sum(), leaf)
    expected = STEOutcome(values.detach(), gradient)
    values_check, gradient_check = expect_close(expected.values), expect_close(gradient)

    def check(result: Any) -> str | None:
        if not isinstance(result, STEOutcome):
            return f"expected a tensor (the fake-quantized values), got {type(result).__name__}"
        problem = values_check(result.values)
        if problem is not None:
            return f"values: {problem}"
        if result.gradient is None:
            return (
                "the values are right, but no gradient reaches the input: your output has no "
                "grad_fn"
            )
        problem = gradient_check(result.gradient)
        if problem is not None:
            return f"gradient of output.sum() with respect to r: {problem}"
        return None

    check.expected = expected
    return check


def check_fake_quantize_ste(function: Callable) -> CheckReport:
    """Exercise of lesson 15: ``my_fake_quantize_ste(r, scale, zero_point, q_min, q_max)``,
    the fake quantizer ``s * (clamp(round(r / s) + z, q_min, q_max) - z)`` with a
    straight-through estimator. The checker compares the values and the gradient of their sum
    with respect to ``r`` (it calls ``backward``) with ``helper.fake_quantize_ste``.

    The cases tell the classic mistakes apart: values that round onto an end level from
    beyond it (where the mask must be on the rounded level), clipped values (gradient 0), a
    zero point, 2 bits, int8, and a 2-D tensor.
    """
    cases = [
        CheckCase(text, args, _expect_fake_quantized(*args), hint)
        for text, args, hint in _ste_cases()
    ]
    return run_checks(
        "Fake quantization with a straight-through estimator",
        _with_gradient(function) if callable(function) else function,
        cases,
        STE_MISTAKES,
        recipe=STE_RECIPE,
    )
