"""Lesson 07, an 8-bit linear layer (W8A16): two checkers.

* ``check_w8_a16_forward`` (the first, smaller step): the learner writes
  ``w8_a16_forward(weight, input, scales, bias=None)``: int8 weight (out, in), float32 scales
  (out,) as ``W8A16LinearLayer`` stores them, a float input of any dtype. The bfloat16 and
  float16 cases use small dyadic numbers, so every float32 or float64 way of computing them is
  exact and rounds to the same 16-bit result.
* ``check_w8a16_layer`` (the exercise): the learner writes the course's class,
  ``MyW8A16LinearLayer(in_features, out_features, bias=True, dtype=torch.float32)`` with
  ``quantize(weights)`` and ``forward(input)``. Each case builds the layer, looks at its
  buffers, quantizes a weight, sets the bias and runs an input through it; the result is
  compared with ``helper.W8A16LinearLayer`` doing the same.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from helper import W8A16LinearLayer, dtype_name, linear_q_symmetric_per_channel, w8_a16_forward
from support.examples import seeded_randn
from support.exercises.core import (
    _COURSE_WEIGHT,
    CheckCase,
    CheckReport,
    Mistake,
    _call,
    _error_shape,
    _is_stub,
    _linear,
    _worst,
    mistakes_from_rows,
    run_checks,
    shown,
)

__all__ = [
    "W8A16_MISTAKES",
    "check_w8_a16_forward",
    "W8A16_LAYER_MISTAKES",
    "check_w8a16_layer",
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
    bias_first=False,
):
    """The right forward pass, or one classic mistake, depending on the keywords: ``product``
    makes the scaled output, ``add_bias`` is ``"if given"``, ``"never"`` or ``"always"`` (even
    ``None``), ``bias_float`` converts the bias to float32 before adding it, ``cast``
    returns the input's dtype, and ``bias_first`` adds the bias before the scales."""
    if bias_first and bias is not None:
        unscaled = _linear(input.float(), weight.float()) + bias.float().reshape(-1)
        return (unscaled * scales).to(input.dtype)
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
        "computes in float16: the input, the weight and the scales made float16 first",
        lambda w, x, s, b=None: (
            _linear(x.half(), w.half()) * s.half() + (0 if b is None else b.half())
        ).to(x.dtype),
        "float16 keeps 11 significant bits and stops at 65504: a float32 input loses accuracy, "
        "and the integer product x @ W_int8.T, 1 / scale times larger than the output, can "
        "overflow to inf. Compute in float32 and cast only the result: " + _W8A16_RECIPE,
    ),
    (
        "adds the bias before multiplying by the scales",
        dict(bias_first=True),
        "the bias is in the output's units, the integer product is not: scale the product "
        "first, then add the bias, (x @ W_int8.T) * scales + bias. Adding it first scales the "
        "bias too. " + _W8A16_RECIPE,
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

    check.expected = expected
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
    return run_checks(
        "W8A16 forward", function, _w8a16_cases(), W8A16_MISTAKES, recipe=_W8A16_RECIPE
    )


# ---------------------------------------------------------------------------------------------
# The exercise: the class MyW8A16LinearLayer(in_features, out_features, bias, dtype)
# ---------------------------------------------------------------------------------------------

_LAYER_EXERCISE = "W8A16 layer"

_LAYER_RECIPE = (
    "__init__: register_buffer int8_weights (int8, (out, in)), scales ((out,)) and bias "
    "((1, out) in dtype; self.bias = None when bias=False). quantize(weights): w = "
    "weights.float(); scales = w.abs().amax(dim=1) / 127; int8_weights = torch.round(w / "
    "scales[:, None]).clamp(-128, 127).to(torch.int8); store both. forward(input): "
    "w8_a16_forward(self.int8_weights, input, self.scales, self.bias)."
)

_NAMES = ("int8_weights", "scales", "bias")


def _kind(layer: nn.Module, name: str) -> tuple:
    """How ``layer`` holds ``name``: ``("buffer" | "parameter" | "attribute", dtype, shape)``
    for a tensor, ``("None",)``, or ``("missing",)``."""
    for kind, held in (("buffer", layer._buffers), ("parameter", layer._parameters)):
        if name in held:
            tensor = held[name]
            return ("None",) if tensor is None else (kind, tensor.dtype, tuple(tensor.shape))
    if name not in layer.__dict__:
        return ("missing",)
    value = layer.__dict__[name]
    if value is None:
        return ("None",)
    if isinstance(value, torch.Tensor):
        return ("attribute", value.dtype, tuple(value.shape))
    return ("attribute", type(value).__name__, None)


def _dtype_text(dtype: Any) -> str:
    return dtype_name(dtype) if isinstance(dtype, torch.dtype) else str(dtype)


class _LayerRun:
    """What one case did with a layer class: how the layer holds its tensors after
    ``__init__`` (``built``) and after ``quantize`` and the bias (``after``), copies of those
    tensors, the output, and the first error (its stage and the exception)."""

    def __init__(self) -> None:
        self.built: dict[str, tuple] = {}
        self.after: dict[str, tuple] = {}
        self.tensors: dict[str, torch.Tensor | None] = {}
        self.parameters: list[str] = []
        self.output: Any = None
        self.error: tuple[str, BaseException] | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            stage, error = self.error
            return f"{stage} raised {type(error).__name__}"
        parts = []
        for name in _NAMES:
            kind = self.after.get(name, ("missing",))
            if kind[0] in ("None", "missing"):
                parts.append(f"{name}: {kind[0]}")
            else:
                shape = "" if kind[2] is None else f" {kind[2]}"
                parts.append(f"{name}: {kind[0]} {_dtype_text(kind[1])}{shape}")
        out = self.output
        if isinstance(out, torch.Tensor):
            parts.append(f"output: {dtype_name(out.dtype)} {tuple(out.shape)}")
        return "{" + ", ".join(parts) + "}"


def _use(layer_class: Callable) -> Callable:
    """A function that runs one case with ``layer_class``: build the layer, quantize
    ``weights``, set the bias, run ``input`` through it. An error while building the layer is
    the case's error (``run_checks`` reports it); after that the first error is kept with its
    stage (``_LayerRun.error``). A function that builds nothing (returns None) gives None, so
    that a stub handed in instead of a class counts as not attempted."""

    def run(in_features, out_features, bias, dtype, weights, bias_values, input):
        layer = layer_class(in_features, out_features, bias, dtype)
        if layer is None:
            return None
        result, stage = _LayerRun(), "__init__"
        try:
            if not isinstance(layer, nn.Module):
                raise TypeError(f"expected an nn.Module, got {type(layer).__name__}")
            result.built = {name: _kind(layer, name) for name in _NAMES}
            stage = "quantize"
            layer.quantize(weights)
            stage = "setting the bias"
            if bias_values is not None and isinstance(getattr(layer, "bias", None), torch.Tensor):
                with torch.no_grad():
                    layer.bias.copy_(bias_values.reshape(layer.bias.shape))
            result.after = {name: _kind(layer, name) for name in _NAMES}
            result.parameters = [name for name, _ in layer.named_parameters()]
            for name in _NAMES:
                tensor = getattr(layer, name, None)
                result.tensors[name] = (
                    tensor.detach().clone() if isinstance(tensor, torch.Tensor) else None
                )
            stage = "forward"
            with torch.no_grad():
                result.output = layer(input)
        except Exception as error:  # the learner's code may raise anything, at any stage
            result.error = (stage, error)
        return result

    if not isinstance(layer_class, type):
        run.__wrapped__ = layer_class  # a function: the stub test reads its source
    return run


def _holding_problems(
    kinds: dict[str, tuple], out: int, inp: int, bias: bool, dtype: torch.dtype
) -> list[str]:
    """What is wrong with how a layer holds its tensors (``_kind`` of each)."""
    problems = []
    weights = kinds.get("int8_weights", ("missing",))
    if weights[0] != "buffer":
        problems.append(f"int8_weights is {_kind_text(weights)}, not a registered buffer")
    elif weights[1] != torch.int8:
        problems.append(f"int8_weights is {dtype_name(weights[1])}, not int8")
    elif weights[2] != (out, inp):
        problems.append(f"int8_weights has shape {weights[2]}, expected {(out, inp)}")
    scales = kinds.get("scales", ("missing",))
    if scales[0] != "buffer":
        problems.append(f"scales is {_kind_text(scales)}, not a registered buffer")
    elif scales[2] != (out,):
        problems.append(f"scales has shape {scales[2]}, expected ({out},)")
    elif scales[1] not in (torch.float32, dtype):
        problems.append(
            f"scales is {dtype_name(scales[1])}, expected float32 or {dtype_name(dtype)}"
        )
    held = kinds.get("bias", ("missing",))
    if not bias:
        if held[0] != "None":
            problems.append(f"bias=False, but the layer's bias is {_kind_text(held)}, not None")
    elif held[0] != "buffer":
        problems.append(f"bias is {_kind_text(held)}, not a registered buffer")
    elif held[2] not in ((1, out), (out,)) or held[1] != dtype:
        problems.append(
            f"bias is {dtype_name(held[1])} of shape {held[2]}, expected {dtype_name(dtype)} "
            f"of shape {(1, out)}"
        )
    return problems


def _kind_text(kind: tuple) -> str:
    if kind[0] in ("None", "missing"):
        return {"None": "None", "missing": "missing"}[kind[0]]
    if kind[0] == "parameter":
        return "an nn.Parameter"
    return "a plain attribute" + (f" ({kind[1]})" if kind[2] is None else "")


def _expected_int8(weights: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The int8 weights for given per-row scales: a float32 division, a clamp, a cast."""
    divided = weights.float() / scales.float().reshape(-1, 1)
    return torch.round(divided).clamp(-128, 127).to(torch.int8)


def _expect_layer(args: tuple) -> Callable[[Any], str | None]:
    """A check of one case: the layer holds its tensors as helper's ``W8A16LinearLayer`` does
    (buffers; float32 scales or scales in the layer's dtype), holds the right values after
    ``quantize``, and its forward gives helper's output in the input's dtype."""
    in_features, out_features, bias, dtype, weights, bias_values, x = args
    expected = _use(W8A16LinearLayer)(*args)
    reference_scales = expected.tensors["scales"]

    def check(result: Any) -> str | None:
        if result.error is not None:
            stage, error = result.error
            return f"{stage} raised {type(error).__name__}: {str(error)[:300]}"
        problems = [
            f"after __init__: {problem}"
            for problem in _holding_problems(result.built, out_features, in_features, bias, dtype)
        ]
        if not problems:
            problems = [
                f"after quantize: {problem}"
                for problem in _holding_problems(
                    result.after, out_features, in_features, bias, dtype
                )
            ]
        if problems:
            return "; ".join(problems)
        if result.parameters:
            return f"the layer has parameters ({', '.join(result.parameters)}): it trains nothing"
        scales, q = result.tensors["scales"], result.tensors["int8_weights"]
        if not torch.equal(scales, reference_scales.to(scales.dtype)):
            return "after quantize: scales: " + _worst(scales, reference_scales.to(scales.dtype))
        want_q = _expected_int8(weights, scales)
        if not torch.equal(q, want_q):
            return "after quantize: int8_weights: " + _worst(q, want_q)
        output = result.output
        want = w8_a16_forward(q, x, scales.float(), expected.tensors["bias"])
        if not isinstance(output, torch.Tensor):
            return f"forward returned {shown(output, 80)}, expected a tensor"
        if output.dtype != x.dtype or output.shape != want.shape:
            return (
                f"forward returned {dtype_name(output.dtype)} of shape {tuple(output.shape)}, "
                f"expected {dtype_name(x.dtype)} of shape {tuple(want.shape)}"
            )
        magnitude = _linear(x.double().abs(), q.double().abs()) * scales.double()
        if expected.tensors["bias"] is not None:
            magnitude = magnitude + expected.tensors["bias"].double().abs().reshape(-1)
        tolerance = max(2 * torch.finfo(x.dtype).eps, 1e-5) * magnitude + 1e-6
        if not bool(((output.double() - want.double()).abs() <= tolerance).all()):
            return "forward: " + _worst(output, want)
        return None

    check.expected = expected
    return check


def _same_run(a: tuple[Any, BaseException | None], b: tuple[Any, BaseException | None]) -> bool:
    """Two runs of a case agree: the same error in ``__init__``, ``quantize`` or while setting
    the bias; or the same tensors, held the same way after ``__init__`` and ``quantize``, and
    outputs that agree to bfloat16 rounding when both forwards ran (a forward that raises is
    not compared: the learner's may call their own ``w8_a16_forward``)."""
    (run_a, error_a), (run_b, error_b) = a, b
    if error_a is not None or error_b is not None:
        return _error_shape(error_a) == _error_shape(error_b)
    if not (isinstance(run_a, _LayerRun) and isinstance(run_b, _LayerRun)):
        return run_a is None and run_b is None
    stages = [run.error[0] if run.error else None for run in (run_a, run_b)]
    if any(stage not in (None, "forward") for stage in stages):
        return stages[0] == stages[1] and _error_shape(run_a.error[1]) == _error_shape(
            run_b.error[1]
        )
    if run_a.built != run_b.built or run_a.after != run_b.after:
        return False
    for name in _NAMES:
        x, y = run_a.tensors.get(name), run_b.tensors.get(name)
        if (x is None) != (y is None) or (x is not None and not _same_tensor(x, y)):
            return False
    out_a, out_b = run_a.output, run_b.output
    if isinstance(out_a, torch.Tensor) and isinstance(out_b, torch.Tensor):
        return (
            out_a.shape == out_b.shape
            and out_a.dtype == out_b.dtype
            and bool(torch.allclose(out_a.double(), out_b.double(), rtol=2e-2, atol=1e-3))
        )
    return True


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))


def _layer_variant(
    *,
    weights_as="buffer",
    int8=True,
    keepdim=False,
    scales_dim=1,
    course_division=False,
    clamp=True,
    bias_as="buffer",
    bias_always=False,
    transpose=False,
    store=True,
    forward_bias=True,
):
    """The right class, or one with a classic mistake, depending on the keywords:
    ``weights_as`` "buffer", "parameter" (raises) or "frozen parameter"; ``int8`` weights or
    float ones; scales with ``keepdim`` (out, 1) or along ``scales_dim`` 0 (the input
    features); the ``course_division`` (scales and division in the weights' dtype) with or
    without a ``clamp``; the bias as a "buffer" or a plain "attribute" (``bias_as``),
    ``bias_always`` registered; ``transpose`` the stored weights; ``store`` them at all;
    ``forward_bias``."""

    class Layer(nn.Module):
        def __init__(self, in_features, out_features, bias=True, dtype=torch.float32):
            super().__init__()
            zeros = torch.zeros((out_features, in_features), dtype=torch.int8 if int8 else dtype)
            if weights_as == "buffer":
                self.register_buffer("int8_weights", zeros)
            else:
                frozen = weights_as == "frozen parameter"
                self.int8_weights = nn.Parameter(zeros, requires_grad=not frozen)
            scales_dtype = dtype if course_division else torch.float32  # the course: dtype
            self.register_buffer("scales", torch.ones(out_features, dtype=scales_dtype))
            if bias or bias_always:
                if bias_as == "buffer":
                    self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype))
                else:
                    self.bias = torch.zeros((1, out_features), dtype=dtype)
            else:
                self.bias = None

        def quantize(self, weights):
            scales = weights.float().abs().amax(dim=scales_dim, keepdim=keepdim) / 127
            shape = (-1, 1) if scales_dim == 1 else (1, -1)
            if course_division:
                scales = scales.to(weights.dtype)
                q = torch.round(weights / scales.reshape(shape))
            else:
                q = torch.round(weights.float() / scales.reshape(shape))
            q = q.clamp(-128, 127) if clamp else q
            q = q.to(torch.int8) if int8 else q
            q = q.T.contiguous() if transpose else q
            if not store:
                return
            if weights_as == "frozen parameter":
                self.int8_weights = nn.Parameter(q, requires_grad=False)
            else:
                self.int8_weights = q
            self.scales = scales

        def forward(self, input):
            bias = self.bias if forward_bias else None
            return w8_a16_forward(self.int8_weights, input, self.scales, bias)

    return Layer


