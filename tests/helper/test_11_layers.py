"""Tests for helper.py section 11, an 8-bit linear layer for any model (course lessons L4-A
and L4-B): ``w8_a16_forward``, ``W8A16LinearLayer``, the functions that replace a model's
``nn.Linear`` layers, ``layer_names``, and fake quantization.

Every expected value is computed here independently of helper.py: the dequantized weight
``int8 * scale`` built with plain torch and fed to ``F.linear`` (in float64 where the result
must be accurate), the course's own bfloat16 code for the wrap pitfall, and the bound that
per-row absmax quantization guarantees (each weight moves by at most half its row's scale).
Then lesson 10's fake quantization: ``fake_quantize``, ``fake_quantize_linears``,
``linears_bits_per_weight``, ``plot_accuracy_vs_bits``, and the numbers the lesson prints.
Those are argmaxes of float32 matrix products, whose last bits differ between CPUs; they are
the same everywhere only if no test image has two scores that close:
``test_no_prediction_the_notebook_counts_is_near_a_tie`` checks the gap between the two
largest scores of every image, for every model the notebook measures.

Bad input is in test_bad_input.py, the forward's conversion in row blocks in
test_fast_paths.py.
"""

from __future__ import annotations

import math
from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F
from conftest import Outer, seeded_int8, tiny_mlp
from torch import nn

import helper
from helper import (
    W8A16LinearLayer,
    fake_quantize,
    fake_quantize_linears,
    layer_names,
    linears_bits_per_weight,
    plot_accuracy_vs_bits,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
    w8_a16_forward,
)
from support import models
from support.examples import seeded_randn, varied_rows_weight
from support.models import digits_classifier, load_digits_split, predict

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# ------------------------------------------------------------------------------------------
# Independent references
# ------------------------------------------------------------------------------------------


def dequantized(int8_weights: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``W' = int8 * scale`` per output row, in float64 (exact for int8 times a float32)."""
    return int8_weights.double() * scales.double().reshape(-1, 1)


def reference_forward(int8_weights, input, scales, bias=None) -> torch.Tensor:
    """Dequantize, then ``F.linear``, everything in float64."""
    b = None if bias is None else bias.double().reshape(-1)
    return F.linear(input.double(), dequantized(int8_weights, scales), b)


def course_style_forward(int8_weights, input, scales, bias=None) -> torch.Tensor:
    """The course's forward: the int8 weight cast to the *input's* dtype, the product in that
    dtype, then the scales and the bias."""
    output = F.linear(input, int8_weights.to(input.dtype)) * scales.to(input.dtype)
    return output if bias is None else output + bias.to(input.dtype)


# ------------------------------------------------------------------------------------------
# w8_a16_forward
# ------------------------------------------------------------------------------------------


def test_forward_equals_dequantize_then_linear_exactly_when_every_step_is_exact():
    """Power-of-two scales and small integer inputs make every float32 step exact, so the
    factored form ``(x @ q.T) * s + b`` and ``x @ (s * q).T + b`` must agree bit for bit."""
    q = seeded_int8(6, 16, seed=1)
    scales = torch.tensor([2.0**-k for k in range(6)])
    x = torch.randint(-8, 9, (5, 16), generator=torch.Generator().manual_seed(2)).float()
    bias = torch.tensor([0.5, -1.0, 0.25, 0.0, 3.0, -0.125])
    expected = F.linear(x, q.float() * scales.reshape(-1, 1), bias)
    assert torch.equal(w8_a16_forward(q, x, scales, bias), expected)
    assert torch.equal(w8_a16_forward(q, x, scales, bias.reshape(1, -1)), expected)
    assert torch.equal(w8_a16_forward(q, x, scales), F.linear(x, q.float() * scales[:, None]))


@pytest.mark.parametrize("batch_shape", [(), (1,), (7,), (2, 3)], ids=str)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_forward_matches_a_float64_reference_for_any_batch_shape(batch_shape, with_bias):
    q = seeded_int8(12, 32, seed=3)
    scales = seeded_randn(12, seed=4).abs() / 100 + 1e-3
    bias = seeded_randn(1, 12, seed=5) if with_bias else None
    x = seeded_randn(*batch_shape, 32, seed=6)
    output = w8_a16_forward(q, x, scales, bias)
    assert output.shape == (*batch_shape, 12)
    assert output.dtype == torch.float32
    expected = reference_forward(q, x, scales, bias)
    torch.testing.assert_close(output.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [*FLOAT_DTYPES, torch.float64], ids=str)
def test_forward_returns_the_input_dtype(dtype):
    q = seeded_int8(8, 16)
    scales = torch.full((8,), 0.01)
    bias = torch.zeros(1, 8, dtype=torch.bfloat16)  # any float dtype: added in the compute dtype
    x = seeded_randn(3, 16, seed=7).to(dtype)
    output = w8_a16_forward(q, x, scales, bias)
    assert output.dtype == dtype
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 1e-2}.get(dtype, 1e-6)
    expected = reference_forward(q, x, scales, bias)
    torch.testing.assert_close(output.double(), expected, rtol=tolerance, atol=tolerance)


