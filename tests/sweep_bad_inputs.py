"""A systematic sweep of bad and odd inputs over the public API: one argument at a time.

Run it from a checkout's top folder (it imports that checkout's ``helper.py``)::

    python tests/sweep_bad_inputs.py            # counts, and the calls that were not clear
    python tests/sweep_bad_inputs.py --json     # every call and its outcome, as JSON

For every function in ``helper.__all__`` and the public functions of ``support.models`` that
need no network, the sweep starts from one valid call, then replaces one argument at a time by
each value of a fixed catalogue: values that must be refused (``None``, a string, an object,
NaN, infinities, ``True`` for a number, a tensor holding NaN or inf, a complex or a ``meta``
tensor, an empty list) and odd but valid ones (0, -1, 2.5, 1e20, 1e-30, a numpy integer, a
0-d tensor, the tensor in float64 or as integers, scaled by 1e30 or 1e-20, an empty tensor).
A replacement equal to the parameter's own default kind (``None`` where the default is
``None``, a string where it is a string) is valid and skipped.

Each call is classified:

* ``clear``: a ``TypeError`` or ``ValueError`` raised by the project's own code (the last
  frame of the traceback is in ``helper.py`` or ``support/``);
* ``raw``: any other exception, or one raised from inside torch, safetensors or Python;
* ``hung``: still running after 10 s (stopped with SIGALRM);
* ``answered``: returned, and every number in the result is finite;
* ``silent``: returned although the value had to be refused, or returned NaN or infinity
  from finite input: a silently wrong (or meaningless) answer;
* ``propagated``: returned NaN or infinity for a tensor holding NaN or infinity, as torch's
  own layers do (forward passes do not scan their input);
* ``modified``: counted on top of the above when an argument was changed in place (the
  replace functions change their model by design, and are not counted).

Some replacements are valid for some parameters and are then expected to be answered:
``True`` for a flag, an empty list for a list of names, a ``meta`` tensor where the function
only computes shapes (a forward pass on a skeleton), and those in ``VALID`` (``n_bits=None``,
the dtype's full width; ``layers=[]``, no layer). A plot's ``title`` is printed as text
whatever it is, and is not swept. ``quantize_one_liner`` and
``dequantize_one_liner`` are the bare formulas, documented as "no checks": they are counted
apart.

The classification is mechanical: ``answered`` says the answer is finite, not that it is
right (the bad-input table in ``tests/helper/test_bad_input.py`` checks right answers). A
call that draws a figure closes it. Nothing here reaches the network: ``load_hub_model`` is
left out.
"""

from __future__ import annotations

import argparse
import collections
import copy
import inspect
import json
import math
import signal
import sys
import traceback
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path.cwd()))
import helper  # noqa: E402

if (Path.cwd() / "support" / "models.py").exists():
    from support import models
else:  # an older layout kept models.py at the top
    import models  # type: ignore[no-redef]
for _module in (helper, models):  # this checkout's, not an installed copy
    assert Path(_module.__file__).resolve().is_relative_to(Path.cwd().resolve()), _module

#: The bare formulas, documented as unchecked: counted apart.
UNCHECKED = {"quantize_one_liner", "dequantize_one_liner"}
#: Functions that change their first argument (the model) by design.
IN_PLACE = {"replace_linear_with_target", "replace_linear_with_target_and_quantize"}

#: Replacements that are valid for one parameter: (function, parameter) -> labels.
VALID = {
    ("fake_quantize", "n_bits"): {"None"},
    ("fake_quantize_linears", "n_bits"): {"None"},
    ("fake_quantize_linears", "layers"): {"empty list"},
}

OUR_CODE = (str(Path.cwd() / "helper.py"), str(Path.cwd() / "support"), str(Path.cwd() / "models"))

# ---------------------------------------------------------------------------------------------
# One valid call per function
# ---------------------------------------------------------------------------------------------

G = torch.Generator().manual_seed(0)
T = torch.randn(4, 6, generator=G)
Q = torch.randint(-128, 128, (4, 6), generator=G, dtype=torch.int8)
U4 = torch.randint(0, 16, (4, 6), generator=G, dtype=torch.uint8)
X = torch.randn(2, 6, generator=G)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))


