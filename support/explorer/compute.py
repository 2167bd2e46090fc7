"""The explorer's numbers, in plain Python: its quantizer and what it says about the error.

Part of ``support.explorer`` (see the package's docstring). Imports point one way: this module
imports ``helper`` and ``support.explorer.settings``; ``drawing`` and ``widget`` import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch

from helper import (
    PACK_BITS,
    absmax_mse_optimal,
    clipping_absmax,
    dequantize_affine,
    dequantize_from_grid,
    get_q_range,
    granularity_block_size,
    grid_values,
    per_element,
    quantize_blockwise,
    quantize_clipped,
    quantize_to_grid,
)
from support.explorer.settings import (
    EXPLORER_GRANULARITIES,
    EXPLORER_GRIDS,
    EXPLORER_MODES,
    EXPLORER_RANGES,
    GRID_BITS,
)

#: The MSE-optimal search, ``(n_grid, n_refine)`` of ``helper.absmax_mse_optimal``: lesson
#: 13's, 100 ratios of max|r| and then 20 finer ones around the best, 120 round trips.
MSE_SEARCH: tuple[int, int] = (100, 10)
#: A coarser search for large tensors: 20 ratios (steps of 0.05 of max|r|), then 10 finer ones
#: (steps of 0.01) around the best, 30 round trips. Used when ``values + MSE_BLOCK_COST *
#: blocks`` exceeds ``MSE_SEARCH_WORK``: a round trip costs about a nanosecond per value and
#: ~30 per block (the search's per-block bookkeeping), so the full search stays under about a
#: tenth of a second (512x512 per tensor or per row: ~40 ms on one thread), and the coarse one
#: takes 512x512 in groups of 2 (131,072 blocks) in ~0.3 s instead of ~1.2 s, for an MSE
#: within 0.4% of the full search's (measured at 4 bits on random normal values).
MSE_SEARCH_COARSE: tuple[int, int] = (20, 5)
MSE_SEARCH_WORK = 2**19
MSE_BLOCK_COST = 32

#: The estimate s^2/12 is flagged when measured and estimated MSE are further apart than this
#: factor (either way), and shown with a caution below ``FEW_VALUES`` values (see
#: ``estimate_check``).
ESTIMATE_FACTOR = 1.5
FEW_VALUES = 100


class QuantizerResult(NamedTuple):
    """What a quantizer hands the explorer.

    ``scale`` and ``zero_point`` hold one value per block (numbers, or tensors of shape
    ``n_blocks`` as ``helper.choose_qparams_affine`` returns them); ``block_size`` says which
    elements share them (see ``helper.block_shapes``), so the explorer can expand them per
    element with ``helper.per_element``. A quantizer that clips also hands over every block's
    range ``clip_range`` (the ``alpha`` of ``[-alpha, alpha]``, shape ``n_blocks``) and a
    sentence ``range_note`` on how it chose it; both are shown. On a grid that is not evenly
    spaced (float8, NF4: ``EXPLORER_GRIDS``) ``quantized`` holds the codes, indices into the
    grid (``helper.quantize_to_grid``), and ``zero_point`` is ``None``: ``r' = s * grid[code]``.
    """

    quantized: torch.Tensor
    scale: float | torch.Tensor
    zero_point: int | torch.Tensor | None
    dequantized: torch.Tensor
    block_size: tuple[int, ...]
    clip_range: torch.Tensor | None = None
    range_note: str = ""


def explorer_block_size(
    shape: Sequence[int], granularity: str = "per tensor", group_size: int = 3
) -> tuple[int, ...]:
    """The block size for one of the explorer's granularities (``EXPLORER_GRANULARITIES``),
    from ``helper.granularity_block_size``.

    >>> explorer_block_size((3, 3), "per channel (rows)")
    (1, 3)
    >>> explorer_block_size((3, 3), "per channel (columns)")
    (3, 1)
    >>> explorer_block_size((6, 6), "per group", group_size=3)
    (1, 3)
    """
    if granularity not in EXPLORER_GRANULARITIES:
        raise ValueError(
            f"unknown granularity {granularity!r}: choose one of "
            f"{', '.join(EXPLORER_GRANULARITIES)}."
        )
    name, dim = EXPLORER_GRANULARITIES[granularity]
    if name == "per_group":
        return granularity_block_size(shape, name, group_size=group_size)
    return granularity_block_size(shape, name, dim=dim)


def mse_search_size(n_values: int, n_blocks: int) -> tuple[int, int]:
    """``(n_grid, n_refine)`` for the explorer's MSE-optimal search: ``MSE_SEARCH``, or
    ``MSE_SEARCH_COARSE`` when the tensor would make the full search slow.

    >>> mse_search_size(4096, 64), mse_search_size(512 * 512, 512 * 256)
    ((100, 10), (20, 5))
    """
    work = n_values + MSE_BLOCK_COST * n_blocks
    return MSE_SEARCH if work <= MSE_SEARCH_WORK else MSE_SEARCH_COARSE


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the thread count.

    The range search makes many small passes over the tensor (a 512x512 tensor is a quarter
    of a million values). Split over several threads, each pass waits for the slowest one, and
    on a busy computer (the browser drawing the page, other programs) a thread that does not
    get its core stalls it: measured on 2 cores with another program running, the MSE search
    of a 512x512 tensor took 1 to 8 s on 2 threads and about 60 ms on one. The results are
    the same either way (elementwise work, exact percentiles, float64 sums of the errors).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def explorer_clip_range(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    range_method: str,
    dtype: torch.dtype,
    n_bits: int,
) -> tuple[torch.Tensor, str]:
    """Every block's symmetric range ``alpha`` for the range menu's ``range_method`` (see
    ``EXPLORER_RANGES``), and a sentence on how it was chosen: ``(alpha, note)``.

    ``helper.clipping_absmax``; the MSE-optimal search runs coarser on large tensors (see
    ``mse_search_size``), and the note says so. It runs on one thread (see ``_one_thread``).
    """
    if range_method not in EXPLORER_RANGES:
        raise ValueError(
            f"unknown range {range_method!r}: choose one of {', '.join(EXPLORER_RANGES)}."
        )
    with _one_thread():
        return _clip_range(tensor, block_size, range_method, dtype, n_bits)


def _clip_range(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    range_method: str,
    dtype: torch.dtype,
    n_bits: int,
) -> tuple[torch.Tensor, str]:
    """``explorer_clip_range`` for a known ``range_method``."""
    method, percentile = EXPLORER_RANGES[range_method]
    if method == "min-max":
        return clipping_absmax(tensor, block_size, method), "alpha = max|r| of every block."
    if method == "percentile":
        absmax = clipping_absmax(tensor, block_size, method, dtype, n_bits, percentile)
        return absmax, _percentile_note(tensor, block_size, absmax, percentile)
    n_values = tensor.numel()
    n_blocks = n_values // max(math.prod(block_size), 1)
    n_grid, n_refine = mse_search_size(n_values, n_blocks)
    tried = (
        f"alpha = the best of {n_grid + 2 * n_refine} ranges tried in every block, the one with "
        f"the smallest MSE ({n_grid} ratios of max|r|, then {2 * n_refine} finer ones around "
        "the best)"
    )
    if (n_grid, n_refine) == MSE_SEARCH:
        absmax = clipping_absmax(tensor, block_size, method, dtype, n_bits)
        return absmax, f"{tried}: lesson 13's search."
    absmax = absmax_mse_optimal(tensor, block_size, dtype, n_bits, n_grid, n_refine)
    full = MSE_SEARCH[0] + 2 * MSE_SEARCH[1]
    return absmax, (
        f"{tried}: a coarser search than lesson 13's {full} ranges, to stay quick on this "
        f"large tensor ({n_values:,} values, {n_blocks:,} blocks)."
    )


def _percentile_note(
    tensor: torch.Tensor, block_size: Sequence[int], absmax: torch.Tensor, percentile: float
) -> str:
    """How a percentile range was chosen, and the share of the values it clips, measured.

    ``helper.absmax_percentile`` interpolates between a block's sorted magnitudes ``v[0..n-1]``
    at the position ``(n - 1) * percentile / 100``, so the ``n - 1 - floor(position)`` largest
    lie above it when no two are equal: about ``100 - percentile`` % of a large block, but at
    least one value of every block of two or more below 100%. Groups of 2 lose half.

    >>> r = torch.tensor([[1.0, -4.0], [2.0, 3.0]])
    >>> alpha = clipping_absmax(r, (1, 2), "percentile", percentile=99.9)
    >>> print(_percentile_note(r, (1, 2), alpha, 99.9))  # doctest: +NORMALIZE_WHITESPACE
    alpha = the 99.9th percentile of |r| in every block, interpolated between two magnitudes
    (like torch.quantile). Measured: 2 of the 4 values (50%) lie beyond it and are clipped. In
    a block of 2 magnitudes it lies below the largest one (when no two are equal): 50% of the
    values, where the percentile's own share is 0.1%.
    """
    n_values = tensor.numel()
    per_block = max(math.prod(block_size), 1)
    above = per_block - 1 - math.floor((per_block - 1) * percentile / 100.0)
    beyond = tensor.abs() > per_element(absmax, tuple(tensor.shape), block_size)
    clipped = int(beyond.sum())
    largest = "one" if above == 1 else f"{above:,}"
    lie, are = ("lies", "is") if clipped == 1 else ("lie", "are")
    return (
        f"alpha = the {percentile:g}th percentile of |r| in every block, interpolated between "
        f"two magnitudes (like torch.quantile). Measured: {clipped:,} of the {n_values:,} "
        f"values ({_percent(clipped / max(n_values, 1))}) {lie} beyond it and {are} clipped. In a "
        f"block of {per_block:,} magnitudes it lies below the largest {largest} (when no two "
        f"are equal): {_percent(above / per_block)} of the values, where the percentile's own "
        f"share is {100 - percentile:.2g}%."
    )


def explorer_quantize(
    tensor: torch.Tensor,
    dtype: torch.dtype | str,
    n_bits: int | None,
    mode: str = "asymmetric",
    granularity: str = "per tensor",
    group_size: int = 3,
    range_method: str = "min-max",
) -> QuantizerResult:
    """The explorer's quantizer: helper's one mechanism for every mode and granularity.

    ``helper.quantize_blockwise`` with the block size of ``granularity``, then
    ``helper.dequantize_affine``. Per tensor and asymmetric, that is ``linear_quantization``.
    With a clipped range (symmetric mode only): ``explorer_clip_range``, then
    ``helper.quantize_clipped`` (the grid ``-q_max..q_max``) and ``dequantize_affine``.

    ``dtype`` may also name a grid that is not evenly spaced, ``"e4m3fn"``, ``"e5m2"`` or
    ``"nf4"`` (the values of ``EXPLORER_GRIDS``): then see ``explorer_quantize_to_grid``.
    """
    if isinstance(dtype, str):
        return explorer_quantize_to_grid(
            tensor, dtype, n_bits, mode, granularity, group_size, range_method
        )
    if mode not in EXPLORER_MODES:
        raise ValueError(f"unknown mode {mode!r}: choose {' or '.join(EXPLORER_MODES)}.")
    if range_method not in EXPLORER_RANGES:
        raise ValueError(
            f"unknown range {range_method!r}: choose one of {', '.join(EXPLORER_RANGES)}."
        )
    block_size = explorer_block_size(tensor.shape, granularity, group_size)
    if range_method == "min-max":
        quantized, scale, zero_point = quantize_blockwise(
            tensor, block_size, dtype, n_bits, symmetric=mode == "symmetric"
        )
        dequantized = dequantize_affine(quantized, block_size, scale, zero_point)
        return QuantizerResult(quantized, scale, zero_point, dequantized, block_size)
    if mode != "symmetric":
        raise ValueError(
            f"the range {range_method!r} needs symmetric mode: the clipping ranges of lesson 13 "
            "are symmetric, [-alpha, alpha]. Choose mode 'symmetric', or range 'min-max'."
        )
    get_q_range(dtype, n_bits)  # the dtype and bits message before any search
    absmax, note = explorer_clip_range(tensor, block_size, range_method, dtype, n_bits)
    quantized, scale, zero_point = quantize_clipped(tensor, block_size, absmax, dtype, n_bits)
    dequantized = dequantize_affine(quantized, block_size, scale, zero_point)
    return QuantizerResult(quantized, scale, zero_point, dequantized, block_size, absmax, note)


def explorer_quantize_to_grid(
    tensor: torch.Tensor,
    grid: str,
    n_bits: int | None = None,
    mode: str = "asymmetric",
    granularity: str = "per tensor",
    group_size: int = 3,
    range_method: str = "min-max",
) -> QuantizerResult:
    """The explorer's quantizer on a grid that is not evenly spaced (lesson 14): ``grid`` is
    ``"e4m3fn"``, ``"e5m2"`` or ``"nf4"``.

    ``helper.quantize_to_grid`` with the block size of ``granularity`` (per tensor, per
    channel or per group: one scale ``s = max|block| / max|grid|`` per block), then
    ``helper.dequantize_from_grid``. The codes are indices into the grid; there is no zero
    point (``None``). These are fixed formats: ``n_bits`` is ``None`` or the format's width
    (``GRID_BITS``: 8 for float8, 4 for NF4). The mode does not change the result (absmax
    scaling keeps 0 a level in either), but must be one of the menu's; the range is min-max
    (lesson 13's clipped ranges are built for integer grids). It runs on one thread (see
    ``_one_thread``).

    >>> r = torch.tensor([[0.5, -1.0, 0.3]])
    >>> result = explorer_quantize_to_grid(r, "nf4")
    >>> result.quantized.tolist(), result.scale.tolist(), result.zero_point
    ([[12, 0, 11]], [[1.0]], None)
    """
    if not isinstance(grid, str) or grid not in GRID_BITS:
        names = ", ".join(f"{name!r}" for name in GRID_BITS)
        raise ValueError(f"unknown grid {grid!r}: choose one of {names}.")
    label = next(entry for entry, name in EXPLORER_GRIDS.items() if name == grid)
    width = GRID_BITS[grid]
    whole = isinstance(n_bits, int) and not isinstance(n_bits, bool)
    if n_bits is not None and (not whole or n_bits != width):
        raise ValueError(
            f"n_bits={n_bits!r} does not fit {label}: it is a fixed {width}-bit format, so "
            f"pass n_bits={width} (or None). The bit width applies to integer dtypes only."
        )
    if mode not in EXPLORER_MODES:
        raise ValueError(f"unknown mode {mode!r}: choose {' or '.join(EXPLORER_MODES)}.")
    if range_method not in EXPLORER_RANGES:
        raise ValueError(
            f"unknown range {range_method!r}: choose one of {', '.join(EXPLORER_RANGES)}."
        )
    if range_method != "min-max":
        raise ValueError(
            f"the range {range_method!r} applies to integer dtypes only: {label} scales every "
            "block by its largest magnitude (absmax). Choose range 'min-max', or an integer "
            "dtype."
        )
    block_size = explorer_block_size(tensor.shape, granularity, group_size)
    with _one_thread():
        codes, scale = quantize_to_grid(tensor, grid, block_size)
        dequantized = dequantize_from_grid(codes, scale, grid, block_size)
    return QuantizerResult(codes, scale, None, dequantized, block_size)


def grid_step_mse(
    tensor: torch.Tensor, grid: str, scale: torch.Tensor, block_size: Sequence[int]
) -> float:
    """The estimate of the MSE on a grid that is not evenly spaced: ``s^2/12`` with the local
    step. A value ``r`` of a block with scale ``s`` lies between two neighbouring grid values
    ``g_k <= r/s <= g_(k+1)``; if its rounding error is equally likely anywhere between them,
    its variance is ``(s * (g_(k+1) - g_k))^2 / 12``. The estimate is their mean over the
    values. On an evenly spaced grid this is ``s^2/12`` again. It runs on one thread (see
    ``_one_thread``: measured on 512x512 values, 14 ms on one thread, 31 ms on two).

    >>> r = torch.tensor([[0.1, -0.7, 1.0]])      # NF4 gaps around them: 0.081, 0.304, 0.277
    >>> round(grid_step_mse(r, "nf4", torch.tensor([[1.0]]), (1, 3)), 5)
    0.00488
    """
    values = _grid(grid).double()
    shape = tuple(tensor.shape)
    with _one_thread():
        s = per_element(torch.as_tensor(scale, dtype=torch.float64), shape, tuple(block_size))
        x = tensor.detach().to(torch.float64) / s
        upper = torch.bucketize(x, values).clamp(1, len(values) - 1)  # g_(k+1): first >= r/s
        gap = values[upper] - values[upper - 1]
        return ((s * gap).square().mean() / 12).item()


def _grid(grid: str) -> torch.Tensor:
    """``helper.grid_values(grid)``, built once per grid (float8's from its 256 codes)."""
    if grid not in _GRIDS:
        _GRIDS[grid] = grid_values(grid)
    return _GRIDS[grid]


_GRIDS: dict[str, torch.Tensor] = {}


def _as_result(result: tuple, tensor: torch.Tensor) -> QuantizerResult:
    """A quantizer's answer as a ``QuantizerResult``. An older 4-tuple ``(q, scale, z, deq)``
    is accepted if its scale is a number or broadcasts against the tensor (per channel)."""
    if len(result) in (5, 6, 7):
        return QuantizerResult(*result)
    if len(result) != 4:
        raise TypeError(
            "a quantizer returns (quantized, scale, zero_point, dequantized, block_size), "
            f"optionally with (clip_range, range_note), got {len(result)} values."
        )
    quantized, scale, zero_point, dequantized = result
    shape = tuple(tensor.shape)
    if not isinstance(scale, torch.Tensor) or scale.numel() == 1:
        return QuantizerResult(quantized, scale, zero_point, dequantized, shape)
    if scale.dim() != len(shape) or any(
        s not in (1, n) for s, n in zip(scale.shape, shape, strict=True)
    ):
        raise ValueError(
            f"the quantizer's scale has shape {tuple(scale.shape)}: return a QuantizerResult "
            "with its block_size, so the explorer knows which elements share a scale."
        )
    block = tuple(n if s == 1 else 1 for s, n in zip(scale.shape, shape, strict=True))
    n_blocks = tuple(n // b for n, b in zip(shape, block, strict=True))
    if isinstance(zero_point, torch.Tensor) and zero_point.numel() > 1:
        zero_point = zero_point.reshape(n_blocks)
    return QuantizerResult(quantized, scale.reshape(n_blocks), zero_point, dequantized, block)


def format_number(value: float) -> str:
    """How the explorer writes a measured number: six significant digits (``"1.06736"``)."""
    return f"{value:.6g}"


def _format_param(value: float | int | torch.Tensor, what: str, blocks: str = "") -> str:
    """A scale or zero point as text; per-block tensors show their range and count.

    >>> _format_param(torch.tensor([0.5, 0.25, 2.0]), "scale", "one per row")
    '0.25 to 2 (3 scales, one per row)'
    """
    if isinstance(value, torch.Tensor):
        if value.numel() > 1:
            low, high = value.min().item(), value.max().item()
            count = f"{value.numel():,} {what}s" + (f", {blocks}" if blocks else "")
            if low == high:
                return f"{_format_param(low, what)} (all {count})"
            return f"{_format_param(low, what)} to {_format_param(high, what)} ({count})"
        value = value.item()
    if isinstance(value, int) or (isinstance(value, float) and what == "zero point"):
        return str(int(value))
    return format_number(value)


def packed_bytes(shape: Sequence[int], n_bits: int, storage_bits: int) -> int | None:
    """The bytes of ``n_bits``-bit values of ``shape`` packed as lesson 12 packs a weight
    (``helper.pack_weights`` on every row, padded to whole bytes: ``helper.packed_weight_bytes``
    without the scales): ``rows * ceil(columns / (8 // n_bits))``. At the storage dtype's own
    width (``storage_bits``) there is nothing to pack: the stored bytes. ``None`` when the packer
    refuses the width: it takes ``helper.PACK_BITS`` (1, 2, 4 or 8 bits) only.

    >>> packed_bytes((3, 3), 4, 8)       # 2 values per byte, every row on its own: 3 rows x 2 B
    6
    >>> packed_bytes((3, 3), 3, 8) is None, packed_bytes((4, 4), 16, 16)
    (True, 32)
    """
    values = math.prod(shape)
    if n_bits == storage_bits:
        return values * storage_bits // 8
    if n_bits not in PACK_BITS:
        return None
    columns = shape[-1] if len(shape) else 1
    rows = values // columns if columns else 0
    return rows * -(-columns // (8 // n_bits))


def unreachable_level(q_min: int, q_max: int, mode: str | None) -> int | None:
    """The level the explorer's quantizer can never produce: in symmetric mode the grid is
    symmetric around its zero point (``-q_max..q_max`` for a signed dtype, as in lessons 04 and
    13), so the storage range's lowest code ``q_min`` stays unused; ``None`` in asymmetric mode.

    >>> unreachable_level(-8, 7, "symmetric"), unreachable_level(0, 15, "symmetric")
    (-8, 0)
    >>> unreachable_level(-8, 7, "asymmetric") is None
    True
    """
    return q_min if mode == "symmetric" else None


def _ordinal(n: int) -> str:
    """``n`` as an ordinal number: ``"16th"``, ``"32nd"``, ``"65,536th"``.

    >>> [_ordinal(n) for n in (4, 16, 32, 256, 65536, 11, 12, 21)]
    ['4th', '16th', '32nd', '256th', '65,536th', '11th', '12th', '21st']
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


# -- does s^2/12 apply? -------------------------------------------------------------------------


def _busiest_share(
    quantized: torch.Tensor, scale: torch.Tensor, block_size: Sequence[int], q_min: int
) -> float:
    """The share of values that land on the busiest level of their block's grid, each block
    weighted by its s^2 (its weight in the estimate). Per tensor: the busiest level's share."""
    shape = tuple(quantized.shape)
    q = quantized.reshape(-1).to(torch.int64) - q_min
    if scale.numel() == 1 or not shape:
        return torch.bincount(q).max().item() / q.numel()
    n = scale.numel()
    block_id = per_element(torch.arange(n).reshape(scale.shape), shape, block_size).reshape(-1)
    levels = int(q.max()) + 1
    keys, counts = torch.unique(block_id * levels + q, return_counts=True)
    busiest = torch.zeros(n, dtype=counts.dtype).scatter_reduce(
        0, keys // levels, counts, "amax", include_self=True
    )
    weight = scale.reshape(-1).to(torch.float64).square()
    per_block = q.numel() // n
    return (weight * busiest).sum().item() / (weight.sum().item() * per_block)


def estimate_check(
    mse: float,
    theory_mse: float,
    n_values: int,
    busiest_share: Callable[[], float] | float,
    values_per_block: int,
    measured: str = "the measured MSE",
    estimate: str = "s\u00b2/12",
) -> tuple[str, str]:
    """Does the estimate ``s^2/12`` apply? Returns ``(status, explanation)``.

    The estimate assumes each value's rounding error is equally likely anywhere between
    ``-s/2`` and ``s/2`` (its variance is then ``s^2/12``), averaged over many values. So:

    - ``"few values"`` below ``FEW_VALUES`` values: an average of ``n`` such errors scatters
      by about ``0.89 / sqrt(n)`` of the estimate (30% for 9 values; for ``e`` uniform on
      ``[-s/2, s/2]`` the standard deviation of ``e^2`` is 0.89 times its mean), so the
      measured MSE may be well off either way; whatever it shows, it is a caution.
    - ``"does not apply"`` when measured and estimated are more than ``ESTIMATE_FACTOR``
      apart. The explanation names the likely cause: blocks of a few values (their extremes
      sit on or near levels), or values crowding onto one level (``busiest_share``, a number
      or a function computing it, at least one half): their errors are the values' own spread
      around that level, not an even spread over a step.
    - ``"applies"`` otherwise.

    ``measured`` names ``mse`` in the explanation (with a clipped range, the explorer passes
    the rounding error of the values inside the range, and their share of ``s^2/12``), and
    ``estimate`` names ``theory_mse`` (on a float8 or NF4 grid the explorer passes
    ``"step\u00b2/12"``, the local step's version: see ``grid_step_mse``).

    >>> estimate_check(0.98, 4.01, 4096, 0.97, 4096)[0]
    'does not apply'
    >>> estimate_check(0.0166, 0.0169, 4096, 0.19, 4096)[0]
    'applies'
    """
    if not theory_mse > 0:  # no rounding step to compare with (not reachable from a scale >= eps)
        return "does not apply", f"{estimate} is 0 here, so there is no estimate to compare with."
    ratio = mse / theory_mse
    times = f"{measured} is {ratio:.2g} times {estimate}"
    if n_values < FEW_VALUES:
        spread = 0.89 / math.sqrt(n_values)
        return "few values", (
            f"Only {n_values} values: {estimate} is an average over many rounding errors; with "
            f"{n_values}, expect {measured} within about \u00b1{spread:.0%} of it, "
            f"sometimes further (here {ratio:.2g} times {estimate})."
        )
    if 1 / ESTIMATE_FACTOR <= ratio <= ESTIMATE_FACTOR:
        return "applies", f"{estimate} applies: {times}."
    if values_per_block <= 8:
        cause = (
            f"each block holds only {values_per_block} value{'s' * (values_per_block > 1)}, "
            "and a block's largest value "
            "(and in asymmetric mode its smallest) sits on or near an end level of its grid, "
            "so fewer errors spread over a whole step"
        )
    else:
        share = busiest_share() if callable(busiest_share) else busiest_share
        if share >= 0.5:
            weighted = "" if values_per_block == n_values else ", weighted by s\u00b2"
            percent = "over 99%" if 0.99 < share < 1 else f"{share:.0%}"
            cause = (
                f"{percent} of the values land on the busiest level of their grid"
                f"{weighted}: their errors are the values' own small spread around that level "
                "(the MSE is about their variance), not an even spread over a step of s"
            )
        else:
            cause = "the rounding errors are not spread evenly over a step"
    return "does not apply", f"{estimate} does not apply here: {times}, because {cause}."


def _percent(share: float) -> str:
    """A share as a percentage: two significant digits below 10%, whole percents above.

    >>> _percent(0.01292), _percent(0.00024), _percent(0.5), _percent(1.0)
    ('1.3%', '0.024%', '50%', '100%')
    """
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.2g}%"


def _clipping_check(
    tensor: torch.Tensor,
    dequantized: torch.Tensor,
    alpha: torch.Tensor,
    scale: torch.Tensor,
    block_size: Sequence[int],
    busiest_share: Callable[[], float],
    values_per_block: int,
) -> tuple[int, float, str, str]:
    """What a clipped range ``[-alpha, alpha]`` (one per block) does to the error:
    ``(clipped, clip_mse, status, explanation)``.

    A value beyond its block's ``alpha`` is clipped: its error is its distance to the end
    level, not a rounding error, so ``s^2/12`` says nothing about it. ``clip_mse`` is those
    errors' share of the MSE (their squares summed, over all the values), and
    ``estimate_check`` judges ``s^2/12`` on the values inside the range alone.
    """
    shape = tuple(tensor.shape)
    r = tensor.detach().to(torch.float64)
    n_values = r.numel()
    beyond = r.abs() > per_element(alpha, shape, block_size)
    squared = (dequantized.detach().to(torch.float64) - r).square()
    clipped = int(beyond.sum())
    clip_mse = squared[beyond].sum().item() / n_values
    inside = ~beyond
    n_inside = n_values - clipped
    if n_inside == 0:
        return (
            clipped,
            clip_mse,
            "does not apply",
            (
                "Every value lies beyond \u00b1\u03b1 and is clipped: the whole error is clipping "
                "error, and s\u00b2/12, an estimate of rounding alone, does not apply."
            ),
        )
    rounding_mse = squared[inside].sum().item() / n_values
    theory = per_element(scale, shape, block_size).square()[inside].sum().item() / 12 / n_values
    if clipped == 0:
        status, note = estimate_check(
            rounding_mse, theory, n_values, busiest_share, values_per_block
        )
        return 0, 0.0, status, f"No value lies beyond \u00b1\u03b1: nothing is clipped. {note}"
    status, note = estimate_check(
        rounding_mse,
        theory,
        n_inside,
        busiest_share,
        values_per_block,
        measured=f"the rounding MSE of the other {n_inside:,} values",
    )
    lie, are, their = ("lies", "is", "its") if clipped == 1 else ("lie", "are", "their")
    head = (
        f"{clipped:,} of the {n_values:,} values ({_percent(clipped / n_values)}) {lie} beyond "
        f"\u00b1\u03b1 and {are} clipped to the end levels: {their} error adds "
        f"{format_number(clip_mse)} to the MSE, and s\u00b2/12, an estimate of rounding alone, "
        "leaves it out."
    )
    return clipped, clip_mse, status, f"{head} {note}"


def _blocks_phrase(tensor_shape: tuple[int, ...], block_size: tuple[int, ...]) -> str:
    """Which elements share a scale, in words: "one per row", "one per group of 3", ...

    >>> [_blocks_phrase((4, 6), block) for block in [(1, 6), (4, 1), (1, 3)]]
    ['one per row', 'one per column', 'one per group of 3']
    """
    if len(tensor_shape) == 2:
        rows, cols = tensor_shape
        if block_size == (1, cols):
            return "one per row"
        if block_size == (rows, 1):
            return "one per column"
        if block_size[0] == 1:
            return f"one per group of {block_size[1]}"
    if len(tensor_shape) == 1 and block_size == (1,):
        return "one per element"
    return "one per block of " + " x ".join(map(str, block_size))
