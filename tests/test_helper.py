"""Unit and property tests for helper.py: ranges, scale and zero point, quantize, dequantize.

The expected numbers come from two independent sources, never from helper.py itself:

* the course's published numbers (CURRICULUM.md, lessons L2-A and L2-B), and
* PyTorch's own quantization: ``torch.quantize_per_tensor``,
  ``torch.fake_quantize_per_tensor_affine`` and ``torch.ao.quantization.MinMaxObserver``.

PyTorch computes ``r * (1 / s)`` in float32 where helper computes ``r / s``, and its
``quantize_per_tensor`` kernel (fbgemm) rounds ``r / s + z`` instead of ``r / s``, so the two may
disagree by one step, but only where ``r / s`` is (within float32 error) exactly halfway between
two integers. The parity tests allow exactly that and nothing else.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.ao.quantization import MinMaxObserver

from helper import (
    SCALE_EPS,
    get_q_range,
    get_q_scale_and_zero_point,
    linear_dequantization,
    linear_q_with_scale_and_zero_point,
    linear_quantization,
    quantization_error,
)
from support import fast

# ------------------------------------------------------------------------------------------
# Shared inputs
# ------------------------------------------------------------------------------------------

#: The course's example tensor (float32).
TEST_TENSOR = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])

INT_DTYPES = (torch.int8, torch.uint8, torch.int16)

#: torch.quantize_per_tensor is deprecated in torch 2.13 (it warns on every call). The parity
#: tests call it on purpose, as the reference, so exactly that warning is filtered there.
QUANTIZE_PER_TENSOR_DEPRECATION = (
    r"ignore:torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized "
    r"tensor creation functions.*deprecated:UserWarning"
)

#: Hypothesis: deterministic, no deadline (CI machines are slow), no example database.
settings.register_profile(
    "helper",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HYPOTHESIS = settings.get_profile("helper")


def seeded(shape: tuple[int, ...], seed: int, magnitude: float = 1.0, offset: float = 0.0):
    """A reproducible float32 tensor ``offset + magnitude * randn(shape)``."""
    generator = torch.Generator().manual_seed(seed)
    return offset + magnitude * torch.randn(shape, generator=generator)


def reference_quantize(t, scale, zero_point, q_min, q_max, dtype):
    """The lesson's readable one-liner, with the scale in the tensor's float precision."""
    r = t if t.dtype in (torch.float32, torch.float64) else t.float()
    s = scale.to(r.dtype) if isinstance(scale, torch.Tensor) else scale
    return torch.clamp(torch.round(r / s) + zero_point, q_min, q_max).to(dtype)


def near_tie(r: torch.Tensor, scale: float) -> torch.Tensor:
    """Where ``r / s`` (computed in float64) lies within float32 error of a .5 boundary."""
    ratio = r.double() / scale
    distance = ((ratio - ratio.floor()) - 0.5).abs()
    return distance <= 1e-3 + 4e-7 * ratio.abs()  # float32 error grows with |r / s|


def assert_differs_only_at_near_ties(r, q_ours, q_torch, scale) -> int:
    """At most one step apart, and only where ``r / s`` is a near-tie; returns the count."""
    diff = (q_ours.to(torch.int64) - q_torch.to(torch.int64)).abs()
    assert int(diff.max()) <= 1, "helper and PyTorch differ by more than one step"
    differ = diff > 0
    assert bool(near_tie(r, scale)[differ].all()), "a disagreement that is not at a near-tie"
    return int(differ.sum())


# ------------------------------------------------------------------------------------------
# 1. The course's published numbers
# ------------------------------------------------------------------------------------------


def test_q_range_int8_is_course_range():
    """L2-B: the int8 range is [-128, 127], as plain Python ints."""
    q_range = get_q_range(torch.int8)
    assert q_range == (-128, 127)
    assert all(type(v) is int for v in q_range)


@pytest.mark.parametrize(
    ("dtype", "n_bits", "expected"),
    [
        (torch.uint8, None, (0, 255)),
        (torch.int16, None, (-32768, 32767)),
        (torch.int8, 4, (-8, 7)),
        (torch.int8, 2, (-2, 1)),
        (torch.uint8, 2, (0, 3)),
        (torch.uint8, 8, (0, 255)),
        (torch.int16, 12, (-2048, 2047)),
    ],
)
def test_q_range_matches_iinfo_and_bit_formula(dtype, n_bits, expected):
    """Full range is torch.iinfo; n_bits gives -2**(n-1)..2**(n-1)-1 or 0..2**n-1."""
    assert get_q_range(dtype, n_bits) == expected
    if n_bits is None:
        assert expected == (torch.iinfo(dtype).min, torch.iinfo(dtype).max)


def test_course_min_max_of_test_tensor():
    """L2-B: r_min is -184.0 and r_max is 728.5999755859375 (float32 728.6)."""
    assert TEST_TENSOR.min().item() == -184.0
    assert TEST_TENSOR.max().item() == 728.5999755859375


def test_course_scale_and_zero_point_exact():
    """L2-B: scale 3.578823433670343 (a float) and zero point -77 (an int), exactly."""
    scale, zero_point = get_q_scale_and_zero_point(TEST_TENSOR)
    assert type(scale) is float and type(zero_point) is int
    assert scale == 3.578823433670343
    assert zero_point == -77
    # The course's unrounded zero point is -76.58645490333825.
    assert -128 - (-184.0 / scale) == pytest.approx(-76.58645490333825, abs=1e-12)


def test_course_l2a_quantize_with_scale_3_5_and_zero_point_minus_70():
    """L2-A: the quantized test tensor with s = 3.5, z = -70 (728.6 saturates at 127)."""
    q = linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -70)
    expected = torch.tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8)
    assert q.dtype == torch.int8
    assert torch.equal(q, expected)


def test_course_l2a_dequantize_and_its_error():
    """L2-A: dequantized values 3.5 * (q + 70) and the course's MSE 170.8753."""
    q = linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -70)
    deq = linear_dequantization(q, 3.5, -70)
    expected = torch.tensor([[192.5, -14.0, 689.5], [91.0, 294.0, -185.5], [0.0, 686.0, 245.0]])
    assert deq.dtype == torch.float32
    assert torch.equal(deq, expected)
    mse = (deq - TEST_TENSOR).square().mean()
    assert mse.item() == pytest.approx(170.8753, abs=1e-4)
    assert quantization_error(TEST_TENSOR, deq).item() == pytest.approx(mse.item(), rel=1e-6)


