"""Example tensors for the lessons and the explorer, the same on every computer.

``torch.randn`` in float32 takes different code paths on different CPUs (AVX2, AVX-512, ARM,
or PyTorch's scalar fallback), and their results differ in the last bits: a seeded
``torch.randn(4, 4)`` is not the same tensor everywhere, and neither is anything computed from
it to full precision. The functions here draw normal values in float64 (one code path on every
CPU) and round them to float32, so a seed gives the same float32 tensor on every machine and
the lessons' stored outputs match yours.
"""

from __future__ import annotations

import numbers

import torch

__all__ = [
    "TEST_TENSOR_VALUES",
    "test_tensor",
    "seeded_randn",
    "seeded_laplace",
    "random_normal_tensor",
    "outlier_tensor",
    "positive_tensor",
    "OUTLIER_VALUE",
    "varied_rows_weight",
]

#: The course's 3x3 test tensor (float32 when made by ``test_tensor``).
TEST_TENSOR_VALUES = ((191.6, -13.5, 728.6), (92.14, 295.5, -184.0), (0.0, 684.6, 245.5))

#: The value of the single outlier in ``outlier_tensor`` (the other values are about N(0, 1)).
OUTLIER_VALUE = 100.0


def _generator(seed: int) -> torch.Generator:
    """A CPU random generator started from ``seed``: one seed, one tensor, on every run."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r}.")
    return torch.Generator().manual_seed(int(seed))


def _check_size(size: int) -> int:
    """Return ``size`` if it is a whole number >= 1, else raise a ``ValueError``."""
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a whole number >= 1, got {size!r}.")
    return int(size)


def test_tensor() -> torch.Tensor:
    """The course's 3x3 test tensor, float32 (a new tensor on every call).

    >>> test_tensor()[0]
    tensor([191.6000, -13.5000, 728.6000])
    """
    return torch.tensor(TEST_TENSOR_VALUES, dtype=torch.float32)


test_tensor.__test__ = False  # a tensor maker, not a pytest test


def seeded_randn(*shape: int, seed: int = 0) -> torch.Tensor:
    """Standard normal float32 values of ``shape`` from ``seed``, identical on every CPU.

    Drawn in float64 and rounded to float32: the float64 path is the same code everywhere,
    and rounding hides its last-bit differences (they would have to fall within 1e-16 of a
    float32 rounding boundary to show).

    >>> seeded_randn(2, 3, seed=0)
    tensor([[ 1.5410, -0.2934, -2.1788],
            [ 0.5684, -1.0845, -1.3986]])
    """
    shape = tuple(_check_size(n) for n in shape)
    return torch.randn(shape, dtype=torch.float64, generator=_generator(seed)).float()


def seeded_laplace(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    """Laplace-distributed float32 values (mean 0, ``scale`` b, standard deviation b * sqrt(2))
    of ``shape`` from ``seed``, identical on every CPU (drawn in float64, like ``seeded_randn``).

    Real weights often look like this: more values near 0 and heavier tails than a normal.
    """
    shape = tuple(_check_size(n) for n in shape)
    u = torch.rand(shape, dtype=torch.float64, generator=_generator(seed)) - 0.5
    return (-scale * u.sign() * torch.log1p(-2 * u.abs())).float()


def random_normal_tensor(seed: int = 0, size: int = 16) -> torch.Tensor:
    """A ``size`` x ``size`` float32 tensor of standard normal values, N(0, 1), from ``seed``."""
    return seeded_randn(size, size, seed=seed)


def outlier_tensor(seed: int = 0, size: int = 16) -> torch.Tensor:
    """Standard normal values with one outlier: one element (placed by ``seed``) is 100.

    The outlier alone sets the range, so the scale is huge and the ordinary values share
    only a few quantization levels.
    """
    generator = _generator(seed)
    size = _check_size(size)
    tensor = torch.randn((size, size), dtype=torch.float64, generator=generator).float()
    where = int(torch.randint(tensor.numel(), (1,), generator=generator))
    tensor.view(-1)[where] = OUTLIER_VALUE
    return tensor


def positive_tensor(seed: int = 0, size: int = 16) -> torch.Tensor:
    """A ``size`` x ``size`` float32 tensor of uniform values in ``[1, 10)``, from ``seed``."""
    size = _check_size(size)
    return 1.0 + 9.0 * torch.rand((size, size), generator=_generator(seed))


def varied_rows_weight(rows: int = 64, columns: int = 64, seed: int = 0) -> torch.Tensor:
    """A weight-like matrix whose rows have very different ranges, as real layers do.

    Row ``i`` is normal noise times a row scale spread log-uniformly from 0.01 to 1 (a 100x
    spread), so one per-tensor scale fits the largest rows and wastes levels on the small
    ones, while per-channel scales fit each row.
    """
    rows, columns = _check_size(rows), _check_size(columns)
    generator = _generator(seed)
    noise = torch.randn((rows, columns), dtype=torch.float64, generator=generator)
    exponents = torch.rand((rows, 1), dtype=torch.float64, generator=generator)
    return (noise * 10.0 ** (-2.0 * exponents)).float()
