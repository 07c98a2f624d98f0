"""Least-squares transfer of edge coefficients from one basis to another (grid update and extension)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["least_squares_refit"]


def least_squares_refit(old_values: Tensor, coef: Tensor, new_values: Tensor, ridge: float = 1e-13) -> Tensor:
    """Coefficients in a new basis that reproduce the functions of the old one on given samples.

    Arguments:
        old_values: ``(N, in, K_old)`` old basis at the samples.
        coef: ``(out, in, K_old)`` old coefficients.
        new_values: ``(N, in, K_new)`` new basis at the same samples.
        ridge: relative Tikhonov regularisation (keeps functions with no samples in their support at 0).

    Returns:
        ``(out, in, K_new)`` in ``coef``'s dtype, solved per input feature in float64 by the normal equations.
    """
    a_old = old_values.detach().to(torch.float64)
    a_new = new_values.detach().to(torch.float64)
    c = coef.detach().to(torch.float64)
    targets = torch.einsum("nik,oik->ino", a_old, c)  # (in, N, out)
    a = a_new.permute(1, 0, 2)  # (in, N, K_new)
    gram = a.transpose(1, 2) @ a  # (in, K, K)
    scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-300)  # (in,)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = gram + ridge * scale[:, None, None] * eye
    rhs = a.transpose(1, 2) @ targets  # (in, K, out)
    sol = torch.linalg.solve(gram, rhs)  # (in, K, out)
    return sol.permute(2, 0, 1).to(coef.dtype).contiguous()
