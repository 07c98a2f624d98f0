"""CSV data for the CLI: header names the columns, one target column, seeded 80/20 split."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["read_csv", "split_train_test", "load_csv_dataset"]


def read_csv(path: str | Path, *, dtype: torch.dtype = torch.float64) -> tuple[list[str], Tensor]:
    """Read a numeric CSV with a header row.  Returns ``(column names, (N, C) tensor)``.

    Raises ``ValueError`` naming the file, row and column of any missing or non-numeric cell.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text CSV file") from None
    except csv.Error as err:
        raise ValueError(f"{path}: not a valid CSV file ({err})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or any(not h for h in header):
        raise ValueError(f"{path}: the header must name every column once, got {header}")
    if len(rows) < 2:
        raise ValueError(f"{path}: no data rows after the header")
    values: list[list[float]] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: row {line_no} has {len(row)} cells but the header has {len(header)}")
        out = []
        for name, cell in zip(header, row):
            text = cell.strip()
            if text == "":
                raise ValueError(f"{path}: row {line_no}, column {name!r} is missing a value")
            try:
                v = float(text)
            except ValueError:
                raise ValueError(f"{path}: row {line_no}, column {name!r} is not a number: {text!r}") from None
            if not math.isfinite(v):
                raise ValueError(f"{path}: row {line_no}, column {name!r} is not finite: {text!r}")
            out.append(v)
        values.append(out)
    return header, torch.tensor(values, dtype=dtype)


def split_train_test(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Seeded random split of ``range(n)`` into train and test indices."""
    if n < 2:
        raise ValueError(f"need at least 2 rows to split into train and test, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    n_test = max(1, int(round(n * test_fraction)))
    return perm[n_test:], perm[:n_test]


def load_csv_dataset(path: str | Path, target: str, test_path: str | Path | None = None, *, seed: int = 0,
                     dtype: torch.dtype = torch.float64) -> dict:
    """A kanlab data dict from CSV file(s): every column but ``target`` is an input (header order)."""
    names, table = read_csv(path, dtype=dtype)
    if target not in names:
        raise ValueError(f"target column {target!r} is not in {path}; columns are {names}")
    inputs = [n for n in names if n != target]
    if not inputs:
        raise ValueError(f"{path}: no input columns besides the target {target!r}")
    ti = names.index(target)
    cols = [names.index(n) for n in inputs]
    x, y = table[:, cols], table[:, ti : ti + 1]
    if test_path is None:
        tr, te = split_train_test(len(x), 0.2, seed)
        return {"train_input": x[tr], "train_label": y[tr], "test_input": x[te], "test_label": y[te],
                "names": inputs, "target": target}
    names_te, table_te = read_csv(test_path, dtype=dtype)
    if names_te != names:
        raise ValueError(f"{test_path}: columns {names_te} differ from the training file's {names}")
    return {"train_input": x, "train_label": y, "test_input": table_te[:, cols],
            "test_label": table_te[:, ti : ti + 1], "names": inputs, "target": target}