def test_float64_input_is_computed_in_float64():
    q = seeded_int8(4, 64, seed=8)
    scales = torch.tensor([1e-3, 2e-3, 3e-3, 4e-3], dtype=torch.float64)
    x = seeded_randn(2, 64, seed=9).double() / 3
    torch.testing.assert_close(
        w8_a16_forward(q, x, scales), reference_forward(q, x, scales), rtol=1e-12, atol=1e-12
    )


def test_float16_input_stays_finite_where_the_course_style_product_overflows():
    """64 inputs of 100 times int8 weights of 127 sum to 812,800, beyond float16's 65,504:
    the course's product in float16 overflows before the small scale could shrink it."""
    q = torch.full((4, 64), 127, dtype=torch.int8)
    q[1] = -127
    scales = torch.full((4,), 1e-3)
    x = torch.full((2, 64), 100.0, dtype=torch.float16)
    assert torch.isinf(course_style_forward(q, x, scales)).all()  # the pitfall is real
    output = w8_a16_forward(q, x, scales)
    assert output.dtype == torch.float16
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output.double(), reference_forward(q, x, scales), rtol=1e-3, atol=0)


def test_bfloat16_input_keeps_its_dtype_and_its_accuracy():
    q = seeded_int8(16, 128, seed=10)
    scales = seeded_randn(16, seed=11).abs() / 127 + 1e-3
    x = seeded_randn(4, 128, seed=12).to(torch.bfloat16)
    output = w8_a16_forward(q, x, scales)
    assert output.dtype == torch.bfloat16
    expected = reference_forward(q, x, scales)
    # one bfloat16 rounding of the output (8 significant bits), nothing accumulated in bfloat16
    assert ((output.double() - expected).abs() <= expected.abs() * 2**-8 + 1e-30).all()


def test_float16_product_overflows_only_in_float16():
    """The lesson's third token: the exact integer product is far above 65504, while the
    float output is small."""
    q = torch.full((2, 1024), 127, dtype=torch.int8)
    x = torch.full((1, 1024), 2.0, dtype=torch.float16)  # x @ q.T = 260,096
    scales = torch.full((2,), 1 / 2048)
    assert torch.isinf(F.linear(x, q.half()) * scales.half()).all()
    out = helper.w8_a16_forward(q, x, scales)
    assert out.dtype == torch.float16 and out.tolist() == [[127.0, 127.0]]


def test_forward_never_modifies_its_inputs():
    q, scales = seeded_int8(5, 8), torch.linspace(0.01, 0.05, 5)
    bias, x = seeded_randn(1, 5, seed=1), seeded_randn(3, 8, seed=2).half()
    copies = [t.clone() for t in (q, x, scales, bias)]
    w8_a16_forward(q, x, scales, bias)
    for original, copy in zip((q, x, scales, bias), copies, strict=True):
        assert torch.equal(original, copy) and original.dtype == copy.dtype


# ------------------------------------------------------------------------------------------
# W8A16LinearLayer
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_layer_holds_three_buffers_and_no_parameters(dtype):
    layer = W8A16LinearLayer(16, 8, dtype=dtype)
    assert list(layer.parameters()) == []
    buffers = dict(layer.named_buffers())
    assert set(buffers) == {"int8_weights", "scales", "bias"}
    assert (buffers["int8_weights"].shape, buffers["int8_weights"].dtype) == ((8, 16), torch.int8)
    assert (buffers["scales"].shape, buffers["scales"].dtype) == ((8,), torch.float32)
    assert (buffers["bias"].shape, buffers["bias"].dtype) == ((1, 8), dtype)
    assert list(layer.state_dict()) == ["int8_weights", "scales", "bias"]
    assert (layer.in_features, layer.out_features, layer.dtype) == (16, 8, dtype)


def test_layer_without_bias_has_none_and_saves_no_bias():
    layer = W8A16LinearLayer(4, 2, bias=False)
    assert layer.bias is None
    assert list(layer.state_dict()) == ["int8_weights", "scales"]
    assert "bias=False" in repr(layer)
    layer.quantize(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]]))
    torch.testing.assert_close(layer(torch.ones(1, 4)), torch.tensor([[1.0, 2.0]]))


def test_an_int8_parameter_cannot_exist_which_is_why_the_weights_are_buffers():
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(torch.zeros(2, 2, dtype=torch.int8))
    with pytest.raises(RuntimeError):
        nn.Parameter(torch.zeros(2, 2, dtype=torch.int8), requires_grad=True)


