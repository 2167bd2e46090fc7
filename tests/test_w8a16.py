"""Tests for helper.py section 11: ``w8_a16_forward``, ``W8A16LinearLayer`` and the functions
that replace a model's ``nn.Linear`` layers (course lessons L4-A and L4-B).

Every expected value is computed here independently of helper.py: the dequantized weight
``int8 * scale`` built with plain torch and fed to ``F.linear`` (in float64 where the result
must be accurate), the course's own bfloat16 code for the wrap pitfall, and the bound that
per-row absmax quantization guarantees (each weight moves by at most half its row's scale).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helper import (
    W8A16LinearLayer,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
    w8_a16_forward,
)
from support.examples import seeded_randn, varied_rows_weight

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


def seeded_int8(rows: int, columns: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-128, 128, (rows, columns), generator=generator, dtype=torch.int8)


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


@pytest.mark.parametrize(
    "shape", [(8, 1), (1, 8), (4,), (9,), (), (8, 2)], ids=lambda s: f"scales{s}"
)
def test_scales_of_any_shape_but_out_are_a_clear_error(shape):
    """An (out, 1) scale would silently broadcast a (batch, out) output to (out, out)."""
    q = seeded_int8(8, 4)
    x = seeded_randn(8, 4, seed=1)  # batch == out: the silent broadcast would even "work"
    scales = torch.full(shape, 0.1)
    with pytest.raises(ValueError, match=r"scales must have shape \(8,\)"):
        w8_a16_forward(q, x, scales)


@pytest.mark.parametrize(
    "scales",
    [
        torch.ones(3, dtype=torch.int32),
        torch.ones(3, dtype=torch.int8),
        [0.1, 0.1, 0.1],
        0.1,
        None,
    ],
    ids=["int32", "int8", "list", "float", "None"],
)
def test_scales_that_are_not_a_float_tensor_are_a_type_error(scales):
    with pytest.raises(TypeError, match="scales must be a float tensor"):
        w8_a16_forward(seeded_int8(3, 4), torch.ones(2, 4), scales)


@pytest.mark.parametrize(
    "weight",
    [
        torch.ones(3, 4),  # the float weight instead of the quantized one
        torch.ones(3, 4, dtype=torch.int16),
        torch.ones(3, 4, dtype=torch.uint8),
        torch.ones(12, dtype=torch.int8),  # not 2-D
        torch.ones(1, 3, 4, dtype=torch.int8),
    ],
    ids=["float32", "int16", "uint8", "1-D", "3-D"],
)
def test_a_weight_that_is_not_a_2d_int8_tensor_is_a_type_error(weight):
    with pytest.raises(TypeError, match="weight"):
        w8_a16_forward(weight, torch.ones(2, 4), torch.ones(3))


def test_bad_inputs_and_biases_are_clear_errors():
    q, scales = seeded_int8(3, 4), torch.ones(3)
    with pytest.raises(TypeError, match="input must be a float tensor"):
        w8_a16_forward(q, torch.ones(2, 4, dtype=torch.int64), scales)
    with pytest.raises(ValueError, match="last dimension must be 4"):
        w8_a16_forward(q, torch.ones(2, 5), scales)
    with pytest.raises(ValueError, match="last dimension must be 4"):
        w8_a16_forward(q, torch.tensor(1.0), scales)
    for bias in (torch.ones(4), torch.ones(3, 1), torch.ones(2, 3)):
        with pytest.raises(ValueError, match=r"bias must have shape \(3,\) or \(1, 3\)"):
            w8_a16_forward(q, torch.ones(2, 4), scales, bias)
    for bias in ([0.0, 0.0, 0.0], torch.ones(3, dtype=torch.int64)):
        with pytest.raises(TypeError, match="bias must be a float tensor"):
            w8_a16_forward(q, torch.ones(2, 4), scales, bias)


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


@pytest.mark.parametrize("dtype", [torch.int8, torch.int64, "float32", float], ids=str)
def test_layer_refuses_a_non_float_dtype(dtype):
    with pytest.raises(TypeError, match="dtype"):
        W8A16LinearLayer(4, 2, dtype=dtype)


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


def test_bfloat16_scale_wrap_pitfall_course_code_gives_minus_128_ours_127():
    """The course keeps the scale in bfloat16: bfloat16(0.6626 / 127) is rounded down so far
    that 0.6626 divided by it is 127.5 in bfloat16, which rounds (half to even) to 128, and
    ``.to(torch.int8)`` wraps 128 to -128: the largest weight turns into the most negative
    one. A float32 scale and a clamp before the cast give 127."""
    w = torch.tensor([[0.6626, 0.1]], dtype=torch.bfloat16)
    # the course's code, step by step
    course_scales = w.abs().max(dim=-1).values / 127
    assert course_scales.dtype == torch.bfloat16
    divided = w / course_scales.unsqueeze(1)
    assert divided[0, 0].item() == 127.5  # beyond 127 before any cast
    assert course_scales.item() * 127 < w[0, 0].item()  # the scale was rounded down
    course_int8 = torch.round(divided).to(torch.int8)
    assert course_int8.tolist() == [[-128, 19]]
    # the layer
    layer = W8A16LinearLayer(2, 1, dtype=torch.bfloat16)
    layer.quantize(w)
    assert layer.int8_weights.tolist() == [[127, 19]]
    assert layer.scales.dtype == torch.float32
    torch.testing.assert_close(layer.scales, w.float().abs().amax(dim=1) / 127)
    # the course's wrapped weight flips the sign of the output; ours keeps it
    x = torch.ones(1, 2, dtype=torch.bfloat16)
    assert course_style_forward(course_int8, x, course_scales)[0, 0].item() < 0
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
        (["mlp"], ["blocks.0.mlp.0", "blocks.0.mlp.2", "blocks.1.mlp.0", "blocks.1.mlp.2"]),
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


def test_forward_in_row_blocks_equals_one_conversion(monkeypatch):
    """A weight larger than CHUNK_ELEMENTS is converted a block of rows at a time; with values
    whose products and sums are exact in float32 the result equals one big F.linear exactly."""
    from support import fast

    generator = torch.Generator().manual_seed(7)
    q = torch.randint(-127, 128, (37, 16), generator=generator, dtype=torch.int8)
    x = torch.randint(-8, 9, (3, 5, 16), generator=generator).float()
    scales = torch.full((37,), 0.5)
    expected = F.linear(x, q.float()) * 0.5
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 16 * 5)  # 5 rows per block, 8 blocks
    assert torch.equal(w8_a16_forward(q, x, scales), expected)
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 1)  # one row per block
    assert torch.equal(w8_a16_forward(q, x, scales), expected)