def test_course_l2b_linear_quantization_round_trip():
    """L2-B: the full quantizer's q values and an MSE of about 1.573."""
    q, scale, zero_point = linear_quantization(TEST_TENSOR)
    expected = torch.tensor([[-23, -81, 127], [-51, 6, -128], [-77, 114, -8]], dtype=torch.int8)
    assert torch.equal(q, expected)
    assert (scale, zero_point) == (3.578823433670343, -77)
    deq = linear_dequantization(q, scale, zero_point)
    mse = (deq - TEST_TENSOR).square().mean()  # the course's metric, computed here
    assert mse.item() == pytest.approx(1.5730, abs=5e-4)
    assert quantization_error(TEST_TENSOR, deq).item() == pytest.approx(mse.item(), rel=1e-6)


def test_course_l2b_errors_are_at_most_half_a_step():
    """L2-B: no value of the test tensor is clipped, so every error is at most s/2."""
    q, scale, zero_point = linear_quantization(TEST_TENSOR)
    deq = linear_dequantization(q, scale, zero_point)
    mse = quantization_error(TEST_TENSOR, deq).item()
    assert 0 < mse <= scale**2 / 4  # each error is at most s/2
    assert (deq - TEST_TENSOR).abs().max().item() <= scale / 2 + 1e-4


# ------------------------------------------------------------------------------------------
# 2. Parity with PyTorch's own quantization
# ------------------------------------------------------------------------------------------

PARITY_TENSORS = {
    "1d": seeded((257,), seed=1),
    "2d": seeded((16, 31), seed=2, magnitude=3.0, offset=0.5),
    "3d": seeded((4, 8, 9), seed=3, magnitude=10.0),
    "large": seeded((64, 64), seed=4, magnitude=1e5),
    "tiny": seeded((300,), seed=5, magnitude=1e-4),
    "positive": seeded((40, 5), seed=6).abs() + 0.25,
    "test_tensor": TEST_TENSOR,
    # exact and near ties: (k + 1/2) * s for a scale that is not a power of two
    "ties": (torch.arange(-120, 120, dtype=torch.float32) + 0.5) * 0.1,
}


def _torch_quantize(x, scale, zero_point, dtype):
    qdtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}[dtype]
    return torch.quantize_per_tensor(x, scale, zero_point, qdtype)


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("name", list(PARITY_TENSORS))
def test_quantize_matches_quantize_per_tensor(name, dtype):
    """helper's q equals quantize_per_tensor(...).int_repr(), except at near-ties."""
    x = PARITY_TENSORS[name]
    scale, zero_point = get_q_scale_and_zero_point(x, dtype)
    if name == "ties":
        scale, zero_point = 0.1, get_q_range(dtype)[0] + 121  # an odd zero point for int8
    ours = linear_q_with_scale_and_zero_point(x, scale, zero_point, dtype)
    theirs = _torch_quantize(x, scale, zero_point, dtype)
    assert ours.dtype == dtype and theirs.int_repr().dtype == dtype
    count = assert_differs_only_at_near_ties(x, ours, theirs.int_repr(), scale)
    if name != "ties":
        assert count <= max(2, x.numel() // 100), "near-ties should be rare in random data"


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("name", list(PARITY_TENSORS))
def test_dequantize_matches_torch_dequantize(name, dtype):
    """helper's s * (q - z) on PyTorch's own int_repr equals PyTorch's .dequantize()."""
    x = PARITY_TENSORS[name]
    scale, zero_point = get_q_scale_and_zero_point(x, dtype)
    theirs = _torch_quantize(x, scale, zero_point, dtype)
    ours = linear_dequantization(theirs.int_repr(), scale, zero_point)
    expected = theirs.dequantize()
    assert ours.dtype == expected.dtype == torch.float32
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=0.0)


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
def test_odd_zero_point_exact_ties_are_the_known_one_step_disagreement():
    """quantize_per_tensor rounds r/s + z: with an odd z an exact tie goes the other way."""
    x = (torch.arange(-20, 20, dtype=torch.float32) + 0.5) * 0.25  # exact ties, s = 1/4
    ours = linear_q_with_scale_and_zero_point(x, 0.25, 3)
    theirs = _torch_quantize(x, 0.25, 3, torch.int8).int_repr()
    assert_differs_only_at_near_ties(x, ours, theirs, 0.25)
    # helper rounds r / s half to even and then adds z, as fake_quantize and the course do.
    assert torch.equal(ours, (torch.round(x / 0.25) + 3).to(torch.int8))
    fake = torch.fake_quantize_per_tensor_affine(x, 0.25, 3, -128, 127)
    assert torch.equal(linear_dequantization(ours, 0.25, 3), fake)


