"""Benchmark: the W8A16 layer against nn.Linear, and all-MiniLM-L6-v2 in W8A16 against float.

Run from the repository root::

    python benchmarks/bench_w8a16.py                  # 1 thread, 2 rounds of MiniLM
    python benchmarks/bench_w8a16.py --threads 2 --rounds 3

Two measurements, each printed as a table of medians and of ratios from the same run:

* **The layer.** ``W8A16LinearLayer`` and ``nn.Linear`` with the same 4096 x 4096 weight, on
  a 1 x 4096 input (one token: the product reads every weight once) and a 64 x 4096 input (a
  batch: the product does 64 times the arithmetic per weight read). Also timed alone: the
  int8 -> float32 conversion of the whole weight into a new tensor, which is what the
  forward pass would cost if it converted the weight in one go; ``w8_a16_forward`` converts
  a block of rows at a time into one reused buffer instead.
* **The model.** all-MiniLM-L6-v2 (offline, from ``models``) with its 36 encoder linears in
  W8A16, against the float model: the time to ``encode`` a fixed list of sentences and the
  process's peak memory. Both are loaded the same way, from a safetensors file into a
  skeleton built on the ``meta`` device (``models.load_quantized``), so the float model is
  never in memory while the quantized one is measured. Each one runs in a fresh process,
  because a process's peak memory only ever grows; the rounds alternate float and W8A16.

The number of threads is fixed (``torch.set_num_threads``): on a small, busy machine encode
times swing widely otherwise. Compare the ratios, not the absolute times, across machines.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere

from helper import (  # noqa: E402
    W8A16LinearLayer,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
)

#: The linear layers kept in float: the pooler, which the sentence embeddings do not use.
EXCLUDE = ["pooler.dense"]


def memory_mb() -> dict[str, float]:
    """This process's resident memory now (``rss``) and its peak since the last
    ``reset_peak`` (``peak``), in MB, from /proc/self/status (Linux). Elsewhere both are the
    peak of the whole process (``getrusage``), which cannot be reset."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        kb = {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}
        return {"rss": kb["VmRSS"] * 1024 / 1e6, "peak": kb["VmHWM"] * 1024 / 1e6}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # bytes on macOS
    return {"rss": peak, "peak": peak}


def reset_peak() -> None:
    """Start a new peak at the current resident memory (Linux: write 5 to clear_refs), so that
    the peak measures what comes after the imports, not the imports' own transient peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def sentences(count: int) -> list[str]:
    """``count`` different sentences of 8 to 30 words, the same on every run."""
    topics = ["weights", "bread", "rivers", "markets", "cats", "music", "trains", "gardens"]
    words = "the model reads every token and stores its numbers in eight bits to save memory"
    words = words.split()
    return [
        f"Sentence {i} is about {topics[i % len(topics)]}: "
        + " ".join(words[: 4 + (i * 7) % len(words)])
        + "."
        for i in range(count)
    ]


def median_ms(function, repeats: int) -> float:
    """Median wall time of ``function()`` in milliseconds, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


