"""Tests for helper.py section 9 against PyTorch's per-channel quantization:
``torch.quantize_per_channel``, ``torch.fake_quantize_per_channel_affine`` and
``torch.ao.quantization.PerChannelMinMaxObserver`` (asymmetric and symmetric).

As in test_04_quantize.py, PyTorch multiplies by ``1/s`` (and its kernels round ``r / s + z``),
so its quantized values may differ from helper's by one step, but only at near-ties of
``r / s``. Per group is compared through the (groups, group_size) view, one channel per group.
"""

from __future__ import annotations

import pytest
import torch
from conftest import (
    COLUMN_ABSMAX,
    QUANTIZE_PER_TENSOR_DEPRECATION,
    TEST_TENSOR,
    assert_differs_only_at_near_ties,
    exact_zero_point,
    expand,
    f32,
    near_tie,
    per_channel_block,
    per_group_block,
    seeded,
)
from torch.ao.quantization import PerChannelMinMaxObserver

from helper import (
    choose_qparams_affine,
    dequantize_affine,
    get_q_range,
    quantize_affine,
    quantize_blockwise,
)

PARITY_TENSORS = {
    "test_tensor": TEST_TENSOR,
    "2d": seeded((16, 31), seed=53, magnitude=3.0, offset=0.5),
    "3d": seeded((4, 8, 9), seed=54, magnitude=10.0),
    "rows_of_different_size": seeded((8, 64), seed=55) * torch.logspace(-3, 3, 8).reshape(8, 1),
    "positive": seeded((6, 10), seed=56).abs() + 0.25,
    "1d": seeded((20,), seed=57),
    # r / s exactly k + 1/2 for s = 0.1 in every row: ties
    "ties": ((torch.arange(-60, 60, dtype=torch.float32) + 0.5) * 0.1).reshape(4, 30),
}


def _qdtype(dtype):
    return {torch.int8: torch.qint8, torch.uint8: torch.quint8}[dtype]


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("name", list(PARITY_TENSORS))
def test_per_channel_matches_quantize_per_channel(name, dtype, symmetric):
    """Given helper's scales, quantize_per_channel's int_repr equals helper's q but at near-ties.

    Symmetric mode is compared with the same scale (PyTorch's symmetric observer would pick
    max|r| / 127.5); dequantizing PyTorch's integers with helper equals .dequantize().
    """
    x = PARITY_TENSORS[name]
    for axis in range(x.dim()):
        block_size = per_channel_block(tuple(x.shape), axis)
        q, scale, zero_point = quantize_blockwise(x, block_size, dtype, symmetric=symmetric)
        if name == "ties":
            scale = torch.full_like(scale, 0.1)
            zero_point = torch.full_like(zero_point, get_q_range(dtype)[0] + 121)  # odd for int8
            q = quantize_affine(x, block_size, scale, zero_point, dtype)
        theirs = torch.quantize_per_channel(
            x, scale.flatten(), zero_point.flatten(), axis, _qdtype(dtype)
        )
        s_elem = expand(scale, block_size)
        count = assert_differs_only_at_near_ties(x, q, theirs.int_repr(), s_elem)
        if name != "ties":
            assert count <= max(2, x.numel() // 100), "near-ties should be rare in random data"
        ours = dequantize_affine(theirs.int_repr(), block_size, scale, zero_point)
        torch.testing.assert_close(ours, theirs.dequantize(), rtol=1e-6, atol=0.0)


@pytest.mark.filterwarnings(QUANTIZE_PER_TENSOR_DEPRECATION)
def test_exact_ties_with_an_odd_zero_point_are_the_known_disagreement():
    """quantize_per_channel rounds r / s + z: with an odd z an exact tie goes the other way.

    helper rounds r / s half to even and then adds z, as fake_quantize_per_channel_affine and
    the course do; so the parity tests' near-tie tolerance is really needed.
    """
    x = ((torch.arange(-20, 20, dtype=torch.float32) + 0.5) * 0.25).reshape(4, 10)  # exact ties
    scale = torch.full((4, 1), 0.25, dtype=torch.float64)
    zero_point = torch.full((4, 1), 3)
    q = quantize_affine(x, (1, 10), scale, zero_point)
    assert torch.equal(q, (torch.round(x / 0.25) + 3).to(torch.int8))
    theirs = torch.quantize_per_channel(x, scale.flatten(), zero_point.flatten(), 0, torch.qint8)
    assert assert_differs_only_at_near_ties(x, q, theirs.int_repr(), 0.25) == x.numel()
    fake = torch.fake_quantize_per_channel_affine(
        x, scale.flatten().float(), zero_point.flatten().int(), 0, -128, 127
    )
    assert torch.equal(dequantize_affine(q, (1, 10), scale, zero_point), fake)


#: A group size for each tensor's last dim (31 is prime: groups of one element).
FAKE_QUANT_GROUP_SIZE = {"2d": 1, "3d": 3, "rows_of_different_size": 16, "positive": 5}

FAKE_QUANT_CASES = [(torch.int8, n) for n in (2, 3, 4, 6, None)]
FAKE_QUANT_CASES += [(torch.uint8, n) for n in (2, 4, 7, None)]
FAKE_QUANT_CASES += [(torch.int16, None), (torch.int16, 12)]


@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize(("dtype", "n_bits"), FAKE_QUANT_CASES)
@pytest.mark.parametrize("name", ["2d", "3d", "rows_of_different_size", "positive"])
def test_round_trip_matches_fake_quantize_per_channel(name, dtype, n_bits, symmetric):
    """dequantize(quantize(x)) == fake_quantize_per_channel_affine, but at near-ties.

    Per channel along the first and the last dim, and per group through the
    (groups, group_size) view, one channel per group.
    """
    for granularity in ["channel_dim0", "channel_last", "group"]:
        check_round_trip_against_fake_quantize(name, granularity, dtype, n_bits, symmetric)


def check_round_trip_against_fake_quantize(name, granularity, dtype, n_bits, symmetric):
    """One granularity of test_round_trip_matches_fake_quantize_per_channel."""
    x = PARITY_TENSORS[name]
    q_min, q_max = get_q_range(dtype, n_bits)
    shape = tuple(x.shape)
    if granularity == "channel_dim0":
        block_size, view, axis = per_channel_block(shape, 0), x, 0
    elif granularity == "channel_last":
        block_size, view, axis = per_channel_block(shape, -1), x, x.dim() - 1
    else:
        group_size = FAKE_QUANT_GROUP_SIZE[name]
        block_size = per_group_block(shape, group_size)
        view, axis = x.reshape(-1, group_size), 0
    q, scale, zero_point = quantize_blockwise(x, block_size, dtype, n_bits, symmetric=symmetric)
    ours = dequantize_affine(q, block_size, scale, zero_point)
    theirs = torch.fake_quantize_per_channel_affine(
        view, scale.flatten().float(), zero_point.flatten().int(), axis, q_min, q_max
    ).reshape(shape)
    s_elem, z_elem = expand(scale, block_size), expand(zero_point, block_size)
    steps_ours = torch.round(ours.double() / s_elem) + z_elem
    steps_theirs = torch.round(theirs.double() / s_elem) + z_elem
    assert torch.equal(steps_ours.to(q.dtype), q)
    assert_differs_only_at_near_ties(x, steps_ours, steps_theirs, s_elem)
    same = steps_ours == steps_theirs
    torch.testing.assert_close(ours[same], theirs[same], rtol=1e-6, atol=0.0)


OBSERVER_TENSORS = {
    "test_tensor": TEST_TENSOR,
    "random": seeded((8, 8), seed=58, magnitude=2.0, offset=0.3),
    "rows_of_different_size": PARITY_TENSORS["rows_of_different_size"],
    "one_signed_rows": torch.tensor([[100.0, 150.0, 200.0], [-200.0, -150.0, -100.0]]),
    "zero_and_constant_rows": torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-0.75] * 3]),
    # r_min / s is exactly -1.5 in the first row and -127.5 in the second (ties)
    "zero_point_ties": torch.tensor([[-3.0, 507.0], [-1.0, 1.0]]),
    "3d": seeded((3, 4, 5), seed=59, magnitude=7.0),
}


