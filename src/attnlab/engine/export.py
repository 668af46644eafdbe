"""Export a model: ONNX (for onnxruntime and friends), TorchScript, or torch.export's ExportedProgram."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["FORMATS", "ONNX_OPSET", "export_model"]

ONNX_OPSET = 17  # supported by every onnxruntime since 1.11 and by the main converters and runtimes
FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "exported": ".pt2"}


def export_model(model: nn.Module, example: torch.Tensor, fmt: str, path: str | Path) -> Path:
    """Write ``model`` (eval mode, traced on ``example``) as ``fmt``; the batch dimension stays dynamic."""
    if fmt not in FORMATS:
        raise ValueError(f"--format: expected one of {tuple(FORMATS)}, got {fmt!r}")
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
