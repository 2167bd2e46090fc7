"""Bonus: the same formulas, faster, for large tensors.

``helper.quantize_one_liner`` and ``helper.dequantize_one_liner`` compute the two formulas in one
readable line each::

    q  = clamp(round(r / s) + z, q_min, q_max)
    r' = s * (q - z)

That line allocates a full-size temporary per operation (``r / s``, ``round``, ``+ z``,
``clamp``) and makes five passes over memory, each a parallel region whose threads wait for
each other. For a tensor of more than ``PARALLEL_ELEMENTS`` elements helper hands the work to
this module instead, which computes exactly the same numbers
(tests/helper check it bit for bit) in place, in cache-sized chunks of rows, the chunks shared
between worker threads that each run PyTorch on one thread (see "Threads that wait for each
other" below). The differences: no temporaries; a 1-element scale or zero point becomes a
Python number; a zero point of 0 (symmetric mode) is not added at all; a per-block scale is
sliced along the rows with the data. On a 4096x4096 float32 tensor the one-liner was about 4x
slower (benchmarks/bench_quantize.py).

``int8_linear`` is the same idea for ``helper.w8_a16_forward``: a large int8 weight is
converted to float a block of rows at a time into one reused buffer. ``packed_linear`` does it
for a packed weight (``helper.PackedLinearLayer``), one bit position of the bytes at a time.

Import direction: this module imports only torch; ``helper`` imports it, never the reverse.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "CHUNK_ELEMENTS",
    "PARALLEL_ELEMENTS",
    "quantize",
    "dequantize",
    "int8_linear",
    "packed_linear",
    "map_in_workers",
]

#: How many elements a chunk holds: 4 MiB of float32, small enough to stay in a CPU's larger
#: caches.
CHUNK_ELEMENTS = 1 << 20

#: helper hands a tensor to this module when it has more elements than this: PyTorch runs an
#: operation on fewer elements on one thread anyway (its grain size), so below it the one-line
#: formula has no threads that could wait for each other.
PARALLEL_ELEMENTS = 1 << 15


def _row_chunks(start: int, stop: int, per_row: int) -> Iterator[slice]:
    """Slices of rows ``start..stop``, each covering roughly ``CHUNK_ELEMENTS`` elements."""
    step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    for first in range(start, stop, step):
        yield slice(first, min(first + step, stop))


# Threads that wait for each other ---------------------------------------------------------------
# Every PyTorch operation on a large tensor is a parallel region: its threads split the work and
# wait for each other at the end. A chunked loop makes several such regions per chunk, and when
# another program keeps a core busy (a second notebook, a shared Binder CPU) each wait can cost a
# time slice: a 4096x4096 round trip took 0.5 to 2 s that way against 0.1 s for PyTorch's own
# kernels (benchmarks/bench_load.py). So the chunks are split between worker threads instead,
# each running PyTorch on one thread: the workers never wait for each other until the end, and a
# worker that is paused delays only its own rows. PyTorch releases Python's lock while it
# computes, so the workers really run in parallel.

_POOL: ThreadPoolExecutor | None = None


def _single_threaded() -> None:
    """A worker's set-up: PyTorch uses one thread there (a per-thread setting)."""
    torch.set_num_threads(1)


def _pool() -> ThreadPoolExecutor | None:
    """The worker threads, made on first use; ``None`` where PyTorch's thread count turns out
    to be one setting for the whole process (then setting it in a worker would change it for
    the caller too, and the chunks run in the caller's thread instead)."""
    global _POOL
    if _POOL is None:
        threads = torch.get_num_threads()
        _POOL = ThreadPoolExecutor(max(os.cpu_count() or 1, 2), initializer=_single_threaded)
        _POOL.submit(lambda: None).result()
        if torch.get_num_threads() != threads:  # a process-wide setting: undo it, do without
            torch.set_num_threads(threads)
            _POOL.shutdown()
            _POOL = False
    return _POOL or None


