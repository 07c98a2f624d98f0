"""``auto_symbolic``: snap every active numeric edge of a KAN to its best primitive.

Edges are processed layer by layer.  Each edge's candidates are ranked by how well they fit the edge's
current function (``R²`` against complexity, see :mod:`.fit`).  A KAN's decomposition into edges is not
unique, though: an inner edge may have learned ``g`` where ``x²`` would do equally well once the outer
function is adjusted (``sqrt(1 + x²)`` is ``h(g(x))`` for many ``g``).  So, when labels ``y`` are given,
inner-layer edges are chosen by *lookahead*: each of the ``candidates`` best primitives is tried in turn,
the last layer's numeric edges are refitted to the data in closed form (they are linear in their spline
coefficients), and the candidate that leaves the smallest error (again traded against complexity) wins.

A *chain* (a sum node fed by a single edge, followed by the last layer) is the ambiguous case: any split of
the chain's function into inner and outer edge fits the data.  Its candidates are fitted to the whole
chain, always include ``x`` (pass through) and ``x²``, get their constants refined against the data with
the last layer at its least-squares optimum (variable projection), and are judged by how well the outer
edges they leave behind fit a primitive.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Sequence

import torch
from torch import Tensor

from ..attribution import _check_model, capture_layer_inputs
from .fit import _edge_samples_from, _score, default_library, rank_primitives

__all__ = ["auto_symbolic"]


def _last_layer_state(layer) -> dict:
    return {k: v.detach().clone() for k, v in layer.state_dict().items() if isinstance(v, Tensor)}


def _lookahead(model, x: Tensor, y: Tensor) -> float:
    from ..training import solve_last_layer

    last = model.layers[-1]
    h = x
    with torch.no_grad():
        for l, lay in enumerate(model.layers[:-1]):
            h = model._nodes(l, lay(h))
        if last.basis.supports_grid and torch.isfinite(h).all():
            last.update_grid(h)
    mse = solve_last_layer(model, x, y)
    return math.inf if mse is None or not math.isfinite(mse) else mse


def _is_chain(model, l: int, j: int) -> bool:
    """Output ``j`` of KAN layer ``l`` is a sum node fed by exactly one active edge."""
    n_sum, _ = model.width_pairs[l + 1]
    return j < n_sum and int((model.layers[l].mask[j] > 0).sum()) == 1


def _outer_score(model, x: Tensor, j: int, lib, weight_simple: float, r2_floor: float) -> float:
    """Sum over the active last-layer edges leaving node ``j`` of their best primitive score."""
    last = model.layers[-1]
    h = capture_layer_inputs(model, x)[-1]
    total = 0.0
    for k in range(last.out_features):
        if last.mask[k, j] == 0:
            continue
        xs, ys = _edge_samples_from(last, h, j, k, 512)
        if not (torch.isfinite(xs).all() and torch.isfinite(ys).all()):
            return -math.inf
        total += rank_primitives(xs, ys, lib, weight_simple=weight_simple, r2_floor=r2_floor)[0].score
    return total


def _candidates(ranked, k: int, extra: Sequence[str] = ()):
    finite = [f for f in ranked if math.isfinite(f.r2)]
    out = finite[:k]
    for name in extra:
        f = next((f for f in finite if f.name == name), None)
        if f is not None and f not in out:
            out.append(f)
    return out


def _composite_samples(model, l: int, i: int, j: int, h: Tensor) -> tuple[Tensor, Tensor]:
    """For a chain node ``j`` (single input edge ``i → j`` in layer ``l``, next layer the last): the input
    ``x_i`` and what the chain adds to the output, ``Σ_k φ_kj(φ_ji(x_i) + bias_j)``, sorted by ``x_i``."""
    layer, last = model.layers[l], model.layers[-1]
    order = torch.argsort(h[:, i])
    if len(order) > 512:
        order = order[torch.linspace(0, len(order) - 1, 512).round().long()]
    hs = h[order]
    node = model._nodes(l, layer(hs))
    out = (last.edge_outputs(node)[:, :, j] * last.mask[:, j]).sum(dim=1)
    return hs[:, i].to(torch.float64), out.to(torch.float64)


def _fit_chain_constants(model, l: int, i: int, j: int, x: Tensor, y: Tensor, rounds: int) -> None:
    """Variable projection: LBFGS on the constants of edge ``(l, i, j)`` minimising the data error with the
    last layer solved in closed form; the last layer's grid follows the node between rounds."""
    from ..training import projected_mse

    layer = model.layers[l]
    keep = torch.zeros_like(layer.symbolic_affine)
    keep[j, i] = 1.0
    for _ in range(rounds):
        _lookahead(model, x, y)  # grid of the last layer on the current node values
        start = layer.symbolic_affine.detach().clone()
        opt = torch.optim.LBFGS([layer.symbolic_affine], lr=1.0, max_iter=10, history_size=10,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-20, tolerance_change=1e-20)

        def closure():
            opt.zero_grad()
            loss = projected_mse(model, x, y)
            if torch.isfinite(loss):
                loss.backward()
                layer.symbolic_affine.grad.mul_(keep)
            return loss

        try:
            with torch.enable_grad():
                opt.step(closure)
        except (RuntimeError, IndexError):
            pass
        if not torch.isfinite(layer.symbolic_affine).all():
            with torch.no_grad():
                layer.symbolic_affine.copy_(start)
            break