@pytest.mark.parametrize("weight_dtype", [*FLOAT_DTYPES, torch.float64], ids=str)
def test_quantize_uses_per_row_absmax_scales(weight_dtype):
    weight = varied_rows_weight(32, 48, seed=3).to(weight_dtype)
    layer = W8A16LinearLayer(48, 32)
    layer.quantize(weight)
    w = weight.double()
    expected_scales = w.abs().amax(dim=1) / 127
    assert layer.scales.dtype == torch.float32
    torch.testing.assert_close(layer.scales.double(), expected_scales, rtol=1e-6, atol=0)
    # the largest |w| of every row lands on +-127, and no value leaves [-127, 127]
    q = layer.int8_weights
    assert q.dtype == torch.int8
    assert torch.equal(q.abs().amax(dim=1), torch.full((32,), 127, dtype=torch.int8))
    expected_q = torch.round(w / layer.scales.double().reshape(-1, 1))
    assert ((q.double() - expected_q).abs() <= 1).all()  # a tie may round either way
    # every weight moves by at most half its row's scale
    error = (dequantized(q, layer.scales) - w).abs()
    assert (error <= layer.scales.double().reshape(-1, 1) * (0.5 + 1e-6)).all()


def test_quantize_does_not_modify_the_weights_and_checks_them():
    weight = seeded_randn(4, 6, seed=1)
    copy = weight.clone()
    layer = W8A16LinearLayer(6, 4)
    layer.quantize(weight)
    assert torch.equal(weight, copy)
    with pytest.raises(ValueError, match=r"expected \(4, 6\)"):
        layer.quantize(seeded_randn(6, 4))
    bad = weight.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError):
        layer.quantize(bad)
    with pytest.raises(TypeError):
        layer.quantize(weight.tolist())


def test_an_all_zero_row_quantizes_to_zeros_with_a_finite_scale():
    weight = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    layer = W8A16LinearLayer(3, 2)
    layer.bias.copy_(torch.tensor([[0.25, 0.0]]))
    layer.quantize(weight)
    assert torch.equal(layer.int8_weights[0], torch.zeros(3, dtype=torch.int8))
    assert torch.isfinite(layer.scales).all() and (layer.scales > 0).all()
    output = layer(torch.ones(1, 3))
    assert output[0, 0].item() == 0.25


def test_bfloat16_course_recipe_reaches_128_and_the_layer_gives_127():
    """The course keeps the scale in bfloat16 and divides in bfloat16: bfloat16(0.6626 / 127)
    is rounded down, so 0.6626 divided by it is 127.5 in bfloat16, which rounds (half to even)
    to 128, beyond int8. Casting 128.0 to int8 is undefined (it gives -128 on common CPUs, not
    on all): the test stops before the cast and wraps through int16, as two's complement int8
    would. A float32 scale, a float32 division and a clamp before the cast give 127."""
    w = torch.tensor([[0.6626, 0.1]], dtype=torch.bfloat16)
    # the course's code, step by step, up to the cast
    course_scales = w.abs().max(dim=-1).values / 127
    assert course_scales.dtype == torch.bfloat16 and course_scales.item() == 0.005218505859375
    divided = w / course_scales.unsqueeze(1)
    assert divided.tolist() == [[127.5, 19.125]]  # beyond 127 before any cast
    assert course_scales.item() * 127 < w[0, 0].item()  # the scale was rounded down
    rounded = torch.round(divided).to(torch.int16)
    assert rounded.tolist() == [[128, 19]]
    wrapped = ((rounded + 128) % 256 - 128).to(torch.int8)  # int8's two's complement wrap
    assert wrapped.tolist() == [[-128, 19]]
    # the layer
    layer = W8A16LinearLayer(2, 1, dtype=torch.bfloat16)
    layer.quantize(w)
    assert layer.int8_weights.tolist() == [[127, 19]]
    assert layer.scales.dtype == torch.float32
    torch.testing.assert_close(layer.scales, w.float().abs().amax(dim=1) / 127)
    # the wrapped weight flips the sign of the output; ours keeps it
    x = torch.ones(1, 2, dtype=torch.bfloat16)
    assert course_style_forward(wrapped, x, course_scales)[0, 0].item() < 0
    assert layer(x)[0, 0].item() == pytest.approx(0.7626, rel=1e-2)


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_layer_output_is_within_the_per_row_bound_of_nn_linear(with_bias):
    """Each weight moves by at most s[o] / 2, so each output moves by at most
    s[o] / 2 * sum_i |x[b, i]| (plus float32 rounding)."""
    linear = nn.Linear(256, 64, bias=with_bias)
    with torch.no_grad():
        linear.weight.copy_(varied_rows_weight(64, 256, seed=5))
        if with_bias:
            linear.bias.copy_(seeded_randn(64, seed=6))
    layer = W8A16LinearLayer(256, 64, bias=with_bias)
    layer.quantize(linear.weight)
    if with_bias:
        layer.bias.copy_(linear.bias.reshape(1, -1))
    x = seeded_randn(16, 256, seed=7)
    with torch.no_grad():
        expected = linear(x).double()
    output = layer(x).double()
    bound = layer.scales.double() / 2 * x.double().abs().sum(dim=1, keepdim=True)
    rounding = 1e-5 * (expected.abs() + 1)
    assert ((output - expected).abs() <= bound + rounding).all()
    # and the bound is not vacuous: the error is far below the outputs themselves
    relative = (output - expected).norm() / expected.norm()
    assert relative < 1e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_layer_keeps_dtype_and_stays_finite(dtype):
    weight = varied_rows_weight(32, 512, seed=8) * 10
    layer = W8A16LinearLayer(512, 32, dtype=dtype)
    layer.quantize(weight.to(dtype))
    x = torch.full((3, 512), 200.0, dtype=dtype)
    output = layer(x)
    assert output.dtype == dtype and torch.isfinite(output).all()
    expected = reference_forward(layer.int8_weights, x, layer.scales, layer.bias)
    torch.testing.assert_close(output.double(), expected, rtol=1e-2, atol=1e-2)


