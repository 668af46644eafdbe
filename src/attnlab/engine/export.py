"""Export a model: ONNX (for onnxruntime and friends), TorchScript, or torch.export's ExportedProgram."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import torch
from torch import nn

__all__ = ["FORMATS", "ONNX_OPSET", "check_format", "export_model"]

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


def export_model(model: nn.Module, example: torch.Tensor, fmt: str, path: str | Path) -> Path:
    """Write ``model`` (eval mode, traced on ``example``) as ``fmt``; the batch dimension stays dynamic."""
    check_format(fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.no_grad():
        if fmt == "onnx":
            torch.onnx.export(
                model,
                (example,),
                str(path),
                opset_version=ONNX_OPSET,
                input_names=["input"],
                output_names=["output"],
                dynamo=False,
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(model, example), str(path))
        else:
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, str(path))
    return path
