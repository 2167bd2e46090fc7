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
9. Interactive explorer              ``QuantizationExplorer``, ``explore``

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


def _check_scale(scale: Any, shape: torch.Size, precision: torch.dtype) -> float | torch.Tensor:
    """Return ``scale`` as a Python float or a float tensor that fits ``shape``.

    A scale must be a positive, finite real number (or a tensor of them), and stay positive
    and finite in ``precision``, the float dtype the arithmetic runs in: 1e-50 is a positive
    float64 but 0 in float32, where ``r / s`` would give NaN.
    """
    if isinstance(scale, torch.Tensor):
        if scale.is_complex() or scale.dtype == torch.bool or scale.numel() == 0:
            raise TypeError(f"scale must hold real numbers, got a {scale.dtype} tensor.")
        _check_fits(scale, shape, "scale")
        values = scale.to(torch.float64)
        if not bool(torch.isfinite(values).all()) or not bool((values > 0).all()):
            raise ValueError("every scale must be a positive, finite number.")
    else:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            raise TypeError(f"scale must be a number or a tensor, got {type(scale).__name__}.")
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(
                f"scale must be a positive, finite number, got {scale}; "
                "get_q_scale_and_zero_point computes one for you."
            )
    in_precision = torch.as_tensor(scale, dtype=torch.float64).to(precision)
    if not bool(torch.isfinite(in_precision).all()) or not bool((in_precision > 0).all()):
        raise ValueError(
            f"the scale is too small or too large for {_dtype_name(precision)} arithmetic: "
            "there it becomes 0 or infinite."
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
    if math.isinf(scale):  # r_max - r_min overflowed (float64 values beyond +-8.9e307)
        raise ValueError("the range is too wide: r_max - r_min overflows; rescale the tensor.")
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

#: How many elements the quantize and dequantize loops handle at a time. About 1 MiB of
#: float32: small enough that the intermediate results stay in the CPU cache, large enough
#: that each operation still splits over the CPU's threads (measured fastest on 2 cores:
#: 2**18 elements; 2**16 took about 10% longer, 2**14 twice as long).
CHUNK_ELEMENTS = 1 << 18


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
    r = r.detach()  # the result is integer: no gradient, and out= refuses tensors needing one
    if r.dim() == 0:
        return _quantize(r.reshape(1), scale, zero_point, q_min, q_max, dtype).reshape(())
    if isinstance(scale, torch.Tensor):
        scale = scale.detach().to(r.dtype)  # divide in the tensor's precision, like a float
    out = torch.empty(r.shape, dtype=dtype)
    largest_chunk = max(CHUNK_ELEMENTS, math.prod(r.shape[1:]))  # see _row_chunks
    work = torch.empty(min(r.numel(), largest_chunk), dtype=r.dtype)
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
    ``torch.fake_quantize_per_tensor_affine``. (``torch.quantize_per_tensor`` on x86 rounds
    ``r / s + z`` instead, so with an odd ``z`` an exact tie lands one step away.) ``clamp``
    keeps every value storable, so nothing wraps around.
    ``scale`` and ``zero_point`` are numbers, or tensors that broadcast against ``tensor``
    (shape ``(rows, 1)`` gives each row its own). ``n_bits`` narrows the range (see
    ``get_q_range``).

    >>> linear_q_with_scale_and_zero_point(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    _min_max(r)  # NaN and infinity checks
    scale = _check_scale(scale, r.shape, r.dtype)
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
    scale = _check_scale(scale, q.shape, torch.float32)
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


class _HeatmapPanel:
    """One heatmap panel with a colour bar, built once for a shape and then updated in place.

    Building a panel (axes, colour bar, one text per cell) is the slow part of a plot;
    ``update`` only swaps the image data, the colour limits and the cell texts, so an
    interactive plot can redraw many times in one figure.
    """

    def __init__(self, ax, shape: tuple[int, int], cmap: str) -> None:
        rows, cols = shape
        self.ax, self.colormap = ax, plt.get_cmap(cmap)
        self.image = ax.imshow(
            torch.zeros(rows, cols).numpy(),
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            aspect="auto",
            interpolation="nearest",
        )
        ax.figure.colorbar(self.image, ax=ax, shrink=0.85)
        self.texts = []
        if rows * cols <= ANNOTATE_MAX_ELEMENTS:
            ax.set_xticks(range(cols))
            ax.set_yticks(range(rows))
            self.texts = [
                ax.text(j, i, "", ha="center", va="center", fontsize=10)
                for i in range(rows)
                for j in range(cols)
            ]
        ax.set_xlabel("column")
        ax.set_ylabel("row")

    def update(
        self, data: torch.Tensor, title: str, vmin: float, vmax: float, integer: bool = False
    ) -> None:
        """Show ``data`` (2-D, the panel's shape) with colours spanning ``[vmin, vmax]``."""
        if vmax <= vmin:  # a constant panel still needs a non-empty colour range
            vmin, vmax = vmin - 0.5, vmax + 0.5
        self.image.set_data(data.numpy())
        self.image.set_clim(vmin, vmax)
        self.ax.set_title(title, fontsize=12)
        for text, value in zip(self.texts, data.flatten().tolist(), strict=False):
            red, green, blue, _ = self.colormap((value - vmin) / (vmax - vmin))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            text.set_text(_format_value(value, integer))
            text.set_color("black" if light else "white")


class _ErrorPanels:
    """The four panels of ``plot_quantization_errors`` on ``figure``, for 2-D data of ``shape``.

    Build once, then call ``update`` for every new quantization of a tensor of that shape.
    """

    def __init__(self, figure: Figure, shape: tuple[int, int]) -> None:
        self.figure, self.shape = figure, tuple(shape)
        axes = figure.subplots(1, 4)
        cmaps = (VALUE_CMAP, QUANTIZED_CMAP, VALUE_CMAP, ERROR_CMAP)
        self.panels = [
            _HeatmapPanel(ax, self.shape, cmap) for ax, cmap in zip(axes, cmaps, strict=True)
        ]

    def update(
        self,
        original: torch.Tensor,
        quantized: torch.Tensor,
        dequantized: torch.Tensor,
        dtype: torch.dtype,
        n_bits: int | None,
    ) -> torch.Tensor:
        """Draw the three float64 2-D tensors and their error; returns ``|original - deq|``.

        The original and dequantized panels share one colour scale; the quantized panel spans
        its integer values and the error panel runs from 0 to the largest error.
        """
        q_min, q_max = get_q_range(dtype, n_bits)
        r, q, r2 = original, quantized, dequantized
        error = (r - r2).abs()
        low, high = min(r.min(), r2.min()).item(), max(r.max(), r2.max()).item()
        bits = f"{n_bits}-bit " if n_bits is not None else ""
        original_panel, quantized_panel, dequantized_panel, error_panel = self.panels
        original_panel.update(r, "Original tensor", low, high)
        quantized_panel.update(
            q,
            f"Quantized ({bits}{_dtype_name(dtype)}, [{q_min}, {q_max}])",
            q.min().item(),
            q.max().item(),
            integer=True,
        )
        dequantized_panel.update(r2, "Dequantized tensor", low, high)
        error_panel.update(
            error, "Absolute error |original - dequantized|", 0.0, error.max().item()
        )
        return error


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
    get_q_range(dtype, n_bits)  # checks dtype and n_bits before anything is drawn
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
    fig = plt.figure(figsize=(18, 4.2), layout="constrained")
    error = _ErrorPanels(fig, tuple(r.shape)).update(r, q, r2, dtype, n_bits)
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
        try:
            problem = "returned None" if result is None else case.check(result)
        except Exception as error:  # a result of an unexpected kind, e.g. (scale, None)
            problem = f"returned {result!r}, which could not be checked ({error})"
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
            "r = scale * (q - zero_point); " + hint_wrap,
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


# ---------------------------------------------------------------------------------------------
# 9. Interactive explorer
# ---------------------------------------------------------------------------------------------
# Controls (dtype, bit width, tensor, size, seed) on the left, what they do on the right: the
# scale and zero point, the error measured and predicted, the memory, and one figure that is
# redrawn in place. The logic is plain Python (``QuantizationExplorer.compute``), so tests can
# drive it without a browser; ``build_widgets`` only wires ipywidgets to it.
#
# Extending it is one line each:
#   register_tensor_source("my weights", lambda seed, size: weights)   # a new tensor
#   EXPLORER_CONTROLS.append(ExplorerControl("mode", "mode", "dropdown", "asymmetric",
#                                            options=("asymmetric", "symmetric")))
# A control's value reaches the quantizer (``QuantizationExplorer.quantizer``) as a keyword
# argument of the same name, so a later lesson pairs a new control with a quantizer that reads it.

#: The lesson's 3x3 test tensor, the explorer's default.
LESSON_TEST_TENSOR = ((191.6, -13.5, 728.6), (92.14, 295.5, -184.0), (0.0, 684.6, 245.5))

#: The value of the single outlier in ``outlier_tensor`` (the other values are about N(0, 1)).
OUTLIER_VALUE = 100.0

#: Side lengths offered for the random tensors (``size`` x ``size``).
EXPLORER_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512)

#: The target dtypes by name, as the dtype menu offers them.
EXPLORER_DTYPES: dict[str, torch.dtype] = {_dtype_name(d): d for d in SUPPORTED_DTYPES}

#: At most this many grid lines (representable levels) are drawn over the histogram; with
#: more levels (int16 has 65536) every k-th level is drawn.
MAX_GRID_LINES = 256

#: Number of histogram bins for tensors too large for the four annotated panels.
HISTOGRAM_BINS = 80


def _seeded(seed: int) -> torch.Generator:
    """A CPU random generator started from ``seed``: one seed, one tensor, on every run."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}.")
    return torch.Generator().manual_seed(int(seed))


def _check_size(size: int) -> int:
    """Return ``size`` if it is a whole number >= 1, else raise a ``ValueError``."""
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a whole number >= 1, got {size!r}.")
    return int(size)


def lesson_test_tensor(seed: int = 0, size: int = 3) -> torch.Tensor:
    """The lessons' 3x3 test tensor (float32); ``seed`` and ``size`` are ignored."""
    return torch.tensor(LESSON_TEST_TENSOR, dtype=torch.float32)


def random_normal_tensor(seed: int = 0, size: int = 16) -> torch.Tensor:
    """A ``size`` x ``size`` float32 tensor of standard normal values, N(0, 1), from ``seed``."""
    return torch.randn(_check_size(size), size, generator=_seeded(seed))


def outlier_tensor(seed: int = 0, size: int = 16) -> torch.Tensor:
    """Standard normal values with one outlier: one element (placed by ``seed``) is 100.

    The outlier alone sets the range, so the scale is huge and the ordinary values share
    only a few quantization levels.
    """
    generator = _seeded(seed)
    tensor = torch.randn(_check_size(size), size, generator=generator)
    where = int(torch.randint(tensor.numel(), (1,), generator=generator))
    tensor.view(-1)[where] = OUTLIER_VALUE
    return tensor


def positive_tensor(seed: int = 0, size: int = 16) -> torch.Tensor:
    """A ``size`` x ``size`` float32 tensor of uniform values in ``[1, 10)``, from ``seed``."""
    return 1.0 + 9.0 * torch.rand(_check_size(size), size, generator=_seeded(seed))


#: The explorer's tensor menu: name -> ``source(seed, size)`` returning a float tensor.
TENSOR_SOURCES: dict[str, Callable[[int, int], torch.Tensor]] = {
    "lesson test tensor (3x3)": lesson_test_tensor,
    "random normal": random_normal_tensor,
    "normal with one outlier": outlier_tensor,
    "all positive": positive_tensor,
}


def register_tensor_source(name: str, source: Callable[[int, int], torch.Tensor]) -> None:
    """Add ``source`` to the explorer's tensor menu under ``name``.

    ``source(seed, size)`` returns the tensor to quantize; a fixed tensor may ignore both,
    e.g. ``register_tensor_source("layer 0 weights", lambda seed, size: model.w.detach())``.
    Explorers built afterwards list it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    if not callable(source):
        raise TypeError(f"source must be a function source(seed, size), got {source!r}.")
    TENSOR_SOURCES[name] = source


def _explorer_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"int8"`` -> ``torch.int8``; a torch dtype is checked and returned as it is."""
    if isinstance(dtype, str):
        if dtype not in EXPLORER_DTYPES:
            raise TypeError(f"unknown dtype {dtype!r}: choose one of {', '.join(EXPLORER_DTYPES)}.")
        return EXPLORER_DTYPES[dtype]
    return _check_dtype(dtype)


def _dtype_bits(settings: dict[str, Any]) -> int:
    """The width in bits of the chosen dtype: the largest bit width the slider offers."""
    return torch.iinfo(_explorer_dtype(settings["dtype"])).bits


@dataclass(frozen=True)
class ExplorerControl:
    """One control of the explorer, described as data so that adding one is one line.

    ``name`` is the keyword its value is passed under (to ``QuantizationExplorer.compute``
    and from there to the quantizer); ``kind`` is ``"dropdown"``, ``"slider"`` or ``"number"``.
    A dropdown lists ``options``, or calls ``options(explorer)`` when the widgets are built.
    Sliders and number fields run from ``low`` to ``high``; ``high_from(settings)``, if given,
    recomputes a slider's maximum from all current values whenever any of them changes.
    """

    name: str
    label: str
    kind: str
    default: Any
    options: Sequence | Callable[[Any], Sequence] = ()
    low: int = 0
    high: int = 0
    high_from: Callable[[dict[str, Any]], int] | None = None

    def make_widget(self, explorer: QuantizationExplorer):
        """The ipywidgets widget for this control, set to its default value."""
        import ipywidgets as widgets

        style = {"description_width": "initial"}
        if self.kind == "dropdown":
            options = self.options(explorer) if callable(self.options) else self.options
            return widgets.Dropdown(
                options=list(options), value=self.default, description=self.label, style=style
            )
        if self.kind == "slider":
            return widgets.IntSlider(
                value=self.default,
                min=self.low,
                max=self.high,
                description=self.label,
                continuous_update=True,
                style=style,
            )
        if self.kind == "number":
            return widgets.BoundedIntText(
                value=self.default,
                min=self.low,
                max=self.high,
                description=self.label,
                style=style,
                layout=widgets.Layout(width="160px"),
            )
        raise ValueError(f"unknown control kind {self.kind!r}: use dropdown, slider or number.")


#: The explorer's controls, in the order they are shown. Append to add one.
EXPLORER_CONTROLS: list[ExplorerControl] = [
    ExplorerControl(
        "tensor_name",
        "tensor",
        "dropdown",
        "lesson test tensor (3x3)",
        options=lambda explorer: tuple(explorer.sources),
    ),
    ExplorerControl("size", "size (random tensors)", "dropdown", 16, options=EXPLORER_SIZES),
    ExplorerControl("seed", "seed", "number", 0, low=0, high=2**31 - 1),
    ExplorerControl("dtype", "dtype", "dropdown", "int8", options=tuple(EXPLORER_DTYPES)),
    ExplorerControl("n_bits", "bits", "slider", 8, low=2, high=8, high_from=_dtype_bits),
]

#: The settings every explorer understands; any other control's value goes to the quantizer.
_CORE_SETTINGS = ("tensor_name", "size", "seed", "dtype", "n_bits")


def explorer_quantize(
    tensor: torch.Tensor, dtype: torch.dtype, n_bits: int
) -> tuple[torch.Tensor, float, int, torch.Tensor]:
    """The explorer's quantizer: asymmetric, per tensor (``linear_quantization``).

    Returns ``(quantized, scale, zero_point, dequantized)``.
    """
    quantized, scale, zero_point = linear_quantization(tensor, dtype, n_bits)
    return quantized, scale, zero_point, linear_dequantization(quantized, scale, zero_point)


def format_number(value: float) -> str:
    """How the explorer writes a measured number: six significant digits (``"1.06736"``)."""
    return f"{value:.6g}"


def _format_param(value: float | int | torch.Tensor) -> str:
    """A scale or zero point as text; per-channel tensors show their smallest and largest."""
    if isinstance(value, torch.Tensor):
        if value.numel() > 1:
            low, high = value.min().item(), value.max().item()
            return f"{format_number(low)} to {format_number(high)} ({value.numel()} values)"
        value = value.item()
    return str(value) if isinstance(value, int) else format_number(value)


#: A label may grow by this many characters before the explorer lays its figure out again;
#: the extra space between panels (``wspace`` below) leaves room for that.
RELAYOUT_CHARS = 2


def _explorer_figure(width: float, height: float, dpi: float) -> Figure:
    """A figure outside pyplot (nothing to close, never shown twice) that renders with Agg,
    with constrained layout and some spare room between panels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    layout = ConstrainedLayoutEngine(wspace=0.05)
    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _text_lengths(figure: Figure) -> tuple[int, ...]:
    """Roughly how much room the figure's labels need: the length of the longest tick label,
    offset text and title of every axes (colour bars included)."""
    lengths = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [text.get_text() for text in axis.get_ticklabels()]
            lengths.append(max(map(len, labels), default=0))
            lengths.append(len(axis.get_offset_text().get_text()))
        lengths.append(len(ax.get_title()))
    return tuple(lengths)


class _ExplorerDrawing:
    """What the explorer's layouts share: one figure, rendered to PNG, laid out only when needed.

    Constrained layout finds room for every label, but it costs more than drawing the figure.
    So it runs on the first render, and again only when a tick label or title has become
    more than ``RELAYOUT_CHARS`` characters longer than at the last layout; otherwise the axes
    keep their places.
    """

    figure: Figure
    shape: tuple[int, int]
    _laid_out_for: tuple[int, ...] | None = None

    def __init__(self, shape: tuple[int, int], figure: Figure) -> None:
        self.shape, self.figure = shape, figure
        self._layout = figure.get_layout_engine()

    def png(self) -> bytes:
        """The figure as PNG bytes, at the figure's own dpi."""
        import io

        lengths = _text_lengths(self.figure)
        old = self._laid_out_for
        relayout = old is None or any(
            new > was + RELAYOUT_CHARS for new, was in zip(lengths, old, strict=True)
        )
        if relayout:
            self.figure.set_layout_engine(self._layout)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        if relayout:
            self.figure.set_layout_engine(None)  # keep the positions it found
            self._laid_out_for = lengths
        return buffer.getvalue()


class _PanelsDrawing(_ExplorerDrawing):
    """The explorer's layout for small tensors: the four annotated heatmaps."""

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        super().__init__(shape, _explorer_figure(13, 3.5, dpi))
        self.panels = _ErrorPanels(self.figure, shape)

    def update(self, original, quantized, dequantized, dtype, n_bits, scale, zero_point) -> None:
        """Redraw the four panels for new results (2-D tensors of this layout's shape)."""
        self.panels.update(_as_2d(original), _as_2d(quantized), _as_2d(dequantized), dtype, n_bits)
        for panel in self.panels.panels:  # a narrower figure than plot_quantization_errors'
            panel.ax.title.set_fontsize(11)


class _HistogramDrawing(_ExplorerDrawing):
    """The explorer's layout for larger tensors: a histogram with the quantization grid on
    it, and a heatmap of the absolute error."""

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        from matplotlib.collections import LineCollection

        super().__init__(shape, _explorer_figure(13, 3.6, dpi))
        hist_ax, error_ax = self.figure.subplots(1, 2, width_ratios=(1.7, 1))
        self.hist_ax = hist_ax
        self.bars = hist_ax.stairs(
            [0.0], [0.0, 1.0], fill=True, color="tab:blue", alpha=0.6, label="values (histogram)"
        )
        self.grid = LineCollection(
            [],
            colors="tab:red",
            linewidths=0.8,
            alpha=0.6,
            transform=hist_ax.get_xaxis_transform(),  # x in data units, y from 0 to 1 of the axes
            label="representable levels r = s (q - z)",
        )
        hist_ax.add_collection(self.grid, autolim=False)
        hist_ax.set_xlabel("value")
        hist_ax.set_ylabel("count")
        hist_ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
        self.error_panel = _HeatmapPanel(error_ax, shape, ERROR_CMAP)

    def update(self, original, quantized, dequantized, dtype, n_bits, scale, zero_point) -> None:
        """Redraw the histogram, the grid and the error heatmap for new results."""
        values = original.detach().flatten().to(torch.float64)
        r_min, r_max = values.min().item(), values.max().item()
        if r_max <= r_min:
            r_min, r_max = r_min - 0.5, r_max + 0.5
        counts, edges = torch.histogram(values, bins=HISTOGRAM_BINS, range=(r_min, r_max))
        self.bars.set_data(counts.numpy(), edges.numpy())
        levels_text = self._update_grid(dtype, n_bits, scale, zero_point)
        grid_low, grid_high = self._grid_range
        low, high = min(r_min, grid_low), max(r_max, grid_high)
        pad = 0.02 * (high - low)
        self.hist_ax.set_xlim(low - pad, high + pad)
        self.hist_ax.set_ylim(0, 1.15 * max(counts.max().item(), 1.0))
        self.hist_ax.set_title(f"{values.numel():,} values and {levels_text}", fontsize=11)
        error = _as_2d((original - dequantized).abs())
        self.error_panel.update(
            error, "Absolute error |original - dequantized|", 0.0, error.max().item()
        )

    def _update_grid(self, dtype, n_bits, scale, zero_point) -> str:
        """Place the grid lines at the representable levels and describe them."""
        q_min, q_max = get_q_range(dtype, n_bits)
        levels = q_max - q_min + 1
        if isinstance(scale, torch.Tensor) and scale.numel() > 1:  # one grid per channel
            self.grid.set_segments([])
            self._grid_range = (0.0, 0.0)
            return f"{levels:,} levels per channel (grids not drawn)"
        scale, zero_point = float(scale), int(zero_point)
        step = math.ceil(levels / MAX_GRID_LINES)
        q = torch.cat(
            [
                torch.arange(zero_point, q_min - 1, -step).flip(0),
                torch.arange(zero_point + step, q_max + 1, step),
            ]
        ).to(torch.float64)
        x = scale * (q - zero_point)
        ones = torch.ones_like(x)
        self.grid.set_segments(torch.stack([x, 0 * ones, x, ones], 1).reshape(-1, 2, 2).numpy())
        self._grid_range = (scale * (q_min - zero_point), scale * (q_max - zero_point))
        shown = f", one in {step} drawn" if step > 1 else ""
        return f"{levels:,} levels{shown}"


class QuantizationExplorer:
    """Quantize a tensor with the settings of a few controls and show what it costs.

    ``compute(...)`` returns the numbers the explorer shows; ``render(...)`` also draws them
    and returns PNG bytes; ``build_widgets()`` wires ipywidgets controls to them and ``show()``
    displays the result. Every change redraws one figure in place (a new figure is built only
    when the tensor's shape or the layout changes), so updates are quick and never pile up.
    Settings that do not work together (say 12 bits in int8) show the error's message instead.

    ``controls`` defaults to ``EXPLORER_CONTROLS``, ``sources`` to ``TENSOR_SOURCES`` and
    ``quantizer`` to ``explorer_quantize``; ``dpi`` sets the resolution of the picture.
    """

    def __init__(
        self,
        controls: Sequence[ExplorerControl] | None = None,
        sources: dict[str, Callable[[int, int], torch.Tensor]] | None = None,
        quantizer: Callable[..., tuple] = explorer_quantize,
        dpi: int = 72,
    ) -> None:
        self.controls = list(EXPLORER_CONTROLS if controls is None else controls)
        self.sources = TENSOR_SOURCES if sources is None else sources
        self.quantizer = quantizer
        self.dpi = dpi
        self.widgets: dict[str, Any] = {}
        self.numbers_widget = None  # ipywidgets.HTML, made by build_widgets
        self.image_widget = None  # ipywidgets.Image, made by build_widgets
        self.box = None
        self._drawing: _PanelsDrawing | _HistogramDrawing | None = None
        self._syncing = False

    # -- the numbers ----------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """The current value of every control (the defaults before the widgets exist)."""
        if self.widgets:
            return {name: widget.value for name, widget in self.widgets.items()}
        return {control.name: control.default for control in self.controls}

    def tensor(self, tensor_name: str, size: int = 16, seed: int = 0) -> torch.Tensor:
        """The tensor the menu entry ``tensor_name`` makes for ``size`` and ``seed``."""
        if tensor_name not in self.sources:
            raise ValueError(
                f"unknown tensor {tensor_name!r}: choose one of {', '.join(self.sources)}."
            )
        return self.sources[tensor_name](seed, size)

    def compute(
        self,
        dtype: str | torch.dtype = "int8",
        n_bits: int = 8,
        tensor_name: str = "lesson test tensor (3x3)",
        size: int = 16,
        seed: int = 0,
        **options: Any,
    ) -> dict[str, Any]:
        """The numbers the explorer shows for these settings, as a dict.

        Keys: the settings themselves, ``shape``, ``q_min``/``q_max``, ``scale``,
        ``zero_point``, ``mse`` (``quantization_error``), ``max_error`` (largest absolute
        error), ``theory_mse`` (``scale**2 / 12``), ``bytes_before`` (float32),
        ``bytes_after`` (stored in ``dtype``), ``bytes_packed`` (``n_bits`` per value, rounded
        up to whole bytes), ``levels``/``levels_used`` and ``message``: ``None``, or what was
        wrong with the settings (then the numbers are ``None``). Never raises for bad settings.
        """
        settings = dict(
            dtype=dtype, n_bits=n_bits, tensor_name=tensor_name, size=size, seed=seed, **options
        )
        return self._run(settings)[0]

    def _run(self, settings: dict[str, Any]) -> tuple[dict[str, Any], tuple | None]:
        """``compute``'s numbers plus the tensors to draw (``None`` if the settings fail)."""
        keys = ("shape", "q_min", "q_max", "scale", "zero_point", "mse", "max_error")
        keys += ("theory_mse", "bytes_before", "bytes_after", "bytes_packed", "levels")
        numbers = dict(settings, **dict.fromkeys(keys + ("levels_used", "message")))
        extra = {k: v for k, v in settings.items() if k not in _CORE_SETTINGS}
        try:
            tensor = self.tensor(settings["tensor_name"], settings["size"], settings["seed"])
            dtype, n_bits = _explorer_dtype(settings["dtype"]), settings["n_bits"]
            q_min, q_max = get_q_range(dtype, n_bits)
            quantized, scale, zero_point, dequantized = self.quantizer(
                tensor, dtype, n_bits, **extra
            )
            mse = quantization_error(tensor, dequantized).item()
        except (ValueError, TypeError) as error:
            numbers["message"] = str(error)
            return numbers, None
        if isinstance(scale, torch.Tensor):  # one scale per channel or group: average s^2/12
            theory = torch.broadcast_to(scale.to(torch.float64), tensor.shape).square().mean()
            theory_mse = theory.item() / 12
        else:
            theory_mse = scale**2 / 12
        numbers.update(
            shape=tuple(tensor.shape),
            q_min=q_min,
            q_max=q_max,
            scale=scale,
            zero_point=zero_point,
            mse=mse,
            max_error=(dequantized - tensor).abs().max().item(),
            theory_mse=theory_mse,
            bytes_before=tensor.numel() * tensor.element_size(),
            bytes_after=quantized.numel() * quantized.element_size(),
            bytes_packed=math.ceil(quantized.numel() * n_bits / 8),
            levels=q_max - q_min + 1,
            levels_used=torch.unique(quantized).numel(),
        )
        return numbers, (tensor, quantized, dequantized, dtype, n_bits, scale, zero_point)

    # -- the picture ----------------------------------------------------------------------

    @property
    def figure(self) -> Figure | None:
        """The figure the last ``render`` drew into (``None`` before the first)."""
        return None if self._drawing is None else self._drawing.figure

    def _layout_for(self, tensor: torch.Tensor) -> _PanelsDrawing | _HistogramDrawing:
        """The drawing for this tensor: the current one if the layout and shape still fit."""
        small = tensor.numel() <= ANNOTATE_MAX_ELEMENTS
        kind = _PanelsDrawing if small else _HistogramDrawing
        shape = tuple(_as_2d(tensor).shape)
        if not (isinstance(self._drawing, kind) and self._drawing.shape == shape):
            self._drawing = kind(shape, self.dpi)
        return self._drawing

    def render(self, **settings: Any) -> tuple[dict[str, Any], bytes | None]:
        """Compute the numbers for ``settings`` and draw them; returns ``(numbers, png)``.

        ``png`` is ``None`` when the settings fail (``numbers["message"]`` says why).
        """
        numbers, results = self._run({**self.settings, **settings})
        if results is None:
            return numbers, None
        tensor, quantized, dequantized, dtype, n_bits, scale, zero_point = results
        drawing = self._layout_for(tensor)
        drawing.update(tensor, quantized, dequantized, dtype, n_bits, scale, zero_point)
        drawing.figure.suptitle(
            f"{numbers['tensor_name']} in {n_bits}-bit {_dtype_name(dtype)}: "
            f"MSE = {format_number(numbers['mse'])}, "
            f"largest error = {format_number(numbers['max_error'])}",
            fontsize=13,
        )
        return numbers, drawing.png()

    @staticmethod
    def html(numbers: dict[str, Any]) -> str:
        """The numbers as a small HTML table (or the message, if the settings failed).

        Each number sits in an element with a stable class (``qe-scale``, ``qe-zero-point``,
        ``qe-mse``, ``qe-theory-mse``, ``qe-max-error``, ``qe-levels``, ``qe-bytes-before``,
        ``qe-bytes-after``, ``qe-bytes-packed``, ``qe-message``) for tests and styling.
        """
        import html

        if numbers["message"] is not None:
            return (
                '<div class="qe-numbers"><p class="qe-message" style="color:#b00020">'
                f"<b>These settings do not work together:</b> {html.escape(numbers['message'])}"
                "</p></div>"
            )
        dtype = _dtype_name(_explorer_dtype(numbers["dtype"]))
        bits, values = numbers["n_bits"], math.prod(numbers["shape"])
        cells = [
            ("scale s", "qe-scale", _format_param(numbers["scale"])),
            ("zero point z", "qe-zero-point", _format_param(numbers["zero_point"])),
            ("MSE (measured)", "qe-mse", format_number(numbers["mse"])),
            ("s\u00b2/12 (theory)", "qe-theory-mse", format_number(numbers["theory_mse"])),
            ("max error", "qe-max-error", format_number(numbers["max_error"])),
            ("levels in use", "qe-levels", f"{numbers['levels_used']:,} of {numbers['levels']:,}"),
        ]
        head = "".join(f'<th style="padding:0 1em">{label}</th>' for label, _, _ in cells)
        row = "".join(
            f'<td style="padding:0 1em;text-align:center"><span class="{css}">{text}</span></td>'
            for _, css, text in cells
        )
        before, after, packed = (
            numbers[k] for k in ("bytes_before", "bytes_after", "bytes_packed")
        )
        return (
            '<div class="qe-numbers">'
            f"<table><tr>{head}</tr><tr>{row}</tr></table>"
            f'<p class="qe-memory" style="line-height:1.4">Memory of the {values:,} values: '
            f'<span class="qe-bytes-before">{before:,}</span> bytes as float32 &rarr; '
            f'<span class="qe-bytes-after">{after:,}</span> bytes stored as {dtype} '
            f"({before / after:.3g}x smaller); "
            f'if packed at {bits} bits per value: <span class="qe-bytes-packed">{packed:,}</span>'
            f" bytes ({values:,} &times; {bits} bits, rounded up to whole bytes).</p>"
            "</div>"
        )

    # -- the widgets ----------------------------------------------------------------------

    def build_widgets(self):
        """Make the controls, the numbers and the picture as one ipywidgets box and draw once.

        Changing any control redraws: the picture is PNG bytes in an ``ipywidgets.Image`` and
        the numbers are an ``ipywidgets.HTML``, so nothing is appended or flickers.
        """
        import ipywidgets as widgets

        self.widgets = {control.name: control.make_widget(self) for control in self.controls}
        self.numbers_widget = widgets.HTML()
        self.image_widget = widgets.Image(
            format="png", layout=widgets.Layout(max_width="100%", height="auto")
        )
        self._sync_limits()
        for widget in self.widgets.values():
            widget.observe(self._on_change, names="value")
        controls = widgets.HBox(
            list(self.widgets.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        self.box = widgets.VBox([controls, self.numbers_widget, self.image_widget])
        self.box.add_class("qe-explorer")
        self.redraw()
        return self.box

    def show(self) -> None:
        """Display the explorer in the notebook (building the widgets first if needed)."""
        from IPython.display import display

        display(self.box if self.box is not None else self.build_widgets())

    def redraw(self) -> dict[str, Any]:
        """Recompute and redraw for the current settings; returns the numbers shown."""
        numbers, png = self.render()
        self.numbers_widget.value = self.html(numbers)
        if png is None:
            self.image_widget.layout.visibility = "hidden"
        else:
            self.image_widget.value = png
            self.image_widget.layout.visibility = "visible"
        return numbers

    def _sync_limits(self) -> None:
        """Update slider maxima that follow other controls (the bits follow the dtype)."""
        self._syncing = True  # a clamped value must not trigger a redraw of its own
        try:
            settings = self.settings
            for control in self.controls:
                if control.high_from is not None:
                    try:
                        self.widgets[control.name].max = control.high_from(settings)
                    except (ValueError, TypeError):
                        pass  # the redraw shows what is wrong with the settings
        finally:
            self._syncing = False

    def _on_change(self, change: dict) -> None:
        """Observer of every control: adjust dependent limits, then redraw once."""
        if self._syncing:
            return
        self._sync_limits()
        self.redraw()


def explore(**kwargs: Any):
    """Build a ``QuantizationExplorer`` and return its widget box (the last line of a cell
    shows it). Keyword arguments go to ``QuantizationExplorer``."""
    return QuantizationExplorer(**kwargs).build_widgets()


__all__ += [
    "TENSOR_SOURCES",
    "register_tensor_source",
    "lesson_test_tensor",
    "random_normal_tensor",
    "outlier_tensor",
    "positive_tensor",
    "ExplorerControl",
    "EXPLORER_CONTROLS",
    "explorer_quantize",
    "format_number",
    "QuantizationExplorer",
    "explore",
]
