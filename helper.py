"""Linear quantization, hands-on: the functions the lessons build, in the order they build them.

Read this file top to bottom; each section is one step of the course.

1. Integer dtypes and their ranges   ``get_q_range``
2. Checking what comes in            (private ``_check_*`` helpers with clear messages)
3. Scale and zero point              ``get_q_scale_and_zero_point``
4. Quantize                          ``linear_q_with_scale_and_zero_point``,
                                     ``linear_quantization``
5. Dequantize                        ``linear_dequantization``
6. Quantization error                ``quantization_error``
7. Plots                             ``plot_quantization_errors``
8. Exercise checkers                 ``check_dequantization``, ``check_scale_and_zero_point``

The whole course rests on two formulas (``s`` is the scale, ``z`` the zero point)::

    quantize:    q  = clamp(round(r / s) + z, q_min, q_max)
    dequantize:  r' = s * (q - z)

Nothing here modifies its inputs, and bad input raises a ``TypeError`` or ``ValueError`` that
says what was wrong and what to do instead.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

__all__ = [
    "SUPPORTED_DTYPES",
    "SCALE_EPS",
    "get_q_range",
    "get_q_scale_and_zero_point",
    "linear_q_with_scale_and_zero_point",
    "linear_quantization",
    "linear_dequantization",
    "quantization_error",
    "plot_quantization_errors",
    "CheckCase",
    "CheckReport",
    "run_checks",
    "check_dequantization",
    "check_scale_and_zero_point",
]

# ---------------------------------------------------------------------------------------------
# 1. Integer dtypes and their ranges
# ---------------------------------------------------------------------------------------------

#: The integer dtypes a tensor can be quantized to in these lessons.
SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.int8, torch.uint8, torch.int16)

#: The smallest scale we allow. PyTorch's observers use the same floor (float32's machine
#: epsilon), so an all-zero tensor gets a tiny positive scale instead of a division by zero.
SCALE_EPS: float = torch.finfo(torch.float32).eps


def _dtype_name(dtype: torch.dtype) -> str:
    """``torch.int8`` -> ``"int8"``."""
    return str(dtype).removeprefix("torch.")


def _check_dtype(dtype: Any) -> torch.dtype:
    """Return ``dtype`` if it is one of ``SUPPORTED_DTYPES``, else raise a ``TypeError``."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch dtype such as torch.int8, got {dtype!r}.")
    if dtype.is_floating_point or dtype.is_complex:
        raise TypeError(
            f"dtype {_dtype_name(dtype)} is a floating-point type, but quantization needs an "
            "integer target dtype: use torch.int8, torch.uint8 or torch.int16."
        )
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(f"torch.{_dtype_name(d)}" for d in SUPPORTED_DTYPES)
        raise TypeError(f"dtype {_dtype_name(dtype)} is not supported here; use one of {names}.")
    return dtype


def get_q_range(dtype: torch.dtype = torch.int8, n_bits: int | None = None) -> tuple[int, int]:
    """The smallest and largest integer a quantized value may take, ``(q_min, q_max)``.

    With ``n_bits=None`` this is the full range of ``dtype`` (``torch.iinfo``). A smaller
    ``n_bits`` narrows it while the values are still stored in ``dtype``::

        signed dtype:    q_min = -2**(n_bits - 1),  q_max = 2**(n_bits - 1) - 1
        unsigned dtype:  q_min = 0,                 q_max = 2**n_bits - 1

    >>> get_q_range(torch.int8)
    (-128, 127)
    >>> get_q_range(torch.int8, n_bits=4)
    (-8, 7)
    >>> get_q_range(torch.uint8, n_bits=2)
    (0, 3)
    """
    dtype = _check_dtype(dtype)
    info = torch.iinfo(dtype)
    if n_bits is None:
        return int(info.min), int(info.max)
    if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral):
        raise TypeError(f"n_bits must be a whole number such as 4, got {n_bits!r}.")
    if not 2 <= n_bits <= info.bits:
        raise ValueError(
            f"n_bits={n_bits} does not fit {_dtype_name(dtype)}: choose 2 to {info.bits} bits "
            f"(or n_bits=None for the full {info.bits}-bit range)."
        )
    signed = info.min < 0
    if signed:
        return -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1
    return 0, 2**n_bits - 1


# ---------------------------------------------------------------------------------------------
# 2. Checking what comes in
# ---------------------------------------------------------------------------------------------