def test_layer_forward_matches_the_independent_reference():
    layer = W8A16LinearLayer(96, 40)
    layer.quantize(seeded_randn(40, 96, seed=9))
    layer.bias.copy_(seeded_randn(1, 40, seed=10))
    x = seeded_randn(2, 5, 96, seed=11)
    copy = x.clone()
    output = layer(x)
    assert torch.equal(x, copy)
    assert output.shape == (2, 5, 40)
    expected = reference_forward(layer.int8_weights, x, layer.scales, layer.bias)
    torch.testing.assert_close(output.double(), expected, rtol=1e-5, atol=1e-5)


def test_layer_state_dict_loads_into_another_layer_bit_for_bit():
    source = W8A16LinearLayer(8, 4, dtype=torch.bfloat16)
    source.quantize(seeded_randn(4, 8, seed=2))
    source.bias.copy_(seeded_randn(1, 4, seed=3).to(torch.bfloat16))
    target = W8A16LinearLayer(8, 4, dtype=torch.bfloat16)
    target.load_state_dict(source.state_dict())
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name
    x = seeded_randn(3, 8, seed=4).to(torch.bfloat16)
    assert torch.equal(source(x), target(x))


# ------------------------------------------------------------------------------------------
# replace_linear_with_target(_and_quantize)
# ------------------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, width: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, dtype=dtype)
        self.attn = nn.Linear(width, width, dtype=dtype)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width, dtype=dtype),
            nn.ReLU(),
            nn.Linear(2 * width, width, bias=False, dtype=dtype),
        )

    def forward(self, x):
        x = x + self.attn(self.norm(x))
        return x + self.mlp(x)


class TinyLM(nn.Module):
    """An embedding, two blocks in a ModuleList (linears nested 3 levels deep), an lm_head."""

    def __init__(self, width: int = 16, vocab: int = 24, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.embed = nn.Embedding(vocab, width, dtype=dtype)
        self.blocks = nn.ModuleList([Block(width, dtype), Block(width, dtype)])
        self.lm_head = nn.Linear(width, vocab, bias=False, dtype=dtype)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(x)


def tiny_lm(dtype: torch.dtype = torch.float32) -> TinyLM:
    torch.manual_seed(0)  # nn's default init; only compared within this process
    return TinyLM(dtype=dtype).eval()


LINEAR_NAMES = [
    "blocks.0.attn",
    "blocks.0.mlp.0",
    "blocks.0.mlp.2",
    "blocks.1.attn",
    "blocks.1.mlp.0",
    "blocks.1.mlp.2",
    "lm_head",
]


def kinds(model: nn.Module) -> dict[str, str]:
    """Dotted name -> class name of every Linear or W8A16 layer."""
    return {
        name: type(module).__name__
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | W8A16LinearLayer)
    }


