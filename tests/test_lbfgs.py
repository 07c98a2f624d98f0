"""FastLBFGS against torch.optim.LBFGS as the oracle.

Every comparison runs both optimizers on identical copies of a problem.  In the default mode
FastLBFGS's dot products and two-loop updates round differently from torch's, so trajectories are
compared with a tolerance; with ``match_torch_rounding = True`` they must be bitwise identical,
which pins down every branch of the iteration and line search.
"""

import copy
import functools
import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

import kanlab
from kanlab.train import lbfgs as lbfgs_module
from kanlab.train.lbfgs import FastLBFGS
from kanlab.utils import seeded

F64, F32 = torch.float64, torch.float32
KANLAB_FIT = dict(lr=1, history_size=10, max_iter=20, line_search_fn="strong_wolfe",
                  tolerance_grad=1e-32, tolerance_change=1e-32)


# ---------------------------------------------------------------------------------------- problems
def rosenbrock(dtype=F64):
    """Chained Rosenbrock over three parameter tensors."""
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(0.5 * torch.randn(s, generator=g, dtype=dtype)) for s in [(4,), (2, 3), (3,)]]

    def loss():
        x = torch.cat([p.reshape(-1) for p in params])
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    return SimpleNamespace(params=params, loss=loss, model=None)


def least_squares(dtype=F64):
    """Moderately ill-conditioned linear least squares, 13 unknowns in three tensors."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(40, 13, generator=g, dtype=dtype) * torch.logspace(0, 1, 13, dtype=dtype)
    b = torch.randn(40, generator=g, dtype=dtype)
    params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype)) for s in [(6,), (2, 3), (1,)]]

    def loss():
        return ((a @ torch.cat([p.reshape(-1) for p in params]) - b) ** 2).mean()
    return SimpleNamespace(params=params, loss=loss, model=None)


def nonsmooth(dtype=F64):
    """|x - c|_1 + 0.1 |x|^2: kinks make the line search zoom until its bracket is tiny."""
    g = torch.Generator().manual_seed(2)
    c = torch.randn(10, generator=g, dtype=dtype)
    params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype)) for s in [(4,), (2, 3)]]

    def loss():
        x = torch.cat([p.reshape(-1) for p in params])
        return (x - c).abs().sum() + 0.1 * (x ** 2).sum()
    return SimpleNamespace(params=params, loss=loss, model=None)


@functools.lru_cache(maxsize=None)
def _xy_data(dtype):
    return kanlab.make_dataset("x*y", n_train=200, seed=0, dtype=dtype)


def kan(dtype=F64):
    """The tiny KAN regression kanlab.fit trains with L-BFGS."""
    with seeded(0):
        model = kanlab.KAN([2, 3, 1], grid_size=5, dtype=dtype)
    data = _xy_data(dtype)

    def loss():
        return ((model(data["train_input"]) - data["train_label"]) ** 2).mean()
    return SimpleNamespace(params=list(model.parameters()), loss=loss, model=model, x=data["train_input"])


PROBLEMS = {"rosenbrock": rosenbrock, "least_squares": least_squares, "kan": kan, "nonsmooth": nonsmooth}
NO_LS_LR = {"rosenbrock": 1e-3, "least_squares": 0.02, "kan": 0.2, "nonsmooth": 0.05}  # stable fixed steps


# ------------------------------------------------------------------------------------------ runner
@dataclass
class Record:
    loss: float
    evals: int
    iters: int
    x: torch.Tensor


def _flat(params):
    return torch.cat([p.detach().reshape(-1) for p in params]).clone()


def _closure(opt, problem):
    def closure():
        opt.zero_grad()
        loss = problem.loss()
        loss.backward()
        return loss
    return closure


def run(cls, make, steps, *, exact=False, between=None, opt=None, problem=None, **kw):
    """Run ``steps`` optimizer steps; ``between(k, problem)`` runs before step k."""
    problem = problem or make()
    if opt is None:
        opt = cls(problem.params, **kw)
    if exact:
        opt.match_torch_rounding = True
    closure = _closure(opt, problem)
    records = []
    for k in range(steps):
        if between is not None:
            between(k, problem)
        ret = opt.step(closure)
        st = opt.state[problem.params[0]]
        records.append(Record(float(ret.detach()), st["func_evals"], st["n_iter"], _flat(problem.params)))
    return records, opt, problem


def assert_match(ref, got, exact, rtol=1e-9, atol=1e-12):
    assert len(ref) == len(got)
    for k, (r, g) in enumerate(zip(ref, got)):
        assert (g.evals, g.iters) == (r.evals, r.iters), f"step {k}"
        if exact:
            assert g.loss == r.loss, f"step {k}"
            assert torch.equal(g.x, r.x), f"step {k}: max diff {float((g.x - r.x).abs().max())}"
        else:
            assert g.loss == pytest.approx(r.loss, rel=rtol, abs=atol), f"step {k}"
            torch.testing.assert_close(g.x, r.x, rtol=rtol, atol=atol, msg=f"step {k}")


def compare(make, steps, exact, rtol=1e-9, atol=1e-12, between=None, **kw):
    ref, ref_opt, _ = run(torch.optim.LBFGS, make, steps, between=between, **kw)
    got, got_opt, _ = run(FastLBFGS, make, steps, exact=exact, between=between, **kw)
    assert_match(ref, got, exact, rtol, atol)
    return ref, got, ref_opt, got_opt


MODES = [pytest.param(False, id="fast"), pytest.param(True, id="exact")]


# ------------------------------------------------------------------------------ trajectory parity
@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_trajectory_matches_torch_with_history_wraparound(name, ls, exact):
    # rounding differences grow ~10x per 10 iterations here, so the default mode runs fewer steps
    lr = 1 if ls else NO_LS_LR[name]
    ref, got, _, opt = compare(PROBLEMS[name], 4 if exact else 2, exact, lr=lr, history_size=3,
                               max_iter=10, line_search_fn=ls, tolerance_grad=1e-32, tolerance_change=1e-32)
    assert got[-1].iters >= 4 * 3  # many more iterations than history entries: it wrapped
    assert len(opt.state[opt._params[0]]["old_dirs"]) == 3
    assert got[-1].loss < got[0].loss or (name == "nonsmooth" and not ls)  # fixed steps oscillate at kinks


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_kanlab_fit_configuration(name, exact):
    compare(PROBLEMS[name], 3 if exact else 1, exact, **KANLAB_FIT)


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_float32(name, ls, exact):
    make = functools.partial(PROBLEMS[name], F32)
    kw = dict(lr=1 if ls else NO_LS_LR[name], line_search_fn=ls, history_size=3, max_iter=8)
    if exact:
        compare(make, 3, True, **kw)
    elif name in ("least_squares", "kan"):  # elsewhere float32 rounding differences grow fast
        compare(make, 2, False, rtol=1e-4, atol=1e-5, **kw)


def kink_1d(dtype=F64):
    """|x - 0.3| from x = 0: the curvature condition never holds, so the zoom runs to its end."""
    x = torch.nn.Parameter(torch.zeros(1, dtype=dtype))
    return SimpleNamespace(params=[x], loss=lambda: (x - 0.3).abs().sum(), model=None)


def cliff_1d(dtype=F64):
    """Slope -1 everywhere but for an upward jump at x = 5: the second trial step (x = 10) passes
    Armijo yet is higher than the first; torch only closes the bracket on that from the third."""
    x = torch.nn.Parameter(torch.zeros(1, dtype=dtype))
    return SimpleNamespace(params=[x], loss=lambda: (9.5 * (x > 5).to(dtype) - x).sum(), model=None)


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("max_eval", [25, 200])
def test_line_search_edge_cases(max_eval, exact):
    # the zoom shrinks the bracket around the kink until its width test (1e-9) stops it
    ref, got, _, _ = compare(kink_1d, 2, exact, line_search_fn="strong_wolfe", max_iter=3, max_eval=max_eval)
    assert got[0].evals > 20 and float(got[0].x) == pytest.approx(0.3, abs=1e-9)
    ref, got, _, _ = compare(cliff_1d, 1, exact, line_search_fn="strong_wolfe", max_iter=1, max_eval=30)
    assert float(got[0].x) > 1e3  # kept extrapolating
    # zooms towards the jump: repeated interpolations next to a bracket end (insufficient
    # progress), and brackets whose ends have equal losses
    ref, got, _, _ = compare(cliff_1d, 4, exact, lr=1e-4, line_search_fn="strong_wolfe", max_iter=10)
    assert float(got[-1].x) == pytest.approx(5.0, abs=1e-3)
    compare(cliff_1d, 3, exact, **KANLAB_FIT)


@pytest.mark.parametrize("name", ["least_squares", "kan", "nonsmooth"])
def test_line_search_extrapolation_and_zoom(name):
    # a tiny first step makes the bracketing phase extrapolate; kinks keep the zoom phase busy.
    # Only bitwise mode: these searches take near-tie decisions (e.g. the sign of the cubic's
    # discriminant along an almost linear slice) that a different rounding may flip.
    compare(PROBLEMS[name], 3, True, lr=1e-4, line_search_fn="strong_wolfe", max_iter=10)
    compare(PROBLEMS[name], 2, True, lr=1, line_search_fn="strong_wolfe", max_iter=20, max_eval=200)


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
@pytest.mark.parametrize("limits", [dict(max_iter=5), dict(max_iter=9, max_eval=6), dict(max_iter=1),
                                    dict(max_iter=4, max_eval=1), dict(max_iter=0)])
def test_max_iter_and_max_eval(limits, ls, exact):
    lr = 1 if ls else NO_LS_LR["rosenbrock"]
    ref, got, _, _ = compare(rosenbrock, 3, exact, lr=lr, line_search_fn=ls, history_size=4, **limits)
    if limits.get("max_eval") == 6 and ls:
        assert got[0].evals <= 1 + 6 and got[0].iters < 9  # stopped by max_eval


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_tolerance_grad_stops_early_and_at_start(ls, exact):
    ref, got, ref_opt, opt = compare(least_squares, 4, exact, line_search_fn=ls, max_iter=100,
                                     max_eval=200, tolerance_grad=1e-3 if ls else 1e-2)
    assert got[0].iters < 100  # stopped by the gradient test
    # once converged, a step returns after its first evaluation without touching d, t, ...
    assert got[-1].evals == got[-2].evals + 1 and got[-1].iters == got[-2].iters
    assert set(opt.state[opt._params[0]]) == set(ref_opt.state[ref_opt._params[0]])


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
@pytest.mark.parametrize("tol", [1e-2, 1e-4])
def test_tolerance_change_stops_early(tol, ls, exact):
    lr = 1 if ls else NO_LS_LR["kan"]
    ref, got, _, _ = compare(kan, 3, exact, lr=lr, line_search_fn=ls, max_iter=50, max_eval=100,
                             tolerance_change=tol)
    assert got[-1].iters < 3 * 50


@pytest.mark.parametrize("exact", MODES)
def test_lack_of_progress_and_small_directional_derivative(exact):
    # tiny fixed steps on a steep loss: max|d t| <= tolerance_change ends each step after one
    # iteration although the loss still changes by much more than tolerance_change
    def steep():
        problem = least_squares()
        inner = problem.loss
        problem.loss = lambda: 1e8 * inner()
        return problem
    ref, got, _, _ = compare(steep, 3, exact, lr=1e-18, max_iter=50)
    assert [r.iters for r in got] == [1, 2, 3]
    assert abs(got[2].loss - got[1].loss) > 1e-3
    # a large tolerance_change: the gtd > -tolerance_change test ends steps early
    ref, got, _, _ = compare(least_squares, 3, exact, line_search_fn="strong_wolfe", max_iter=100,
                             max_eval=1000, tolerance_grad=0, tolerance_change=1e-2)
    assert got[-1].iters < 3 * 100


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_param_without_grad(ls, exact):
    def make():
        problem = rosenbrock()
        problem.params = [problem.params[0], torch.nn.Parameter(torch.ones(2, 2, dtype=F64)),
                          *problem.params[1:]]  # the new one is not in the loss: its grad stays None
        return problem
    ref, got, _, _ = compare(make, 3, exact, lr=1 if ls else 1e-3, line_search_fn=ls, max_iter=8)
    assert torch.equal(got[-1].x[4:8], torch.ones(4, dtype=F64))  # zero gradient: untouched


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_param_data_replaced_between_steps(ls, exact):
    seen = []  # keeps every coefficient storage alive, so their addresses stay distinct

    def replace(k, problem):
        if k:
            problem.model.update_grid(problem.x)  # kanlab assigns coef.data = new tensor
            for p in problem.params[:2]:
                p.data = p.data.clone()
        seen.append(problem.params[1].data)

    ref, got, _, _ = compare(kan, 4, exact, between=replace, lr=1 if ls else NO_LS_LR["kan"],
                             line_search_fn=ls, max_iter=6, history_size=4)
    assert len({t.data_ptr() for t in seen}) == 8  # the coefficients really moved to new storage


@pytest.mark.parametrize("exact", MODES)
def test_non_contiguous_params(exact):
    # torch.optim.LBFGS cannot .view(-1) such a parameter's gradient; FastLBFGS copies it instead
    # and matches torch run on contiguous copies
    def make(strided):
        problem = kan()
        if strided:
            for p in problem.params[:2]:
                p.data = p.data.transpose(0, 1).contiguous().transpose(0, 1)
        return problem
    kw = dict(line_search_fn="strong_wolfe", max_iter=6)
    with pytest.raises(RuntimeError, match="view"):
        run(torch.optim.LBFGS, functools.partial(make, True), 1, **kw)
    ref, _, _ = run(torch.optim.LBFGS, functools.partial(make, False), 2, **kw)
    got, _, problem = run(FastLBFGS, functools.partial(make, True), 2, exact=exact, **kw)
    assert not problem.params[1].is_contiguous()
    assert_match(ref, got, exact)


@pytest.mark.parametrize("exact", MODES)
def test_tensor_lr(exact):
    compare(least_squares, 3, exact, lr=torch.tensor(0.5), line_search_fn="strong_wolfe", max_iter=6)
    compare(least_squares, 3, exact, lr=torch.tensor([0.02], dtype=F64), max_iter=6)


@pytest.mark.parametrize("exact", MODES)
def test_sparse_gradient(exact):
    def run_sparse(cls):
        problem = least_squares()
        opt = cls(problem.params, line_search_fn="strong_wolfe", max_iter=6)
        if exact and cls is FastLBFGS:
            opt.match_torch_rounding = True

        def closure():
            opt.zero_grad()
            loss = problem.loss()
            loss.backward()
            problem.params[0].grad = problem.params[0].grad.to_sparse()
            return loss
        out = []
        for _ in range(3):
            ret = opt.step(closure)
            st = opt.state[problem.params[0]]
            out.append(Record(float(ret.detach()), st["func_evals"], st["n_iter"], _flat(problem.params)))
        return out
    assert_match(run_sparse(torch.optim.LBFGS), run_sparse(FastLBFGS), exact)


# ----------------------------------------------------------------------------- returned value, state
def test_step_returns_first_closure_loss_and_runs_closure_with_grad():
    problem = kan()
    opt = FastLBFGS(problem.params, line_search_fn="strong_wolfe", max_iter=5)
    seen, grad_modes = [], []

    def closure():
        opt.zero_grad()
        grad_modes.append(torch.is_grad_enabled())
        loss = problem.loss()
        loss.backward()
        seen.append(loss)
        return loss
    with torch.no_grad():
        ret = opt.step(closure)
    assert ret is seen[0] and len(seen) == opt.state[problem.params[0]]["func_evals"] > 1
    assert all(grad_modes)


def _state_kinds(opt):
    st = opt.state[opt._params[0]]

    def kind(v):
        if isinstance(v, torch.Tensor):
            return ("tensor", v.dtype, tuple(v.shape))
        if isinstance(v, list):
            return ("list", len(v), tuple(kind(e) for e in v))
        return (type(v).__name__,)
    return {k: kind(v) for k, v in st.items()}


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_state_has_torchs_keys_and_kinds(ls, dtype):
    kw = dict(lr=1 if ls else 1e-3, line_search_fn=ls, history_size=3, max_iter=7)
    _, _, ref_opt, opt = compare(functools.partial(rosenbrock, dtype), 2, True, **kw)
    assert _state_kinds(opt) == _state_kinds(ref_opt)
    st, ref_st = opt.state[opt._params[0]], ref_opt.state[ref_opt._params[0]]
    for key in ("d", "prev_flat_grad"):
        assert torch.equal(st[key], ref_st[key])
    for key in ("old_dirs", "old_stps", "ro", "al"):
        assert all(torch.equal(a, b) for a, b in zip(st[key], ref_st[key]))
    assert st["prev_loss"] == ref_st["prev_loss"] and float(st["t"]) == float(ref_st["t"])
    # torch updates prev_flat_grad in place: the tensor object persists across steps
    kept, ref_kept = st["prev_flat_grad"], ref_st["prev_flat_grad"]
    opt.step(_closure(opt, SimpleNamespace(loss=lambda: (sum(((p - 1) ** 2).sum() for p in opt._params)))))
    ref_opt.step(_closure(ref_opt, SimpleNamespace(
        loss=lambda: (sum(((p - 1) ** 2).sum() for p in ref_opt._params)))))
    assert ref_opt.state[ref_opt._params[0]]["prev_flat_grad"] is ref_kept
    assert opt.state[opt._params[0]]["prev_flat_grad"] is kept


@pytest.mark.parametrize("exact", MODES)
@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_state_dict_round_trip_and_cross_loading(ls, exact):
    kw = dict(lr=1 if ls else 1e-3, line_search_fn=ls, history_size=3, max_iter=7)

    def continue_from(src_cls, dst_cls, exact_dst):
        """src runs 2 steps; its state dict is loaded into a fresh dst on a copy of the params."""
        _, src, problem = run(src_cls, rosenbrock, 2, exact=exact and src_cls is FastLBFGS, **kw)
        sd = copy.deepcopy(src.state_dict())
        twin = rosenbrock()
        with torch.no_grad():
            for p, q in zip(twin.params, problem.params):
                p.copy_(q)
        dst = dst_cls(twin.params, **kw)
        dst.load_state_dict(sd)
        mine, _, _ = run(dst_cls, None, 3, exact=exact_dst, opt=dst, problem=twin)
        theirs, _, _ = run(src_cls, None, 3, exact=exact and src_cls is FastLBFGS, opt=src,
                           problem=problem)
        return theirs, mine

    # FastLBFGS -> FastLBFGS continues exactly as the uninterrupted optimizer
    theirs, mine = continue_from(FastLBFGS, FastLBFGS, exact)
    assert_match(theirs, mine, exact=True)
    # torch -> FastLBFGS and FastLBFGS -> torch continue like torch
    theirs, mine = continue_from(torch.optim.LBFGS, FastLBFGS, exact)
    assert_match(theirs, mine, exact, rtol=1e-9)
    theirs, mine = continue_from(FastLBFGS, torch.optim.LBFGS, False)
    assert_match(theirs, mine, exact, rtol=1e-9)


def test_state_survives_save_and_load(tmp_path):
    _, opt, problem = run(FastLBFGS, kan, 2, **KANLAB_FIT)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    twin = FastLBFGS(problem.params, **KANLAB_FIT)
    twin.load_state_dict(torch.load(tmp_path / "opt.pt"))
    a = opt.state[problem.params[0]]
    b = twin.state[problem.params[0]]
    assert a.keys() == b.keys() and all(torch.equal(x, y) for x, y in zip(a["old_dirs"], b["old_dirs"]))


# ------------------------------------------------------------------------------- fast path / fallback
def _forbid(monkeypatch, target, name):
    def boom(*a, **k):
        raise AssertionError(f"{name} must not run")
    monkeypatch.setattr(target, name, boom)


def test_fast_path_is_taken_for_cpu_float_params(monkeypatch):
    _forbid(monkeypatch, lbfgs_module, "_torch_step")
    run(FastLBFGS, kan, 2, **KANLAB_FIT)
    run(FastLBFGS, functools.partial(kan, F32), 2, lr=0.2, max_iter=5)


@pytest.mark.parametrize("case", ["mixed_dtype", "complex", "state_dtype"])
def test_fallback_matches_torch(case, monkeypatch):
    def make():
        problem = least_squares()
        if case == "mixed_dtype":
            extra = torch.nn.Parameter(torch.ones(3, dtype=F32))
            inner, problem.params = problem.loss, problem.params + [extra]
            problem.loss = lambda: inner() + ((extra.double() - 2) ** 2).sum()
        elif case == "complex":
            extra = torch.nn.Parameter(torch.ones(2, dtype=torch.complex128))
            inner, problem.params = problem.loss, problem.params + [extra]
            problem.loss = lambda: inner() + ((extra - 1j).abs() ** 2).sum()
        return problem

    if case != "state_dtype":
        _forbid(monkeypatch, FastLBFGS, "_fast_step")
        compare(make, 3, True, line_search_fn="strong_wolfe", max_iter=6)
        compare(make, 3, True, lr=0.05, max_iter=6)
    else:  # a state the fast path does not take (a saved vector in another dtype) -> torch's step
        records = []
        for cls in (torch.optim.LBFGS, FastLBFGS):
            _, opt, problem = run(torch.optim.LBFGS, least_squares, 1, max_iter=6)
            st = opt.state[problem.params[0]]
            st["prev_flat_grad"] = st["prev_flat_grad"].float()
            if cls is FastLBFGS:
                fast = FastLBFGS(problem.params, max_iter=6)
                fast.state[problem.params[0]] = st
                opt = fast
                _forbid(monkeypatch, FastLBFGS, "_fast_step")
            records.append(run(cls, None, 2, opt=opt, problem=problem)[0])
        assert_match(records[0], records[1], exact=True)


def test_hooks_run_once_per_step_on_both_paths():
    torch.optim.LBFGS([torch.nn.Parameter(torch.zeros(1))])  # makes sure LBFGS.step is hook-wrapped
    for params in ([torch.nn.Parameter(torch.zeros(3, dtype=F64))],  # fast path
                   [torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))]):  # fallback
        opt = FastLBFGS(params, max_iter=3)
        calls = []
        opt.register_step_pre_hook(lambda *a: calls.append("pre"))
        opt.register_step_post_hook(lambda *a: calls.append("post"))

        def closure():
            opt.zero_grad()
            loss = ((params[0] - 1).abs() ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        assert calls == ["pre", "post"]


# -------------------------------------------------------------------------------------------- errors
def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - comparing whatever torch raises
        return type(e), str(e)
    return None


@pytest.mark.parametrize("kw", [dict(lr=-1.0), dict(lr=torch.tensor([1.0, 2.0]))])
def test_constructor_errors_match_torch(kw):
    p = [torch.nn.Parameter(torch.zeros(2))]
    expected = _raised(lambda: torch.optim.LBFGS(p, **kw))
    assert expected is not None and _raised(lambda: FastLBFGS(p, **kw)) == expected
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [torch.nn.Parameter(torch.zeros(2))]}]
    assert _raised(lambda: FastLBFGS(groups)) == _raised(lambda: torch.optim.LBFGS(groups))


@pytest.mark.parametrize("kw", [dict(line_search_fn="backtracking"), dict(line_search_fn="strong_wolfe", max_eval=0),
                                dict(closure=None)])
def test_step_errors_match_torch(kw):
    outcomes = []
    for cls in (torch.optim.LBFGS, FastLBFGS):
        problem = rosenbrock()
        opt = cls(problem.params, **{k: v for k, v in kw.items() if k != "closure"})
        closure = kw.get("closure", _closure(opt, problem))
        outcomes.append((_raised(lambda: opt.step(closure)), _flat(problem.params),
                         dict(opt.state[problem.params[0]])))
    (ref_err, ref_x, ref_state), (err, x, state) = outcomes
    assert ref_err is not None and err[0] is ref_err[0]
    if kw.get("line_search_fn") == "backtracking":
        assert err == ref_err
    assert torch.equal(x, ref_x)
    assert {k: state[k] for k in ("func_evals", "n_iter") if k in state} == \
        {k: ref_state[k] for k in ("func_evals", "n_iter") if k in ref_state}


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_nan_loss_behaves_like_torch(ls):
    outcomes = []
    for cls in (torch.optim.LBFGS, FastLBFGS):
        problem = rosenbrock()
        inner, calls = problem.loss, [0]

        def loss(inner=inner, calls=calls):
            calls[0] += 1
            return inner() * (math.nan if calls[0] == 4 else 1.0)
        problem.loss = loss
        opt = cls(problem.params, lr=1 if ls else 1e-3, line_search_fn=ls, max_iter=5)
        error = _raised(lambda: run(cls, None, 2, opt=opt, problem=problem))
        st = opt.state[problem.params[0]]
        outcomes.append((error and error[0], st["func_evals"], st["n_iter"], _flat(problem.params)))
    (ref_err, *ref), (err, *got) = outcomes
    assert err is ref_err and ref[:2] == got[:2]
    assert torch.equal(ref[2].isnan(), got[2].isnan())
    torch.testing.assert_close(ref[2], got[2], equal_nan=True, rtol=1e-9, atol=1e-12)