FAKE_QUANT_CASES = [(torch.int8, n) for n in range(2, 8)]
FAKE_QUANT_CASES += [(torch.uint8, n) for n in range(2, 8)]
FAKE_QUANT_CASES += [(torch.int8, None), (torch.uint8, None)]
FAKE_QUANT_CASES += [(torch.int16, None), (torch.int16, 12), (torch.int16, 4)]


@pytest.mark.parametrize(("dtype", "n_bits"), FAKE_QUANT_CASES)
@pytest.mark.parametrize("name", ["2d", "3d", "large", "tiny", "positive", "ties"])
def test_round_trip_matches_fake_quantize(name, dtype, n_bits):
    """dequantize(quantize(x)) equals fake_quantize_per_tensor_affine, except at near-ties."""
    x = PARITY_TENSORS[name]
    q_min, q_max = get_q_range(dtype, n_bits)
    q, scale, zero_point = linear_quantization(x, dtype, n_bits)
    ours = linear_dequantization(q, scale, zero_point)
    theirs = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, q_min, q_max)
    # Compare on the integer grid: (deq / s) + z recovers each side's quantized value.
    steps_ours = torch.round(ours.double() / scale) + zero_point
    steps_theirs = torch.round(theirs.double() / scale) + zero_point
    assert_differs_only_at_near_ties(x, steps_ours, steps_theirs, scale)
    same = steps_ours == steps_theirs
    torch.testing.assert_close(ours[same], theirs[same], rtol=1e-6, atol=0.0)


def _observer(dtype, n_bits):
    q_min, q_max = get_q_range(dtype, n_bits)
    # torch 2.13 observers accept dtype=torch.int16 directly (no qint32 workaround needed).
    observer_dtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}.get(dtype, dtype)
    return MinMaxObserver(
        dtype=observer_dtype,
        qscheme=torch.per_tensor_affine,
        quant_min=q_min,
        quant_max=q_max,
    )


OBSERVER_TENSORS = {
    "test_tensor": TEST_TENSOR,
    "random": seeded((8, 8), seed=11, magnitude=2.0, offset=0.3),
    "large": seeded((50,), seed=12, magnitude=1e4),
    "tiny": seeded((50,), seed=13, magnitude=1e-5),
    "positive": torch.tensor([100.0, 150.0, 200.0]),
    "negative": torch.tensor([-200.0, -150.0, -100.0]),
    "constant": torch.full((3, 3), 5.0),
    "negative_constant": torch.full((4,), -0.75),
    "all_zero": torch.zeros(2, 3),
    "single": torch.tensor([42.0]),
    # r_min / s is exactly -1.5 (int8, uint8): half to even gives -2, not -1
    "zero_point_tie": torch.tensor([-3.0, 507.0]),
    # symmetric: r_min / s is exactly -127.5 in int8/uint8, but -127.4999 in float32
    "symmetric": torch.tensor([-1.0, 0.25, 1.0]),
}


@pytest.mark.parametrize(
    ("dtype", "n_bits"),
    [
        (torch.int8, None),
        (torch.uint8, None),
        (torch.int16, None),
        (torch.int8, 4),
        (torch.uint8, 2),
        (torch.int16, 12),
    ],
)
@pytest.mark.parametrize("name", list(OBSERVER_TENSORS))
def test_scale_and_zero_point_match_min_max_observer(name, dtype, n_bits):
    """Scale equals MinMaxObserver's to float32 precision; so does the zero point, but for ties.

    The observer computes in float32, helper (like the course) in float64. Where ``r_min / s``
    is an exact tie, float32 rounding can break it the other way; there the zero point must
    equal the exact rational answer (half to even) and be one step from the observer's.
    """
    x = OBSERVER_TENSORS[name]
    observer = _observer(dtype, n_bits)
    observer(x)
    torch_scale, torch_zero_point = observer.calculate_qparams()
    scale, zero_point = get_q_scale_and_zero_point(x, dtype, n_bits)
    assert scale == pytest.approx(torch_scale.item(), rel=1e-6)
    q_min, q_max = get_q_range(dtype, n_bits)
    assert q_min <= zero_point <= q_max
    assert zero_point == exact_zero_point(x, q_min, q_max)
    r_min = min(x.min().item(), 0.0)
    if near_tie(torch.tensor([r_min]), scale).item():
        assert abs(zero_point - torch_zero_point.item()) <= 1
    else:
        assert zero_point == torch_zero_point.item()


