"""The facts lesson 08 states about models it cannot run itself, checked offline.

* DETR, the course's L4-C model, built on the ``meta`` device from its configuration alone
  (no download: the network is shut for the test): 100 ``nn.Linear`` layers; the course's list
  ``["0", "1", "2", "class_labels_classifier"]`` keeps 4 of them in float under the course's
  rule (a course-style function written here, and helper), and 52 under a rule that also lets
  a container's name stop the walk (the old helper's).
* The course's bias assignment keeps the old ``(out,)`` Parameter.
* ``nn.MultiheadAttention`` reads ``out_proj.weight`` itself: a course-style replacement breaks
  ``nn.TransformerEncoderLayer``; helper leaves that layer alone.
* The share of the output layer (``lm_head``) in the course's LLMs, from their public
  configurations: opt-125m 30.8% (tied to the embedding), codegen-350M-mono 14.7%, and 1.9%
  in Llama-2-7b.
* torchao 0.18's weight-only int8 path multiplies the input by the int8 values in the input's
  dtype: a float16 token of size 100 overflows to ``inf`` there, and not in our layer.
"""

from __future__ import annotations

import copy
import socket

import pytest
import torch
from torch import nn

from helper import (
    W8A16LinearLayer,
    layer_names,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
)
from support.examples import seeded_randn
from support.models import quiet_torchao_import

COURSE_DETR_LIST = ["0", "1", "2", "class_labels_classifier"]


def course_replace_linear_with_target(module, target_class, module_name_to_exclude):
    """The course's L4-B function as the lesson writes it: names are checked on nn.Linear
    children only, every other child is walked into, the old bias Parameter is reused."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            old_bias = child.bias
            new = target_class(
                child.in_features, child.out_features, old_bias is not None, child.weight.dtype
            )
            setattr(module, name, new)
            if old_bias is not None:
                getattr(module, name).bias = old_bias
        else:
            course_replace_linear_with_target(child, target_class, module_name_to_exclude)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def transformers_models():
    """transformers' model classes, imported without torchao's log lines."""
    with quiet_torchao_import():
        import transformers
    return transformers


def meta_detr(transformers):
    """DETR-resnet-50's architecture on the meta device, from its configuration alone."""
    config = transformers.DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False)
    with torch.device("meta"):
        return transformers.DetrForObjectDetection(config)


def test_detr_builds_offline_with_100_linear_layers(no_network, transformers_models):
    assert len(layer_names(meta_detr(transformers_models))) == 100


def test_the_course_rule_keeps_4_of_detrs_linear_layers(no_network, transformers_models):
    """The course's function and helper's keep the same four layers: the box head's three
    (named 0, 1, 2) and the class head."""
    kept = ["class_labels_classifier", *(f"bbox_predictor.layers.{i}" for i in range(3))]
    for replace in (course_replace_linear_with_target, replace_linear_with_target):
        model = meta_detr(transformers_models)
        replace(model, W8A16LinearLayer, COURSE_DETR_LIST)
        assert layer_names(model) == kept
        assert len(layer_names(model, W8A16LinearLayer)) == 96


def test_a_rule_that_stops_at_containers_would_keep_52(no_network, transformers_models):
    """The old helper's rule: a child whose name is in the list is skipped with everything
    inside it, so encoder and decoder layers 0 to 2 stay in float."""
    paths = layer_names(meta_detr(transformers_models))
    stopped = [p for p in paths if set(p.split(".")) & set(COURSE_DETR_LIST)]
    assert len(stopped) == 52
    assert sum(p.startswith("model.encoder.layers.") for p in stopped) == 18  # 3 layers x 6
    assert sum(p.startswith("model.decoder.layers.") for p in stopped) == 30  # 3 layers x 10