def _check_tensor(tensor: Any, name: str = "tensor") -> torch.Tensor:
    """Check a tensor of real numbers to be quantized and return it as a float tensor.

    Integer tensors are accepted and converted to float32; float16 and bfloat16 are computed
    in float32 (their own precision would round ``r / s`` before we do). The input itself is
    never modified. Raises ``TypeError`` for non-tensors, complex or bool tensors and
    ``ValueError`` for an empty tensor.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(tensor).__name__}; "
            f"wrap it first, e.g. torch.tensor({name})."
        )
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(
            f"{name} has dtype {_dtype_name(tensor.dtype)}; quantization needs real numbers "
            "(a float or integer tensor)."
        )
    if tensor.numel() == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(tensor.shape)}): there is nothing to quantize, and "
            "an empty tensor has no minimum or maximum to build a scale from."
        )
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    return tensor


def _check_finite_range(r_min: float, r_max: float, name: str = "tensor") -> None:
    """Raise a ``ValueError`` if a tensor's minimum or maximum shows a NaN or an infinity.

    ``torch.aminmax`` returns NaN when any element is NaN, and +-inf when any element is
    infinite, so checking the two extremes checks every element.
    """
    if math.isnan(r_min) or math.isnan(r_max):
        raise ValueError(
            f"{name} contains NaN values; they have no quantized value. Remove or replace them "
            "first (for example torch.nan_to_num(t, nan=0.0))."
        )
    if math.isinf(r_min) or math.isinf(r_max):
        raise ValueError(
            f"{name} contains infinite values, which would make the scale infinite. Clip them "
            "to a finite range first (for example t.clamp(-1e4, 1e4))."
        )


def _min_max(tensor: torch.Tensor, name: str = "tensor") -> tuple[float, float]:
    """``(tensor.min(), tensor.max())`` as Python floats, after checking both are finite."""
    r_min, r_max = (v.item() for v in torch.aminmax(tensor))
    _check_finite_range(r_min, r_max, name)
    return r_min, r_max


def _check_fits(param: torch.Tensor, shape: torch.Size, name: str) -> None:
    """Raise a ``ValueError`` unless ``param`` broadcasts to ``shape`` without growing it."""
    try:
        fits = torch.broadcast_shapes(param.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} of shape {tuple(param.shape)} does not fit a tensor of shape {tuple(shape)}: "
            "use a single number, or a tensor that broadcasts, e.g. shape (rows, 1) for one "
            "value per row."
        )


def _check_scale(scale: Any, shape: torch.Size) -> float | torch.Tensor:
    """Return ``scale`` as a Python float or a float tensor that fits ``shape``.

    A scale must be a positive, finite real number (or a tensor of them).
    """
    if isinstance(scale, torch.Tensor):
        if scale.is_complex() or scale.dtype == torch.bool or scale.numel() == 0:
            raise TypeError(f"scale must hold real numbers, got a {scale.dtype} tensor.")
        _check_fits(scale, shape, "scale")
        values = scale.to(torch.float64)
        if not bool(torch.isfinite(values).all()) or not bool((values > 0).all()):
            raise ValueError("every scale must be a positive, finite number.")
        return scale
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a number or a tensor, got {type(scale).__name__}.")
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(
            f"scale must be a positive, finite number, got {scale}; "
            "get_q_scale_and_zero_point computes one for you."
        )
    return scale


def _check_zero_point(
    zero_point: Any, shape: torch.Size, q_min: int, q_max: int
) -> int | torch.Tensor:
    """Return ``zero_point`` as a Python int or an int64 tensor that fits ``shape``.

    A zero point is a whole number inside ``[q_min, q_max]``: it is the quantized value that
    stands for the real number 0, so it must itself be storable.
    """
    if isinstance(zero_point, torch.Tensor):
        if zero_point.is_complex() or zero_point.dtype == torch.bool or zero_point.numel() == 0:
            raise TypeError(f"zero_point must hold whole numbers, got a {zero_point.dtype} tensor.")
        _check_fits(zero_point, shape, "zero_point")
        if zero_point.is_floating_point():
            if not bool(torch.isfinite(zero_point).all()) or not bool(
                (zero_point == zero_point.round()).all()
            ):
                raise ValueError("every zero point must be a whole number; round it first.")
        zero_point = zero_point.to(torch.int64)
        low, high = int(zero_point.min()), int(zero_point.max())
    else:
        if isinstance(zero_point, bool) or not isinstance(zero_point, numbers.Real):
            raise TypeError(
                f"zero_point must be a whole number or a tensor, got {type(zero_point).__name__}."
            )
        if not math.isfinite(zero_point) or zero_point != int(zero_point):
            raise ValueError(
                f"zero_point must be a whole number, got {zero_point}; round it first with "
                "int(round(zero_point))."
            )
        zero_point = low = high = int(zero_point)
    if low < q_min or high > q_max:
        raise ValueError(
            f"zero point {low if low < q_min else high} is outside the quantized range "
            f"[{q_min}, {q_max}]; it must be a value the quantized tensor can store."
        )
    return zero_point


# ---------------------------------------------------------------------------------------------
# 3. Scale and zero point
# ---------------------------------------------------------------------------------------------


def scale_and_zero_point_from_range(
    r_min: float, r_max: float, q_min: int, q_max: int
) -> tuple[float, int]:
    """Scale and zero point that map the real range ``[r_min, r_max]`` onto ``[q_min, q_max]``.

    Computed in float64 (Python floats), the way PyTorch's observers define them::

        r_min <- min(r_min, 0),  r_max <- max(r_max, 0)      # the range always holds 0
        s = (r_max - r_min) / (q_max - q_min),  at least SCALE_EPS
        z = q_min - round(r_min / s)                          # round half to even

    Including 0 means the real number 0 is exactly representable (it quantizes to ``z``) and
    ``z`` always lies in ``[q_min, q_max]``. For ranges that hold both signs this is the
    course's formula unchanged.

    >>> scale_and_zero_point_from_range(-184.0, 728.5999755859375, -128, 127)
    (3.578823433670343, -77)
    >>> scale_and_zero_point_from_range(100.0, 200.0, -128, 127)   # one-signed: z = q_min
    (0.7843137254901961, -128)
    """
    r_min, r_max = min(float(r_min), 0.0), max(float(r_max), 0.0)
    _check_finite_range(r_min, r_max, "the range")
    scale = max((r_max - r_min) / (q_max - q_min), SCALE_EPS)
    zero_point = q_min - round(r_min / scale)
    return scale, min(max(int(zero_point), q_min), q_max)


def get_q_scale_and_zero_point(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[float, int]:
    """The scale (a Python float) and zero point (a Python int) for quantizing ``tensor``.

    ``r_min`` and ``r_max`` are the tensor's smallest and largest values; see
    ``scale_and_zero_point_from_range`` for the formula.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> get_q_scale_and_zero_point(t)
    (3.578823433670343, -77)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r_min, r_max = _min_max(_check_tensor(tensor))
    return scale_and_zero_point_from_range(r_min, r_max, q_min, q_max)