def exact_zero_point(x: torch.Tensor, q_min: int, q_max: int) -> int:
    """The zero point in exact rational arithmetic (no float rounding), half to even."""
    r_min = Fraction(min(x.min().item(), 0.0))
    r_max = Fraction(max(x.max().item(), 0.0))
    scale = (r_max - r_min) / (q_max - q_min)
    if scale < Fraction(SCALE_EPS):
        scale = Fraction(SCALE_EPS)
    return q_min - round(r_min / scale)  # round() of a Fraction is half to even


def test_symmetric_range_zero_point_is_the_exact_tie_not_float32():
    """[-1, 1] in int8: r_min / s = -127.5 exactly, so z = -128 + 128 = 0 (observer: -1)."""
    x = OBSERVER_TENSORS["symmetric"]
    assert get_q_scale_and_zero_point(x, torch.int8)[1] == 0
    assert get_q_scale_and_zero_point(x, torch.uint8)[1] == 128
    observer = _observer(torch.int8, None)
    observer(x)
    # Measured with torch 2.13: float32 turns the tie into -127.49999, which rounds to -127.
    assert observer.calculate_qparams()[1].item() == -1


def test_all_zero_scale_is_observer_eps():
    """An all-zero tensor gets scale SCALE_EPS, which is PyTorch's observer eps."""
    observer = _observer(torch.int8, None)
    assert SCALE_EPS == observer.eps.item() == torch.finfo(torch.float32).eps
    assert get_q_scale_and_zero_point(torch.zeros(5))[0] == SCALE_EPS


# ------------------------------------------------------------------------------------------
# 3. The chunked path equals the readable formula
# ------------------------------------------------------------------------------------------

#: The chunk size the chunked-path tests run with (patched in by ``small_chunks``): small,
#: so that small tensors already take several chunks and the tests stay quick.
CHUNK = 2**14


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Run with ``CHUNK`` elements per chunk; results must not depend on the chunk size."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", CHUNK)


