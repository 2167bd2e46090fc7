"""Bonus: the same formulas, faster, for large tensors.

``helper.quantize_one_liner`` and ``helper.dequantize_one_liner`` compute the two formulas in one
readable line each::

    q  = clamp(round(r / s) + z, q_min, q_max)
    r' = s * (q - z)

That line allocates a full-size temporary per operation (``r / s``, ``round``, ``+ z``,
``clamp``) and makes five passes over memory. For a tensor of more than ``CHUNK_ELEMENTS``
elements helper hands the work to this module instead, which computes exactly the same numbers
(tests/helper check it bit for bit) in place, in cache-sized chunks of one work buffer. The
differences: no temporaries; a 1-element scale or zero point becomes a Python number; a zero
point of 0 (symmetric mode) is not added at all; a per-block scale is sliced along the rows with
the data. On a 4096x4096 float32 tensor the one-liner was about 4x slower
(benchmarks/bench_quantize.py).

``int8_linear`` is the same idea for ``helper.w8_a16_forward``: a large int8 weight is
converted to float a block of rows at a time into one reused buffer.

Import direction: this module imports only torch; ``helper`` imports it, never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["CHUNK_ELEMENTS", "quantize", "dequantize", "int8_linear"]

#: How many elements the quantize and dequantize loops handle at a time: 4 MiB of float32,
#: small enough to stay in a CPU's larger caches, large enough that each operation still
#: splits over the CPU's threads and that a 4096x4096 tensor takes only 16 chunks. Every
#: operation is a parallel region whose threads wait for each other, and on a machine busy
#: with other programs each wait can cost a time slice: with 2**18 (64 chunks) a round trip
#: measured 35 ms on an idle 2-core machine but up to 4 s on a busy one; 2**20 measured 33 ms
#: idle and stayed within a few times that when busy. helper uses this module only for
#: tensors of more than one chunk.
CHUNK_ELEMENTS = 1 << 20


def _row_chunks(shape: Sequence[int]) -> Iterator[slice]:
    """Slices along the first dimension, each covering roughly ``CHUNK_ELEMENTS`` elements."""
    per_row = math.prod(shape[1:])
    step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    for start in range(0, shape[0], step):
        yield slice(start, start + step)


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
    largest_chunk = max(CHUNK_ELEMENTS, math.prod(r.shape[1:]))  # see _row_chunks
    work = torch.empty(min(r.numel(), largest_chunk), dtype=r.dtype, device=r.device)
    for rows in _row_chunks(r.shape):
        r_part = r[rows]
        buf = work[: r_part.numel()].view(r_part.shape)
        torch.div(r_part, _chunk(scale, r.shape, rows), out=buf)
        buf.round_()  # half to even, like torch.round
        if shift:
            buf.add_(_chunk(zero_point, r.shape, rows))
        buf.clamp_(q_min, q_max)
        out[rows].copy_(buf)
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
    for rows in _row_chunks(q.shape):
        part = out[rows]
        part.copy_(q[rows])  # to float32 first: int8 q - z could wrap around
        if shift:
            part.sub_(_chunk(zero_point, q.shape, rows))
        part.mul_(_chunk(scale, q.shape, rows))
    # q - z is exact in float32 (|q - z| < 2**17), not always in float16 or bfloat16: cast last
    return out if output_dtype == torch.float32 else out.to(output_dtype)


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
