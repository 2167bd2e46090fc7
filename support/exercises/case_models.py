"""The small models lesson 08's checkers use as cases: the lesson's tiny model, an encoder,
a text classifier, a stack of twelve layers and DETR's names in miniature. Each is built on
the meta device and given seeded weights by ``materialized``.

Imports point one way: this module imports ``support.examples``; ``helper`` never imports it.
"""

from __future__ import annotations

import torch
from torch import nn

from support.examples import seeded_randn

__all__ = [
    "TinyBlock",
    "TinyLM",
    "EncoderLayer",
    "Encoder",
    "TextClassifier",
    "Stack",
    "DetrLayer",
    "BoxHead",
    "MiniDetr",
    "materialized",
]


class TinyBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc_in = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc_out = nn.Linear(8, 4)


class TinyLM(nn.Module):
    """Like the lesson's tiny model: an embedding, two linears, a block, an lm_head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.linear_1 = nn.Linear(4, 4)
        self.linear_2 = nn.Linear(4, 4, bias=False)
        self.block = TinyBlock()
        self.lm_head = nn.Linear(4, 10, bias=False)


class EncoderLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(4, 4)
        self.out_proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.mlp = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))


class Encoder(nn.Module):
    """Two encoder layers with nested linears (layers.0.out_proj, layers.0.mlp.2, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(), EncoderLayer()])
        self.pooler = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)


class TextClassifier(nn.Module):
    """A head like DistilBERT's: a pre_classifier layer before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
        self.pre_classifier = nn.Linear(4, 4)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(4, 2)


class Stack(nn.Module):
    """Twelve linear layers in a ModuleList: layers.0 ... layers.11, then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(12)])
        self.head = nn.Linear(4, 2)


class DetrLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(4, 4)
        self.out_proj = nn.Linear(4, 4)
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 4)


class BoxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)])


class MiniDetr(nn.Module):
    """DETR's names in miniature: encoder layers 0 and 1 in a ModuleList (containers), and a box
    head whose three linear layers are named 0, 1 and 2, beside class_labels_classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([DetrLayer(), DetrLayer()])
        self.class_labels_classifier = nn.Linear(4, 3)
        self.bbox_predictor = BoxHead()


def materialized(model: nn.Module, seed: int) -> nn.Module:
    """A model built on the meta device, given real weights from ``seeded_randn``: the same on
    every CPU, and the learner's random number generator is left alone."""
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for i, parameter in enumerate(model.parameters()):
            parameter.copy_(0.5 * seeded_randn(*parameter.shape, seed=seed + i))
    return model
