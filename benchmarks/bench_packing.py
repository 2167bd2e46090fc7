"""Benchmark: helper's pack_weights and unpack_weights against plain shift-and-or code and
against a per-element Python loop, side by side in one run.

Run from the repository root::

    python benchmarks/bench_packing.py                    # 4 M values, 1 thread
    python benchmarks/bench_packing.py --threads 2 --values 1048576

For 2-bit and 4-bit values (4 Mi = 4,194,304 of them by default, a 2048 x 2048 weight):

* ``helper``     ``pack_weights`` / ``unpack_weights`` on the 2-D weight, packed along its rows,
                 value checks included (values fit in ``bits``, dtype, shape)
* ``reference``  the plainest vectorised code for a 1-D tensor, no checks: for 2 bits
                 ``v[0::4] | v[1::4] << 2 | v[2::4] << 4 | v[3::4] << 6``, and for unpacking
                 ``(p >> shift) & mask`` written into ``out[i::4]``
* ``loop``       ``pack_weights_loop``: one element per step of a Python loop, the way the
                 course writes it. Timed on ``--loop-values`` values (64 Ki) only and scaled
                 up linearly to the full size (its time per element does not depend on the size).

Then the packed layers: a 2048 x 2048 ``W4A16LinearLayer`` and ``W2A16LinearLayer`` against
``W8A16LinearLayer`` (float32, one thread, the smallest of 3 medians of 25 calls), for one token
and a batch of 64, and the packed layer's forward the plain way (unpack the whole weight, then
``w8_a16_forward``) for comparison. Targets: one token within 2x of W8A16, 64 tokens within 1.5x.

The target for packing: ``helper`` packs within 3x the time of ``reference``. The calls
alternate between the two, so that machine noise hits both alike, and the table shows the best
and the median of each: the best measures the code, the median also the machine (on a busy
machine some calls run about three times slower than others, for both alike). The number of
threads is fixed (``torch.set_num_threads``), 1 by default: on a small, busy machine multi-
threaded element-wise kernels on uint8 swing by 10x or more from run to run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from helper import (  # noqa: E402
    W2A16LinearLayer,
    W4A16LinearLayer,
    W8A16LinearLayer,
    pack_weights,
    pack_weights_loop,
    unpack_weights,
    w8_a16_forward,
)


def reference_pack(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Plain vectorised packing of a 1-D tensor: one strided slice per position, shifted and
    or-ed together. No checks."""
    per_byte = 8 // bits
    packed = values[0::per_byte].clone()
    for position in range(1, per_byte):
        packed |= values[position::per_byte] << (bits * position)
    return packed


