"""Lesson 11, save and load: ``check_w8a16_bytes``.

The learner writes ``my_w8a16_bytes(in_features, out_features, bias=True,
dtype=torch.float32)``: the bytes of a ``W8A16LinearLayer``'s tensors, which is what the layer
adds to a safetensors file (without the header). The reference builds the layer on the meta
device (no memory, no random numbers) and adds up its state dict. Every wrong function below
differs from the right sum, ``out * in + 4 * out + (out * dtype.itemsize if bias else 0)``, in
one place, except the size of a saved file, which adds the file's length field and header
(recognised also when other tensor names or a note change the header's length).

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from helper import W8A16LinearLayer, dtype_name
from support.exercises.core import CheckCase, CheckReport, _call, mistakes_from_rows, run_checks

__all__ = [
    "W8A16_BYTES_MISTAKES",
    "check_w8a16_bytes",
]


def _layer_bytes_reference(in_features, out_features, bias, dtype) -> int:
    """The bytes of the state dict of ``W8A16LinearLayer(in_features, out_features, bias,
    dtype)``, built on the meta device (no memory, no random numbers)."""
    with torch.device("meta"):
        layer = W8A16LinearLayer(in_features, out_features, bias=bias, dtype=dtype)
    return sum(t.numel() * t.element_size() for t in layer.state_dict().values())


def _expect_layer_bytes(expected: int) -> Callable[[Any], str | None]:
    """A check that the result is the number of bytes ``expected`` (an int, a whole float or
    a 1-element tensor)."""

    def check(result: Any) -> str | None:
        value = result
        if isinstance(result, torch.Tensor):
            if result.numel() != 1:
                return f"expected one number, got a tensor of shape {tuple(result.shape)}"
            value = result.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"expected a number of bytes, got {type(result).__name__}"
        if not math.isclose(float(value), expected, rel_tol=0, abs_tol=1e-6):
            shown = f"{int(value):,}" if float(value).is_integer() else f"{float(value):,.6g}"
            return f"got {shown}, expected {expected:,} bytes"
        return None

    check.expected = expected
    return check


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _bytes_variant(
    in_features,
    out_features,
    has_bias=True,
    dtype=torch.float32,
    *,
    weights=1,
    scales=4,
    bias=None,
    bias_when_absent=False,
    rows=True,
):
    """A W8A16 byte count, right or with one thing changed: ``weights`` and ``scales`` are
    bytes per number (``None``: the layer's dtype), ``bias`` the bytes per bias number
    (``None``: the layer's dtype, 0: left out), ``rows=False`` one scale per input column."""
    size = _itemsize(dtype)
    total = in_features * out_features * (size if weights is None else weights)
    total += (out_features if rows else in_features) * (size if scales is None else scales)
    if has_bias or bias_when_absent:
        total += out_features * (size if bias is None else bias)
    return total


def _bytes_weights_only(in_features, out_features, bias=True, dtype=torch.float32):
    return in_features * out_features


def _bytes_one_scale(in_features, out_features, bias=True, dtype=torch.float32):
    return in_features * out_features + 4 + (out_features * _itemsize(dtype) if bias else 0)


def _bytes_float_linear(in_features, out_features, bias=True, dtype=torch.float32):
    return _itemsize(dtype) * out_features * (in_features + (1 if bias else 0))


def _bytes_numbers(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * (in_features + 1 + (1 if bias else 0))


def _bytes_four_each(in_features, out_features, bias=True, dtype=torch.float32):
    return 4 * _bytes_numbers(in_features, out_features, bias, dtype)


def _bytes_right(in_features, out_features, bias=True, dtype=torch.float32):
    bias_bytes = out_features * _itemsize(dtype) if bias else 0
    return in_features * out_features + 4 * out_features + bias_bytes


def _bytes_bits(in_features, out_features, bias=True, dtype=torch.float32):
    return 8 * _bytes_right(in_features, out_features, bias, dtype)


def _bytes_kilobytes(in_features, out_features, bias=True, dtype=torch.float32):
    return _bytes_right(in_features, out_features, bias, dtype) / 1000


def _bytes_kibibytes(in_features, out_features, bias=True, dtype=torch.float32):
    return _bytes_right(in_features, out_features, bias, dtype) / 1024


def _zero_layer_state(in_features, out_features, bias=True, dtype=torch.float32):
    """A W8A16 layer's state dict as zeros (real memory, so safetensors can write it, and no
    random numbers drawn)."""
    state = {
        "int8_weights": torch.zeros(out_features, in_features, dtype=torch.int8),
        "scales": torch.zeros(out_features, dtype=torch.float32),
    }
    if bias:
        state["bias"] = torch.zeros(1, out_features, dtype=dtype)
    return state


def _bytes_file_with_header(in_features, out_features, bias=True, dtype=torch.float32):
    """The size of a safetensors file of the layer's tensors: its header included."""
    from safetensors.torch import save

    return len(save(_zero_layer_state(in_features, out_features, bias, dtype)))


#: A safetensors file: 8 bytes of header length, then a JSON header padded with spaces to a
#: multiple of 8 bytes, then the tensors. A result that exceeds the right count on every case
#: by such an amount (a header of 64 to 4,096 bytes) is a file size, whatever the names.
_HEADER_BYTES = range(8 + 64, 8 + 4096 + 1, 8)


_LAYER_BYTES = (
    "A W8A16LinearLayer holds int8_weights (out, in) at 1 byte each, scales (out,) in float32 "
    "at 4 bytes each whatever the dtype, and a bias (1, out) in the layer's dtype "
    "(dtype.itemsize bytes each), or no bias."
)

# One row per classic mistake: (description, the wrong count, or what differs from the right
# one, hint).
_W8A16_BYTES_ROWS = (
    (
        "counts the int8 weights only",
        _bytes_weights_only,
        "the scales and the bias are saved too: without its scales nobody can dequantize the "
        "weights. " + _LAYER_BYTES,
    ),
    (
        "forgets the scales",
        dict(scales=0),
        "one float32 scale per output row is saved with the int8 weights (4 * out_features "
        "bytes): the file is useless without them.",
    ),
    (
        "forgets the bias",
        dict(bias=0),
        "the bias stays in float and is saved with the layer: out_features * dtype.itemsize "
        "bytes when bias=True.",
    ),
    (
        "counts the scales in the layer's dtype",
        dict(scales=None),
        "W8A16LinearLayer keeps its scales in float32 whatever the layer's dtype: 4 bytes per "
        "scale, also in a bfloat16 or float16 layer. (Its quantize also divides in float32 "
        "and clamps: the course's wrap of 127 to -128 in bfloat16 comes from a division done "
        "in bfloat16 without a clamp, lesson 07.)",
    ),
    (
        "counts the bias in float32 whatever the layer's dtype",
        dict(bias=4),
        "the bias is kept in the layer's dtype: 2 bytes per number in a bfloat16 or float16 "
        "layer. torch.float32.itemsize is 4, torch.bfloat16.itemsize is 2.",
    ),
    (
        "counts the bias as int8",
        dict(bias=1),
        "only the weights are quantized; the bias stays in the layer's float dtype "
        "(dtype.itemsize bytes per number).",
    ),
    (
        "counts a bias even when bias=False",
        dict(bias_when_absent=True),
        "a layer built with bias=False has no bias tensor at all (layer.bias is None): "
        "nothing to save.",
    ),
    (
        "counts one scale for the whole layer",
        _bytes_one_scale,
        "W8A16LinearLayer quantizes per output row: one float32 scale per row, "
        "4 * out_features bytes.",
    ),
    (
        "counts one scale per input column",
        dict(rows=False),
        "the scales are per output row: their shape is (out_features,), so "
        "4 * out_features bytes, not 4 * in_features.",
    ),
    (
        "counts the weights in the layer's float dtype, as if they were not quantized",
        dict(weights=None),
        "the point of the layer: its weights are int8, 1 byte each.",
    ),
    (
        "counts the float nn.Linear that the layer replaces",
        _bytes_float_linear,
        "that is the layer before quantization. " + _LAYER_BYTES,
    ),
    (
        "counts numbers (elements), not bytes",
        _bytes_numbers,
        "each number takes bytes according to its dtype. " + _LAYER_BYTES,
    ),
    (
        "counts 4 bytes for every number",
        _bytes_four_each,
        "4 bytes is float32 only: the weights are int8 (1 byte), and a bfloat16 or float16 "
        "bias takes 2 bytes per number.",
    ),
    (
        "measures the safetensors file, header included",
        _bytes_file_with_header,
        "a file holds 8 bytes of length and a JSON header (each tensor's name, dtype, shape "
        "and offsets) before the tensors; the header is a few hundred bytes whatever the "
        "layer's size. The exercise asks for the tensors only: add up their bytes "
        "(tensor.nbytes, or numel * element_size), or take the file size minus 8 and the "
        "header's length. " + _LAYER_BYTES,
    ),
    ("returns bits, not bytes", _bytes_bits, "an int8 number is 1 byte: do not multiply by 8."),
    (
        "returns kilobytes (bytes / 1000), not bytes",
        _bytes_kilobytes,
        "return the number of bytes; divide only when you print.",
    ),
    (
        "returns kibibytes (bytes / 1024), not bytes",
        _bytes_kibibytes,
        "return the number of bytes; divide only when you print.",
    ),
)
W8A16_BYTES_MISTAKES = mistakes_from_rows(_W8A16_BYTES_ROWS, _bytes_variant)

# (in_features, out_features, bias, dtype, description, hint)
_LAYER_BYTES_CASES = (
    (64, 64, True, torch.float32, "the digits model's hidden1", _LAYER_BYTES),
    (
        64,
        32,
        True,
        torch.float32,
        "the digits model's hidden2 (64 inputs, 32 outputs)",
        "the weights are (out, in); the scales and the bias have one number per output, "
        "out_features of them.",
    ),
    (
        32,
        10,
        False,
        torch.float32,
        "without a bias",
        "with bias=False the layer has no bias tensor: only weights and scales.",
    ),
    (
        384,
        1536,
        True,
        torch.bfloat16,
        "a MiniLM feed-forward layer in bfloat16",
        "in a bfloat16 layer the bias takes 2 bytes per number (dtype.itemsize), but the "
        "scales stay float32: 4 bytes each.",
    ),
    (
        16,
        8,
        False,
        torch.float16,
        "float16, without a bias",
        "the weights are int8 in every layer; the scales float32; no bias here.",
    ),
)


def _w8a16_bytes_cases() -> list[CheckCase]:
    """The cases of ``check_w8a16_bytes``: shapes, biases and dtypes that tell the mistakes
    apart."""
    cases = []
    for in_features, out_features, bias, dtype, what, hint in _LAYER_BYTES_CASES:
        expected = _layer_bytes_reference(in_features, out_features, bias, dtype)
        description = (
            f"W8A16LinearLayer({in_features}, {out_features}, bias={bias}, "
            f"dtype={dtype_name(dtype)}), {what}"
        )
        cases.append(
            CheckCase(
                description,
                (in_features, out_features, bias, dtype),
                _expect_layer_bytes(expected),
                hint,
            )
        )
    return cases


def check_w8a16_bytes(function: Callable) -> CheckReport:
    """Exercise of lesson 11: ``my_w8a16_bytes(in_features, out_features, bias=True,
    dtype=torch.float32)``, the bytes of a ``W8A16LinearLayer``'s tensors (what it adds to a
    safetensors file, header aside): ``out * in`` int8 weights, ``4 * out`` for the float32
    scales, ``out * dtype.itemsize`` for the bias if there is one.

    The cases: the digits model's two hidden layers (in and out differ in the second), a layer
    without a bias, a bfloat16 layer with a bias and a float16 layer without one. A number
    equal to the answer passes, as an int, a float or a 1-element tensor.
    """
    cases = _w8a16_bytes_cases()
    report = run_checks(
        "Bytes of a W8A16 layer",
        function,
        cases,
        W8A16_BYTES_MISTAKES,
        recipe="add up the bytes of the layer's three tensors: out * in int8 weights (1 byte "
        "each), out float32 scales (4 bytes each, whatever the dtype) and, if bias=True, out "
        "bias numbers of dtype.itemsize bytes each. The file's header is not part of it.",
    )
    if report.status == "failed" and report.mistake is None and _is_a_file_size(function, cases):
        report.mistake = _FILE_WITH_HEADER
    return report


_FILE_WITH_HEADER = next(
    mistake for mistake in W8A16_BYTES_MISTAKES if "header included" in mistake.description
)


def _is_a_file_size(function: Callable, cases: list[CheckCase]) -> bool:
    """True if the learner's count exceeds the right one on every case by 8 bytes of length
    and a padded header (``_HEADER_BYTES``): a safetensors file measured with other tensor
    names than the layer's own (``layer.int8_weights``, a note in the metadata, ...)."""
    for case in cases:
        result, error = _call(function, case)  # on copies, under the time limit
        try:
            value = float(result.item() if isinstance(result, torch.Tensor) else result)
        except Exception:  # an error, None or not a number: not a file size
            return False
        if error is not None or not math.isfinite(value):
            return False
        extra = value - case.check.expected
        if not (extra.is_integer() and int(extra) in _HEADER_BYTES):
            return False
    return True