# ---------------------------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def bench_layer(size: int, batches: tuple[int, ...], repeats: int) -> None:
    from support.models import format_bytes, model_size

    generator = torch.Generator().manual_seed(0)
    linear = nn.Linear(size, size).requires_grad_(False)
    linear.weight.copy_(torch.randn(size, size, generator=generator) / size**0.5)
    layer = W8A16LinearLayer(size, size)
    layer.quantize(linear.weight)
    layer.bias.copy_(linear.bias.reshape(1, -1))
    float_bytes, int8_bytes = model_size(linear).total, model_size(layer).total

    print(
        f"W8A16LinearLayer vs nn.Linear, {size}x{size} float32 weight, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), median of {repeats}"
    )
    print(
        f"{'input':<10}{'nn.Linear ms':>14}{'W8A16 ms':>11}{'W8A16/Linear':>14}"
        f"{'int8->f32 ms':>14}{'rel. error':>12}"
    )
    convert = median_ms(lambda: layer.int8_weights.to(torch.float32), repeats)
    for batch in batches:
        x = torch.randn(batch, size, generator=generator)
        error = ((layer(x) - linear(x)).norm() / linear(x).norm()).item()
        # interleaved, so that machine noise hits both alike
        rounds = {"linear": [], "w8a16": []}
        for _ in range(3):
            rounds["linear"].append(median_ms(lambda x=x: linear(x), max(1, repeats // 3)))
            rounds["w8a16"].append(median_ms(lambda x=x: layer(x), max(1, repeats // 3)))
        t_linear = statistics.median(rounds["linear"])
        t_w8a16 = statistics.median(rounds["w8a16"])
        print(
            f"{f'{batch}x{size}':<10}{t_linear:>14.2f}{t_w8a16:>11.2f}"
            f"{t_w8a16 / t_linear:>13.2f}x{convert:>14.2f}{error:>12.1e}"
        )
    print(
        f"layer memory: nn.Linear {format_bytes(float_bytes)}, W8A16 {format_bytes(int8_bytes)} "
        f"({int8_bytes / float_bytes:.2f}x)"
    )


# ---------------------------------------------------------------------------------------------
# The model, one fresh process per measurement
# ---------------------------------------------------------------------------------------------


def child(kind: str, path: str, threads: int, count: int, repeats: int) -> None:
    """Load MiniLM (``kind`` float or w8a16) from ``path`` into a meta skeleton, encode, and
    print one JSON line: memory after the imports, after loading, at the end, and times."""
    torch.set_num_threads(threads)
    from support import models

    models._quiet_offline_hub()  # before sentence_transformers is imported
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer
    from transformers import BertModel

    after_imports = memory_mb()["rss"]
    reset_peak()

    def load_skeleton(self, model_name_or_path, transformer_task, config, *args, **kwargs):
        # SentenceTransformer's own loader would read the float weights; this one fills a
        # skeleton built on the meta device with the tensors saved in ``path`` instead.
        with torch.device("meta"):
            bert = BertModel(config)
        if kind == "w8a16":
            replace_linear_with_target(bert, W8A16LinearLayer, EXCLUDE)
        return models.load_quantized(bert, path, restore=models.restore_bert_buffers).eval()

    Transformer._load_model = load_skeleton
    start = time.perf_counter()
    model = SentenceTransformer(str(models.minilm_weights_path().parent), device="cpu")
    model.eval().requires_grad_(False)
    load_s = time.perf_counter() - start
    texts = sentences(count)
    encode_ms = median_ms(lambda: models.embed(model, texts), repeats)
    end = memory_mb()
    print(
        json.dumps(
            {
                "size": models.model_size(model).total,
                "after_imports": after_imports,
                "resident": end["rss"] - after_imports,
                "peak": end["peak"] - after_imports,
                "load_s": load_s,
                "encode_ms": encode_ms,
            }
        )
    )


def prepare_files(folder: Path) -> dict[str, Path]:
    """Save MiniLM's BertModel twice with ``save_quantized``: in float, and in W8A16."""
    from support import models

    paths = {
        "float": folder / "minilm_float.safetensors",
        "w8a16": folder / "minilm_w8a16.safetensors",
    }
    model = models.load_minilm()
    bert = model[0].auto_model
    models.save_quantized(bert, paths["float"])
    replace_linear_with_target_and_quantize(bert, W8A16LinearLayer, EXCLUDE)
    models.save_quantized(bert, paths["w8a16"])
    return paths


def bench_model(threads: int, rounds: int, count: int, repeats: int) -> None:
    from support.models import format_bytes

    results = {"float": [], "w8a16": []}
    with tempfile.TemporaryDirectory() as folder:
        paths = prepare_files(Path(folder))
        for _ in range(rounds):
            for kind, path in paths.items():
                command = [sys.executable, __file__, "--child", kind, "--file", str(path)]
                command += ["--threads", str(threads), "--sentences", str(count)]
                command += ["--repeats", str(repeats)]
                run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
                if run.returncode != 0:
                    raise SystemExit(f"the {kind} child failed:\n{run.stderr}")
                results[kind].append(json.loads(run.stdout.strip().splitlines()[-1]))

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    print()
    print(
        f"all-MiniLM-L6-v2, encode {count} sentences (batch 32), {threads} thread(s), "
        f"{rounds} fresh process(es) each, medians; memory in MB above the process after its "
        f"imports ({median('float', 'after_imports'):.0f} MB resident)"
    )
    columns = ["size", "encode_ms", "resident", "peak"]
    print(
        f"{'model':<8}{'size':>10}{'encode ms':>11}{'resident MB':>13}{'peak MB':>9}{'load s':>8}"
    )
    rows = {}
    for kind in ("float", "w8a16"):
        rows[kind] = {key: median(kind, key) for key in columns}
        row = rows[kind]
        print(
            f"{kind:<8}{format_bytes(int(row['size'])):>10}{row['encode_ms']:>11.1f}"
            f"{row['resident']:>13.1f}{row['peak']:>9.1f}"
            f"{median(kind, 'load_s'):>8.2f}"
        )
    ratio = {key: rows["w8a16"][key] / rows["float"][key] for key in columns}
    print(
        f"{'ratio':<8}{ratio['size']:>9.2f}x{ratio['encode_ms']:>10.2f}x"
        f"{ratio['resident']:>12.2f}x{ratio['peak']:>8.2f}x"
    )
    print(
        "resident: what the process still holds after the encode calls (weights, once read, "
        "and the allocator's cache); peak: the most it held while loading and encoding."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--size", type=int, default=4096, help="the layer's weight is size x size")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per MiniLM variant")
    parser.add_argument("--sentences", type=int, default=64, help="sentences encoded per call")
    parser.add_argument("--skip-layer", action="store_true", help="only the MiniLM part")
    parser.add_argument("--child", choices=["float", "w8a16"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child(args.child, args.file, args.threads, args.sentences, max(3, args.repeats // 3))
        return
    torch.set_num_threads(args.threads)
    if not args.skip_layer:
        bench_layer(args.size, (1, 64), args.repeats)
    bench_model(args.threads, args.rounds, args.sentences, max(3, args.repeats // 3))


if __name__ == "__main__":
    main()