# ---------------------------------------------------------------------------------------------
# 4. Quantize
# ---------------------------------------------------------------------------------------------

#: How many elements the quantize and dequantize loops handle at a time. About 256 KiB of
#: float32: small enough that the intermediate results stay in the CPU cache.
CHUNK_ELEMENTS = 1 << 16


def _row_chunks(shape: torch.Size) -> Iterator[slice]:
    """Slices along the first dimension, each covering roughly ``CHUNK_ELEMENTS`` elements."""
    per_row = math.prod(shape[1:])
    step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    for start in range(0, shape[0], step):
        yield slice(start, start + step)


def _chunk(param: float | int | torch.Tensor, shape: torch.Size, rows: slice):
    """The part of a (broadcasting) scale or zero point that covers ``rows``."""
    if not isinstance(param, torch.Tensor) or param.dim() < len(shape) or param.shape[0] == 1:
        return param
    return param[rows]


def _quantize(
    r: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    q_min: int,
    q_max: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``clamp(round(r / s) + z, q_min, q_max)`` as ``dtype``, for checked arguments.

    The same formula as the lesson's one-liner, computed in place in cache-sized chunks of one
    work buffer: the one-liner allocates four full-size temporaries and makes five passes over
    memory, which is what makes it slow for large tensors. ``tests/test_helper.py`` checks that
    both give identical results.
    """
    if r.dim() == 0:
        return _quantize(r.reshape(1), scale, zero_point, q_min, q_max, dtype).reshape(())
    if isinstance(scale, torch.Tensor):
        scale = scale.to(r.dtype)  # divide in the tensor's precision, as for a Python float
    out = torch.empty(r.shape, dtype=dtype)
    work = torch.empty(min(r.numel(), 2 * CHUNK_ELEMENTS + math.prod(r.shape[1:])), dtype=r.dtype)
    for rows in _row_chunks(r.shape):
        r_part = r[rows]
        buf = work[: r_part.numel()].view(r_part.shape)
        torch.div(r_part, _chunk(scale, r.shape, rows), out=buf)
        buf.round_()  # half to even, like torch.round
        buf.add_(_chunk(zero_point, r.shape, rows))
        buf.clamp_(q_min, q_max)
        out[rows].copy_(buf)
    return out


def linear_q_with_scale_and_zero_point(
    tensor: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> torch.Tensor:
    """Quantize ``tensor`` with a given scale and zero point::

        q = clamp(round(r / s) + z, q_min, q_max)        stored as ``dtype``

    ``round`` is round-half-to-even (``torch.round``), applied before adding ``z`` as in
    PyTorch's own kernels. ``clamp`` keeps every value storable, so nothing wraps around.
    ``scale`` and ``zero_point`` are numbers, or tensors that broadcast against ``tensor``
    (shape ``(rows, 1)`` gives each row its own). ``n_bits`` narrows the range (see
    ``get_q_range``).

    >>> linear_q_with_scale_and_zero_point(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    _min_max(r)  # NaN and infinity checks
    scale = _check_scale(scale, r.shape)
    zero_point = _check_zero_point(zero_point, r.shape, q_min, q_max)
    return _quantize(r, scale, zero_point, q_min, q_max, dtype)


def linear_quantization(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[torch.Tensor, float, int]:
    """Choose a scale and zero point for ``tensor`` and quantize it with them.

    Returns ``(quantized_tensor, scale, zero_point)``.

    >>> q, s, z = linear_quantization(torch.tensor([-1.0, 0.0, 2.0]))
    >>> q, round(s, 6), z
    (tensor([-128,  -43,  127], dtype=torch.int8), 0.011765, -43)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    r_min, r_max = _min_max(r)
    scale, zero_point = scale_and_zero_point_from_range(r_min, r_max, q_min, q_max)
    return _quantize(r, scale, zero_point, q_min, q_max, dtype), scale, zero_point


# ---------------------------------------------------------------------------------------------
# 5. Dequantize
# ---------------------------------------------------------------------------------------------


def _check_quantized(quantized_tensor: Any) -> torch.Tensor:
    """Check that ``quantized_tensor`` is a non-empty integer tensor."""
    if not isinstance(quantized_tensor, torch.Tensor):
        raise TypeError(
            f"quantized_tensor must be a torch.Tensor, got {type(quantized_tensor).__name__}."
        )
    if quantized_tensor.is_floating_point() or quantized_tensor.is_complex():
        raise TypeError(
            f"quantized_tensor has dtype {_dtype_name(quantized_tensor.dtype)}, but "
            "dequantization needs the integer tensor that quantization returned (e.g. int8). "
            "Did you pass the original tensor instead?"
        )
    if quantized_tensor.dtype == torch.bool:
        raise TypeError("quantized_tensor must hold integers, got a bool tensor.")
    if quantized_tensor.numel() == 0:
        raise ValueError("quantized_tensor is empty: there is nothing to dequantize.")
    return quantized_tensor


def linear_dequantization(
    quantized_tensor: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
) -> torch.Tensor:
    """Map quantized integers back to real numbers (float32)::

        r' = s * (q - z)

    The subtraction happens in float32, never in the integer dtype: ``q - z`` can leave the
    int8 range (127 - (-70) = 197) and would silently wrap around.

    >>> linear_dequantization(torch.tensor([-70, -68, 127], dtype=torch.int8), 3.5, -70)
    tensor([  0.0000,   7.0000, 689.5000])
    """
    q = _check_quantized(quantized_tensor)
    scale = _check_scale(scale, q.shape)
    zero_point = _check_zero_point(zero_point, q.shape, -(2**62), 2**62)
    if isinstance(scale, torch.Tensor):
        scale = scale.to(torch.float32)
    if q.dim() == 0:
        return linear_dequantization(q.reshape(1), scale, zero_point).reshape(())
    out = torch.empty(q.shape, dtype=torch.float32)
    for rows in _row_chunks(q.shape):
        part = out[rows]
        part.copy_(q[rows])  # to float32 first
        part.sub_(_chunk(zero_point, q.shape, rows))
        part.mul_(_chunk(scale, q.shape, rows))
    return out


# ---------------------------------------------------------------------------------------------
# 6. Quantization error
# ---------------------------------------------------------------------------------------------


def quantization_error(tensor: torch.Tensor, dequantized_tensor: torch.Tensor) -> torch.Tensor:
    """Mean squared error between a tensor and its dequantized version (a 0-dim tensor)::

        mse = mean((r' - r) ** 2)

    For values inside the range, rounding errors are spread evenly over ``[-s/2, s/2]``, so
    the MSE is close to ``s**2 / 12``.

    >>> quantization_error(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    tensor(0.1250)
    """
    r = _check_tensor(tensor, "tensor")
    r2 = _check_tensor(dequantized_tensor, "dequantized_tensor")
    if r.shape != r2.shape:
        raise ValueError(
            f"tensor has shape {tuple(r.shape)} but dequantized_tensor has shape "
            f"{tuple(r2.shape)}: compare a tensor with its own dequantized version."
        )
    _min_max(r, "tensor")
    _min_max(r2, "dequantized_tensor")
    return (r2 - r).square().mean()


# ---------------------------------------------------------------------------------------------
# 7. Plots
# ---------------------------------------------------------------------------------------------

#: Tensors with at most this many elements get their values written into the heatmap cells.
ANNOTATE_MAX_ELEMENTS = 64

#: Colour-blind-safe, perceptually uniform colour maps for the four panels.
VALUE_CMAP, QUANTIZED_CMAP, ERROR_CMAP = "viridis", "cividis", "magma"


def _as_2d(tensor: torch.Tensor) -> torch.Tensor:
    """A float 2-D view for a heatmap: scalars become 1x1, vectors one row, more dims rows."""
    t = tensor.detach().to(torch.float64)
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(1, -1)
    return t.reshape(-1, t.shape[-1])


def _format_value(value: float, integer: bool) -> str:
    """Short cell text: integers as they are, floats with four significant digits."""
    return f"{int(value)}" if integer else f"{value:.4g}"


def _draw_heatmap(
    ax, data: torch.Tensor, title: str, cmap: str, vmin: float, vmax: float, integer: bool = False
):
    """One annotated heatmap panel with a colour bar; returns the image artist."""
    if vmax <= vmin:  # a constant panel still needs a non-empty colour range
        vmin, vmax = vmin - 0.5, vmax + 0.5
    image = ax.imshow(
        data.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    ax.set_title(title, fontsize=12)
    ax.figure.colorbar(image, ax=ax, shrink=0.85)
    rows, cols = data.shape
    if data.numel() <= ANNOTATE_MAX_ELEMENTS:
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
        colormap = plt.get_cmap(cmap)
        for i in range(rows):
            for j in range(cols):
                value = float(data[i, j])
                red, green, blue, _ = colormap((value - vmin) / (vmax - vmin))
                light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                ax.text(
                    j,
                    i,
                    _format_value(value, integer),
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="black" if light else "white",
                )
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    return image


def plot_quantization_errors(
    original: torch.Tensor,
    quantized: torch.Tensor,
    dequantized: torch.Tensor,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> Figure:
    """Four heatmaps in a row: original, quantized, dequantized and the absolute error.

    The original and dequantized panels share one colour scale so they can be compared by
    eye; the quantized panel spans its integer values and the error panel runs from 0 to the
    largest error. Small tensors (up to ``ANNOTATE_MAX_ELEMENTS`` values) get their numbers
    written in the cells. ``dtype`` and ``n_bits`` (``None``: the dtype's full width) label
    the quantized panel.

    Returns the figure. It is closed for pyplot, so a notebook shows it exactly once, as the
    value of the cell; keep it in a variable and put the variable last to show it again.
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(original, "original")
    q = _check_quantized(quantized)
    r2 = _check_tensor(dequantized, "dequantized")
    if not r.shape == q.shape == r2.shape:
        raise ValueError(
            f"the three tensors must have one shape, got {tuple(r.shape)}, {tuple(q.shape)} and "
            f"{tuple(r2.shape)}."
        )
    _min_max(r, "original")
    _min_max(r2, "dequantized")
    r, q, r2 = _as_2d(r), _as_2d(q), _as_2d(r2)
    error = (r - r2).abs()
    low, high = min(r.min(), r2.min()).item(), max(r.max(), r2.max()).item()
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2), layout="constrained")
    _draw_heatmap(axes[0], r, "Original tensor", VALUE_CMAP, low, high)
    _draw_heatmap(
        axes[1],
        q,
        f"Quantized ({bits}{_dtype_name(dtype)}, [{q_min}, {q_max}])",
        QUANTIZED_CMAP,
        q.min().item(),
        q.max().item(),
        integer=True,
    )
    _draw_heatmap(axes[2], r2, "Dequantized tensor", VALUE_CMAP, low, high)
    _draw_heatmap(
        axes[3],
        error,
        "Absolute error |original - dequantized|",
        ERROR_CMAP,
        0.0,
        error.max().item(),
    )
    mse = error.square().mean().item()
    fig.suptitle(
        f"Quantization error: MSE = {mse:.4g}, largest error = {error.max().item():.4g}",
        fontsize=13,
    )
    plt.close(fig)  # pyplot would show it a second time at the end of the cell
    return fig


# ---------------------------------------------------------------------------------------------
# 8. Exercise checkers
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckCase:
    """One reference case for an exercise.

    ``check(result)`` returns ``None`` when the learner's result is right, or a sentence that
    says what is wrong. ``hint`` is shown when the case fails.
    """

    description: str
    args: tuple
    check: Callable[[Any], str | None]
    hint: str
    kwargs: dict = field(default_factory=dict)


@dataclass
class CheckReport:
    """What ``run_checks`` found; a notebook shows it as a short text report.

    ``status`` is ``"not attempted"``, ``"passed"`` or ``"failed"``; ``results`` holds one
    ``(description, problem_or_None, hint)`` per case.
    """

    exercise: str
    status: str
    results: list[tuple[str, str | None, str]]

    @property
    def passed(self) -> int:
        """How many cases passed."""
        return sum(problem is None for _, problem, _ in self.results)

    def __repr__(self) -> str:
        if self.status == "not attempted":
            return (
                f"{self.exercise}: not attempted yet. Your function returns None; fill in its "
                "body and run this cell again."
            )
        lines = [f"{self.exercise}: {self.passed} of {len(self.results)} checks passed."]
        for description, problem, hint in self.results:
            if problem is None:
                lines.append(f"  [pass] {description}")
            else:
                lines.append(f"  [FAIL] {description}: {problem}")
                lines.append(f"         hint: {hint}")
        if self.status == "passed":
            lines.append("Well done!")
        return "\n".join(lines)


def run_checks(exercise: str, function: Callable, cases: Sequence[CheckCase]) -> CheckReport:
    """Run a learner's ``function`` on every case and collect a ``CheckReport``.

    Each call gets its own copies of the arguments, so a function that changes its inputs
    cannot spoil later cases. If the function returns ``None`` for every case, the exercise
    counts as not attempted yet.
    """
    if not callable(function):
        raise TypeError(f"pass your function itself, e.g. check(my_function), not {function!r}.")
    results, returned_something = [], False
    for case in cases:
        try:
            result = function(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except Exception as error:  # the learner's code may raise anything
            results.append((case.description, f"raised {type(error).__name__}: {error}", case.hint))
            returned_something = True
            continue
        returned_something |= result is not None
        problem = "returned None" if result is None else case.check(result)
        results.append((case.description, problem, case.hint))
    if not returned_something:
        return CheckReport(exercise, "not attempted", results)
    status = "passed" if all(problem is None for _, problem, _ in results) else "failed"
    return CheckReport(exercise, status, results)


def _expect_close(expected: torch.Tensor) -> Callable[[Any], str | None]:
    """A check that the result is a float tensor equal to ``expected`` up to float32 rounding."""

    def check(result: Any) -> str | None:
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if not result.is_floating_point():
            return f"expected a float tensor, got {_dtype_name(result.dtype)}"
        if result.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(result.shape)}"
        if not torch.allclose(result.double(), expected.double(), rtol=1e-5, atol=1e-5):
            worst = (result.double() - expected.double()).abs().argmax().item()
            return (
                f"element {worst} is {result.flatten()[worst].item():.6g}, expected "
                f"{expected.flatten()[worst].item():.6g}"
            )
        return None

    return check


def check_dequantization(function: Callable) -> CheckReport:
    """Exercise of lesson 01: check a learner's ``dequantize(quantized_tensor, scale, zero_point)``.

    The reference is ``linear_dequantization``. The cases include values near the ends of the
    int8 range, where subtracting the zero point in int8 wraps around.
    """
    test_q = torch.tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8)
    edge_q = torch.tensor([127, -128, 100, -70], dtype=torch.int8)
    uint8_q = torch.tensor([0, 255, 128, 3], dtype=torch.uint8)
    hint_wrap = "convert to float first (quantized_tensor.float()), then subtract the zero point."
    cases = [
        CheckCase(
            "the lesson's quantized test tensor, scale 3.5, zero point -70",
            (test_q, 3.5, -70),
            _expect_close(linear_dequantization(test_q, 3.5, -70)),
            "multiply the scale by (q - zero_point).",
        ),
        CheckCase(
            "int8 values at the ends of the range, zero point -70",
            (edge_q, 3.5, -70),
            _expect_close(linear_dequantization(edge_q, 3.5, -70)),
            hint_wrap,
        ),
        CheckCase(
            "uint8 values, scale 0.5, zero point 128",
            (uint8_q, 0.5, 128),
            _expect_close(linear_dequantization(uint8_q, 0.5, 128)),
            hint_wrap,
        ),
    ]
    return run_checks("Dequantization", function, cases)


def _expect_scale_and_zero_point(tensor: torch.Tensor, dtype: torch.dtype):
    """A check that a ``(scale, zero_point)`` result maps ``tensor`` like ``helper`` does."""
    q_min, q_max = get_q_range(dtype)
    expected_scale, expected_zero_point = get_q_scale_and_zero_point(tensor, dtype)
    all_zero = not bool(tensor.any())

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (scale, zero_point), got {result!r}"
        scale, zero_point = (v.item() if isinstance(v, torch.Tensor) else v for v in result)
        if not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            return f"the scale must be a positive, finite number, got {scale!r}"
        if not isinstance(zero_point, numbers.Integral) and zero_point != round(zero_point):
            return f"the zero point must be a whole number, got {zero_point!r}"
        if not q_min <= zero_point <= q_max:
            return f"zero point {zero_point} is outside [{q_min}, {q_max}]"
        if all_zero:  # any positive scale works; 0 must map to a storable zero point
            return None
        if not math.isclose(scale, expected_scale, rel_tol=1e-6):
            return f"scale {scale!r}, expected {expected_scale!r}"
        if zero_point != expected_zero_point:
            return f"zero point {zero_point!r}, expected {expected_zero_point}"
        return None

    return check


def check_scale_and_zero_point(function: Callable) -> CheckReport:
    """Exercise of lesson 02: check a learner's ``get_scale_and_zero_point(tensor, dtype)``.

    The reference is ``get_q_scale_and_zero_point``; the cases are the lesson's test tensor,
    uint8, a one-signed tensor, a constant tensor and an all-zero tensor.
    """
    test_tensor = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    hint_zero = "extend the range to include 0: r_min = min(r_min, 0), r_max = max(r_max, 0)."
    cases = [
        CheckCase(
            "the lesson's test tensor, int8",
            (test_tensor, torch.int8),
            _expect_scale_and_zero_point(test_tensor, torch.int8),
            "scale = (r_max - r_min) / (q_max - q_min); zero point = q_min - r_min / scale, "
            "rounded to an int.",
        ),
        CheckCase(
            "the lesson's test tensor, uint8",
            (test_tensor, torch.uint8),
            _expect_scale_and_zero_point(test_tensor, torch.uint8),
            "take q_min and q_max from torch.iinfo(dtype), not from int8.",
        ),
        CheckCase(
            "a one-signed tensor [100, 150, 200], int8",
            (torch.tensor([100.0, 150.0, 200.0]), torch.int8),
            _expect_scale_and_zero_point(torch.tensor([100.0, 150.0, 200.0]), torch.int8),
            hint_zero,
        ),
        CheckCase(
            "a constant tensor [5, 5, 5], int8",
            (torch.full((3,), 5.0), torch.int8),
            _expect_scale_and_zero_point(torch.full((3,), 5.0), torch.int8),
            hint_zero,
        ),
        CheckCase(
            "an all-zero tensor, int8",
            (torch.zeros(2, 2), torch.int8),
            _expect_scale_and_zero_point(torch.zeros(2, 2), torch.int8),
            "an all-zero range gives scale 0; use a small positive floor instead, e.g. "
            "max(scale, torch.finfo(torch.float32).eps).",
        ),
    ]
    return run_checks("Scale and zero point", function, cases)