def _choose(model, l: int, i: int, j: int, cands, x: Tensor, y: Tensor, y_var: float, chain: bool, lib,
            weight_simple: float, r2_floor: float, joint_steps: int):
    """Try each candidate on edge ``(l, i, j)`` with the last layer refitted; return (best, tried).

    For a chain node the candidate's constants are first refined against the data with the last layer
    at its least-squares optimum (a candidate fitted to the whole chain is only roughly placed)."""
    saved = copy.deepcopy(model.state_dict())
    best, best_score, best_state, tried = cands[0], -math.inf, None, []
    for cand in cands:
        layer = model.layers[l]
        layer.set_symbolic(j, i, cand.name, cand.affine)
        if chain and joint_steps:
            _fit_chain_constants(model, l, i, j, x, y, joint_steps)
        mse = _lookahead(model, x, y)
        rel = mse / y_var
        score = _score(1.0 - rel, cand.complexity, weight_simple, r2_floor)
        if chain and math.isfinite(rel):
            # judge the split by how symbolic the outer edges become, not only by the spline's error
            outer = _outer_score(model, x, j, lib, weight_simple, r2_floor)
            score = outer - weight_simple * cand.complexity + min(0.0, -math.log10(max(rel, 1e-12)) - 5.0)
        tried.append({"expr": cand.name, "lookahead_r2": 1.0 - rel, "score": score})
        if score > best_score:
            best, best_score, best_state = cand, score, copy.deepcopy(model.state_dict())
        model.load_state_dict(saved)
    if best_state is not None:
        model.load_state_dict(best_state)
        aff = model.layers[l].symbolic_affine[j, i].tolist()
        best = replace(best, a=aff[0], b=aff[1], c=aff[2], d=aff[3])
    return best, tried


@torch.no_grad()
def auto_symbolic(model, x: Tensor, y: Tensor | None = None, *, library: Sequence[str] | None = None,
                  weight_simple: float = 1.0, r2_floor: float = 1e-10, candidates: int = 4,
                  min_r2: float = -math.inf, top: int = 3, joint_steps: int = 3) -> list[dict]:
    """Snap every active numeric edge of ``model`` (in place) to its best-scoring primitive.

    Arguments:
        x: inputs ``(N, n_inputs)`` on which edges are sampled.
        y: labels ``(N, n_outputs)``; enables lookahead for inner layers (see the module doc).
        library: primitive names to try (default: every registered one except ``"0"``).
        weight_simple, r2_floor: ranking trade-off.
        candidates: how many of the best-fitting primitives the lookahead tries.
        min_r2: edges whose chosen fit has ``R²`` below this stay numeric.
        top: runner-up candidates listed in the report.
        joint_steps: rounds of refining a chain candidate's constants with the last layer solved exactly.

    Returns one record per edge: ``{layer, i, j, name, r2, affine, alternatives: [(name, r2), ...]}``.
    """
    _check_model(model)
    lib = list(library) if library is not None else default_library()
    n_layers = len(model.layers)
    if y is not None:
        y = torch.as_tensor(y).to(next(model.parameters()))
        y = y[:, None] if y.dim() == 1 else y
        y_var = float(y.var()) or 1.0
    use_lookahead = y is not None and n_layers > 1 and model.width_pairs[-1][1] == 0
    report = []
    for l, layer in enumerate(model.layers):
        h = capture_layer_inputs(model, x)[l]  # after the snaps of the previous layers
        lookahead = use_lookahead and l < n_layers - 1
        if lookahead and l == 0:
            _lookahead(model, x, y)  # start from the best last layer for the current inner functions
        for j in range(layer.out_features):
            for i in range(layer.in_features):
                if layer.mask[j, i] == 0 or layer.symbolic_name(j, i):
                    continue
                xs, ys = _edge_samples_from(layer, h, i, j, 512)
                ranked = rank_primitives(xs, ys, lib, weight_simple=weight_simple, r2_floor=r2_floor)
                choice = ranked[0]
                record = {"layer": l, "i": i, "j": j}
                if lookahead:
                    chain = l == n_layers - 2 and _is_chain(model, l, j)
                    if chain:
                        # the split of a chain into inner and outer function is arbitrary: fit the candidates
                        # to the whole chain, and judge them by how symbolic the outer edges then become
                        xc, yc = _composite_samples(model, l, i, j, h)
                        ranked_c = rank_primitives(xc, yc, lib, weight_simple=weight_simple, r2_floor=r2_floor)
                        cands = _candidates(ranked_c, candidates, ("x", "x^2"))
                    else:
                        cands = _candidates(ranked, candidates)
                    if cands:
                        choice, record["lookahead"] = _choose(model, l, i, j, cands, x, y, y_var, chain, lib,
                                                              weight_simple, r2_floor, joint_steps)
                record.update({"name": choice.name, "r2": choice.r2, "affine": list(choice.affine),
                               "alternatives": [(f.name, f.r2) for f in ranked if f is not choice][:top]})
                if choice.r2 >= min_r2 and math.isfinite(choice.r2):
                    layer.set_symbolic(j, i, choice.name, choice.affine)
                else:
                    layer.set_symbolic(j, i, None)
                    record["name"] = None
                report.append(record)
    return report