def _per_row(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-row parameter of shape (rows, 1, ..., 1) for a tensor of ``ndim`` dims."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


CHUNK_SHAPES = {
    "0d": (),
    "1d_short": (100,),
    "1d_long": (2 * CHUNK + 123,),
    "2d_many_chunks": (300, 1000),  # 16 rows per chunk
    "2d_wide_rows": (3, CHUNK + 77),  # one row per chunk
    "3d": (9, 50, 600),  # rows of 30000 elements: one row per chunk
    "3d_single_row": (1, 5, 9),
}


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize("shape_name", list(CHUNK_SHAPES))
def test_chunked_quantize_equals_one_liner_scalar_params(shape_name, dtype, float_dtype):
    """Python-number scale and zero point: chunked quantize == the one-liner, bit for bit."""
    shape = CHUNK_SHAPES[shape_name]
    x = seeded(shape, seed=21, magnitude=50.0).to(float_dtype)
    q_min, q_max = get_q_range(dtype)
    scale, zero_point = 0.37, (q_min + q_max) // 2 + 3
    ours = linear_q_with_scale_and_zero_point(x, scale, zero_point, dtype)
    expected = reference_quantize(x, scale, zero_point, q_min, q_max, dtype)
    assert ours.shape == x.shape and ours.dtype == dtype
    assert torch.equal(ours, expected)
    deq = linear_dequantization(ours, scale, zero_point)
    assert torch.equal(deq, scale * (ours.float() - zero_point))


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize("shape_name", [n for n in CHUNK_SHAPES if n != "0d"])
def test_chunked_quantize_equals_one_liner_per_row_params(shape_name, dtype):
    """Per-row tensor scales (rows, 1, ...) and zero points: chunked == one-liner."""
    shape = CHUNK_SHAPES[shape_name]
    x = seeded(shape, seed=22, magnitude=20.0)
    rows = shape[0]
    q_min, q_max = get_q_range(dtype)
    generator = torch.Generator().manual_seed(23)
    scale = _per_row(0.01 + torch.rand(rows, generator=generator, dtype=torch.float64), len(shape))
    zero_point = _per_row(torch.randint(q_min, q_max + 1, (rows,), generator=generator), len(shape))
    ours = linear_q_with_scale_and_zero_point(x, scale, zero_point, dtype)
    expected = reference_quantize(x, scale, zero_point, q_min, q_max, dtype)
    assert torch.equal(ours, expected)
    deq = linear_dequantization(ours, scale, zero_point)
    assert torch.equal(deq, scale.float() * (ours.float() - zero_point))


def test_chunked_quantize_per_column_and_per_element_params():
    """Scales of shape (cols,) and (rows, cols) broadcast like the one-liner's."""
    x = seeded((200, 500), seed=24, magnitude=3.0)
    generator = torch.Generator().manual_seed(25)
    for scale_shape in [(500,), (1, 500), (200, 500), ()]:
        scale = 0.01 + torch.rand(scale_shape, generator=generator)
        zero_point = torch.randint(-20, 20, scale_shape, generator=generator).float()
        ours = linear_q_with_scale_and_zero_point(x, scale, zero_point)
        expected = reference_quantize(x, scale, zero_point, -128, 127, torch.int8)
        assert torch.equal(ours, expected), scale_shape
        deq = linear_dequantization(ours, scale, zero_point)
        assert torch.equal(deq, scale * (ours.float() - zero_point)), scale_shape


def test_chunked_quantize_handles_non_contiguous_input():
    """A transposed (non-contiguous) view quantizes like its contiguous copy."""
    x = seeded((CHUNK // 100, 300), seed=26).t()
    assert not x.is_contiguous()
    q, s, z = linear_quantization(x)
    assert torch.equal(q, linear_quantization(x.contiguous())[0])
    assert torch.equal(q, reference_quantize(x, s, z, -128, 127, torch.int8))


# ------------------------------------------------------------------------------------------
# 4. Properties (hypothesis)
# ------------------------------------------------------------------------------------------

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def shapes(draw, max_elements: int = 300):
    """Shapes of 0 to 3 dimensions with at most ``max_elements`` elements."""
    ndim = draw(st.integers(0, 3))
    shape = []
    for _ in range(ndim):
        room = max_elements // max(math.prod(shape), 1)
        shape.append(draw(st.integers(1, max(1, min(room, 40)))))
    return tuple(shape)


@st.composite
def real_tensors(draw):
    """Float tensors of mixed kinds: arbitrary, constant, one-signed, with zeros, seeded randn."""
    shape = draw(shapes())
    n = math.prod(shape)
    kind = draw(st.sampled_from(["floats", "constant", "positive", "negative", "zeros", "seed"]))
    if kind == "floats":
        values = draw(st.lists(FINITE, min_size=n, max_size=n))
    elif kind == "constant":
        values = [draw(FINITE)] * n
    elif kind == "positive":
        values = draw(st.lists(st.floats(0.0, 1e6, width=32), min_size=n, max_size=n))
    elif kind == "negative":
        values = draw(st.lists(st.floats(-1e6, -0.0009765625, width=32), min_size=n, max_size=n))
    elif kind == "zeros":
        values = draw(st.lists(st.one_of(st.just(0.0), FINITE), min_size=n, max_size=n))
    else:
        seed = draw(st.integers(0, 2**31 - 1))
        magnitude = draw(st.sampled_from([1e-3, 1.0, 1e3]))
        return seeded(shape, seed, magnitude).to(
            draw(st.sampled_from([torch.float32, torch.float64]))
        )
    float_dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    return torch.tensor(values, dtype=float_dtype).reshape(shape)


@st.composite
def dtypes_and_bits(draw):
    """An integer dtype and n_bits None or 2..8."""
    dtype = draw(st.sampled_from(INT_DTYPES))
    n_bits = draw(st.one_of(st.none(), st.integers(2, 8)))
    return dtype, n_bits


@HYPOTHESIS
@given(real_tensors(), dtypes_and_bits())
def test_property_round_trip_error_at_most_half_a_step(t, dtype_bits):
    """Every |dequantized - original| is at most s/2 (plus float rounding)."""
    dtype, n_bits = dtype_bits
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    deq = linear_dequantization(q, scale, zero_point)
    error = (deq.double() - t.double()).abs()
    tolerance = 1e-6 * (t.double().abs() + scale) + 1e-30
    assert bool((error <= scale / 2 + tolerance).all())


@HYPOTHESIS
@given(real_tensors(), dtypes_and_bits())
def test_property_zero_is_exact(t, dtype_bits):
    """A real 0 quantizes to the zero point and dequantizes to exactly 0.0."""
    dtype, n_bits = dtype_bits
    t = t.clone()
    t.view(-1)[0] = 0.0  # every tensor here contains a zero
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    zeros = t == 0
    assert bool((q[zeros] == zero_point).all())
    deq = linear_dequantization(q, scale, zero_point)
    assert bool((deq[zeros] == 0.0).all())
    assert not bool(deq.isnan().any())


@HYPOTHESIS
@given(real_tensors(), dtypes_and_bits())
def test_property_range_scale_and_zero_point_are_valid(t, dtype_bits):
    """q has the target dtype and lies in [q_min, q_max]; s >= eps is finite; z is in range."""
    dtype, n_bits = dtype_bits
    q_min, q_max = get_q_range(dtype, n_bits)
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    assert q.dtype == dtype and q.shape == t.shape
    assert q_min <= int(q.min()) and int(q.max()) <= q_max
    assert type(scale) is float and math.isfinite(scale) and scale >= SCALE_EPS
    assert type(zero_point) is int and q_min <= zero_point <= q_max
    assert (scale, zero_point) == get_q_scale_and_zero_point(t, dtype, n_bits)


@HYPOTHESIS
@given(real_tensors(), dtypes_and_bits())
def test_property_result_does_not_depend_on_shape(t, dtype_bits):
    """Quantizing t.flatten() gives the same values as t, reshaped."""
    dtype, n_bits = dtype_bits
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    q_flat, scale_flat, zero_point_flat = linear_quantization(t.flatten(), dtype, n_bits)
    assert (scale, zero_point) == (scale_flat, zero_point_flat)
    assert torch.equal(q, q_flat.reshape(t.shape))
    deq = linear_dequantization(q, scale, zero_point)
    assert torch.equal(deq, linear_dequantization(q_flat, scale, zero_point).reshape(t.shape))


@HYPOTHESIS
@given(real_tensors(), dtypes_and_bits())
def test_property_matches_fake_quantize(t, dtype_bits):
    """The round trip equals torch.fake_quantize_per_tensor_affine except at near-ties."""
    dtype, n_bits = dtype_bits
    q_min, q_max = get_q_range(dtype, n_bits)
    t = t.float()
    q, scale, zero_point = linear_quantization(t, dtype, n_bits)
    theirs = torch.fake_quantize_per_tensor_affine(t, scale, zero_point, q_min, q_max)
    steps_theirs = torch.round(theirs.double() / scale) + zero_point
    assert_differs_only_at_near_ties(t, q, steps_theirs, scale)


@HYPOTHESIS
@given(real_tensors(), dtypes_and_bits(), st.integers(0, 2**31 - 1))
def test_property_no_public_function_modifies_its_inputs(t, dtype_bits, seed):
    """Every public function leaves its tensor arguments unchanged."""
    dtype, n_bits = dtype_bits
    q_min, q_max = get_q_range(dtype, n_bits)
    original = t.clone()
    scale, zero_point = get_q_scale_and_zero_point(t, dtype, n_bits)
    q, _, _ = linear_quantization(t, dtype, n_bits)
    rows = t.shape[0] if t.dim() else 1
    generator = torch.Generator().manual_seed(seed)
    scale_t = (scale * (1 + torch.rand(rows, generator=generator))).reshape(
        (rows,) + (1,) * max(t.dim() - 1, 0)
    )
    scale_t = scale_t.reshape(()) if t.dim() == 0 else scale_t
    zero_point_t = torch.full(scale_t.shape, zero_point)
    params = (scale_t.clone(), zero_point_t.clone())
    linear_q_with_scale_and_zero_point(t, scale_t, zero_point_t, dtype, n_bits)
    q_before = q.clone()
    deq = linear_dequantization(q, scale_t, zero_point_t)
    deq_before = deq.clone()
    quantization_error(t, deq)
    assert torch.equal(t, original) and t.dtype == original.dtype
    assert torch.equal(q, q_before)
    assert torch.equal(deq, deq_before)
    assert torch.equal(scale_t, params[0]) and torch.equal(zero_point_t, params[1])
    assert q_min <= zero_point <= q_max


# ------------------------------------------------------------------------------------------
# 5. Bad input: the exception type and a phrase of its message
# ------------------------------------------------------------------------------------------

NAN = torch.tensor([1.0, float("nan"), 3.0])
POS_INF = torch.tensor([1.0, float("inf")])
NEG_INF = torch.tensor([-float("inf"), 1.0])
EMPTY = torch.empty(0)
Q8 = torch.tensor([1, 2, 3], dtype=torch.int8)

BAD_INPUT = {
    "nan_quantization": (lambda: linear_quantization(NAN), ValueError, "contains NaN"),
    "nan_scale_zero_point": (lambda: get_q_scale_and_zero_point(NAN), ValueError, "NaN"),
    "nan_with_scale": (
        lambda: linear_q_with_scale_and_zero_point(NAN, 1.0, 0),
        ValueError,
        "NaN",
    ),
    "nan_error": (lambda: quantization_error(NAN, torch.ones(3)), ValueError, "NaN"),
    "pos_inf": (lambda: linear_quantization(POS_INF), ValueError, "infinite"),
    "neg_inf": (lambda: get_q_scale_and_zero_point(NEG_INF), ValueError, "infinite"),
    "inf_with_scale": (
        lambda: linear_q_with_scale_and_zero_point(NEG_INF, 1.0, 0),
        ValueError,
        "infinite",
    ),
    "empty": (lambda: linear_quantization(EMPTY), ValueError, "empty"),
    "empty_2d": (lambda: get_q_scale_and_zero_point(torch.empty(3, 0)), ValueError, "empty"),
    "empty_dequantize": (
        lambda: linear_dequantization(torch.empty(0, dtype=torch.int8), 1.0, 0),
        ValueError,
        "empty",
    ),
    "float_target": (lambda: linear_quantization(TEST_TENSOR, torch.float16), TypeError, "float"),
    "float_range": (lambda: get_q_range(torch.float32), TypeError, "integer target dtype"),
    "int32_target": (lambda: linear_quantization(TEST_TENSOR, torch.int32), TypeError, "not supp"),
    "qint8_target": (lambda: get_q_range(torch.qint8), TypeError, "not supported"),
    "dtype_string": (lambda: get_q_range("int8"), TypeError, "torch dtype"),
    "n_bits_1": (lambda: get_q_range(torch.int8, 1), ValueError, "does not fit"),
    "n_bits_9": (lambda: linear_quantization(TEST_TENSOR, torch.int8, 9), ValueError, "2 to 8"),
    "n_bits_17": (lambda: get_q_range(torch.int16, 17), ValueError, "2 to 16"),
    "n_bits_float": (lambda: get_q_range(torch.int8, 4.0), TypeError, "whole number"),
    "n_bits_bool": (lambda: get_q_range(torch.int8, True), TypeError, "whole number"),
    "n_bits_str": (lambda: get_q_range(torch.int8, "4"), TypeError, "whole number"),
    "list_input": (lambda: linear_quantization([1.0, 2.0]), TypeError, "must be a torch.Tensor"),
    "list_scale_zp": (lambda: get_q_scale_and_zero_point([1.0]), TypeError, "torch.tensor"),
    "list_dequantize": (lambda: linear_dequantization([1, 2], 1.0, 0), TypeError, "torch.Tensor"),
    "complex_input": (
        lambda: linear_quantization(torch.ones(2, dtype=torch.complex64)),
        TypeError,
        "real numbers",
    ),
    "bool_input": (
        lambda: linear_quantization(torch.ones(2, dtype=torch.bool)),
        TypeError,
        "real numbers",
    ),
    "scale_zero": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 0.0, 0),
        ValueError,
        "positive, finite",
    ),
    "scale_negative": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, -3.5, 0),
        ValueError,
        "positive, finite",
    ),
    "scale_nan": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, float("nan"), 0),
        ValueError,
        "positive, finite",
    ),
    "scale_inf": (
        lambda: linear_dequantization(Q8, float("inf"), 0),
        ValueError,
        "positive, finite",
    ),
    "scale_tensor_zero": (
        lambda: linear_q_with_scale_and_zero_point(
            TEST_TENSOR, torch.tensor([[1.0], [0.0], [1.0]]), 0
        ),
        ValueError,
        "positive, finite",
    ),
    "scale_wrong_shape": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, torch.ones(4, 1), 0),
        ValueError,
        "does not fit",
    ),
    "scale_grows_shape": (
        lambda: linear_dequantization(Q8, torch.ones(2, 3), 0),
        ValueError,
        "does not fit",
    ),
    "scale_string": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, "3.5", 0),
        TypeError,
        "scale must be a number",
    ),
    "scale_underflows_float32": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 1e-50, 0),
        ValueError,
        "too small",
    ),
    "zero_point_fraction": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -70.5),
        ValueError,
        "whole number",
    ),
    "zero_point_nan": (
        lambda: linear_dequantization(Q8, 3.5, float("nan")),
        ValueError,
        "whole number",
    ),
    "zero_point_string": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, "-70"),
        TypeError,
        "zero_point must be a whole number",
    ),
    "zero_point_tensor_fraction": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, torch.tensor(0.5)),
        ValueError,
        "whole number",
    ),
    "zero_point_above_int8": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, 128),
        ValueError,
        r"outside the quantized range \[-128, 127\]",
    ),
    "zero_point_below_uint8": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, -1, torch.uint8),
        ValueError,
        r"outside the quantized range \[0, 255\]",
    ),
    "zero_point_outside_n_bits": (
        lambda: linear_q_with_scale_and_zero_point(TEST_TENSOR, 3.5, 8, torch.int8, 4),
        ValueError,
        r"\[-8, 7\]",
    ),
    "zero_point_tensor_outside": (
        lambda: linear_q_with_scale_and_zero_point(
            TEST_TENSOR, 3.5, torch.tensor([[0], [300], [0]]), torch.int16, 8
        ),
        ValueError,
        "zero point 300 is outside",
    ),
    "dequantize_float": (
        lambda: linear_dequantization(TEST_TENSOR, 3.5, -70),
        TypeError,
        "needs the integer tensor",
    ),
    "dequantize_bool": (
        lambda: linear_dequantization(torch.ones(2, dtype=torch.bool), 1.0, 0),
        TypeError,
        "bool",
    ),
    "error_shapes": (
        lambda: quantization_error(TEST_TENSOR, TEST_TENSOR.flatten()),
        ValueError,
        r"shape \(3, 3\) but dequantized_tensor has shape \(9,\)",
    ),
    "error_list": (lambda: quantization_error([1.0], torch.ones(1)), TypeError, "torch.Tensor"),
    "range_too_wide_float64": (
        lambda: linear_quantization(torch.tensor([-1e308, 1e308], dtype=torch.float64)),
        ValueError,
        "too wide",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_raises_a_clear_error(case):
    """Bad input raises the documented exception type with a message that says what is wrong."""
    call, exception, phrase = BAD_INPUT[case]
    with pytest.raises(exception, match=phrase):
        call()


# ------------------------------------------------------------------------------------------
# 5b. Odd but valid input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
def test_constant_tensor_round_trips_without_division_by_zero(dtype):
    """The course's ZeroDivisionError case: [5, 5, 5] gets a positive scale and round-trips."""
    t = torch.full((3,), 5.0)
    q, scale, zero_point = linear_quantization(t, dtype)
    q_min, q_max = get_q_range(dtype)
    assert scale == pytest.approx(5.0 / (q_max - q_min), rel=1e-12)
    assert zero_point == q_min
    deq = linear_dequantization(q, scale, zero_point)
    assert bool(((deq - t).abs() <= scale / 2).all())


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
@pytest.mark.parametrize("shape", [(), (1,), (4, 4)])
def test_all_zero_tensor_gets_eps_scale_and_exact_zeros(dtype, shape):
    """All zeros: scale is SCALE_EPS, q is the zero point, the round trip is exact zeros."""
    t = torch.zeros(shape)
    q, scale, zero_point = linear_quantization(t, dtype)
    assert scale == SCALE_EPS
    assert bool((q == zero_point).all())
    deq = linear_dequantization(q, scale, zero_point)
    assert not bool(deq.isnan().any())
    assert torch.equal(deq, t)
    assert quantization_error(t, deq).item() == 0.0


@pytest.mark.parametrize(
    "values", [[100.0, 150.0, 200.0], [-200.0, -150.0, -100.0]], ids=["positive", "negative"]
)
def test_one_signed_tensors_do_not_saturate(values):
    """The course's clipped-zero-point defect is absent: [100, 150, 200] round-trips within s/2."""
    t = torch.tensor(values)
    q, scale, zero_point = linear_quantization(t)
    assert len(set(q.tolist())) == 3, "all values saturated to one integer"
    deq = linear_dequantization(q, scale, zero_point)
    assert bool(((deq - t).abs() <= scale / 2 + 1e-5).all())
    # The range is extended to hold 0: 0 is representable, z is at an end of the range.
    assert zero_point == (-128 if values[0] > 0 else 127)
    assert scale == pytest.approx(200.0 / 255, rel=1e-12)


def test_integer_input_tensor_is_quantized_like_its_float_version():
    """An int64 tensor is accepted and quantized exactly like the same values in float32."""
    ints = torch.tensor([[-7, 0, 3], [120, -64, 5]])
    q, scale, zero_point = linear_quantization(ints)
    q_float, scale_float, zero_point_float = linear_quantization(ints.float())
    assert (scale, zero_point) == (scale_float, zero_point_float)
    assert torch.equal(q, q_float)
    assert ints.dtype == torch.int64  # unchanged


def test_float64_input_follows_the_formula_in_float64():
    """A float64 tensor is divided in float64 and round-trips within s/2."""
    t = seeded((20, 20), seed=31, magnitude=100.0).double()
    q, scale, zero_point = linear_quantization(t)
    assert torch.equal(q, reference_quantize(t, scale, zero_point, -128, 127, torch.int8))
    deq = linear_dequantization(q, scale, zero_point)
    assert bool(((deq.double() - t).abs() <= scale / 2 + 1e-4).all())


def test_bfloat16_input_clamps_instead_of_wrapping():
    """bfloat16 127.5 rounds to 128 and must clamp to 127, never wrap to -128 (course defect)."""
    t = torch.tensor([127.5, 200.0, -128.5, -300.0, 0.5, 1.5], dtype=torch.bfloat16)
    q = linear_q_with_scale_and_zero_point(t, 1.0, 0)
    assert torch.equal(q, torch.tensor([127, 127, -128, -128, 0, 2], dtype=torch.int8))
    q, scale, zero_point = linear_quantization(t)
    q_float, scale_float, zero_point_float = linear_quantization(t.float())
    assert torch.equal(q, q_float) and (scale, zero_point) == (scale_float, zero_point_float)


def test_zero_dim_tensor():
    """A 0-dim tensor gives a 0-dim result and round-trips within s/2."""
    t = torch.tensor(3.0)
    q, scale, zero_point = linear_quantization(t)
    assert q.shape == () and q.item() == 127 and zero_point == -128
    deq = linear_dequantization(q, scale, zero_point)
    assert deq.shape == () and abs(deq.item() - 3.0) <= scale / 2
    assert linear_q_with_scale_and_zero_point(t, torch.tensor(0.5), torch.tensor(2)).item() == 8


def test_tensor_that_requires_grad_is_accepted():
    """A weight that requires grad (an nn.Parameter) can be quantized, with the same result."""
    weight = torch.nn.Parameter(seeded((4, 6), seed=32))
    q, scale, zero_point = linear_quantization(weight)
    assert torch.equal(q, linear_quantization(weight.detach())[0])
    scale_t = torch.full((4, 1), scale, requires_grad=True)
    q2 = linear_q_with_scale_and_zero_point(weight, scale_t, zero_point)
    assert torch.equal(q2, q)
    assert not q.requires_grad and weight.grad is None


def test_quantization_error_is_the_course_mse():
    """quantization_error is mean((deq - r) ** 2), as a 0-dim tensor, for mixed float dtypes."""
    r = seeded((5, 7), seed=33)
    deq = r + seeded((5, 7), seed=34, magnitude=0.01)
    error = quantization_error(r, deq)
    assert error.shape == ()
    assert torch.equal(error, (deq - r).square().mean())
    error64 = quantization_error(r.double(), deq)
    assert error64.item() == pytest.approx(((deq.double() - r.double()) ** 2).mean().item())


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=["int8", "uint8", "int16"])
def test_dequantization_does_not_wrap_around(dtype):
    """q - z is computed in float: 127 - (-70) gives 197 * s, not a wrapped int8 value."""
    q_min, q_max = get_q_range(dtype)
    q = torch.tensor([q_min, q_max], dtype=dtype)
    zero_point = q_min + 58
    deq = linear_dequantization(q, 0.5, zero_point)
    assert deq.tolist() == [0.5 * (q_min - zero_point), 0.5 * (q_max - zero_point)]
