"""What the tests share: inputs, references, small models, assertion helpers, and the
hypothesis profile.

pytest imports this file before any test module and puts its folder on ``sys.path``: test
modules import what they share from here (``from conftest import seeded``), never from one
another. What is here:

* the hypothesis profile every property test runs with, loaded once;
* the course's tensors and the references helper.py's tests compare with, written without
  helper.py (the formulas in Python numbers, loops over blocks, PyTorch's own quantization);
* tensors and small models that several test files build;
* the assertions the checker tests (tests/exercises/) share.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import matplotlib
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

from helper import (
    SCALE_EPS,
    absmax_minmax,
    absmax_mse_optimal,
    absmax_percentile,
    clipping_mse_curve,
    fake_quantize,
    fake_quantize_clipped,
    quantize_clipped,
)
from support.examples import seeded_randn, varied_rows_weight

matplotlib.use("Agg")  # headless: no test opens a window

#: Hypothesis: deterministic, no deadline (CI machines are slow), no example database. Loaded
#: here once for every test; a test that wants fewer examples says ``@settings(max_examples=N)``.
settings.register_profile(
    "tests",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("tests")


# ------------------------------------------------------------------------------------------
# The course's tensors
# ------------------------------------------------------------------------------------------


#: The course's example tensor (float32).
TEST_TENSOR = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])

#: The maximum |r| of every row / column of the test tensor, read off the tensor by eye.
ROW_ABSMAX = [728.6, 295.5, 684.6]
COLUMN_ABSMAX = [191.6, 684.6, 728.6]

#: The course's L3-D per-group example: a seeded 6x6 tensor (identical on every CPU), groups of 3.
GROUP_TENSOR = seeded_randn(6, 6, seed=0)

INT_DTYPES = (torch.int8, torch.uint8, torch.int16)

#: torch.quantize_per_tensor is deprecated in torch 2.13 (it warns on every call). The parity
#: tests call it on purpose, as the reference, so exactly that warning is filtered there.
QUANTIZE_PER_TENSOR_DEPRECATION = (
    r"ignore:torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized "
    r"tensor creation functions.*deprecated:UserWarning"
)


# ------------------------------------------------------------------------------------------
# Tensors, from a seed
# ------------------------------------------------------------------------------------------


def seeded(shape: tuple[int, ...], seed: int, magnitude: float = 1.0, offset: float = 0.0):
    """A reproducible float32 tensor ``offset + magnitude * randn(shape)``."""
    generator = torch.Generator().manual_seed(seed)
    return offset + magnitude * torch.randn(shape, generator=generator)


def seeded_int8(rows: int, columns: int, seed: int = 0) -> torch.Tensor:
    """Random int8 values over the whole range [-128, 127] (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-128, 128, (rows, columns), generator=generator, dtype=torch.int8)


def u8(values) -> torch.Tensor:
    """``values`` as a uint8 tensor."""
    return torch.tensor(values, dtype=torch.uint8)


def f32(value: float) -> float:
    """``value`` rounded to float32 (the test tensor holds float32 values)."""
    return torch.tensor(value, dtype=torch.float32).item()


#: Per-tensor parity with PyTorch (sections 4 and 5): tensors of every kind, and exact ties.
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


# ------------------------------------------------------------------------------------------
# Independent references for helper.py
# ------------------------------------------------------------------------------------------


def reference_quantize(t, scale, zero_point, q_min, q_max, dtype):
    """The lesson's readable one-liner, with the scale in the tensor's float precision."""
    r = t if t.dtype in (torch.float32, torch.float64) else t.float()
    s = scale.to(r.dtype) if isinstance(scale, torch.Tensor) else scale
    return torch.clamp(torch.round(r / s) + zero_point, q_min, q_max).to(dtype)


def torch_quantize_per_tensor(x, scale, zero_point, dtype):
    """PyTorch's own quantizer, the reference: a quantized tensor (``.int_repr()`` is q)."""
    qdtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}[dtype]
    return torch.quantize_per_tensor(x, scale, zero_point, qdtype)


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


def exact_zero_point(x: torch.Tensor, q_min: int, q_max: int) -> int:
    """The zero point in exact rational arithmetic (no float rounding), half to even."""
    r_min = Fraction(min(x.min().item(), 0.0))
    r_max = Fraction(max(x.max().item(), 0.0))
    scale = (r_max - r_min) / (q_max - q_min)
    if scale < Fraction(SCALE_EPS):
        scale = Fraction(SCALE_EPS)
    return q_min - round(r_min / scale)  # round() of a Fraction is half to even


def expand(param: torch.Tensor, block_size: tuple[int, ...]) -> torch.Tensor:
    """A per-block parameter (shape ``n_blocks``) repeated over each block's elements.

    Written independently of helper's reshaping: ``repeat_interleave`` along every dim.
    """
    out = param
    for dim, b in enumerate(block_size):
        out = out.repeat_interleave(b, dim=dim)
    return out