@pytest.mark.parametrize(
    "exclude, kept",
    [
        ([], []),
        (["lm_head"], ["lm_head"]),
        (["attn"], ["blocks.0.attn", "blocks.1.attn"]),  # a name matches at any depth
        (["blocks.1.attn"], ["blocks.1.attn"]),  # a dotted path matches one layer
        (["blocks.0.mlp.2", "lm_head"], ["blocks.0.mlp.2", "lm_head"]),  # inside a Sequential
        (["blocks.1"], ["blocks.1.attn", "blocks.1.mlp.0", "blocks.1.mlp.2"]),  # a whole block
        (["mlp"], []),  # a plain name matches linear layers only: mlp is a container, walked into
        (["blocks.0.mlp"], ["blocks.0.mlp.0", "blocks.0.mlp.2"]),  # a dotted path: all inside
        (["not_a_layer", "1.attn"], []),  # names that match nothing exclude nothing
    ],
    ids=lambda v: ",".join(v) or "-",
)
@pytest.mark.parametrize("quantize", [False, True], ids=["empty", "quantized"])
def test_exclusion_by_name_and_dotted_path(exclude, kept, quantize):
    model = tiny_lm()
    replace = replace_linear_with_target_and_quantize if quantize else replace_linear_with_target
    assert replace(model, W8A16LinearLayer, exclude) is model
    expected = {name: "Linear" if name in kept else "W8A16LinearLayer" for name in LINEAR_NAMES}
    assert kinds(model) == expected


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_replace_keeps_biases_and_dtypes_and_builds_empty_layers(dtype):
    original = tiny_lm(dtype)
    model = tiny_lm(dtype)
    replace_linear_with_target(model, W8A16LinearLayer, ["lm_head"])
    old = dict(original.named_modules())
    for name, module in model.named_modules():
        if not isinstance(module, W8A16LinearLayer):
            continue
        linear = old[name]
        assert (module.in_features, module.out_features) == (
            linear.in_features,
            linear.out_features,
        )
        assert module.dtype == dtype
        assert torch.equal(module.int8_weights, torch.zeros_like(module.int8_weights))
        if linear.bias is None:
            assert module.bias is None
        else:
            assert module.bias.dtype == dtype
            assert torch.equal(module.bias, linear.bias.detach().reshape(1, -1))
    # the modules that are not linear layers are the same objects as before
    assert isinstance(model.embed, nn.Embedding) and isinstance(model.blocks[0].norm, nn.LayerNorm)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_replace_and_quantize_stays_close_to_the_float_model(dtype):
    float_model = tiny_lm(dtype)
    old_linears = {n: m for n, m in float_model.named_modules() if isinstance(m, nn.Linear)}
    weights_before = {n: m.weight.detach().clone() for n, m in old_linears.items()}
    model = tiny_lm(dtype)
    replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ["lm_head"])
    tokens = torch.arange(24).reshape(2, 12)
    with torch.no_grad():
        expected = float_model(tokens).double()
        output = model(tokens)
    assert output.dtype == dtype
    relative = ((output.double() - expected).norm() / expected.norm()).item()
    assert relative < {torch.float32: 1e-2, torch.float16: 1e-2, torch.bfloat16: 3e-2}[dtype]
    # each new layer holds exactly what a standalone layer makes of the old weight
    new = dict(model.named_modules())
    for name, linear in old_linears.items():
        if name == "lm_head":
            continue
        standalone = W8A16LinearLayer(linear.in_features, linear.out_features, dtype=dtype)
        standalone.quantize(linear.weight.detach())
        assert torch.equal(new[name].int8_weights, standalone.int8_weights), name
        assert torch.equal(new[name].scales, standalone.scales), name
        assert torch.equal(linear.weight, weights_before[name])  # the old layer is untouched


def test_replace_on_a_meta_skeleton_makes_meta_layers():
    """A skeleton costs no memory: replacing inside it keeps everything on ``meta``, whether
    or not the replacement runs inside the ``torch.device("meta")`` block."""
    with torch.device("meta"):
        inside = replace_linear_with_target(TinyLM(), W8A16LinearLayer, ["lm_head"])
        outside = TinyLM()
    replace_linear_with_target(outside, W8A16LinearLayer, ["lm_head"])
    for model in (inside, outside):
        tensors = list(model.parameters()) + list(model.buffers())
        assert tensors and all(t.is_meta for t in tensors)
        assert sum(isinstance(m, W8A16LinearLayer) for m in model.modules()) == 6


def test_deeply_nested_sequentials_are_reached():
    model = nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 2)))
    replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ["0.0.0"])
    assert kinds(model) == {"0.0.0": "Linear", "0.1": "W8A16LinearLayer"}


def test_replace_arguments_are_checked():
    model = tiny_lm()
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        replace_linear_with_target({"lm_head": None}, W8A16LinearLayer, [])
    with pytest.raises(TypeError, match="target_class must be an nn.Module class"):
        replace_linear_with_target(model, W8A16LinearLayer(2, 2), [])
    with pytest.raises(TypeError, match="target_class must be an nn.Module class"):
        replace_linear_with_target(model, "W8A16LinearLayer", [])
    with pytest.raises(TypeError, match=r"a list of names, e.g. \['lm_head'\]"):
        replace_linear_with_target(model, W8A16LinearLayer, "lm_head")

    class NoQuantize(nn.Module):
        def __init__(self, in_features, out_features, bias=True, dtype=None):
            super().__init__()

    with pytest.raises(TypeError, match="no quantize"):
        replace_linear_with_target_and_quantize(model, NoQuantize, [])
    # nothing was replaced by the calls that failed
    assert set(kinds(model).values()) == {"Linear"}


def test_quantizing_a_tied_head_makes_the_model_larger():
    """The embedding keeps the float matrix; the quantized head adds an int8 copy."""
    from support.models import model_size

    model = Outer()
    model.head.weight = model.emb.weight
    kept = replace_linear_with_target_and_quantize(deepcopy(model), W8A16LinearLayer, ["head"])
    both = replace_linear_with_target_and_quantize(deepcopy(model), W8A16LinearLayer, [])
    assert model_size(both).total == model_size(kept).total + 5 * 2 + 5 * 4  # int8 + scales
    assert both.emb.weight.dtype == torch.float32


def test_w8a16_size_arithmetic_on_a_small_model():
    """Quantizing a float32 linear layer of (out, in) saves 3 bytes per weight and costs 4
    bytes per output row (the scale); an embedding table left in float keeps its bytes."""
    import helper

    model = nn.Sequential(nn.Embedding(100, 16), nn.Linear(16, 32), nn.Linear(32, 8))
    before = models.model_size(model).total
    helper.replace_linear_with_target_and_quantize(model, W8A16LinearLayer)
    after = models.model_size(model)
    weights = 16 * 32 + 32 * 8
    assert before - after.total == 3 * weights - 4 * (32 + 8)
    assert after.by_dtype["int8"] == weights
    assert after.by_dtype["float32"] == 100 * 16 * 4 + 4 * (32 + 8) * 2  # table, scales, biases