def test_the_course_bias_assignment_keeps_an_out_parameter():
    """`new_module.bias = old_bias` turns the new layer's bias into the old (out,) Parameter,
    shared with the old layer; helper copies the values into a (1, out) buffer."""
    model = nn.Sequential(nn.Linear(3, 2))
    course_replace_linear_with_target(model, W8A16LinearLayer, [])
    assert isinstance(model[0].bias, nn.Parameter) and model[0].bias.shape == (2,)
    model = replace_linear_with_target(nn.Sequential(nn.Linear(3, 2)), W8A16LinearLayer, [])
    assert not isinstance(model[0].bias, nn.Parameter) and model[0].bias.shape == (1, 2)
    assert "bias" in dict(model[0].named_buffers())


def test_a_course_style_replacement_breaks_multihead_attention_and_helper_does_not():
    torch.manual_seed(0)
    encoder_layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    x = seeded_randn(1, 3, 8)
    course = copy.deepcopy(encoder_layer)
    course_replace_linear_with_target(course, W8A16LinearLayer, [])
    assert isinstance(course.self_attn.out_proj, W8A16LinearLayer)
    with pytest.raises(AttributeError, match="weight"):
        course(x)
    ours = replace_linear_with_target_and_quantize(
        copy.deepcopy(encoder_layer), W8A16LinearLayer, []
    )
    assert layer_names(ours) == ["self_attn.out_proj"]
    assert layer_names(ours, W8A16LinearLayer) == ["linear1", "linear2"]
    with torch.no_grad():
        assert torch.isfinite(ours(x)).all()


@pytest.mark.parametrize(
    ("name", "expected_total", "expected_share", "tied"),
    [
        ("opt-125m", 125_239_296, 0.308, True),
        ("codegen-350M-mono", 356_712_448, 0.147, False),
        ("Llama-2-7b", 6_738_415_616, 0.019, False),
    ],
)
def test_the_head_share_of_the_course_llms(
    no_network, transformers_models, name, expected_total, expected_share, tied
):
    """The public configurations (opt-125m and Llama-2-7b are transformers' defaults), built
    on the meta device: parameters, and the share of the lm_head (each tensor counted once)."""
    t = transformers_models
    configs = {
        "opt-125m": (t.OPTForCausalLM, t.OPTConfig()),
        "codegen-350M-mono": (
            t.CodeGenForCausalLM,
            t.CodeGenConfig(
                vocab_size=51200, n_embd=1024, n_layer=20, n_head=16, rotary_dim=32, n_ctx=2048
            ),
        ),
        "Llama-2-7b": (t.LlamaForCausalLM, t.LlamaConfig()),
    }
    model_class, config = configs[name]
    with torch.device("meta"):
        model = model_class(config)
    total = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for p in model.lm_head.parameters())
    assert total == expected_total
    assert round(head / total, 3) == expected_share
    assert (model.lm_head.weight is model.get_input_embeddings().weight) == tied


def test_torchao_weight_only_int8_overflows_in_float16_where_our_layer_does_not():
    """torchao's Int8Tensor computes x @ qdata.T in the input's dtype, then the scale."""
    with quiet_torchao_import():
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    weight = 0.02 * seeded_randn(256, 1024, seed=1)
    half = nn.Sequential(nn.Linear(1024, 256, bias=False, dtype=torch.float16))
    with torch.no_grad():
        half[0].weight.copy_(weight)
    theirs, ours = copy.deepcopy(half), copy.deepcopy(half)
    quantize_(theirs, Int8WeightOnlyConfig())
    replace_linear_with_target_and_quantize(ours, W8A16LinearLayer, [])
    tokens = (seeded_randn(3, 1024, seed=4) * torch.tensor([[1.0], [10.0], [100.0]])).half()
    with torch.no_grad():
        y_theirs, y_ours = theirs(tokens), ours(tokens)
    y_float = tokens.float() @ weight.T
    assert y_theirs[:2].isfinite().all() and y_theirs[2].isinf().any()
    assert y_ours.isfinite().all()
    assert y_float.abs().max() < 65504  # the true outputs fit in float16
