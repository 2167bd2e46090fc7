"""The general facts behind lesson 07's bfloat16 pitfall, checked on every case they cover.

The lesson tries the 128 possible significands of a row's largest weight and says the power
of two cancels. Here every positive finite bfloat16 number whose scale is a normal bfloat16
number is tried (31,618 of them), and the integer cast the lesson uses to show the wrap is
checked on every int16 value.
"""

from __future__ import annotations

import torch

from helper import W8A16LinearLayer, sqnr_db, w8_a16_forward
from support.examples import seeded_randn


def every_positive_bfloat16() -> torch.Tensor:
    """All positive finite bfloat16 numbers, subnormals included (bit patterns 1 to 0x7F7F)."""
    return torch.arange(1, 0x7F80, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)


def course_scales(largest: torch.Tensor) -> torch.Tensor:
    """The course's scale of a row whose largest |weight| is ``largest``: max / 127 in float32,
    rounded to bfloat16."""
    return (largest.float() / 127).to(torch.bfloat16)


def test_a_float32_division_by_a_bfloat16_scale_never_reaches_127_5():
    """The largest quotient is 127.3298, the same for every power of two: the bound of the
    lesson, 127 / (1 - 2**-8) = 127.498, holds with room to spare."""
    largest = every_positive_bfloat16()
    scales = course_scales(largest)
    normal = scales.float() >= torch.finfo(torch.bfloat16).tiny
    assert int(normal.sum()) == 31_618
    quotients = largest.float()[normal] / scales.float()[normal]
    assert quotients.max().item() == 127.32984161376953
    assert quotients.max().item() < 127 / (1 - 2**-8) < 127.5


def test_a_bfloat16_division_reaches_127_5_for_21_of_every_128_significands():
    """The same 21 significands (1.328125 to 1.484375) wrap in every binade."""
    largest = every_positive_bfloat16()
    scales = course_scales(largest)
    normal = scales.float() >= torch.finfo(torch.bfloat16).tiny
    wraps = (largest / scales).float()[normal] >= 127.5
    significands = largest.float()[normal] / torch.exp2(
        torch.floor(torch.log2(largest.float()[normal]))
    )
    assert set(significands[wraps].tolist()) == {1.328125 + k / 128 for k in range(21)}
    assert int(wraps.sum()) / int(normal.sum()) > 0.16


def test_the_int16_to_int8_cast_wraps_modulo_256():
    """An integer to a narrower integer: defined, the same on every CPU."""
    values = torch.arange(-(2**15), 2**15, dtype=torch.int32)
    wrapped = values.to(torch.int16).to(torch.int8).to(torch.int32)
    assert torch.equal(wrapped, (values + 128) % 256 - 128)
    assert torch.tensor([128.0]).to(torch.int16).to(torch.int8).item() == -128


def test_float32_scales_buy_no_output_quality_on_the_lessons_layer():
    """Section 10's comparison: a bfloat16 scale with a float32 division and a clamp gives
    42.08 dB, the float32 scale 41.89 dB; the course's recipe wraps 7 rows."""
    weight = 0.02 * seeded_randn(256, 1024, seed=1)
    tokens = seeded_randn(8, 1024, seed=3)
    weight_bf16 = weight.to(torch.bfloat16)
    scales = course_scales(weight_bf16.abs().amax(dim=1)).float()
    q = torch.round(weight_bf16.float() / scales[:, None]).clamp(-128, 127).to(torch.int8)
    layer = W8A16LinearLayer(1024, 256, bias=False, dtype=torch.bfloat16)
    layer.quantize(weight_bf16)
    reference = tokens @ weight.T
    assert round(sqnr_db(reference, w8_a16_forward(q, tokens, scales)), 2) == 42.08
    assert round(sqnr_db(reference, layer(tokens)), 2) == 41.89
    wrapped = torch.round(weight_bf16 / scales.to(torch.bfloat16)[:, None])
    wrapped = wrapped.to(torch.int16).to(torch.int8)
    assert int(((wrapped.float() * weight_bf16.float()) < 0).any(dim=1).sum()) == 7