def valid_calls() -> dict[str, tuple[tuple, dict]]:
    """Function name -> (args, kwargs) of one call that works."""
    s, z = 0.02, -3
    calls = {
        "dtype_name": ((torch.int8,), {}),
        "get_q_range": ((torch.int8, 4), {}),
        "qparams_from_range": ((torch.tensor(-1.0), torch.tensor(2.0), -128, 127), {}),
        "scale_and_zero_point_from_range": ((-1.0, 2.0, -128, 127), {}),
        "get_q_scale_and_zero_point": ((T, torch.int8, None), {}),
        "quantize_one_liner": ((T, s, z, -128, 127, torch.int8), {}),
        "linear_q_with_scale_and_zero_point": ((T, s, z, torch.int8, None), {}),
        "linear_quantization": ((T, torch.int8, None), {}),
        "dequantize_one_liner": ((Q, s, z), {}),
        "linear_dequantization": ((Q, s, z), {}),
        "quantization_error": ((T, T + 0.01), {}),
        "sqnr_db": ((T, T + 0.01), {}),
        "plot_quantization_errors": ((T, Q, T + 0.01), {}),
        "plot_number_line": ((T, s, z), {}),
        "get_q_scale_symmetric": ((T, torch.int8, None), {}),
        "linear_q_symmetric": ((T, torch.int8, None), {}),
        "plot_symmetric_vs_asymmetric": ((T,), {}),
        "block_shapes": (((4, 6), (1, 3)), {}),
        "granularity_block_size": (((4, 6), "per_group", 0, 3), {}),
        "block_range": ((T, (1, 3)), {}),
        "choose_qparams_affine": ((T, (1, 3)), {}),
        "quantize_blockwise": ((T, (1, 3)), {}),
        "linear_q_symmetric_per_channel": ((T, 0), {}),
        "linear_q_symmetric_per_group": ((T, 3), {}),
        "bits_per_weight": (((4, 6), (1, 3), 4, 16, 0), {}),
        "quantized_linear_W8A32_without_bias": ((X, Q, torch.full((4, 1), s), 0), {}),
        "quantized_linear_W8A8_without_bias": ((Q[:2], 0.1, 0, Q, 0.02, 0), {}),
        "sqnr_db_per_row": ((T, T + 0.01), {}),
        "w8_a16_forward": ((Q, X, torch.full((4,), s), torch.zeros(4)), {}),
        "W8A16LinearLayer": ((6, 4, True, torch.float32), {}),
        "replace_linear_with_target": ((mlp(), helper.W8A16LinearLayer, ["2"]), {}),
        "replace_linear_with_target_and_quantize": ((mlp(), helper.W8A16LinearLayer, []), {}),
        "layer_names": ((mlp(),), {}),
        "fake_quantize": ((T, 4, "per_group", 3), {}),
        "fake_quantize_linears": ((mlp(), 4), {}),
        "linears_bits_per_weight": ((mlp(), 4), {}),
        "plot_accuracy_vs_bits": (({"a": {8: 9, 4: 7}}, 10), {}),
        "pack_weights": ((U4.flatten(), 4), {}),
        "unpack_weights": ((U4.flatten()[:12], 4), {}),
        "to_offset_binary": ((torch.tensor([-8, 0, 7], dtype=torch.int8), 4), {}),
        "from_offset_binary": ((torch.tensor([0, 8, 15], dtype=torch.uint8), 4), {}),
        "packed_weight_bytes": (((4, 6), 4, 4), {}),
        "packed_model_bytes": ((mlp(), 4), {}),
        "PackedLinearLayer": ((6, 4, True, torch.float32, 4), {}),
        "W4A16LinearLayer": ((6, 4), {}),
        "W2A16LinearLayer": ((6, 4), {}),
        "plot_packed_bits": ((U4.flatten()[:8], 4), {}),
        "absmax_minmax": ((T, (1, 6)), {}),
        "absmax_percentile": ((T, (1, 6), 99.0), {}),
        "quantize_clipped": ((T, (1, 6), 1.0), {}),
        "fake_quantize_clipped": ((T, (1, 6), 1.0), {}),
        "clipping_mse_curve": ((T, (1, 6), [1.0, 0.9]), {}),
        "absmax_mse_optimal": ((T, (1, 6)), {"n_grid": 10, "n_refine": 2}),
        "clipping_absmax": ((T, (1, 6), "percentile"), {}),
        "aciq_mse_gaussian": ((2.0, 4, 1.0), {}),
        "aciq_mse_laplace": ((2.0, 4, 1.0), {}),
        "aciq_clip_gaussian": ((4, 1.0), {}),
        "aciq_clip_laplace": ((4, 1.0), {}),
        "plot_clipping_curves": ((T, (4,), 99.0, [1.0, 0.8]), {}),
        "plot_clipping_ranges": ((T, {"min-max": 2.0}), {}),
        "plot_granularity_tradeoff": (
            ([helper.TradeoffPoint("a", 8, 8.5, 0.1), helper.TradeoffPoint("b", 4, 4.5, 0.2)],),
            {},
        ),
        "plot_output_sqnr": ((T, {"a": T + 0.01}), {}),
    }
    scale, zero = helper.choose_qparams_affine(T, (1, 3))
    calls["quantize_affine"] = ((T, (1, 3), scale, zero), {})
    calls["dequantize_affine"] = ((Q, (1, 3), scale, zero), {})
    calls["per_element"] = ((scale, (4, 6), (1, 3)), {})
    _, group_scale = helper.linear_q_symmetric_per_group(T, 3)
    calls["linear_dequantization_per_group"] = ((Q, group_scale, 3), {})
    calls["float8_from_bits"] = ((0x38, "e4m3fn"), {})
    calls["float8_grid"] = (("e5m2",), {})
    calls["nf4_levels"] = ((), {})
    calls["grid_values"] = (("nf4",), {})
    calls["quantize_to_grid"] = ((T, "e4m3fn", (1, 3)), {})
    codes, grid_scale = helper.quantize_to_grid(T, "nf4", (1, 3))
    calls["dequantize_from_grid"] = ((codes, grid_scale, "nf4", (1, 3)), {})
    calls["fake_quantize_ste"] = ((T, 0.1, 0, -8, 7), {})
    calls["fake_quantize_ste_blockwise"] = ((T, (1, 3), 4), {})
    return calls


