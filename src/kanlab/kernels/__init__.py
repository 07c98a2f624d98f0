"""The contraction of basis values with edge coefficients, behind one function."""

from .dense import contract_dense, edge_contributions

__all__ = ["contract", "contract_dense", "edge_contributions"]


def contract(values, weight):
    """``values (*, in, K)`` × ``weight (out, in, K)`` → ``(*, out)``: ``y_o = Σ_i Σ_k w[o,i,k] v[..., i, k]``."""
    return contract_dense(values, weight)