@pytest.mark.parametrize(
    ("dtype", "n_bits"),
    [
        (torch.int8, None),
        (torch.uint8, None),
        (torch.int16, None),
        (torch.int8, 4),
        (torch.uint8, 2),
    ],
)
@pytest.mark.parametrize("name", list(OBSERVER_TENSORS))
def test_per_channel_qparams_match_per_channel_min_max_observer(name, dtype, n_bits):
    """Asymmetric per-channel scales equal PerChannelMinMaxObserver's (float32 precision); the
    zero points too, except at ties, where helper's equals the exact rational answer."""
    x = OBSERVER_TENSORS[name]
    q_min, q_max = get_q_range(dtype, n_bits)
    observer_dtype = {torch.int8: torch.qint8, torch.uint8: torch.quint8}.get(dtype, dtype)
    for axis in range(x.dim()):
        observer = PerChannelMinMaxObserver(
            ch_axis=axis,
            dtype=observer_dtype,
            qscheme=torch.per_channel_affine,
            quant_min=q_min,
            quant_max=q_max,
        )
        observer(x)
        torch_scale, torch_zero_point = observer.calculate_qparams()
        block_size = per_channel_block(tuple(x.shape), axis)
        scale, zero_point = choose_qparams_affine(x, block_size, dtype, n_bits)
        assert scale.flatten().tolist() == pytest.approx(torch_scale.tolist(), rel=1e-6)
        for channel, (z, z_torch) in enumerate(
            zip(zero_point.flatten().tolist(), torch_zero_point.tolist(), strict=True)
        ):
            values = x.select(axis, channel)
            assert z == exact_zero_point(values, q_min, q_max)
            r_min = min(values.min().item(), 0.0)
            if near_tie(torch.tensor([r_min]), scale.flatten()[channel].item()).item():
                assert abs(z - z_torch) <= 1
            else:
                assert z == z_torch


def test_per_channel_symmetric_observer_scale_is_127_5_not_127():
    """PerChannelMinMaxObserver (symmetric): max|r| / 127.5 per channel; helper: / 127."""
    observer = PerChannelMinMaxObserver(
        ch_axis=1, dtype=torch.quint8, qscheme=torch.per_channel_symmetric
    )
    observer(TEST_TENSOR)
    torch_scale, torch_zero_point = observer.calculate_qparams()
    assert torch_zero_point.tolist() == [128, 128, 128]
    assert torch_scale.tolist() == pytest.approx([m / 127.5 for m in COLUMN_ABSMAX], rel=1e-6)
    scale, zero_point = choose_qparams_affine(TEST_TENSOR, (3, 1), torch.uint8, symmetric=True)
    assert zero_point.flatten().tolist() == [128, 128, 128]
    assert scale.flatten().tolist() == [f32(m) / 127 for m in COLUMN_ABSMAX]
