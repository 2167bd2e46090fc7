"""Tests for helper.py section 12: packing low-bit values into bytes (course lesson L5), offset
binary, the storage counts, the packed linear layer and its plot.

Expected bytes are computed here without helper.py: from the course's examples, from binary
literals written out by hand, and from a per-element Python reference that builds every byte
with integer arithmetic (``value * 2**(bits * position)``, no shifts, no tensors). Bad input
is in test_bad_input.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import u8
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helper import (
    PACK_BITS,
    PackedLinearLayer,
    W2A16LinearLayer,
    W4A16LinearLayer,
    W8A16LinearLayer,
    fake_quantize,
    from_offset_binary,
    layer_names,
    pack_weights,
    pack_weights_loop,
    packed_model_bytes,
    packed_weight_bytes,
    plot_packed_bits,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
    to_offset_binary,
    unpack_weights,
    w8_a16_forward,
)
from support import fast, models
from support.examples import varied_rows_weight

#: The hypothesis profile (conftest.py) with 120 examples per property.
PROPERTY = settings(max_examples=120)

LOW_BITS = (1, 2, 4)


def reference_pack(rows: list[list[int]], bits: int) -> list[list[int]]:
    """Pack Python lists with integer arithmetic only: value i of a byte times 2**(bits * i)."""
    per_byte = 8 // bits
    return [
        [
            sum(row[start + i] * 2 ** (bits * i) for i in range(per_byte))
            for start in range(0, len(row), per_byte)
        ]
        for row in rows
    ]


# ------------------------------------------------------------------------------------------
# The course's examples and hand-written bytes
# ------------------------------------------------------------------------------------------


def test_course_example_packs_to_177_and_back():
    packed = pack_weights(u8([1, 0, 3, 2]), 2)
    assert packed.dtype == torch.uint8 and packed.tolist() == [177]
    assert 177 == 0b10_11_00_01  # value 0 in the lowest two bits
    unpacked = unpack_weights(packed, 2)
    assert unpacked.dtype == torch.uint8 and unpacked.tolist() == [1, 0, 3, 2]


def test_course_longer_example_two_bytes():
    """The course's second example: eight 2-bit values into two bytes."""
    values = u8([1, 0, 3, 2, 3, 3, 3, 3])
    assert pack_weights(values, 2).tolist() == [177, 255]
    assert unpack_weights(u8([177, 255]), 2).tolist() == values.tolist()


@pytest.mark.parametrize(
    ("values", "bits", "expected"),
    [
        ([1, 0, 1, 1, 0, 0, 1, 0], 1, [0b01001101]),
        ([0, 1, 2, 3], 2, [0b11100100]),
        ([9, 2], 4, [0b0010_1001]),
        ([15, 0, 0, 15], 4, [15, 240]),
        ([200, 7], 8, [200, 7]),
    ],
)
def test_hand_written_bytes(values, bits, expected):
    assert pack_weights(u8(values), bits).tolist() == expected
    assert unpack_weights(u8(expected), bits).tolist() == values


def test_pack_along_the_last_dimension_of_a_2d_and_3d_tensor():
    rows = [[1, 0, 3, 2, 0, 1, 2, 3], [3, 3, 3, 3, 0, 0, 0, 0]]
    packed = pack_weights(u8(rows), 2)
    assert packed.shape == (2, 2)
    assert packed.tolist() == reference_pack(rows, 2) == [[177, 0b11100100], [255, 0]]
    stacked = u8([rows, rows[::-1], rows])
    assert pack_weights(stacked, 2).shape == (3, 2, 2)
    assert torch.equal(pack_weights(stacked, 2)[1], packed.flip(0))


def test_bits_8_is_a_copy():
    values = u8([[0, 255, 17]])
    packed = pack_weights(values, 8)
    assert torch.equal(packed, values) and packed.data_ptr() != values.data_ptr()
    assert torch.equal(unpack_weights(packed, 8), values)


def test_loop_version_gives_the_same_bytes():
    generator = torch.Generator().manual_seed(3)
    for bits in LOW_BITS:
        values = torch.randint(0, 2**bits, (96,), generator=generator).to(torch.uint8)
        assert torch.equal(pack_weights_loop(values, bits), pack_weights(values, bits))