def model_calls() -> dict[str, tuple[tuple, dict]]:
    """support.models functions that need no network and little time."""
    x, y = torch.eye(5), torch.tensor([0, 1, 2, 3, 0])
    e = torch.nn.functional.normalize(torch.randn(2, 4, generator=G), dim=1)
    return {
        "accuracy": ((nn.Identity(), x, y), {}),
        "pair_similarities": ((e, ["a", "b"], [("a", "b")]), {}),
        "load_digits_split": ((), {"test_size": 360}),
        "format_bytes": ((1234,), {}),
        "model_size": ((mlp(),), {}),
        "predict": ((nn.Identity(), x), {}),
        "parameters_by_layer_type": ((mlp(),), {}),
    }


# ---------------------------------------------------------------------------------------------
# The catalogue of replacements
# ---------------------------------------------------------------------------------------------


def replacements(value):
    """(label, replacement, must_refuse) for one argument whose valid value is ``value``."""
    names = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    out = [
        ("None", None, True),
        ("string", "x", True),
        ("object", object(), True),
        ("nan", math.nan, True),
        ("inf", math.inf, True),
        ("-inf", -math.inf, True),
        ("True", True, not isinstance(value, bool)),
        ("empty list", [], not names),
        ("0", 0, False),
        ("-1", -1, False),
        ("2.5", 2.5, False),
        ("1e20", 1e20, False),
        ("1e-30", 1e-30, False),
        ("numpy int 4", np.int64(4), False),
        ("0-d tensor 4", torch.tensor(4), False),
    ]
    if isinstance(value, torch.Tensor) and value.numel() > 0:
        nan, inf = value.double().clone(), value.double().clone()
        nan.view(-1)[0], inf.view(-1)[0] = math.nan, math.inf
        out += [
            ("tensor with NaN", nan.to(value.dtype) if value.is_floating_point() else nan, "nan"),
            ("tensor with inf", inf.to(value.dtype) if value.is_floating_point() else inf, "nan"),
            ("complex tensor", value.to(torch.complex64), True),
            ("meta tensor", torch.empty(value.shape, dtype=value.dtype, device="meta"), "meta"),
            ("float64 tensor", value.double(), False),
            (
                "int64 tensor",
                value.round().long() if value.is_floating_point() else value.long(),
                False,
            ),
            ("tensor * 1e30", value.double() * 1e30, False),
            ("tensor * 1e-20", value.double() * 1e-20, False),
            ("empty tensor", value.new_empty((0,)), False),
            ("bool tensor", value != 0, True),
        ]
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        out += [
            ("negative entry", (-value[0], *value[1:]), True),
            ("fractional entry", (value[0] + 0.5, *value[1:]), True),
            ("numpy entries", tuple(np.int64(v) for v in value), False),
        ]
    return out


def finite(result) -> bool:
    """Every number in ``result`` (tensors, numbers, tuples, lists, dicts) is finite."""
    if isinstance(result, torch.Tensor):
        if result.is_meta or not (result.is_floating_point() or result.is_complex()):
            return True
        return bool(torch.isfinite(result).all())
    if isinstance(result, float):
        return math.isfinite(result)
    if isinstance(result, tuple | list):
        return all(finite(r) for r in result)
    if isinstance(result, dict):
        return all(finite(r) for r in result.values())
    return True


