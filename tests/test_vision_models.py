"""Image models: KConvKAN, KAN-conv + MLP head, matched CNN, Wav-KAN."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import kanlab
from kanlab.models import CNN, KANConvMLP, KConvKAN, WavKAN, create_model, list_models, matched_cnn
from kanlab.layers import KANConv2d, KANLinear

BASES = kanlab.list_bases()
WAVELETS = ["mexican_hat", "morlet", "dog", "meyer", "shannon"]
SMALL = {"bspline": {"grid_size": 3}, "rbf": {"num_centers": 4}}

CONV_MODELS = {
    "kconvkan": lambda **kw: KConvKAN(channels=(4, 6), grid_size=3, **kw),
    "kanconv_mlp": lambda **kw: KANConvMLP(channels=(4, 6), head_hidden=(8,), grid_size=3, **kw),
    "cnn": lambda **kw: CNN(channels=(4, 6), **kw),
}


def test_models_are_registered():
    assert {"kconvkan", "kanconv_mlp", "cnn", "wavkan"} <= set(list_models())
    assert isinstance(create_model("kconvkan", channels=(2, 3), grid_size=2), KConvKAN)


@pytest.mark.parametrize("name", sorted(CONV_MODELS))
def test_conv_models_shapes_backward_and_eval_batch_independence(name):
    torch.manual_seed(0)
    model = CONV_MODELS[name]()
    x = torch.randn(6, 1, 8, 8)
    out = model(x)
    assert out.shape == (6, 10)
    F.cross_entropy(out, torch.arange(6)).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    full = model(x)
    for i in range(3):
        torch.testing.assert_close(model(x[i: i + 1]), full[i: i + 1], rtol=1e-5, atol=1e-6)
    # other image sizes work: the trunk ends in an adaptive pool
    assert model(torch.randn(2, 1, 13, 11)).shape == (2, 10)


def test_kconvkan_uses_kan_layers_everywhere_and_config_round_trips():
    model = KConvKAN(channels=(3, 5), head_hidden=(7,), basis="rbf", num_centers=4, grid_range=(-2, 2))
    convs = [m for m in model.modules() if isinstance(m, KANConv2d)]
    heads = [m for m in model.modules() if isinstance(m, KANLinear)]
    assert [c.out_channels for c in convs] == [3, 5]
    assert [(h.in_features, h.out_features) for h in heads] == [(5 * 4, 7), (7, 10)]
    assert all(m.basis.name == "rbf" and m.basis.num_functions == 4 for m in convs + heads)
    cfg = json.loads(json.dumps(model.config()))
    clone = create_model(model.kind, **cfg)
    assert clone.n_params == model.n_params
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def test_kanconv_mlp_has_kan_convs_and_linear_head():
    model = KANConvMLP(channels=(3, 5), head_hidden=(9,), grid_size=3)
    assert sum(isinstance(m, KANConv2d) for m in model.modules()) == 2
    assert [m.out_features for m in model.head if isinstance(m, torch.nn.Linear)] == [9, 10]


def test_matched_cnn_hits_the_parameter_budget():
    target = KConvKAN(channels=(8, 16), grid_size=5).n_params
    cnn = matched_cnn(target)
    assert abs(cnn.n_params - target) / target < 0.05
    assert cnn.channels[1] == 2 * cnn.channels[0]
    assert cnn(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("kwargs,match", [
    (dict(channels=()), "channels"),
    (dict(channels=(4, 0)), "channels"),
    (dict(norm="layer"), "norm"),
    (dict(kernel_size=0), "kernel_size"),
])
def test_conv_model_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KConvKAN(**kwargs)


def test_conv_model_bad_input():
    with pytest.raises(ValueError, match=r"images of shape \(N, 1, H, W\)"):
        KConvKAN(channels=(2,), grid_size=2)(torch.randn(2, 64))


def test_kconvkan_learns_digits_quickly():
    """A few epochs on 400 digits beat chance by a wide margin on held-out digits."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 8.0 - 1.0
    y = torch.tensor(data.target)
    x_tr, y_tr, x_te, y_te = x[:400], y[:400], x[1400:], y[1400:]
    torch.manual_seed(0)
    model = KConvKAN(channels=(4, 8), basis="rbf", num_centers=5, grid_range=(-2, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        for i in range(0, 400, 50):
            loss = F.cross_entropy(model(x_tr[i: i + 50]), y_tr[i: i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    assert acc > 0.8


# ---- Wav-KAN -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("basis", BASES)
def test_wavkan_shape_and_batch_norm_options(basis):
    torch.manual_seed(1)
    model = WavKAN([64, 12, 10], basis=basis, output_batch_norm=True, **SMALL.get(basis, {}))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [n.num_features for n in norms] == [12, 10]
    x = torch.randn(5, 1, 8, 8)  # images are flattened
    out = model(x)
    assert out.shape == (5, 10)
    out.sum().backward()
    plain = WavKAN([64, 12, 10], basis=basis, batch_norm=False, **SMALL.get(basis, {}))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    assert isinstance(create_model("wavkan", **json.loads(json.dumps(model.config()))), WavKAN)


def test_wavkan_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        WavKAN([64, 4, 10], basis="rbf")(torch.randn(3, 63))
    with pytest.raises(ValueError, match="widths"):
        WavKAN([64], basis="rbf")


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_wavkan_and_kan_conv_with_each_wavelet(wavelet):
    """Runs once the wavelet families are registered (skipped by name until then)."""
    if wavelet not in kanlab.list_bases():
        pytest.skip(f"basis {wavelet!r} is not registered in this build")
    torch.manual_seed(2)
    model = WavKAN([64, 8, 10], basis=wavelet).eval()
    x = torch.randn(4, 64)
    out = model(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    torch.testing.assert_close(model(x[:1]), out[:1], rtol=1e-5, atol=1e-6)
    model.train()
    model(x).square().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.net[0].basis.parameters()) \
        or not list(model.net[0].basis.parameters())
    conv = KANConv2d(2, 3, 3, padding=1, basis=wavelet)
    assert conv(torch.randn(2, 2, 5, 5)).shape == (2, 3, 5, 5)


def test_example_trains_and_writes_the_edge_plot(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "kconvkan_digits.py"
    spec = importlib.util.spec_from_file_location("kconvkan_digits_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    png = tmp_path / "edges.png"
    assert module.main([str(png), "--epochs", "1", "--basis", "rbf"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
