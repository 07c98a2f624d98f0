import torch

import kanlab


def test_kan_forward_shape_and_fit_reduces_loss():
    data = kanlab.make_dataset("x*y", n_train=200, n_test=100, seed=1)
    model = kanlab.KAN([2, 3, 1], grid_size=5)
    before = torch.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2)).item()
    hist = kanlab.fit(model, data, steps=10)
    assert model(data["test_input"]).shape == (100, 1)
    assert hist.test_loss[-1] < before / 5