def has_meta(result) -> bool:
    """``result`` holds a ``meta`` tensor (shapes only: a skeleton's forward pass)."""
    if isinstance(result, torch.Tensor):
        return result.is_meta
    if isinstance(result, tuple | list):
        return any(has_meta(r) for r in result)
    return False


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.is_meta or b.is_meta:
            return a.shape == b.shape
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
            or (
                a.is_floating_point()
                and bool(torch.equal(a.isnan(), b.isnan()))
                and torch.equal(a.nan_to_num(), b.nan_to_num())
            )
        )
    if isinstance(a, nn.Module) and isinstance(b, nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(same(sa[k], sb[k]) for k in sa) and str(a) == str(b)
    return True


class Hung(Exception):
    pass


def on_alarm(signum, frame):
    raise Hung


def classify(function, args, kwargs, must_refuse) -> tuple[str, bool, str]:
    """(outcome, modified, detail) of one call."""
    originals = [copy.deepcopy(a) for a in args]
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(10)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function(*args, **kwargs)
    except Hung:
        return "hung", False, "still running after 10 s"
    except Exception as error:  # classify every exception
        last = traceback.extract_tb(error.__traceback__)[-1].filename
        ours = any(last.startswith(prefix) for prefix in OUR_CODE)
        kind = "clear" if isinstance(error, TypeError | ValueError) and ours else "raw"
        return kind, False, f"{type(error).__name__}: {str(error)[:160]}"
    finally:
        signal.alarm(0)
        plt.close("all")
    start = 1 if getattr(function, "__name__", "") in IN_PLACE else 0
    modified = not all(same(a, b) for a, b in zip(args[start:], originals[start:], strict=True))
    if must_refuse == "meta" and has_meta(result):
        return "answered", modified, "shapes only, on meta"
    if must_refuse == "nan" and not finite(result):
        return "propagated", modified, "NaN or infinity in, NaN or infinity out"
    if must_refuse:
        return "silent", modified, "accepted a value it had to refuse"
    if not finite(result):
        return "silent", modified, "returned NaN or infinity"
    return "answered", modified, ""


def sweep() -> list[dict]:
    """Every call of the sweep, with its outcome."""
    records = []
    for module, calls in ((helper, valid_calls()), (models, model_calls())):
        for name, (args, kwargs) in calls.items():
            function = getattr(module, name, None)
            if function is None:
                continue
            outcome, _, detail = classify(
                function, copy.deepcopy(args), copy.deepcopy(kwargs), False
            )
            if outcome != "answered":
                records.append({"function": name, "skipped": f"the valid call failed: {detail}"})
                continue
            parameters = list(inspect.signature(function).parameters.values())
            bound = inspect.signature(function).bind(*args, **kwargs)
            bound.apply_defaults()
            for parameter in parameters:
                if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                    continue
                if parameter.name == "title":
                    continue
                value = bound.arguments[parameter.name]
                for label, bad, must_refuse in replacements(value):
                    if label in VALID.get((name, parameter.name), ()):
                        must_refuse = False
                    default = parameter.default
                    if default is not parameter.empty and (
                        (bad is None and default is None)
                        or (isinstance(bad, str) and isinstance(default, str))
                    ):
                        continue  # the parameter's own kind of value
                    trial = copy.deepcopy(bound.arguments)
                    trial[parameter.name] = bad
                    call_args = [trial[p.name] for p in parameters if p.kind != p.KEYWORD_ONLY]
                    call_kwargs = {
                        p.name: trial[p.name] for p in parameters if p.kind == p.KEYWORD_ONLY
                    }
                    outcome, modified, detail = classify(
                        function, call_args, call_kwargs, must_refuse
                    )
                    records.append(
                        {
                            "function": name,
                            "argument": parameter.name,
                            "value": label,
                            "outcome": outcome,
                            "modified": modified,
                            "detail": detail,
                        }
                    )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print every call as JSON")
    options = parser.parse_args()
    records = sweep()
    if options.json:
        print(json.dumps(records, indent=1))
        return
    tried = [r for r in records if "outcome" in r and r["function"] not in UNCHECKED]
    bare = [r for r in records if "outcome" in r and r["function"] in UNCHECKED]
    counts = collections.Counter(r["outcome"] for r in tried)
    functions = {r["function"] for r in tried}
    print(f"{len(tried)} calls tried on {len(functions)} functions")
    for outcome in ("clear", "answered", "propagated", "silent", "raw", "hung"):
        print(f"  {outcome:10} {counts[outcome]:5}")
    print(f"  modified   {sum(r['modified'] for r in tried):5}  (an argument changed in place)")
    bare_counts = collections.Counter(r["outcome"] for r in bare)
    print(f"and {len(bare)} on the unchecked one-liners: {dict(sorted(bare_counts.items()))}")
    for record in records:
        if "skipped" in record:
            print(f"skipped {record['function']}: {record['skipped']}")
    for outcome in ("hung", "raw", "silent", "propagated"):
        for r in tried:
            if r["outcome"] == outcome:
                print(f"{outcome:6} {r['function']}({r['argument']}={r['value']}): {r['detail']}")


if __name__ == "__main__":
    main()
