"""Export a model: ONNX (for onnxruntime and friends), TorchScript, or torch.export's ExportedProgram."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import torch
from torch import nn

__all__ = ["FORMATS", "ONNX_OPSET", "check_format", "export_model", "input_names"]

ONNX_OPSET = 17  # supported by every onnxruntime since 1.11 and by the main converters and runtimes
FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "exported": ".pt2"}
NEEDS = {"onnx": "onnx"}  # format -> the package torch's exporter imports (attnlab's `export` extra)


def check_format(fmt: str) -> None:
    """A known format whose exporter can run here; else a ValueError saying what to do."""
    if fmt not in FORMATS:
        raise ValueError(f"--format: expected one of {tuple(FORMATS)}, got {fmt!r}")
    if fmt in NEEDS and find_spec(NEEDS[fmt]) is None:
        raise ValueError(
            f"--format {fmt}: needs the {NEEDS[fmt]} package, which is not installed; "
            'pip install "attnlab[export]", or export with --format exported or torchscript'
        )


def input_names(count: int) -> list[str]:
    """ONNX input names: "input" for one input (the common case), "input0", "input1", … for several."""
    return ["input"] if count == 1 else [f"input{i}" for i in range(count)]


def export_model(
    model: nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    fmt: str,
    path: str | Path,
    *,
    dynamic: dict[int, dict[int, str]] | None = None,
) -> Path:
    """Write ``model`` (eval mode, traced on ``example``) as ``fmt``.

    ``dynamic`` maps input index -> {dim: name} of the dimensions that stay free; default: the batch (dim 0)
    of every input, and of the output.
    """
    check_format(fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    dynamic = dynamic or {i: {0: "batch"} for i in range(len(inputs))}
    names = input_names(len(inputs))
    model = model.eval()
    with torch.no_grad():
        if fmt == "onnx":
            torch.onnx.export(
                model,
                inputs,
                str(path),
                opset_version=ONNX_OPSET,
                input_names=names,
                output_names=["output"],
                dynamo=False,
                dynamic_axes={**{names[i]: axes for i, axes in dynamic.items()}, "output": {0: "batch"}},
            )
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(model, inputs), str(path))
        else:
            dims = {}
            shapes = []
            for i in range(len(inputs)):
                axes = dynamic.get(i, {})
                shapes.append({d: dims.setdefault(n, torch.export.Dim(n, min=1, max=4096)) for d, n in axes.items()})
            program = torch.export.export(model, inputs, dynamic_shapes=tuple(shapes))
            torch.export.save(program, str(path))
    return path
