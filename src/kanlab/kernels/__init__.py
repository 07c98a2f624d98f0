"""The contraction of basis values with edge coefficients, behind one function.

* :func:`contract` / :func:`contract_dense` — the dense reference ``values (*, in, K) × weight (out, in, K)``.
* :func:`kan_forward` — a KAN layer's numeric forward through the path picked by :func:`choose_kernel`
  (``"reference"``, ``"dense"`` or ``"local"``, see :mod:`kanlab.kernels.dispatch`); override it per layer
  with ``KANLinear.kernel`` or for a block with :func:`use_kernel`.
* :func:`extension_available` — whether the C++ CPU kernels are built and loaded (pure PyTorch otherwise).
"""

from .dense import contract_dense, edge_contributions
from .dispatch import KernelPath, choose_kernel, kan_forward, list_kernels, register_kernel, use_kernel
from .extension import extension_available, extension_error

__all__ = ["contract", "contract_dense", "edge_contributions", "kan_forward", "choose_kernel", "use_kernel",
           "list_kernels", "register_kernel", "KernelPath", "extension_available", "extension_error"]


def contract(values, weight):
    """``values (*, in, K)`` × ``weight (out, in, K)`` → ``(*, out)``: ``y_o = Σ_i Σ_k w[o,i,k] v[..., i, k]``."""
    return contract_dense(values, weight)
