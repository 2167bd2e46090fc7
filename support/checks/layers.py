"""Checks of linear layers, their weights and inputs, models and layer names (helper.py,
sections 10 and 11).

Import direction: imports torch and ``support.checks.values``; never ``helper``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from support.checks.values import flag, is_whole, quantized, real_tensor, scale, zero_point
from support.constants import dtype_name

# -- layers ------------------------------------------------------------------------------------


def linear_input(input: Any, in_features: int) -> torch.Tensor:
    """A float tensor whose last dimension is ``in_features``."""
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        kind = dtype_name(input.dtype) if isinstance(input, torch.Tensor) else type(input).__name__
        raise TypeError(f"input must be a float tensor, got {kind}.")
    if input.dim() == 0 or input.shape[-1] != in_features:
        raise ValueError(
            f"input of shape {tuple(input.shape)} does not fit a weight with {in_features} "
            f"input features: its last dimension must be {in_features}."
        )
    return input


def weight_2d(q: torch.Tensor, name: str = "q_w") -> torch.Tensor:
    """A checked integer weight of shape (out_features, in_features)."""
    if q.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D (out_features, in_features) weight, got shape {tuple(q.shape)}."
        )
    return q


def linear_pair(qx: torch.Tensor, qw: torch.Tensor) -> None:
    """``q_x`` (batch, in_features) and ``q_w`` (out_features, in_features) fit each other."""
    if qx.dim() != 2 or qw.dim() != 2 or qx.shape[1] != qw.shape[1]:
        raise ValueError(
            f"q_x (batch, in_features) and q_w (out_features, in_features) must share "
            f"in_features; got shapes {tuple(qx.shape)} and {tuple(qw.shape)}."
        )


def row_params_float64(params: Any) -> list[torch.Tensor]:
    """W8A8's scales, each ``(name, value, rows)``: checked like any scale (positive, finite in
    float32), then as exact float64 tensors of shape ``(rows or 1, 1)``."""
    out = []
    for _name, value, rows in params:
        scale(value, torch.Size([rows, 1]), torch.float32)
        exact = value.detach() if isinstance(value, torch.Tensor) else value
        out.append(torch.as_tensor(exact, dtype=torch.float64).reshape(-1, 1))
    return out


def row_params_int64(params: Any) -> list[torch.Tensor]:
    """W8A8's zero points, each ``(name, value, rows)``: whole numbers, as int64 tensors of
    shape ``(rows or 1, 1)``."""
    out = []
    for _name, value, rows in params:
        checked = zero_point(value, torch.Size([rows, 1]))
        out.append(torch.as_tensor(checked, dtype=torch.int64).reshape(-1, 1))
    return out


def w8a32_args(input: Any, q_w: Any, s_w: Any, z_w: Any) -> tuple:
    """The arguments of the W8A32 layer: a float input, a 2-D integer weight and its scale
    and zero point."""
    q = weight_2d(quantized(q_w, "q_w"))
    x = linear_input(input, q.shape[1])
    return x, q, scale(s_w, q.shape, torch.float32), zero_point(z_w, q.shape)


def w8a8_args(q_x: Any, s_x: Any, z_x: Any, q_w: Any, s_w: Any, z_w: Any) -> tuple:
    """The arguments of the W8A8 layer: two integer tensors that share ``in_features``, their
    scales as exact float64 and zero points as int64, each of shape ``(rows or 1, 1)``."""
    qx, qw = quantized(q_x, "q_x"), quantized(q_w, "q_w")
    linear_pair(qx, qw)
    scales = row_params_float64((("s_x", s_x, qx.shape[0]), ("s_w", s_w, qw.shape[0])))
    zeros = row_params_int64((("z_x", z_x, qx.shape[0]), ("z_w", z_w, qw.shape[0])))
    # the int64 sum is exact while in_features * max|q_x - z_x| * max|q_w - z_w| < 2**63
    largest = [
        (q.to(torch.int64) - z).abs().max().item() for q, z in ((qx, zeros[0]), (qw, zeros[1]))
    ]
    if qx.shape[1] * largest[0] * largest[1] >= 2**63:
        raise ValueError(
            f"in_features * max|q_x - z_x| * max|q_w - z_w| = {qx.shape[1]} * {largest[0]} * "
            f"{largest[1]} reaches 2**63: the int64 sum could wrap. Quantized values of up to "
            "16 bits are safe for any layer up to 2**31 inputs."
        )
    return qx, scales[0], zeros[0], qw, scales[1], zeros[1]


def w8a16_args(weight: Any, input: Any, scales: Any, bias_: Any) -> tuple:
    """The arguments of ``w8_a16_forward``: an int8 weight, an input, one scale per output row
    and an optional bias."""
    q = int8_weight(weight)
    x = linear_input(input, q.shape[1])
    scales, bias_ = row_scales(scales, q.shape[0]), bias(bias_, q.shape[0])
    devices = {t.device for t in (q, x, scales, bias_) if t is not None}
    if len(devices) > 1:
        raise ValueError(
            "weight, input, scales and bias are on different devices "
            f"({', '.join(sorted(map(str, devices)))}): move them to one device with .to(device)."
        )
    if not scales.is_meta and not bool(((scales > 0) & torch.isfinite(scales)).all()):
        raise ValueError("every scale must be a positive, finite number (one per output row).")
    if bias_ is not None and not bias_.is_meta and not bool(torch.isfinite(bias_).all()):
        raise ValueError("bias holds NaN or infinite values: pass a finite bias, or None.")
    return q, x, scales, bias_


def int8_weight(weight: Any) -> torch.Tensor:
    """An int8 (out_features, in_features) weight (a meta skeleton's too: shapes only)."""
    q = quantized(weight, "weight", values=False)
    if q.dtype != torch.int8 or q.dim() != 2:
        raise TypeError(
            f"weight must be an int8 (out_features, in_features) tensor, got "
            f"{dtype_name(q.dtype)} of shape {tuple(q.shape)}."
        )
    return q


def row_scales(scales: Any, out_features: int) -> torch.Tensor:
    """A float tensor of shape ``(out_features,)`` or ``(1, out_features)`` (the course's demo
    passes the latter): one scale per output row, returned with shape ``(out_features,)``."""
    if not isinstance(scales, torch.Tensor) or not scales.is_floating_point():
        raise TypeError("scales must be a float tensor with one scale per output row.")
    if tuple(scales.shape) not in ((out_features,), (1, out_features)):
        raise ValueError(
            f"scales must have shape ({out_features},), one per output row, got "
            f"{tuple(scales.shape)}; an (out, 1) scale would broadcast the output to the wrong "
            "shape: use scales.reshape(-1)."
        )
    return scales.reshape(-1)


def layer_scales(scales: Any, out_features: int) -> torch.Tensor:
    """Given scales for a layer's ``quantize``: ``row_scales`` that are positive and finite,
    returned float32 of shape ``(out_features,)``."""
    scales = row_scales(scales, out_features).detach().to(torch.float32)
    if not bool(torch.isfinite(scales).all()) or not bool((scales > 0).all()):
        raise ValueError("scales must be positive, finite numbers (in float32), one per row.")
    return scales


def bias(bias: Any, out_features: int) -> torch.Tensor | None:
    """``None``, or a float tensor of shape ``(out,)`` or ``(1, out)``."""
    if bias is None:
        return None
    if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
        raise TypeError("bias must be a float tensor of shape (out,) or (1, out), or None.")
    if tuple(bias.shape) not in ((out_features,), (1, out_features)):
        raise ValueError(
            f"bias must have shape ({out_features},) or (1, {out_features}), got "
            f"{tuple(bias.shape)}."
        )
    return bias


def layer_weights(weights: Any, out_features: int, in_features: int) -> torch.Tensor:
    """Float weights of shape (out_features, in_features) for a layer's ``quantize``."""
    w = real_tensor(weights, "weights")
    if tuple(w.shape) != (out_features, in_features):
        raise ValueError(
            f"weights of shape {tuple(w.shape)} do not fit this layer: expected "
            f"({out_features}, {in_features}) = (out_features, in_features)."
        )
    return w


def layer_sizes(in_features: Any, out_features: Any, bias_: Any) -> tuple[int, int, bool]:
    """A layer's constructor arguments: two whole numbers >= 1 and ``bias`` True or False."""
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if not is_whole(value) or value < 1:
            raise TypeError(f"{name} must be a whole number >= 1, got {value!r}.")
    return int(in_features), int(out_features), flag(bias_, "bias")


def packed_layer_bits(n_bits: Any) -> int:
    """A packed layer's bit width: 2, 4 or 8."""
    if isinstance(n_bits, bool) or n_bits not in (2, 4, 8):
        raise ValueError(
            f"n_bits must be 2, 4 or 8 (a width that fills a byte and has signed levels "
            f"besides 0), got {n_bits!r}."
        )
    return int(n_bits)


def module(module: Any, name: str = "module") -> nn.Module:
    """An ``nn.Module``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}.")
    return module


def names(names: Any, name: str = "module_name_to_exclude") -> tuple[str, ...]:
    """A list of names (never a single string, whose letters would be taken as names)."""
    if isinstance(names, str) or not isinstance(names, list | tuple | set | frozenset):
        example = f"[{names!r}]" if isinstance(names, str) else '["lm_head"], or [] for none'
        raise TypeError(f"{name} must be a list of names, e.g. {example}.")
    names = tuple(names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{name} must hold names (strings), got {list(names)!r}.")
    return names


def replace_args(module_: Any, target_class: Any, names_: Any) -> tuple[str, ...]:
    """The arguments of the replace functions, with messages that say what to pass."""
    module(module_)
    if not (isinstance(target_class, type) and issubclass(target_class, nn.Module)):
        raise TypeError(
            "target_class must be an nn.Module class such as W8A16LinearLayer, got "
            f"{target_class!r}."
        )
    return names(names_)


def layer_classes(layer_class: Any) -> tuple[type, ...]:
    """A class or a tuple of classes, as a tuple."""
    classes = layer_class if isinstance(layer_class, tuple) else (layer_class,)
    if not classes or not all(isinstance(c, type) for c in classes):
        raise TypeError(
            f"layer_class must be a class such as nn.Linear (or a tuple of classes), got "
            f"{layer_class!r}."
        )
    return classes


def chosen_layers(layers: Any, linears: list[str]) -> list[str]:
    """``layers`` (``None``: all of ``linears``) as a list of names that are all linear layers."""
    if layers is None:
        return linears
    chosen = list(names(layers, "layers"))
    unknown = [name for name in chosen if name not in linears]
    if unknown:
        raise ValueError(
            f"no nn.Linear named {', '.join(map(repr, unknown))} in this model; its linear "
            f"layers are {', '.join(map(repr, linears))}."
        )
    return chosen


# The checks this module offers (``from support.checks import *`` in the package).
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