def blocks_of(t: torch.Tensor, block_size: tuple[int, ...]):
    """Yield ``(index, slices)`` for every block of ``t``: a plain loop, as the course writes it."""
    n_blocks = [n // b for n, b in zip(t.shape, block_size, strict=True)]
    for index in itertools.product(*(range(n) for n in n_blocks)):
        yield (
            index,
            tuple(slice(i * b, (i + 1) * b) for i, b in zip(index, block_size, strict=True)),
        )


def per_channel_block(shape, dim):
    """The block size for one scale per index of ``dim``, built here without helper."""
    dim %= len(shape)
    return tuple(1 if d == dim else n for d, n in enumerate(shape))


def per_group_block(shape, group_size):
    """The block size for groups of ``group_size`` along the last dim, built here."""
    return (1,) * (len(shape) - 1) + (group_size,)


# ------------------------------------------------------------------------------------------
# Hypothesis strategies
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


# ------------------------------------------------------------------------------------------
# Small models
# ------------------------------------------------------------------------------------------


class Inner(nn.Module):
    """A linear and a ReLU, to nest inside ``Outer``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.act = nn.ReLU()


class Outer(nn.Module):
    """An embedding, a linear, a nested ``Inner`` and a bias-free head: linears at two depths."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 2)
        self.first = nn.Linear(2, 2)
        self.inner = Inner()
        self.head = nn.Linear(2, 5, bias=False)


def tiny_mlp() -> nn.Module:
    """8 -> 4 -> 2 with the last linear nested in a Sequential (its name is "2.0")."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))


def varied_rows_mlp() -> nn.Module:
    """12 -> 8 -> 3 whose weights have rows of very different sizes (layers "0" and "2")."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.copy_(varied_rows_weight(8, 12, seed=1))
        model[2].weight.copy_(varied_rows_weight(3, 8, seed=2))
    return model


# ------------------------------------------------------------------------------------------
# helper.py section 13: every function of the clipping range, called on one tensor
# ------------------------------------------------------------------------------------------


def whole(t) -> tuple[int, ...]:
    """The per-tensor block of ``t``; a list (not a tensor) gets one too, to reach the check."""
    return tuple(t.shape) if isinstance(t, torch.Tensor) else (len(t),)


#: Each public function of section 13 on a tensor ``t`` (its whole tensor as the block).
CLIPPING_FUNCTIONS = {
    "minmax": lambda t: absmax_minmax(t, whole(t)),
    "percentile": lambda t: absmax_percentile(t, whole(t), 99.0),
    "search": lambda t: absmax_mse_optimal(t, whole(t), n_bits=4, n_grid=5),
    "curve": lambda t: clipping_mse_curve(t, whole(t), [0.5], n_bits=4),
    "quantize": lambda t: quantize_clipped(t, whole(t), 1.0, n_bits=4),
    "fake": lambda t: fake_quantize_clipped(t, whole(t), 1.0, n_bits=4),
    "midrise": lambda t: fake_quantize_clipped(t, whole(t), 1.0, n_bits=4, grid="midrise"),
    "weight": lambda t: fake_quantize(t, 4, "per_tensor", absmax=1.0),
}


# ------------------------------------------------------------------------------------------
# Checker reports (tests/exercises/)
# ------------------------------------------------------------------------------------------


def assert_names_mistake(report, words: str, start: bool = False) -> None:
    """``report`` failed, names a known mistake whose description contains ``words`` (starts
    with them, if ``start``), and shows that mistake's sentence and hint instead of per-case
    hints."""
    assert report.status == "failed", repr(report)
    assert report.mistake is not None, repr(report)
    description = report.mistake.description
    assert description.startswith(words) if start else words in description, description
    text = repr(report)
    assert f"It looks like your function {report.mistake.description}." in text
    assert f"hint: {report.mistake.hint}" in text


def assert_rejected_as(report, words, hint_words=()):
    """The report failed, names the mistake whose description contains ``words``, and shows
    that mistake's hint (and not the per-case hints)."""
    assert_names_mistake(report, words)
    text = repr(report)
    for word in hint_words:
        assert word in report.mistake.hint
    for _, problem, hint in report.results:
        if problem is not None:
            assert f"         hint: {hint}" not in text  # the case hints give way
    return text


def assert_neutral_report(report, recipe: str, mistakes, *shown: str) -> None:
    """No known mistake matched: the report shows the first failing case (what was expected,
    what came back) and the lesson's recipe, and no hint at all: none of a case, none of a
    mistake the learner did not make. ``shown`` are more phrases the report must contain."""
    text = repr(report)
    assert report.status == "failed" and report.mistake is None, text
    assert "The first case that fails:" in text and "expected:" in text, text
    assert f"recipe: {recipe}" in text, text
    assert "hint:" not in text and "It looks like" not in text, text
    assert not any(mistake.hint in text for mistake in mistakes), text
    for phrase in shown:
        assert phrase in text, text


def assert_changed_in_place(report, name: str) -> None:
    """A function that changed its argument ``name`` fails every case, and the report names
    the argument and says what to do instead."""
    text = repr(report)
    message = f"changed `{name}` in place: work on a copy"
    failed = [problem for _, problem, _ in report.results if problem is not None]
    assert report.status == "failed" and failed, text
    assert all(message in problem for problem in failed), text  # (a case whose input is all
    # zeros is not changed by zeroing it, and passes)


def assert_passed(report, cases: int | None = None) -> None:
    """Every case passed (all ``cases`` of them, if given) and the report says so."""
    text = repr(report)
    assert report.status == "passed", text
    assert report.passed == len(report.results)
    if cases is not None:
        assert report.passed == cases, text
    assert f"{report.passed} of {report.passed} checks passed" in text and "Well done!" in text


def case_status(report, cases: tuple[str, ...]) -> dict[str, bool]:
    """{case: passed?} for a report whose cases are named ``cases``, in order."""
    assert len(report.results) == len(cases)
    return {
        name: problem is None for name, (_, problem, _) in zip(cases, report.results, strict=True)
    }


def assert_leaves_the_random_state_alone(call) -> None:
    """``call()`` draws nothing from torch's global random generator: the learner's next random
    numbers in the notebook are the ones they would have had without it."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    call()
    assert torch.equal(torch.rand(3), expected)


#: bitsandbytes' NF4 table, as published in bitsandbytes/functional.py (get_4bit_type("nf4"),
#: "Generated by: create_normal_map(offset=0.9677083, use_extra_value=True)"); the same 16
#: values are in lesson 14 (cell c14-15).
NF4_PUBLISHED = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
]
