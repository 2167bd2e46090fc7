"""Facts that lesson 12 (weight packing) states in its prose, beyond what its outputs show.

The digits classifier's shrink as a share of one large layer's, the codes a packed 2-bit or
4-bit layer never stores (for any weight, not only the lesson's), why lesson 11's W8A16 file
is 64 bytes larger than lesson 12's (a metadata note, and a header padded to a multiple of 8
bytes), and MiniLM's pooler exclusion under the course's rule for plain names.
"""

from __future__ import annotations

import json
import struct

import pytest
import torch

from helper import (
    W2A16LinearLayer,
    W4A16LinearLayer,
    W8A16LinearLayer,
    packed_model_bytes,
    packed_weight_bytes,
    replace_linear_with_target_and_quantize,
    unpack_weights,
)
from support.examples import seeded_randn, varied_rows_weight
from support.models import digits_classifier, load_minilm, model_size, save_quantized

LESSON_11_NOTE = "W8A16LinearLayer; kept in float: classifier"


def test_the_digits_classifier_gets_81_and_67_percent_of_one_layers_shrink():
    """Section 2: 6.44x of 7.98x at 4 bits (81%), 10.67x of 15.94x at 2 bits (67%, "about
    two-thirds"), 3.59x of 4.00x at 8 bits (90%)."""
    float_bytes = model_size(digits_classifier()).total
    shares = {}
    for bits in (8, 4, 2):
        model_shrink = float_bytes / packed_model_bytes(digits_classifier(), bits)
        layer_shrink = 4 * 4096 * 4096 / packed_weight_bytes((4096, 4096), bits)
        shares[bits] = round(100 * model_shrink / layer_shrink)
    assert shares == {8: 90, 4: 81, 2: 67}


@pytest.mark.parametrize("seed", range(6))
def test_a_w2a16_layer_never_stores_code_0_and_a_w4a16_layer_never_level_minus_8(seed):
    """Symmetric absmax per row: |w / s| <= q_max, so the most negative level (-2 at 2 bits,
    -8 at 4 bits) is never used, whatever the weight, a row of zeros included."""
    weight = seeded_randn(32, 48, seed=seed) * torch.logspace(-3, 2, 32).unsqueeze(1)
    weight[5] = 0.0
    weight[7, 3] = -weight[7].abs().max() * 10  # a row whose largest magnitude is negative
    two = W2A16LinearLayer(48, 32, bias=False)
    two.quantize(weight)
    assert set(unpack_weights(two.packed_weights, 2).unique().tolist()) <= {1, 2, 3}
    assert set(two.unpacked_weights().unique().tolist()) == {-1, 0, 1}
    four = W4A16LinearLayer(48, 32, bias=False)
    four.quantize(weight)
    assert four.unpacked_weights().min() >= -7


def test_the_lessons_w2a16_example_uses_codes_1_to_3():
    layer = W2A16LinearLayer(64, 64, bias=False)
    layer.quantize(varied_rows_weight(64, 64, seed=3))
    assert unpack_weights(layer.packed_weights, 2).unique().tolist() == [1, 2, 3]


def _header_length(path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_lesson_11s_file_is_larger_only_by_its_note_in_a_padded_header(tmp_path):
    """8,848 bytes without a note (lesson 12), 8,912 with lesson 11's note: the same tensors,
    and the header padded with spaces to a multiple of 8 bytes in both."""
    model = replace_linear_with_target_and_quantize(
        digits_classifier(), W8A16LinearLayer, ["classifier"]
    )
    plain = save_quantized(model, tmp_path / "plain.safetensors")
    noted = save_quantized(model, tmp_path / "noted.safetensors", note=LESSON_11_NOTE)
    assert (plain, noted) == (8_848, 8_912)
    for name, size in (("plain", plain), ("noted", noted)):
        path = tmp_path / f"{name}.safetensors"
        length = _header_length(path)
        assert length % 8 == 0
        assert size == 8 + length + model_size(model).total
        text = path.read_bytes()[8 : 8 + length].decode()
        assert text.endswith("}" + " " * (len(text) - len(text.rstrip(" "))))
        assert len(text) - len(text.rstrip(" ")) < 8  # padding only, up to a multiple of 8
        header = json.loads(text)
        assert header.get("__metadata__") == ({"note": LESSON_11_NOTE} if name == "noted" else None)
    assert _header_length(tmp_path / "noted.safetensors") - _header_length(
        tmp_path / "plain.safetensors"
    ) == (noted - plain)


@pytest.fixture(scope="module")
def minilm_bert():
    return load_minilm()[0].auto_model


def test_minilm_keeps_its_pooler_in_float_with_the_dotted_path_only(minilm_bert):
    """ "pooler" names the BertPooler container: under the course's rule it keeps nothing;
    "pooler.dense" keeps the pooler's linear layer (384 x 384) in float32, the sizes the
    lesson prints (59.1, 53.8, 51.1 MB)."""
    sizes = {bits: packed_model_bytes(minilm_bert, bits, ["pooler.dense"]) for bits in (8, 4, 2)}
    assert sizes == {8: 59_093_504, 4: 53_785_088, 2: 51_130_880}
    for bits in (8, 4, 2):
        assert packed_model_bytes(minilm_bert, bits, ["pooler"]) == packed_model_bytes(
            minilm_bert, bits
        )
    dense = minilm_bert.pooler.dense.weight
    assert sizes[4] - packed_model_bytes(minilm_bert, 4) == (
        dense.nbytes - packed_weight_bytes(dense.shape, 4)
    )
