"""kanlab.train.least_squares.levenberg_marquardt against exact answers and scipy's solver."""

import pytest
import torch

from kanlab.train.least_squares import levenberg_marquardt


def _problem():
    x = torch.linspace(0, 2, 40, dtype=torch.float64)
    y = 1.7 * torch.exp(-0.8 * x) + 0.3

    def residual(t):
        return t[0] * torch.exp(t[1] * x) + t[2] - y

    def jacobian(t):
        e = torch.exp(t[1] * x)
        return torch.stack([e, t[0] * x * e, torch.ones_like(x)], dim=1)
    return residual, jacobian


@pytest.mark.parametrize("normal_equations", [False, True])
def test_recovers_an_exactly_representable_fit(normal_equations):
    residual, jacobian = _problem()
    theta, sse, steps = levenberg_marquardt(residual, jacobian, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                                            iters=100, rtol=1e-15, normal_equations=normal_equations)
    torch.testing.assert_close(theta, torch.tensor([1.7, -0.8, 0.3], dtype=torch.float64), rtol=1e-9, atol=1e-10)
    assert sse < (1e-20 if not normal_equations else 1e-16) and steps > 0


def test_matches_scipy_on_a_noisy_fit():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    residual, jacobian = _problem()
    noise = torch.sin(torch.arange(40, dtype=torch.float64) * 1.3) * 0.05

    def noisy(t):
        return residual(t) + noise
    start = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    theta, _, _ = levenberg_marquardt(noisy, jacobian, start, iters=200, rtol=1e-15)
    ref = scipy_optimize.least_squares(lambda t: noisy(torch.as_tensor(t)).numpy(), start.numpy(), method="lm",
                                       xtol=1e-15, ftol=1e-15)
    torch.testing.assert_close(theta, torch.as_tensor(ref.x), rtol=1e-7, atol=1e-9)


def test_never_worse_and_respects_the_acceptance_rule():
    residual, jacobian = _problem()
    start = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    start_sse = float(residual(start) @ residual(start))
    theta, sse, _ = levenberg_marquardt(residual, jacobian, start, iters=50, rtol=1e-15,
                                        accept=lambda t: bool(t[1] >= -0.5))  # a bound the optimum violates
    assert sse <= start_sse and theta[1] >= -0.5
    zero = lambda t: torch.zeros(40, 3, dtype=torch.float64)  # noqa: E731  no direction: nothing moves
    theta, sse, steps = levenberg_marquardt(residual, zero, start, iters=5, rtol=0.0)
    assert steps == 0 and torch.equal(theta, start) and sse == pytest.approx(start_sse)