def test_empty_last_dimension():
    assert pack_weights(torch.zeros(3, 0, dtype=torch.uint8), 2).shape == (3, 0)
    assert unpack_weights(torch.zeros(3, 0, dtype=torch.uint8), 4).shape == (3, 0)


# ------------------------------------------------------------------------------------------
# Round trips (hypothesis)
# ------------------------------------------------------------------------------------------


@st.composite
def packable(draw, pad: bool = False):
    """(values, bits): a uint8 tensor of 1 to 3 dimensions whose values fit in ``bits``; its
    last dimension is a multiple of 8 // bits unless ``pad``."""
    bits = draw(st.sampled_from(PACK_BITS))
    per_byte = 8 // bits
    leading = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    if pad:
        last = draw(st.integers(1, 23))
    else:
        last = per_byte * draw(st.integers(0, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    shape = (*leading, last)
    values = torch.randint(0, 2**bits, shape, generator=generator).to(torch.uint8)
    return values, bits


@PROPERTY
@given(packable())
def test_property_round_trip_every_width_and_shape(case):
    values, bits = case
    before = values.clone()
    packed = pack_weights(values, bits)
    assert packed.dtype == torch.uint8
    assert packed.shape == (*values.shape[:-1], values.shape[-1] * bits // 8)
    assert torch.equal(values, before)  # the input is untouched
    packed_before = packed.clone()
    unpacked = unpack_weights(packed, bits)
    assert torch.equal(packed, packed_before)
    assert unpacked.dtype == torch.uint8 and torch.equal(unpacked, values)


@PROPERTY
@given(packable())
def test_property_bytes_equal_the_integer_reference(case):
    values, bits = case
    n_rows = math.prod(values.shape[:-1])
    rows = values.reshape(n_rows, values.shape[-1]).tolist()
    expected = reference_pack(rows, bits)
    packed = pack_weights(values, bits)
    assert packed.reshape(n_rows, packed.shape[-1]).tolist() == expected


@PROPERTY
@given(packable(pad=True))
def test_property_padding_and_shape_restore_the_original(case):
    values, bits = case
    per_byte = 8 // bits
    packed = pack_weights(values, bits, pad=True)
    assert packed.shape[-1] == math.ceil(values.shape[-1] / per_byte)
    restored = unpack_weights(packed, bits, shape=values.shape)
    assert restored.is_contiguous() and torch.equal(restored, values)
    padded = unpack_weights(packed, bits)
    assert padded.shape[-1] == packed.shape[-1] * per_byte
    assert not bool(padded[..., values.shape[-1] :].any())  # the padding is zeros


def test_pad_on_an_exact_multiple_changes_nothing():
    values = u8([[1, 2, 3, 0], [0, 1, 1, 1]])
    assert torch.equal(pack_weights(values, 2, pad=True), pack_weights(values, 2))
    assert torch.equal(unpack_weights(pack_weights(values, 2), 2, shape=(2, 4)), values)


def test_inputs_are_not_modified_and_results_are_new_tensors():
    values = u8([[3, 1, 2, 0, 1, 1, 1, 1]])
    view = values[:, :]
    packed = pack_weights(view, 2)
    assert values.tolist() == [[3, 1, 2, 0, 1, 1, 1, 1]]
    assert packed.data_ptr() != values.data_ptr()
    unpacked = unpack_weights(packed, 2)
    assert packed.tolist() == [[0b00_10_01_11, 0b01010101]]
    assert torch.equal(unpacked, values)
    unpacked[0, 0] = 0
    assert packed.tolist() == [[0b00_10_01_11, 0b01010101]]


def test_non_contiguous_input():
    values = u8([[1, 0], [0, 1], [3, 1], [2, 2]]).T  # (2, 4), not contiguous
    assert not values.is_contiguous()
    assert pack_weights(values, 2).tolist() == reference_pack(values.tolist(), 2)


# ------------------------------------------------------------------------------------------
# Lengths and shapes that do and do not fit
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "bits"), [(3, 2), (1, 4), (5, 4), (7, 1), (9, 2)])
def test_a_length_that_is_not_a_multiple_is_refused_unless_padded(length, bits):
    values = torch.zeros(length, dtype=torch.uint8)
    with pytest.raises(ValueError, match="pad=True"):
        pack_weights(values, bits)
    assert pack_weights(values, bits, pad=True).shape == (math.ceil(length * bits / 8),)


@pytest.mark.parametrize(
    "shape", [(5,), (2, 3), (8,), (0,), (4, 1)], ids=lambda s: "x".join(map(str, s))
)
def test_unpack_shape_must_fit(shape):
    packed = pack_weights(u8([1, 2, 3, 0, 1, 2]), 2, pad=True)  # 2 bytes: 5 to 8 values fit
    if shape in ((5,), (8,)):
        assert unpack_weights(packed, 2, shape=shape).shape == shape
    else:
        with pytest.raises(ValueError, match="does not fit the packed tensor"):
            unpack_weights(packed, 2, shape=shape)


# ------------------------------------------------------------------------------------------
# Offset binary
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_offset_binary_round_trip_over_the_whole_signed_range(bits):
    q = torch.arange(-(2 ** (bits - 1)), 2 ** (bits - 1), dtype=torch.int8)
    before = q.clone()
    u = to_offset_binary(q, bits)
    assert u.dtype == torch.uint8 and u.tolist() == list(range(2**bits))
    assert torch.equal(q, before)
    back = from_offset_binary(u, bits)
    assert back.dtype == torch.int8 and torch.equal(back, q)


def test_offset_binary_examples_and_packing():
    q = torch.tensor([-8, -1, 0, 7], dtype=torch.int8)
    assert to_offset_binary(q, 4).tolist() == [0, 7, 8, 15]
    int2 = torch.tensor([[-2, -1, 0, 1]], dtype=torch.int8)
    packed = pack_weights(to_offset_binary(int2, 2), 2)
    assert packed.tolist() == [[0b11_10_01_00]]
    assert torch.equal(from_offset_binary(unpack_weights(packed, 2), 2), int2)


def test_offset_binary_accepts_any_integer_dtype():
    for dtype in (torch.int16, torch.int32, torch.int64, torch.uint8):
        assert to_offset_binary(torch.tensor([0, 1], dtype=dtype), 2).tolist() == [2, 3]


# ------------------------------------------------------------------------------------------
# Storage counts
# ------------------------------------------------------------------------------------------


def test_packed_weight_bytes():
    assert packed_weight_bytes((4096, 4096), 4) == 4096 * 4096 // 2 + 4096 * 4
    assert packed_weight_bytes((4096, 4096), 2) == 4096 * 1024 + 4096 * 4
    assert packed_weight_bytes((4096, 4096), 8, scale_bytes=2) == 4096 * 4096 + 4096 * 2
    assert packed_weight_bytes((10, 3), 2) == 10 * 1 + 40  # each row padded to a whole byte
    with pytest.raises(ValueError, match="out_features, in_features"):
        packed_weight_bytes((4,), 4)
    with pytest.raises(ValueError, match="divides 8"):
        packed_weight_bytes((4, 4), 3)


def test_packed_model_bytes_matches_the_real_packed_model():
    """The prediction equals model_size of the model with its linears really replaced."""
    for cls, bits in ((W4A16LinearLayer, 4), (W2A16LinearLayer, 2)):
        model = models.digits_classifier()
        predicted = packed_model_bytes(model, bits)
        assert (
            predicted
            == models.model_size(replace_linear_with_target_and_quantize(model, cls)).total
        )
    model = models.digits_classifier()
    predicted = packed_model_bytes(model, 4, ["classifier"])
    replaced = replace_linear_with_target_and_quantize(model, W4A16LinearLayer, ["classifier"])
    assert predicted == models.model_size(replaced).total
    int8 = replace_linear_with_target_and_quantize(models.digits_classifier(), W8A16LinearLayer)
    assert packed_model_bytes(models.digits_classifier(), 8) == models.model_size(int8).total


def test_packed_model_bytes_excludes_by_name_and_path_and_counts_shared_tensors_once():
    """The exclusion rule of the replace functions: a plain name keeps every nn.Linear of that
    own name in float, at any depth (the course's rule; a container's name does not count); a
    dotted path keeps the module there."""
    inner = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 4))
    model = nn.Sequential(nn.Linear(8, 8), inner)
    float_bytes = sum(p.numel() * 4 for p in model.parameters())
    packed_0 = float_bytes - 8 * 8 * 4 + packed_weight_bytes((8, 8), 4)  # "0" packed
    # "1" is the name of the container (walked into) and of its second linear (kept)
    assert packed_model_bytes(model, 4, ["1"]) == (
        packed_0 - 4 * 8 * 4 + packed_weight_bytes((4, 8), 4)
    )
    # "1.0" is a path: that one layer stays, "0" and "1.1" are packed
    assert packed_model_bytes(model, 4, ["1.0"]) == (
        packed_0 - 4 * 4 * 4 + packed_weight_bytes((4, 4), 4)
    )
    # the plain name "0" keeps both linears called "0" ("0" and "1.0"), the path "1.1" the last
    assert packed_model_bytes(model, 4, ["0", "1.1"]) == float_bytes
    shared = nn.Linear(4, 4)
    tied = nn.Sequential(shared, shared)
    assert packed_model_bytes(tied, 2) == packed_weight_bytes((4, 4), 2) + 4 * 4
    with pytest.raises(TypeError, match="list of names"):
        packed_model_bytes(model, 4, "1")
    with pytest.raises(TypeError, match="nn.Module"):
        packed_model_bytes("model", 4)