# ------------------------------------------------------------------------------------------
# Casting a quantized model, and a layer registered under two names
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cast", ["to_bfloat16", "half", "double"])
def test_casting_the_layer_keeps_its_scales_in_float32(cast):
    """model.to(dtype) casts every float buffer; the layer keeps its scales float32 and exact."""
    layer = W8A16LinearLayer(16, 8)
    layer.quantize(seeded_randn(8, 16, seed=3))
    scales = layer.scales.clone()
    if cast == "to_bfloat16":
        layer.to(torch.bfloat16)
        dtype = torch.bfloat16
    else:
        getattr(layer, cast)()
        dtype = torch.float16 if cast == "half" else torch.float64
    assert layer.scales.dtype == torch.float32 and torch.equal(layer.scales, scales)
    assert layer.bias.dtype == dtype and layer.int8_weights.dtype == torch.int8
    assert layer(seeded_randn(2, 16, seed=4).to(dtype)).dtype == dtype


def test_module_to_dtype_keeps_the_float32_scales_and_the_int8_weights():
    """The lesson says: after .to(torch.bfloat16) the scales stay float32, the bias follows."""
    layer = helper.W8A16LinearLayer(3, 2).to(torch.bfloat16)
    assert layer.scales.dtype == torch.float32
    assert layer.bias.dtype == torch.bfloat16
    assert layer.int8_weights.dtype == torch.int8


def test_to_empty_from_meta_gives_float32_scales_on_the_cpu():
    """A skeleton built on meta and materialised with to_empty keeps float32 scales."""
    with torch.device("meta"):
        layer = W8A16LinearLayer(4, 2)
    layer.to_empty(device="cpu")
    assert layer.scales.device.type == "cpu" and layer.scales.dtype == torch.float32


def test_a_layer_registered_under_two_names_is_replaced_under_both():
    """nn.Sequential(lin, relu, lin): named_children() yields lin once; both places change."""
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    x = seeded_randn(3, 4, seed=5)
    expected = model(x)
    replace_linear_with_target_and_quantize(model, W8A16LinearLayer)
    assert isinstance(model[0], W8A16LinearLayer) and model[0] is model[2]
    assert torch.allclose(model(x), expected, atol=0.05)


# ------------------------------------------------------------------------------------------
# layer_names (lesson 08)
# ------------------------------------------------------------------------------------------


def test_layer_names_lists_dotted_paths_in_order_and_accepts_tuples_and_subclasses():
    model = Outer()
    assert layer_names(model) == ["first", "inner.fc", "head"]
    assert layer_names(model, nn.ReLU) == ["inner.act"]
    assert layer_names(model, (nn.Embedding, nn.ReLU)) == ["emb", "inner.act"]
    assert layer_names(model, nn.Module)[:2] == ["", "emb"]  # the model itself is ""

    class MyLinear(nn.Linear):
        pass

    model.inner.fc = MyLinear(2, 2)
    assert layer_names(model) == ["first", "inner.fc", "head"]


def test_layer_names_after_replacement_splits_replaced_and_kept():
    model = replace_linear_with_target_and_quantize(Outer(), W8A16LinearLayer, ["head"])
    assert layer_names(model, W8A16LinearLayer) == ["first", "inner.fc"]
    assert layer_names(model) == ["head"]


def test_layer_names_is_exported_from_helper():
    assert helper.layer_names is layer_names


# ------------------------------------------------------------------------------------------
# fake_quantize (lesson 10)
# ------------------------------------------------------------------------------------------


W = torch.tensor([[0.9, -0.2, 0.5, 0.1], [0.03, -0.01, 0.02, 0.0]])


def test_fake_quantize_at_2_bits_is_minus_s_zero_or_s_per_block():
    per_tensor = fake_quantize(W, 2, "per_tensor")
    assert torch.allclose(per_tensor, torch.tensor([[0.9, 0, 0.9, 0], [0, 0, 0, 0]]))
    assert torch.equal(per_tensor[1], torch.zeros(4))
    per_row = fake_quantize(W, 2, "per_channel")
    assert torch.allclose(per_row, torch.tensor([[0.9, 0, 0.9, 0], [0.03, 0, 0.03, 0]]))


def per_group_round_trip(weight, n_bits, group_size):
    """Symmetric fake quantization per group in plain torch (lesson 10's solution)."""
    q_max = 2 ** (n_bits - 1) - 1
    groups = weight.reshape(-1, group_size)
    scale = groups.abs().amax(dim=-1, keepdim=True) / q_max
    scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = torch.round(groups / scale).clamp(-(2 ** (n_bits - 1)), q_max)
    return (q * scale).reshape(weight.shape)