def _over_rows(n_rows: int, per_row: int, device: torch.device, work: Callable, scratch) -> None:
    """Run ``work(rows, buffer)`` for chunks of rows covering ``0..n_rows``: split between as
    many single-threaded workers as PyTorch has threads (CPU tensors), else in this thread.
    ``scratch(n)`` makes a work buffer of ``n`` elements, one per worker, reused chunk by chunk."""
    largest = max(1, CHUNK_ELEMENTS // max(per_row, 1)) * per_row  # elements in one chunk

    def rows_from(a: int, b: int) -> None:
        buffer = scratch(min(largest, (b - a) * per_row))
        for rows in _row_chunks(a, b, per_row):
            work(rows, buffer)

    parts = min(torch.get_num_threads(), n_rows, max(1, n_rows * per_row // PARALLEL_ELEMENTS))
    pool = _pool() if parts > 1 and device.type == "cpu" else None
    if pool is None:
        rows_from(0, n_rows)
        return
    bounds = [n_rows * i // parts for i in range(parts + 1)]
    jobs = [pool.submit(rows_from, a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    for job in jobs:
        job.result()  # re-raises a worker's error here


def map_in_workers(function: Callable, items: Sequence, parallel: bool = True) -> list:
    """``[function(item) for item in items]``, the items shared between the single-threaded
    workers when ``parallel`` and PyTorch has more than one thread; the results in order.

    For many independent computations on a medium-sized tensor, such as the candidates of a
    search: each is too small to split well between threads, and each of its operations would
    be a parallel region of its own (see above)."""
    parts = min(torch.get_num_threads(), len(items))
    pool = _pool() if parallel and parts > 1 else None
    if pool is None:
        return [function(item) for item in items]
    bounds = [len(items) * i // parts for i in range(parts + 1)]
    jobs = [
        pool.submit(lambda a, b: [function(item) for item in items[a:b]], a, b)
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    return [result for job in jobs for result in job.result()]


def _as_number_if_single(param: Any, precision: torch.dtype) -> Any:
    """A 1-element tensor becomes a Python number (in ``precision`` first, for scales);
    operations with a number are cheaper than broadcasting a tensor."""
    if isinstance(param, torch.Tensor):
        if param.numel() == 1:
            return param.to(precision).item()
        return param.to(precision)
    return param


def _chunk(param: float | int | torch.Tensor, shape: Sequence[int], rows: slice):
    """The part of a (broadcasting) scale or zero point that covers ``rows``."""
    if not isinstance(param, torch.Tensor) or param.dim() < len(shape) or param.shape[0] == 1:
        return param
    return param[rows]


def _is_nonzero(zero_point: float | int | torch.Tensor) -> bool:
    """False when the zero point is 0 everywhere (symmetric mode): adding or subtracting it
    would be one more pass over each chunk that changes nothing."""
    if isinstance(zero_point, torch.Tensor):
        return bool(zero_point.any())
    return zero_point != 0


def quantize(
    r: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    q_min: int,
    q_max: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``clamp(round(r / s) + z, q_min, q_max).to(dtype)`` in place and in chunks, for checked
    arguments (a float tensor of at least one dimension; ``scale`` and ``zero_point`` numbers
    or tensors that broadcast against it)."""
    r = r.detach()  # the result is integer: no gradient, and out= refuses tensors needing one
    scale = _as_number_if_single(scale, r.dtype)  # divide in the tensor's precision
    zero_point = _as_number_if_single(zero_point, r.dtype)  # whole numbers: exact in float
    shift = _is_nonzero(zero_point)
    out = torch.empty(r.shape, dtype=dtype, device=r.device)
    per_row = math.prod(r.shape[1:])

    def work(rows: slice, buffer: torch.Tensor) -> None:
        r_part = r[rows]
        buf = buffer[: r_part.numel()].view(r_part.shape)
        torch.div(r_part, _chunk(scale, r.shape, rows), out=buf)
        buf.round_()  # half to even, like torch.round
        if shift:
            buf.add_(_chunk(zero_point, r.shape, rows))
        buf.clamp_(q_min, q_max)
        out[rows].copy_(buf)

    _over_rows(r.shape[0], per_row, r.device, work, lambda n: r.new_empty(n))
    return out


def dequantize(
    q: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``s * (q - z)`` computed in float32, in place and in chunks, then cast to
    ``output_dtype``; for checked arguments (an integer tensor of at least one dimension)."""
    scale = _as_number_if_single(scale, torch.float32)
    zero_point = _as_number_if_single(zero_point, torch.float32)
    shift = _is_nonzero(zero_point)
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device)

    def work(rows: slice, _: object) -> None:
        part = out[rows]
        part.copy_(q[rows])  # to float32 first: int8 q - z could wrap around
        if shift:
            part.sub_(_chunk(zero_point, q.shape, rows))
        part.mul_(_chunk(scale, q.shape, rows))

    _over_rows(q.shape[0], math.prod(q.shape[1:]), q.device, work, lambda n: None)
    # q - z is exact in float32 (|q - z| < 2**17), not always in float16 or bfloat16: cast last
    return out if output_dtype == torch.float32 else out.to(output_dtype)


def nearest_codes(
    x: torch.Tensor,
    values: torch.Tensor,
    middles: torch.Tensor,
    zero: int,
    float8_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``helper.quantize_to_grid``'s codes for a large float tensor ``x`` already divided by
    its scales: the index in ``values`` of the nearest grid value (``middles``, float64, lie
    halfway between them), a tie going to the index an even number of steps from ``zero``;
    uint8. The same numbers, chunk by chunk between the workers: with int32 indices and a
    gather (``index_select``) where helper indexes, or, for a float8 grid (``float8_dtype``),
    with PyTorch's cast and a table from each byte to its index, since the cast rounds to the
    nearest value with ties to the even encoding (tests/helper/test_14_formats.py)."""
    flat = x.detach().reshape(x.shape[0], -1)
    out = torch.empty(flat.shape, dtype=torch.uint8, device=x.device)
    padded = torch.cat([middles, middles[-1:]])  # index len(middles): beyond the last middle
    if float8_dtype is not None:  # byte -> index: -0 and +0 both find 0; NaN codes never occur
        decoded = torch.arange(256, dtype=torch.uint8).view(float8_dtype).float()
        index = torch.searchsorted(values, decoded.nan_to_num()).clamp(max=len(values) - 1)
        table = index.to(torch.uint8).to(x.device)

    def work(rows: slice, _: object) -> None:
        if float8_dtype is not None:
            bytes_ = flat[rows].to(float8_dtype).view(torch.uint8)
            out[rows] = table[bytes_.long()]
            return
        part = flat[rows].double()
        codes = torch.bucketize(part, middles, out_int32=True)
        on_middle = part == padded.index_select(0, codes.reshape(-1)).view(codes.shape)
        codes += on_middle & ((codes - zero) & 1 == 1)  # ties: even steps from zero
        out[rows] = codes

    _over_rows(flat.shape[0], flat.shape[1], x.device, work, lambda n: None)
    return out.reshape(x.shape)


def int8_linear(x: torch.Tensor, q: torch.Tensor, compute: torch.dtype) -> torch.Tensor:
    """``F.linear(x, q.to(compute))`` for an int8 weight, converted a block of rows at a time
    into one reused buffer of about ``CHUNK_ELEMENTS`` elements.

    Converting a whole 4096x4096 weight allocates a fresh 64 MB float32 copy on every call,
    and that cost 10x the time of ``nn.Linear`` for one token (benchmarks/bench_w8a16.py);
    row blocks that stay in the cache brought one token to ``nn.Linear``'s time on one thread.
    """
    out_features, in_features = q.shape
    step = max(1, CHUNK_ELEMENTS // max(in_features, 1))
    if step >= out_features:
        return F.linear(x, q.to(compute))
    buffer = torch.empty((step, in_features), dtype=compute, device=q.device)
    parts = []
    for start in range(0, out_features, step):
        rows = q[start : start + step]
        weight = buffer[: rows.shape[0]]
        weight.copy_(rows)
        parts.append(F.linear(x, weight))
    return torch.cat(parts, dim=-1)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, n_bits: int) -> torch.Tensor:
    """``x @ W.T`` for a weight stored packed (``helper.PackedLinearLayer``), without building
    the unpacked weight. ``x`` is float (the compute dtype), its last dimension
    ``in_features``; ``packed`` is uint8 ``(out_features, m)``, every byte holding ``k = 8 //
    n_bits`` levels in offset binary, ``u = q + 2**(n_bits - 1)``, the first in the lowest bits.

    Position ``p`` of every byte holds the levels of the input features ``p, p + k, p + 2k,
    ...``. So the product splits into one product per position, each with that position's
    bits as a float "plane" of shape ``(out_features, m)`` and every k-th input feature, and the
    offset comes out of the sum once::

        y[..., o] = sum_p  x[..., p::k] @ plane_p[o]   -   2**(n_bits - 1) * sum_i x[..., i]
        plane_p   = (packed >> p * n_bits) & (2**n_bits - 1)

    A plane is filled a block of rows at a time into one reused float buffer of about
    ``CHUNK_ELEMENTS`` elements, as ``int8_linear`` does. Unpacking the whole weight first (its
    int8 levels, then the offset removed) made one 2048x2048 4-bit layer 9x slower than the
    int8 layer for one token (benchmarks/bench_packing.py). The sums are added in another
    order than in ``x @ W.T``: the two differ by float rounding only. Zero padding at the end
    of a row meets zero padding of ``x``, so it adds nothing.
    """
    out_features, m = packed.shape
    k, mask, offset = 8 // n_bits, 2**n_bits - 1, 2 ** (n_bits - 1)
    in_features = x.shape[-1]
    if m * k != in_features:  # the rows were padded to whole bytes: pad x with zeros too
        x = F.pad(x, (0, m * k - in_features))
    positions = [x[..., p::k].contiguous() for p in range(k)]  # every k-th input feature
    step = max(1, CHUNK_ELEMENTS // max(m, 1))
    plane = torch.empty((min(step, out_features), m), dtype=x.dtype, device=x.device)
    bits = torch.empty((min(step, out_features), m), dtype=torch.uint8, device=x.device)
    parts = []
    for start in range(0, out_features, step):
        block = packed[start : start + step]
        rows = block.shape[0]
        part = None
        for p, x_p in enumerate(positions):
            torch.bitwise_right_shift(block, p * n_bits, out=bits[:rows])
            plane[:rows].copy_(bits[:rows].bitwise_and_(mask))
            product = F.linear(x_p, plane[:rows])
            part = product if part is None else part.add_(product)
        parts.append(part)
    y = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    return y.sub_(offset * x.sum(dim=-1, keepdim=True))
