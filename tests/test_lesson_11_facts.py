"""Facts that lesson 11 (save and load) states in its prose, beyond what its outputs show.

Tied weights (the course's opt-125m ties its head to its embedding): a pickle keeps the tie,
safetensors' ``save_file`` refuses it, ``save_model`` stores the tensor once and
``load_model`` cannot fill a meta skeleton; BERT's buffers are left out of the state dict by
``persistent=False``, not by being created in ``__init__``; the course's model in bfloat16
takes 2 bytes per weight.
"""

from __future__ import annotations

import inspect
import io
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_file, save_model
from torch import nn

from helper import (
    W8A16LinearLayer,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
)
from support.examples import seeded_randn
from support.models import load_quantized, model_size, save_quantized, tie_groups


class TinyLM(nn.Module):
    """The lesson's language model in miniature: the head is tied to the embedding."""

    def __init__(self, vocab: int = 16, width: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, width)
        self.body = nn.Linear(width, width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token scores for ``ids``."""
        return self.lm_head(torch.relu(self.body(self.emb(ids))))


def quantized_tiny() -> TinyLM:
    """The lesson's ``tiny``: seeded values, every linear layer but the head in W8A16."""
    model = TinyLM()
    with torch.no_grad():
        for seed, parameter in enumerate(model.parameters()):
            parameter.copy_(seeded_randn(*parameter.shape, seed=seed))
    return replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ["lm_head"])


def tiny_skeleton() -> TinyLM:
    """The lesson's skeleton: TinyLM on the meta device, the same layers replaced."""
    with torch.device("meta"):
        return replace_linear_with_target(TinyLM(), W8A16LinearLayer, ["lm_head"])


def test_a_pickle_stores_a_tied_tensor_once_and_shares_it_again():
    """torch.save (the course's way): one storage in the file, shared again after loading."""
    model = quantized_tiny()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    untied = io.BytesIO()
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, untied)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["emb.weight"].data_ptr() == state["lm_head.weight"].data_ptr()
    assert len(untied.getvalue()) - len(buffer.getvalue()) >= model.emb.weight.nbytes


def test_save_file_refuses_shared_memory_and_save_model_stores_it_once(tmp_path):
    model = quantized_tiny()
    with pytest.raises(RuntimeError, match="Some tensors share memory"):
        save_file(model.state_dict(), tmp_path / "refused.safetensors")
    save_model(model, str(tmp_path / "save_model.safetensors"))
    save_quantized(model, tmp_path / "save_quantized.safetensors")
    with safe_open(tmp_path / "save_model.safetensors", framework="pt") as file:
        assert sorted(file.keys()) == [
            "body.bias",
            "body.int8_weights",
            "body.scales",
            "emb.weight",
        ]
        assert file.metadata() == {"lm_head.weight": "emb.weight"}
    sizes = [
        (tmp_path / f"{n}.safetensors").stat().st_size for n in ("save_model", "save_quantized")
    ]
    assert sizes == [968, 920]


def test_load_model_cannot_fill_a_meta_skeleton(tmp_path):
    """It copies in place (a no-op on meta, one warning per tensor) and, looking for ties by
    memory, misses the tied name; the skeleton stays on meta."""
    save_model(quantized_tiny(), str(tmp_path / "tiny.safetensors"))
    skeleton = tiny_skeleton()
    assert tie_groups(skeleton) == [["emb.weight", "lm_head.weight"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(
            RuntimeError, match='Missing key\\(s\\) in state_dict: "lm_head.weight"'
        ):
            load_model(skeleton, tmp_path / "tiny.safetensors")
        missing, unexpected = load_model(skeleton, tmp_path / "tiny.safetensors", strict=False)
    assert missing == {"lm_head.weight"} and unexpected == []
    assert len(caught) == 8 and all("is a no-op" in str(w.message) for w in caught)
    assert all(t.is_meta for t in skeleton.state_dict().values())


def test_load_quantized_ties_the_head_to_the_embedding_again(tmp_path):
    model = quantized_tiny()
    save_quantized(model, tmp_path / "tiny.safetensors")
    loaded = load_quantized(tiny_skeleton(), tmp_path / "tiny.safetensors")
    assert loaded.lm_head.weight is loaded.emb.weight
    assert model_size(loaded).total == model_size(model).total == 640
    assert sum(t.nbytes for t in model.state_dict().values()) == 1152
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))


def test_opts_default_configuration_ties_its_head_on_the_meta_device():
    """The course's opt-125m: transformers' default OPT configuration, built on meta."""
    from transformers import OPTConfig, OPTForCausalLM

    with torch.device("meta"):
        opt = OPTForCausalLM(OPTConfig())
    assert opt.config.tie_word_embeddings
    assert opt.lm_head.weight is opt.model.decoder.embed_tokens.weight
    assert sum(p.numel() for p in opt.parameters()) == 125_239_296
    assert opt.lm_head.weight.numel() * torch.bfloat16.itemsize == 77_217_792  # 77.2 MB


def test_bert_buffers_are_left_out_by_persistent_false_not_by_init():
    """Both buffers of a module are created in __init__; only persistent=False leaves one out
    of the state dict. BertEmbeddings registers position_ids and token_type_ids that way."""
    from transformers.models.bert.modeling_bert import BertEmbeddings

    class TwoBuffers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("kept", torch.arange(3))
            self.register_buffer("left_out", torch.arange(3), persistent=False)

    assert list(TwoBuffers().state_dict()) == ["kept"]
    lines = [line for line in inspect.getsource(BertEmbeddings.__init__).splitlines()]
    flagged = [line.strip().split(" =")[0] for line in lines if "persistent=False" in line]
    assert flagged == ["self.position_ids", "self.token_type_ids"]


def test_bfloat16_takes_2_bytes_per_weight():
    assert torch.bfloat16.itemsize == 2 and torch.float32.itemsize == 4