def test_fake_quantize_matches_a_hand_written_round_trip():
    weight = varied_rows_weight(8, 16, seed=3)
    for n_bits in (8, 4, 3, 2):
        expected = per_group_round_trip(weight, n_bits, 4)
        assert torch.allclose(fake_quantize(weight, n_bits, "per_group", 4), expected)
        per_row = per_group_round_trip(weight, n_bits, 16)
        assert torch.allclose(fake_quantize(weight, n_bits, "per_channel"), per_row)


def test_fake_quantize_of_an_integer_weight_is_float32():
    result = fake_quantize(torch.tensor([[3, -7, 1, 0]]), 4, "per_tensor")
    assert result.dtype == torch.float32
    assert torch.equal(result, torch.tensor([[3.0, -7.0, 1.0, 0.0]]))


def test_fake_quantize_keeps_shape_and_dtype_and_leaves_its_input_alone():
    weight = W.to(torch.bfloat16)
    before = weight.clone()
    result = fake_quantize(weight, 4, "per_group", group_size=2)
    assert result.dtype == torch.bfloat16 and result.shape == weight.shape
    assert torch.equal(weight, before)


# ------------------------------------------------------------------------------------------
# fake_quantize_linears and linears_bits_per_weight (lesson 10)
# ------------------------------------------------------------------------------------------


def test_fake_quantize_linears_returns_a_quantized_copy():
    model = tiny_mlp()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    quantized = fake_quantize_linears(model, 2, "per_channel")
    assert quantized is not model
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert torch.equal(quantized[0].weight, fake_quantize(model[0].weight.detach(), 2))
    assert torch.equal(quantized[2][0].weight, fake_quantize(model[2][0].weight.detach(), 2))
    assert torch.equal(quantized[0].bias, model[0].bias)  # biases stay in float


def test_fake_quantize_linears_only_the_named_layers():
    model = tiny_mlp()
    quantized = fake_quantize_linears(model, 2, "per_tensor", layers=["2.0"])
    assert torch.equal(quantized[0].weight, model[0].weight)
    assert not torch.equal(quantized[2][0].weight, model[2][0].weight)


def test_linears_bits_per_weight_weights_each_layer_by_its_size():
    model = tiny_mlp()  # 8x4 = 32 weights and 4x2 = 8 weights
    per_row = linears_bits_per_weight(model, 4, "per_channel")
    assert math.isclose(per_row, (32 * (4 + 32 / 8) + 8 * (4 + 32 / 4)) / 40)
    assert linears_bits_per_weight(model, 2, "per_group", group_size=2) == 18.0
    assert math.isclose(linears_bits_per_weight(model, 8, "per_tensor", scale_bits=16), 8.8)
    with pytest.raises(ValueError, match="no nn.Linear"):
        linears_bits_per_weight(nn.ReLU())


# ------------------------------------------------------------------------------------------
# plot_accuracy_vs_bits (lesson 10)
# ------------------------------------------------------------------------------------------