_LAYER_BUFFERS = (
    "Register the tensors with self.register_buffer(name, tensor): the module then saves "
    "them in state_dict() and moves them with .to(device), and no optimizer sees them."
)

# One row per classic mistake: (description, what differs from the right class, hint).
_LAYER_ROWS = (
    (
        "keeps the int8 weights in an nn.Parameter",
        dict(weights_as="parameter"),
        "nn.Parameter(int8 tensor) raises: only float tensors can require a gradient, and an "
        "integer cannot change a little. " + _LAYER_BUFFERS,
    ),
    (
        "keeps the int8 weights in an nn.Parameter",
        dict(weights_as="frozen parameter"),
        "requires_grad=False gets past the error, but a parameter is still something to "
        "train, listed by .parameters(). " + _LAYER_BUFFERS,
    ),
    (
        "keeps the weights as floats: int8_weights is not int8",
        dict(int8=False),
        "create int8_weights with dtype=torch.int8, and end quantize with .to(torch.int8): "
        "1 byte per weight is the whole point. " + _LAYER_RECIPE,
    ),
    (
        "stores the scales with shape (out, 1) (keepdim=True)",
        dict(keepdim=True),
        "keepdim=True (or [:, None]) is right for dividing the weight's rows, but store the "
        "scales as (out,): after the product the outputs lie along the last axis, and "
        "w8_a16_forward refuses (out, 1). Divide by scales[:, None], store scales.",
    ),
    (
        "takes the scales along the input features (amax over dim 0): one per column",
        dict(scales_dim=0),
        "one scale per OUTPUT row: the largest |weight| of each row, w.abs().amax(dim=1), "
        "shape (out_features,). Only a row's scale can come out of the product after it.",
    ),
    (
        "divides in the weights' dtype (bfloat16) and casts without a clamp: the row "
        "[0.6626, 0.1] gives 127.5, rounds to 128, and int8 cannot hold 128",
        dict(course_division=True, clamp=False),
        "divide in float32 (weights.float() / scales[:, None]), and clamp to [-128, 127] "
        "before .to(torch.int8). A bfloat16 division rounds the quotient to 8 significant "
        "bits: 127.25 becomes 127.5, round gives 128, and converting a float outside int8's "
        "range is undefined (x86 gives -128).",
    ),
    (
        "divides in the weights' dtype (bfloat16): the quotient is rounded to 8 significant "
        "bits before round(), so some weights land one step off",
        dict(course_division=True),
        "divide in float32: weights.float() / scales.float()[:, None]. In bfloat16, numbers "
        "between 64 and 128 are 0.5 apart, so 101.3 becomes 101.5 and rounds to 102.",
    ),
    (
        "keeps the bias as a plain attribute, not a registered buffer",
        dict(bias_as="attribute"),
        "self.bias = tensor is invisible to the module: not in state_dict(), not moved by "
        ".to(). " + _LAYER_BUFFERS,
    ),
    (
        "registers a bias even when bias=False",
        dict(bias_always=True),
        "with bias=False the layer has no bias: set self.bias = None (the course does), so "
        "that forward adds nothing and a state dict holds no bias.",
    ),
    (
        "stores the quantized weights transposed, (in, out)",
        dict(transpose=True),
        "int8_weights keeps the shape of nn.Linear's weight, (out_features, in_features), "
        "one row per output: quantize row by row and store the result as it is.",
    ),
    (
        "does not store the quantized weights and scales in the layer",
        dict(store=False),
        "quantize must end with self.int8_weights = ... and self.scales = ... (or copy_ into "
        "them); values left in local variables are lost when the method returns.",
    ),
    (
        "forgets the bias in forward",
        dict(forward_bias=False),
        "pass the bias on: w8_a16_forward(self.int8_weights, input, self.scales, self.bias). "
        "It adds nothing when self.bias is None.",
    ),
)
W8A16_LAYER_MISTAKES = mistakes_from_rows(_LAYER_ROWS, _layer_variant)