def reference_unpack(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Plain vectorised unpacking into a 1-D tensor. No checks."""
    per_byte, mask = 8 // bits, 2**bits - 1
    out = torch.empty(packed.numel() * per_byte, dtype=torch.uint8)
    for position in range(per_byte):
        out[position::per_byte] = (packed >> (bits * position)) & mask
    return out


def interleaved(
    functions: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Each function's (best, median) wall time in milliseconds over ``repeats`` calls, after
    one warm-up call each. The calls alternate (a, b, a, b, ...), so that a busy moment of the
    machine slows both alike."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {
        name: (1000 * min(values), 1000 * statistics.median(values))
        for name, values in times.items()
    }


def loop_seconds(values: torch.Tensor, bits: int, count: int) -> float:
    """Seconds for ``pack_weights_loop`` on the first ``count`` values (the best of two)."""
    part = values.reshape(-1)[:count].contiguous()
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        pack_weights_loop(part, bits)
        best = min(best, time.perf_counter() - start)
    return best


def best_of_medians(function: Callable[[], object], calls: int = 25, rounds: int = 3) -> float:
    """The smallest of ``rounds`` medians of ``calls`` timed calls, in ms (after a warm-up)."""
    for _ in range(3):
        function()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return 1000 * min(medians)


def unpack_first(layer: W4A16LinearLayer, x: torch.Tensor) -> torch.Tensor:
    """The packed layer's forward the plain way: unpack the whole int8 weight, then
    ``w8_a16_forward`` (what ``PackedLinearLayer.forward`` computed before it worked plane by
    plane)."""
    return w8_a16_forward(layer.unpacked_weights(), x, layer.scales, layer.bias)


def layer_table(size: int) -> None:
    """A ``size`` x ``size`` layer at 8, 4 and 2 bits, float32, one thread: one token and a
    batch of 64, each the smallest of 3 medians of 25 calls, against the W8A16 layer."""
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(size, size, generator=generator)
    layers = {}
    for cls in (W8A16LinearLayer, W4A16LinearLayer, W2A16LinearLayer):
        layers[cls.__name__] = cls(size, size)
        layers[cls.__name__].quantize(weight)
    print(f"\nA {size}x{size} layer, float32, 1 thread: ms per call (smallest of 3 medians of 25)")
    print(f"{'tokens':>6}{'W8A16':>9}{'W4A16':>9}{'W2A16':>9}{'W4A16 unpack-first':>20}")
    ratios = {}
    with torch.no_grad():
        for tokens in (1, 64):
            x = torch.randn(tokens, size, generator=generator)
            ms = {
                name: best_of_medians(lambda f=layer, x=x: f(x)) for name, layer in layers.items()
            }
            packed = layers["W4A16LinearLayer"]
            plain = best_of_medians(lambda layer=packed, x=x: unpack_first(layer, x))
            w8 = ms["W8A16LinearLayer"]
            ratios[tokens] = ms["W4A16LinearLayer"] / w8
            print(
                f"{tokens:>6}{w8:>9.2f}{ms['W4A16LinearLayer']:>9.2f}{ms['W2A16LinearLayer']:>9.2f}"
                f"{plain:>20.2f}   W4A16/W8A16 {ratios[tokens]:.2f}x "
                f"(unpack-first {plain / w8:.2f}x), W2A16/W8A16 {ms['W2A16LinearLayer'] / w8:.2f}x"
            )
    met = ratios[1] <= 2.0 and ratios[64] <= 1.5
    print(
        f"targets: one token at most 2x W8A16 ({ratios[1]:.2f}x), 64 tokens at most 1.5x "
        f"({ratios[64]:.2f}x): {'met' if met else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=4 * 1024 * 1024, help="values to pack")
    parser.add_argument("--loop-values", type=int, default=64 * 1024, help="values for the loop")
    parser.add_argument("--repeats", type=int, default=31, help="timed calls per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--layer-size", type=int, default=2048, help="the layers' weight size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    columns = 2048 if args.values % 2048 == 0 else 8
    generator = torch.Generator().manual_seed(0)

    print(
        f"Packing {args.values:,} values ({args.values // columns} x {columns}), torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s), best / median of "
        f"{args.repeats} calls in ms"
    )
    print(f"{'bits':>4}  {'step':<8}{'helper':>15}{'reference':>15}{'helper/reference':>20}")
    for bits in (2, 4):
        values = torch.randint(0, 2**bits, (args.values // columns, columns), generator=generator)
        values = values.to(torch.uint8)
        flat = values.reshape(-1)
        packed = pack_weights(values, bits)
        packed_flat = packed.reshape(-1)
        assert torch.equal(packed.reshape(-1), reference_pack(flat, bits))
        assert torch.equal(unpack_weights(packed, bits), values)
        assert torch.equal(reference_unpack(packed.reshape(-1), bits), flat)
        small = flat[: args.loop_values]
        assert torch.equal(pack_weights_loop(small, bits), pack_weights(small, bits))

        pack = interleaved(
            {
                "helper": lambda v=values, b=bits: pack_weights(v, b),
                "reference": lambda v=flat, b=bits: reference_pack(v, b),
            },
            args.repeats,
        )
        unpack = interleaved(
            {
                "helper": lambda p=packed, b=bits: unpack_weights(p, b),
                "reference": lambda p=packed_flat, b=bits: reference_unpack(p, b),
            },
            args.repeats,
        )
        for step, result in (("pack", pack), ("unpack", unpack)):
            (h_best, h_median), (r_best, r_median) = result["helper"], result["reference"]
            print(
                f"{bits:>4}  {step:<8}{h_best:>7.2f} /{h_median:>6.2f}"
                f"{r_best:>7.2f} /{r_median:>6.2f}"
                f"{h_best / r_best:>11.2f}x /{h_median / r_median:>6.2f}x"
            )
        seconds = loop_seconds(values, bits, args.loop_values)
        scaled_s = seconds * args.values / args.loop_values
        print(
            f"      loop: {seconds:.2f} s for {args.loop_values:,} values "
            f"({1e6 * seconds / args.loop_values:.1f} us per value), scaled to "
            f"{args.values:,}: {scaled_s:.0f} s = {1000 * scaled_s / pack['helper'][0]:,.0f}x "
            "helper's best"
        )
    print(
        "target: helper packs within 3x of the reference. The best time measures the code; the "
        "median also the machine's noise (a busy machine runs some calls several times slower)."
    )
    layer_table(args.layer_size)


if __name__ == "__main__":
    main()
