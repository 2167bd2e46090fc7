"""Remove stored widget views from executed notebooks (run by `make record` after nbconvert).

A stored widget view only points at a widget model in the kernel that drew it. Opened later,
before its cell is run again, JupyterLab cannot find that model and shows "Error displaying
widget: model not found". So the cell keeps its code and execution count and loses that one
output; running the cell shows the live widget. Usage: python .ci/clear_widget_outputs.py NB...
"""

import sys

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clear_widget_outputs(path: str) -> int:
    """Drop every widget-view output (and saved widget state) from one notebook; return count."""
    notebook = nbformat.read(path, as_version=4)
    removed = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
        removed += len(cell.outputs) - len(kept)
        cell.outputs = kept
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return removed


if __name__ == "__main__":
    for notebook_path in sys.argv[1:]:
        print(f"{notebook_path}: removed {clear_widget_outputs(notebook_path)} widget output(s)")