def _layer_cases() -> list[CheckCase]:
    """The cases of ``check_w8a16_layer``: each builds a layer, quantizes, runs a forward."""
    row = torch.tensor([[0.6626, 0.1]], dtype=torch.bfloat16)
    half_weight = (0.5 * seeded_randn(8, 16, seed=12)).to(torch.bfloat16)
    specs = [
        (
            "a float32 layer, 6 -> 4 with bias, a batch of 2 tokens",
            (6, 4, True, torch.float32)
            + (seeded_randn(4, 6, seed=0), seeded_randn(4, seed=1), seeded_randn(2, 6, seed=2)),
        ),
        (
            "a float32 layer, 3 -> 2, bias=False",
            (3, 2, False, torch.float32)
            + (seeded_randn(2, 3, seed=3), None, seeded_randn(1, 3, seed=4)),
        ),
        (
            "a bfloat16 layer, 2 -> 1, bias=False, the weight [[0.6626, 0.1]]",
            (2, 1, False, torch.bfloat16) + (row, None, torch.ones(1, 2, dtype=torch.bfloat16)),
        ),
        (
            "a bfloat16 layer, 16 -> 8 with bias, 2 sequences of 3 tokens",
            (16, 8, True, torch.bfloat16)
            + (
                half_weight,
                seeded_randn(8, seed=13).to(torch.bfloat16),
                seeded_randn(2, 3, 16, seed=14).to(torch.bfloat16),
            ),
        ),
    ]
    return [CheckCase(text, args, _expect_layer(args), _LAYER_RECIPE) for text, args in specs]