def test_plot_accuracy_vs_bits_draws_one_line_per_granularity():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    correct = {"per tensor": {8: 348, 4: 347, 2: 32}, "per channel": {8: 348, 4: 343, 2: 56}}
    fig = plot_accuracy_vs_bits(correct, 360, float_correct=348, n_classes=10, title="t")
    assert plt.get_fignums() == before
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["per tensor", "per channel", "float32 (348/360)", "guessing (1 in 10)"]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2]  # 8, 4, 2 bits from left to right
    assert list(ax.lines[1].get_ydata()) == [100 * c / 360 for c in (348, 343, 56)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8 bits", "4 bits", "2 bits"]
    assert ax.get_title() == "t" and ax.get_xlabel() and ax.get_ylabel()


# ------------------------------------------------------------------------------------------
# The numbers lesson 10 prints, and why they are the same on every CPU
# ------------------------------------------------------------------------------------------


GRANULARITIES = {
    "per tensor": ("per_tensor", None),
    "per channel": ("per_channel", None),
    "groups of 32": ("per_group", 32),
    "groups of 16": ("per_group", 16),
    "groups of 8": ("per_group", 8),
}

#: The notebook's table: images right out of 360, per bit width and granularity.
EXPECTED_RIGHT = {
    8: [348, 348, 348, 348, 348],
    4: [347, 343, 348, 346, 345],
    3: [333, 343, 342, 342, 347],
    2: [32, 56, 203, 195, 237],
}

#: One layer at a time at 2 bits (section 8).
EXPECTED_ONE_LAYER = {
    "hidden1": [33, 137, 207, 200, 273],
    "hidden2": [243, 322, 331, 325, 333],
    "classifier": [252, 289, 289, 313, 329],
}


@pytest.fixture(scope="module")
def digits():
    _, _, x_test, y_test = load_digits_split()
    return digits_classifier(), x_test, y_test


def notebook_models(model):
    """Every model whose predictions the notebook counts, with a name."""
    yield "float32", model
    yield "W8A16", replace_linear_with_target_and_quantize(digits_classifier(), W8A16LinearLayer)
    yield (
        "W8A16, head in float",
        replace_linear_with_target_and_quantize(
            digits_classifier(), W8A16LinearLayer, ["classifier"]
        ),
    )
    for n_bits in EXPECTED_RIGHT:
        for label, (granularity, size) in GRANULARITIES.items():
            yield f"{n_bits} bits {label}", fake_quantize_linears(model, n_bits, granularity, size)
    for layer in EXPECTED_ONE_LAYER:
        for label, (granularity, size) in GRANULARITIES.items():
            quantized = fake_quantize_linears(model, 2, granularity, size, layers=[layer])
            yield f"2 bits {label}, only {layer}", quantized


def test_the_notebooks_accuracy_table(digits):
    model, x_test, y_test = digits
    for n_bits, expected in EXPECTED_RIGHT.items():
        counts = [
            int((predict(fake_quantize_linears(model, n_bits, g, size), x_test) == y_test).sum())
            for g, size in GRANULARITIES.values()
        ]
        assert counts == expected, n_bits
    for layer, expected in EXPECTED_ONE_LAYER.items():
        counts = [
            int(
                (
                    predict(fake_quantize_linears(model, 2, g, size, layers=[layer]), x_test)
                    == y_test
                ).sum()
            )
            for g, size in GRANULARITIES.values()
        ]
        assert counts == expected, layer


def test_no_prediction_the_notebook_counts_is_near_a_tie(digits):
    """The gap between an image's two largest scores is at least 5e-4 for every image and
    every model the notebook measures; float32 products of 64 terms differ between CPU
    kernels by about 1e-6 here, so no CPU can swap the two. (The smallest gap we measured
    was 6.2e-4, for the classifier layer alone at 2 bits per channel.)"""
    model, x_test, _ = digits
    for name, quantized in notebook_models(model):
        with torch.no_grad():
            top2 = quantized(x_test).topk(2, dim=-1).values
        gap = (top2[:, 0] - top2[:, 1]).min().item()
        assert gap > 5e-4, f"{name}: two scores only {gap:.2e} apart"


def test_the_printed_confidences_are_far_from_a_rounding_boundary(digits):
    """Section 6 prints the float model's top probability to 2 decimals for the 5 images
    that change at 4 bits per channel, and the median: none lies near a half-way point."""
    model, x_test, _ = digits
    changed = torch.tensor([57, 98, 127, 150, 322])
    four_bit = predict(fake_quantize_linears(model, 4, "per_channel"), x_test)
    assert torch.equal((four_bit != predict(model, x_test)).nonzero().flatten(), changed)
    with torch.no_grad():
        confidence = model(x_test).softmax(dim=-1).amax(dim=-1).double()
    for value in [*confidence[changed].tolist(), confidence.median().item()]:
        distance = abs(value * 100 - math.floor(value * 100) - 0.5)
        assert distance > 0.01, value


def test_w8_a16_forward_takes_scales_of_shape_out_or_1_out():
    """The course's demo passes scales of shape (1, out); they broadcast over the output's last
    dimension like (out,) ones, and give the same result. (out, 1) stays refused."""
    weight, x = seeded_int8(5, 4), seeded_randn(3, 4, seed=2)
    scales = torch.linspace(0.1, 0.5, 5)
    flat = w8_a16_forward(weight, x, scales)
    assert torch.equal(w8_a16_forward(weight, x, scales.reshape(1, 5)), flat)
    assert torch.equal(flat, F.linear(x, weight.float()) * scales)
    with pytest.raises(ValueError, match=r"an \(out, 1\) scale would broadcast"):
        w8_a16_forward(weight, x, scales.reshape(5, 1))


def test_a_layer_inside_multihead_attention_is_left_alone():
    """nn.MultiheadAttention reads out_proj.weight itself: replacing out_proj would break the
    forward pass (AttributeError: no attribute 'weight'), so the replace functions skip it."""
    torch.manual_seed(0)
    model = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    x = torch.randn(3, 5, 8)
    replace_linear_with_target_and_quantize(model, W8A16LinearLayer)
    assert isinstance(model.self_attn.out_proj, nn.Linear)
    assert isinstance(model.linear1, W8A16LinearLayer) and isinstance(
        model.linear2, W8A16LinearLayer
    )
    assert model(x).shape == (3, 5, 8)


def test_a_failing_layer_leaves_the_model_as_it_was():
    """Every new layer is built (and quantized) before any is swapped in: a NaN in the second
    layer raises, and the first layer is still the float one."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    before = [type(m) for m in model]
    with pytest.raises(ValueError, match="NaN"):
        replace_linear_with_target_and_quantize(model, W8A16LinearLayer)
    assert [type(m) for m in model] == before == [nn.Linear, nn.Linear]


def test_layer_dtype_follows_a_cast_and_the_scales_stay_float32():
    layer = W8A16LinearLayer(4, 2)
    model = nn.Sequential(layer).to(torch.bfloat16)
    assert layer.dtype == torch.bfloat16 and "dtype=bfloat16" in repr(model)
    assert layer.scales.dtype == torch.float32 and layer.bias.dtype == torch.bfloat16
    model.to("cpu")
    assert layer.dtype == torch.bfloat16