# ------------------------------------------------------------------------------------------
# The packed layer
# ------------------------------------------------------------------------------------------


def independent_levels(weight: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Symmetric per-row levels in plain torch: round(w / (max|row| / q_max)), clamped."""
    q_max = 2 ** (n_bits - 1) - 1
    scale = (weight.abs().amax(dim=1, keepdim=True).double() / q_max).clamp(
        min=torch.finfo(torch.float32).eps
    )
    return torch.round(weight.double() / scale).clamp(-q_max - 1, q_max).to(torch.int8)


def assert_equal_up_to_rounding(layer, x: torch.Tensor, levels: torch.Tensor) -> None:
    """The packed forward (one product per bit position, the offset taken out once) against
    unpacking first and ``w8_a16_forward``: the same sums added in another order. Each output
    may differ by float32 rounding of the terms it adds, the offset's ``2**(n - 1) * |x|``
    included: at most (terms + 2) * eps * scale * sum_i |x_i| (|u_i| + 2**(n - 1))."""
    expected = w8_a16_forward(levels, x, layer.scales, layer.bias)
    with torch.no_grad():
        got = layer(x)
    offset = 2 ** (layer.n_bits - 1)
    u = levels.double().abs() + 2 * offset  # |q| + offset >= |u|, and the offset term itself
    terms = x.shape[-1] + 2
    bound = terms * torch.finfo(torch.float32).eps * (x.double().abs() @ u.T) * layer.scales
    assert bool(((got.double() - expected.double()).abs() <= bound + 1e-30).all())


@pytest.mark.parametrize("n_bits", [2, 4, 8])
@pytest.mark.parametrize("in_features", [8, 7, 5, 1])
def test_layer_stores_packed_levels_and_forward_uses_them(n_bits, in_features):
    weight = varied_rows_weight(6, in_features, seed=n_bits)
    layer = PackedLinearLayer(in_features, 6, n_bits=n_bits)
    layer.quantize(weight)
    per_byte = 8 // n_bits
    assert layer.packed_weights.dtype == torch.uint8
    assert layer.packed_weights.shape == (6, math.ceil(in_features / per_byte))
    assert layer.scales.dtype == torch.float32 and layer.scales.shape == (6,)
    levels = layer.unpacked_weights()
    assert levels.dtype == torch.int8 and torch.equal(levels, independent_levels(weight, n_bits))
    offset = (levels.to(torch.int16) + 2 ** (n_bits - 1)).to(torch.uint8).tolist()
    padded = [row + [0] * (-len(row) % per_byte) for row in offset]
    assert layer.packed_weights.tolist() == reference_pack(padded, n_bits)
    x = varied_rows_weight(3, in_features, seed=11)
    with torch.no_grad():
        layer.bias.copy_(torch.arange(6.0).reshape(1, 6) / 10)
    assert_equal_up_to_rounding(layer, x, levels)
    dequantized = fake_quantize(weight, n_bits, "per_channel")
    expected = F.linear(x.double(), dequantized.double(), layer.bias.double().reshape(-1))
    assert torch.allclose(layer(x).double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_bits", [2, 4, 8])
@pytest.mark.parametrize(
    ("out_features", "in_features", "batch"),
    [(64, 96, (3,)), (37, 30, (2, 5)), (300, 256, (1,))],
    ids=["batch", "padded-rows-3d-input", "one-token"],
)
def test_packed_forward_in_row_blocks_is_unpack_first_up_to_rounding(
    n_bits, out_features, in_features, batch, monkeypatch
):
    """Row blocks of the planes (a small chunk size forces several), padded rows, batches of
    any shape: the same as unpacking first, to float rounding; float16 and float64 inputs keep
    their dtype."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 16 * 7)
    generator = torch.Generator().manual_seed(n_bits * 100 + in_features)
    layer = PackedLinearLayer(in_features, out_features, n_bits=n_bits)
    layer.quantize(torch.randn(out_features, in_features, generator=generator))
    with torch.no_grad():
        layer.bias.normal_(generator=generator)
    x = torch.randn(*batch, in_features, generator=generator)
    assert_equal_up_to_rounding(layer, x, layer.unpacked_weights())
    for dtype in (torch.float16, torch.float64):
        with torch.no_grad():
            assert layer(x.to(dtype)).dtype == dtype


def test_subclasses_fix_the_width_and_the_constructor_can_override():
    assert W4A16LinearLayer(4, 2).n_bits == 4 and W2A16LinearLayer(4, 2).n_bits == 2
    assert PackedLinearLayer(4, 2).n_bits == 4
    assert W4A16LinearLayer(4, 2, n_bits=2).n_bits == 2
    assert W2A16LinearLayer(8, 3).packed_weights.shape == (3, 2)
    assert "n_bits=2" in repr(W2A16LinearLayer(8, 3))


def test_layer_dtype_bias_and_batched_input():
    layer = W4A16LinearLayer(8, 3, bias=False, dtype=torch.bfloat16)
    layer.quantize(varied_rows_weight(3, 8, seed=2))
    assert layer.bias is None
    x = varied_rows_weight(4, 8, seed=5).to(torch.bfloat16).reshape(2, 2, 8)
    assert layer(x).dtype == torch.bfloat16 and layer(x).shape == (2, 2, 3)


def test_layer_quantize_does_not_modify_the_weights():
    weight = varied_rows_weight(4, 8, seed=1)
    before = weight.clone()
    W2A16LinearLayer(8, 4).quantize(weight)
    assert torch.equal(weight, before)


def test_replace_and_save_load_round_trip(tmp_path):
    model = replace_linear_with_target_and_quantize(
        models.digits_classifier(), W4A16LinearLayer, ["classifier"]
    )
    assert layer_names(model, W4A16LinearLayer) == ["hidden1", "hidden2"]
    assert layer_names(model) == ["classifier"]
    reference = models.digits_classifier()
    assert torch.equal(model.hidden1.bias, reference.hidden1.bias.reshape(1, -1))
    path = tmp_path / "digits_w4.safetensors"
    size = models.save_quantized(model, path)
    assert size == path.stat().st_size
    with torch.device("meta"):
        skeleton = models.DigitsMLP()
    replace_linear_with_target(skeleton, W4A16LinearLayer, ["classifier"])
    loaded = models.load_quantized(skeleton, path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    x = models.load_digits_split()[2][:20]
    assert torch.equal(loaded(x), model(x))


def test_casting_a_packed_layer_keeps_its_scales_in_float32():
    """Like W8A16LinearLayer: model.to(torch.bfloat16) leaves the float32 scales as they are."""
    layer = W4A16LinearLayer(8, 3)
    layer.quantize(varied_rows_weight(3, 8, seed=4))
    scales = layer.scales.clone()
    layer.to(torch.bfloat16)
    assert layer.scales.dtype == torch.float32 and torch.equal(layer.scales, scales)
    assert layer.bias.dtype == torch.bfloat16 and layer.packed_weights.dtype == torch.uint8
    assert layer(torch.ones(2, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16


# ------------------------------------------------------------------------------------------
# The plot
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "values"), [(1, [1, 0, 1, 1, 0, 0, 1, 0]), (2, [1, 0, 3, 2]), (4, [9, 2, 15, 0])]
)
def test_plot_packed_bits(bits, values):
    import matplotlib.pyplot as plt

    fig = plot_packed_bits(u8(values), bits)
    assert fig.number not in plt.get_fignums()  # closed for pyplot
    texts = [t.get_text() for t in fig.axes[0].texts]
    for byte in pack_weights(u8(values), bits).tolist():
        assert f"0b{byte:08b} = {byte}" in " ".join(texts)
    assert "lowest bits first" in fig.axes[0].get_title()
