"""Export a trained model: ``torch.export`` programs and ONNX files with a dynamic batch dimension.

    import kanlab.export
    kanlab.export.to_onnx(model, "model.onnx")              # input "input" (batch, n_in) → "output"
    program = kanlab.export.export_program(model)            # a torch.export.ExportedProgram

Both trace the model's ``forward`` with :func:`torch.export.export` (the dense basis × coefficient path; the
spline code skips its data-dependent checks while tracing, see ``torch.compiler.is_compiling``).  The batch
dimension is symbolic, so the exported graph runs on any number of rows; the feature dimension is fixed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

__all__ = ["to_onnx", "export_program", "example_input"]


def _n_inputs(model: nn.Module) -> int:
    n_in = getattr(model, "in_features", None)
    if n_in is None:
        widths = getattr(model, "widths", None)
        if widths and isinstance(widths[0], int):
            n_in = widths[0]
    if not isinstance(n_in, int):
        raise TypeError(f"cannot tell the number of inputs of a {type(model).__name__}; pass example=")
    return n_in


def example_input(model: nn.Module, batch: int = 4) -> Tensor:
    """A ``(batch, n_in)`` tensor of zeros in the model's dtype and device (a tracing example)."""
    p = next(iter(model.parameters()), None)
    return torch.zeros(batch, _n_inputs(model), dtype=p.dtype if p is not None else None,
                       device=p.device if p is not None else None)


def _check_example(example: Tensor) -> None:
    if not isinstance(example, Tensor) or example.dim() != 2:
        raise ValueError(f"example must be a (batch, n_in) tensor, got "
                         f"{tuple(example.shape) if isinstance(example, Tensor) else type(example).__name__}")
    if example.shape[0] < 2:
        raise ValueError("example needs at least 2 rows: torch.export specialises batch sizes 0 and 1")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' informational logging and torch-internal deprecation noise (library code never
    prints)."""
    names = ["torch.onnx", "torch.onnx._internal.exporter._registration", "torch.export", "torch._export"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _dynamic_shapes(dynamic_batch: bool):
    return ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None


def export_program(model: nn.Module, example: Tensor | None = None, *, dynamic_batch: bool = True):
    """``torch.export.export`` of ``model`` in eval mode, batch dimension symbolic.

    Returns a :class:`torch.export.ExportedProgram` (``program.module()(x)`` runs it)."""
    example = example_input(model) if example is None else example
    _check_example(example)
    was_training = model.training
    model.eval()
    try:
        with _quiet_exporter():
            return torch.export.export(model, (example,), dynamic_shapes=_dynamic_shapes(dynamic_batch),
                                       strict=False)
    finally:
        model.train(was_training)


def to_onnx(model: nn.Module, path: str | os.PathLike, *, example: Tensor | None = None,
            dynamic_batch: bool = True, opset_version: int | None = None, input_name: str = "input",
            output_name: str = "output") -> Path:
    """Write ``model`` as an ONNX file; input ``input_name (batch, n_in)``, output ``output_name
    (batch, n_out)``, with a symbolic batch dimension when ``dynamic_batch``.

    Arguments:
        model: a kanlab model (any ``nn.Module`` taking one ``(batch, n_in)`` tensor works).
        path: the ``.onnx`` file to write (its folder is created).
        example: a tracing input ``(batch >= 2, n_in)`` (default: zeros in the model's dtype).
        opset_version: ONNX opset (default: the exporter's).
    Returns:
        the path written.  Needs the ``onnx`` and ``onnxscript`` packages (``pip install kanlab[dev]``).
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(f"ONNX export needs the 'onnx' and 'onnxscript' packages ({err})") from None
    example = example_input(model) if example is None else example
    _check_example(example)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=_dynamic_shapes(dynamic_batch),
                                        input_names=[input_name], output_names=[output_name],
                                        opset_version=opset_version, verbose=False, optimize=True)
            program.save(str(path))
    finally:
        model.train(was_training)
    return path