class _LayerReport(CheckReport):
    """A ``CheckReport`` that speaks of the learner's class, not of a function."""

    def __repr__(self) -> str:
        if self.status == "not attempted":
            return (
                f"{self.exercise}: not attempted yet. Your class's methods are empty; fill in "
                "__init__, quantize and forward and run this cell again."
            )
        return super().__repr__().replace("It looks like your function", "It looks like your class")


def _untouched(layer_class: type) -> bool:
    """The class as handed out: ``quantize`` and ``forward`` are stubs and a layer holds no
    tensor."""
    if not (isinstance(layer_class, type) and issubclass(layer_class, nn.Module)):
        return False
    methods = [getattr(layer_class, name, None) for name in ("quantize", "forward")]
    if not all(callable(m) and _is_stub(m) for m in methods):
        return False
    try:
        layer = layer_class(2, 2)
    except Exception:
        return False
    return not list(layer.buffers()) and not list(layer.parameters())


def check_w8a16_layer(layer_class: Callable) -> CheckReport:
    """Exercise of lesson 07: the class ``MyW8A16LinearLayer(in_features, out_features,
    bias=True, dtype=torch.float32)`` with ``quantize(weights)`` and ``forward(input)``, as
    the course builds it.

    Each case builds a layer, checks how it holds ``int8_weights`` (an int8 buffer (out, in)),
    ``scales`` (a buffer (out,), float32 or the layer's dtype) and ``bias`` (a buffer in the
    layer's dtype, or None when bias=False), quantizes a weight (absmax per row, a float32
    division, a clamp), sets the bias, and compares the forward with helper's. The cases: a
    float32 layer with bias and a batch, one without bias, a bfloat16 layer with the row
    [0.6626, 0.1] (a bfloat16 division wraps it), and a bfloat16 layer with bias and a 3-D
    input.
    """
    if isinstance(layer_class, nn.Module):
        raise TypeError(
            "pass your class itself, e.g. check_w8a16_layer(MyW8A16LinearLayer), not a layer "
            "made from it."
        )
    cases = _layer_cases()
    if not callable(layer_class):  # run_checks says what to pass instead
        return run_checks(_LAYER_EXERCISE, layer_class, cases)
    if _untouched(layer_class):
        return _LayerReport(_LAYER_EXERCISE, "not attempted", [])
    report = run_checks(_LAYER_EXERCISE, _use(layer_class), cases, recipe=_LAYER_RECIPE)
    if report.status == "failed" and not any(
        problem and "TimeoutError" in problem for _, problem, _ in report.results
    ):
        report.mistake = _known_layer_mistake(layer_class, cases, W8A16_LAYER_MISTAKES)
    fields = ("exercise", "status", "results", "mistake", "recipe", "diagnosis", "notes")
    return _LayerReport(*(getattr(report, name) for name in fields))


def _known_layer_mistake(
    layer_class: Callable, cases: Sequence[CheckCase], mistakes: Sequence[Mistake]
) -> Mistake | None:
    """The first of ``mistakes`` (each a function that makes a class) whose runs agree with
    the learner's class on every case."""
    outcomes = [_call(_use(layer_class), case) for case in cases]
    for mistake in mistakes:
        wrong = _use(mistake.function())
        if all(_same_run(o, _call(wrong, case)) for o, case in zip(outcomes, cases, strict=True)):
            return mistake
    return None
