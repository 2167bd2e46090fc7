"""Facts lesson 14 states in its prose that no output cell of the lesson prints.

Each test names the cell whose sentence it backs. The numbers printed by the lesson itself
are checked by nbval; these are the ones written in the text only, and the claims about
PyTorch's float8 casts, bitsandbytes' NF4 recipe and the CPU paths.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import NF4_PUBLISHED

from helper import (
    FLOAT8_FORMATS,
    dequantize_from_grid,
    fake_quantize,
    float8_from_bits,
    float8_grid,
    nf4_levels,
    quantize_to_grid,
)
from support.examples import outlier_tensor, seeded_randn

ROOT = Path(__file__).resolve().parent.parent


def test_float8_from_bits_is_pytorchs_float8_on_all_256_codes():
    """Cells c14-07 and the checker's docstring: bit for bit, NaNs as NaNs, -0 as -0."""
    codes = torch.arange(256, dtype=torch.uint8)
    for fmt, f in FLOAT8_FORMATS.items():
        ours = torch.tensor([float8_from_bits(b, fmt) for b in range(256)], dtype=torch.float32)
        theirs = codes.view(f.dtype).float()
        nan = ours.isnan()
        assert torch.equal(nan, theirs.isnan())
        assert torch.equal(ours[~nan].view(torch.int32), theirs[~nan].view(torch.int32))


def test_nf4_levels_are_within_1e_6_of_the_published_table():
    """Cell c14-18: 1.79e-07 from the table, below 1e-6."""
    published = torch.tensor(NF4_PUBLISHED, dtype=torch.float64)
    difference = (nf4_levels().double() - published).abs().max().item()
    assert difference < 1e-6
    assert f"{difference:.2e}" == "1.79e-07"


def test_bitsandbytes_recipe_with_scipy_gives_the_table_bit_for_bit():
    """Cell c14-18/c14-19: create_normal_map's steps as written in bitsandbytes (scipy's
    norm.ppf on torch.linspace's float32 probabilities, torch.Tensor, sort, divide) give the
    published table exactly; norm.ppf returns float64; 0.9677083 is delta to 7 decimals."""
    norm = pytest.importorskip("scipy.stats").norm
    offset = 0.9677083
    probabilities = torch.linspace(offset, 0.5, 9)[:-1]
    assert probabilities.dtype == torch.float32  # torch.linspace's default dtype
    v1 = norm.ppf(probabilities).tolist()
    v2 = [0] * (256 - 15)
    v3 = (-norm.ppf(torch.linspace(offset, 0.5, 8)[:-1])).tolist()
    assert norm.ppf(probabilities).dtype.name == "float64"
    values = torch.Tensor(v1 + v2 + v3)
    values = values.sort().values
    values /= values.max()
    table = torch.cat([values[:7], values[-9:]])
    assert torch.equal(table, torch.tensor(NF4_PUBLISHED, dtype=torch.float32))
    delta = 0.5 * ((1 - 1 / 30) + (1 - 1 / 32))
    assert round(delta, 7) == offset


def test_the_ranges_of_the_two_formats_in_powers_of_two():
    """Cell c14-38: e4m3fn covers 2**-9 to 448, about 2**17.8; e5m2 2**-16 to 57344, about
    2**31.8."""
    e4m3, e5m2 = float8_grid("e4m3fn"), float8_grid("e5m2")
    assert e4m3[127].item() == 2.0**-9 and e4m3[-1].item() == 448
    assert e5m2[124].item() == 2.0**-16 and e5m2[-1].item() == 57344
    assert f"{math.log2(448 / 2.0**-9):.1f}" == "17.8"
    assert f"{math.log2(57344 / 2.0**-16):.1f}" == "31.8"


def test_e4m3fn_rounds_magnitudes_up_to_2_to_the_minus_10_to_zero():
    """Cell c14-42: half the smallest subnormal is a tie, which goes to the even code 0x00;
    anything above it rounds to 2**-9."""
    tie = torch.tensor(2.0**-10)
    above = torch.nextafter(tie, torch.tensor(1.0))  # the next float32
    x = torch.stack([tie, -tie, above])
    assert x.to(torch.float8_e4m3fn).float().tolist() == [0.0, -0.0, 2.0**-9]


