"""Benchmark: how long every lesson takes to run, cell time summed, on the normal and on the
scalar CPU path.

Run from the repository root::

    python benchmarks/bench_lessons.py                       # every notebook, both paths
    python benchmarks/bench_lessons.py notebooks/13_*.ipynb --paths normal

Each notebook is executed top to bottom in a fresh kernel, as a learner's "Run All" does (in
notebooks/, with this Python), and the time of every code cell is read from the kernel's own
timestamps (the moment it started the cell and the moment it replied), so starting the kernel
is not counted. ``scalar`` runs the kernel with ``ATEN_CPU_CAPABILITY=default``: PyTorch's
plain C++ code instead of its vectorised kernels, the slowest path a learner's CPU can take.
``--load`` runs everything while a second PyTorch process computes (the neighbour of
``bench_load.py``), as when a second notebook runs beside the lesson or the CPU is shared.
Nothing is written back to the notebooks. Goal: every lesson under 60 s of cell time.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 60.0
NEIGHBOUR = "import torch\nx = torch.randn(512, 512)\nwhile True:\n    x @ x\n"


def cell_seconds(cell: dict) -> float:
    """Seconds between the kernel starting a cell and replying, from the cell's metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run(path: Path, scalar: bool) -> tuple[float, float, int]:
    """Execute one notebook; returns (total cell seconds, slowest cell seconds, its index)."""
    notebook = nbformat.read(path, as_version=4)
    saved = os.environ.get("ATEN_CPU_CAPABILITY")
    if scalar:
        os.environ["ATEN_CPU_CAPABILITY"] = "default"  # read by torch when the kernel starts
    try:
        client = NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            record_timing=True,
        )
        client.execute()
    finally:
        if saved is None:
            os.environ.pop("ATEN_CPU_CAPABILITY", None)
        else:
            os.environ["ATEN_CPU_CAPABILITY"] = saved
    times = [(cell_seconds(c), i) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    slowest, index = max(times) if times else (0.0, -1)
    return sum(t for t, _ in times), slowest, index


def main() -> None:
    """Run the chosen notebooks on the chosen paths and print one row per notebook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--paths", nargs="+", default=["normal", "scalar"])
    parser.add_argument("--load", action="store_true", help="with a busy neighbour process")
    args = parser.parse_args()
    logging.getLogger("traitlets").setLevel(logging.ERROR)  # the kernel's transport warning
    neighbour = None
    if args.load:
        environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=environment)
        time.sleep(2.0)
    try:
        table(args)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def table(args: argparse.Namespace) -> None:
    """Run the chosen notebooks on the chosen paths and print one row per notebook."""
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    load = ", with a busy neighbour process" if args.load else ""
    print(f"cell time in seconds (slowest cell and its index in brackets){load}")
    print(f"{'notebook':<34}" + "".join(f"{path:>22}" for path in args.paths))
    worst = 0.0
    for path in notebooks:
        cells = []
        for which in args.paths:
            total, slowest, index = run(path.resolve(), scalar=which == "scalar")
            worst = max(worst, total)
            cells.append(f"{total:>9.1f} ({slowest:5.1f} #{index:<3})")
        print(f"{path.name:<34}" + "".join(f"{c:>22}" for c in cells), flush=True)
    verdict = "met" if worst < GOAL_SECONDS else "MISSED"
    print(f"slowest lesson: {worst:.1f} s (goal: under {GOAL_SECONDS:.0f} s): {verdict}")


if __name__ == "__main__":
    main()