def test_the_e4m3fn_header_says_it_saturates_and_e5m2_returns_the_infinity_code():
    """Cell c14-26: the sentences quoted from torch/headeronly/util/Float8_e4m3fn.h and
    Float8_e5m2.h of the installed PyTorch."""
    include = Path(torch.__file__).parent / "include" / "torch" / "headeronly" / "util"
    e4m3 = (include / "Float8_e4m3fn.h").read_text(encoding="utf-8")
    e5m2 = (include / "Float8_e5m2.h").read_text(encoding="utf-8")
    assert "Finite overflow or inf → saturate to max finite value" in e4m3
    assert "Binary representation of 65536.0f, which is the first value" in e5m2
    assert "UINT8_C(0x7C)" in e5m2
    assert (57344 + 65536) / 2 == 61440


_CAST_SCRIPT = """
import math, torch
torch.manual_seed(0)
values = [448.0, 464.0, 480.0, 1e6, math.inf, -1e6, 57344.0, 61439.0, 61440.0, -61440.0]
big = torch.tensor(values).repeat(1000)  # long enough for the vectorised path
mixed = torch.randn(4096, dtype=torch.float64).float() * 1e4
out = []
for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
    for t in (big, mixed, torch.tensor(values)):
        out.append(t.to(dtype).view(torch.uint8).tolist())
print(repr(out))
"""


def _casts(env_extra: dict) -> str:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _CAST_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout


def test_the_out_of_range_casts_are_the_same_on_both_cpu_paths():
    """Cell c14-28: the casts give the same bytes with the vectorised CPU kernels and with
    ATEN_CPU_CAPABILITY=default, on long tensors and on the lesson's short ones."""
    default = _casts({"ATEN_CPU_CAPABILITY": "default"})
    native = _casts({})
    assert default == native
    out = eval(default)  # lists of ints
    assert set(out[0]) == {0x7E, 0xFE}  # e4m3fn: everything saturates at +-448
    assert out[0][:5] == [0x7E] * 5
    assert out[3][6:10] == [0x7B, 0x7B, 0x7C, 0xFC]  # e5m2: 57344, 57344, inf, -inf


def test_the_synthetic_and_outlier_ratios():
    """Cells c14-30 and c14-32: int8 beats e4m3fn 14x on normal data per row (and 42x on
    uniform data); e4m3fn beats int8 71x on the outlier tensor's ordinary values, most of
    which lie within 2 of 0."""

    def relative_mse(w, back):
        return ((back - w).double().square().mean() / w.double().square().mean()).item()

    def e4m3(w, block):
        codes, scale = quantize_to_grid(w, "e4m3fn", block)
        return dequantize_from_grid(codes, scale, "e4m3fn", block)

    normal = seeded_randn(512, 256, seed=0)
    ratio = relative_mse(normal, e4m3(normal, (1, 256))) / relative_mse(
        normal, fake_quantize(normal, 8, "per_channel")
    )
    assert round(ratio) == 14
    generator = torch.Generator().manual_seed(0)
    uniform = (2 * torch.rand(512, 256, dtype=torch.float64, generator=generator) - 1).float()
    ratio = relative_mse(uniform, e4m3(uniform, (1, 256))) / relative_mse(
        uniform, fake_quantize(uniform, 8, "per_channel")
    )
    assert round(ratio) == 42
    spiky = outlier_tensor(seed=0, size=64)
    ordinary = spiky != 100
    int8 = relative_mse(spiky[ordinary], fake_quantize(spiky, 8, "per_tensor")[ordinary])
    fp8 = relative_mse(spiky[ordinary], e4m3(spiky, (64, 64))[ordinary])
    assert round(int8 / fp8) == 71
    assert (spiky[ordinary].abs() < 2).double().mean().item() > 0.9
