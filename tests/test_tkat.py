"""TKAT: what it reads (never the future observed rows), what it exposes, checkpoints and learning."""

import pytest
import torch

from kanlab import io
from kanlab.models import TKAT, create_model, list_models

N_OBS, N_KNOWN, T, H = 3, 2, 6, 4


@pytest.fixture(autouse=True)
def _one_thread():
    """Recurrent steps are many small ops: intra-op threads only add barrier waits (badly so on a shared
    machine under pytest-xdist), so these tests run single-threaded and restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(n_known: int = N_KNOWN, **kw) -> TKAT:
    torch.manual_seed(0)
    return TKAT(N_OBS, n_known, T, H, hidden_size=8, num_heads=2, **kw).eval()


def _input(batch=3, n_known=N_KNOWN, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, T + H, N_OBS + n_known, generator=g)


def test_registered_and_output_shape():
    assert "tkat" in list_models()
    model = create_model("tkat", n_observed=N_OBS, n_known=N_KNOWN, lookback=T, horizon=H, hidden_size=8,
                         num_heads=2)
    assert isinstance(model, TKAT)
    assert model(_input()).shape == (3, H)


def test_future_observed_rows_are_never_read():
    model = _model()
    x = _input()
    base = model(x)
    changed = x.clone()
    changed[:, T:, :N_OBS] = torch.randn(3, H, N_OBS) * 100
    torch.testing.assert_close(model(changed), base, rtol=0, atol=0)
    nan = x.clone()
    nan[:, T:, :N_OBS] = float("nan")  # what make_forecasting_data puts there
    torch.testing.assert_close(model(nan), base, rtol=0, atol=0)


@pytest.mark.parametrize("where", ["past observed", "past known", "future known"])
def test_prediction_depends_on_what_it_may_read(where):
    model = _model()
    x = _input()
    base = model(x)
    rows, cols = {"past observed": (slice(0, T), slice(0, N_OBS)),
                  "past known": (slice(0, T), slice(N_OBS, None)),
                  "future known": (slice(T, None), slice(N_OBS, None))}[where]
    changed = x.clone()
    changed[1, rows, cols] += 0.5
    out = model(changed)
    assert not torch.allclose(out[1], base[1], atol=1e-6)
    torch.testing.assert_close(out[[0, 2]], base[[0, 2]])  # other samples untouched


def test_last_past_step_matters_through_the_encoder_state():
    model = _model()
    x = _input()
    changed = x.clone()
    changed[:, T - 1, 0] += 1.0
    assert not torch.allclose(model(changed), model(x), atol=1e-6)


def test_decoder_starts_from_encoder_state(monkeypatch):
    model = _model()
    seen = {}
    enc_forward, dec_forward = model.encoder.forward, model.decoder.forward

    def enc(x, state=None):
        out, st = enc_forward(x, state)
        seen["encoder"] = st
        return out, st

    def dec(x, state=None):
        seen["decoder"] = state
        return dec_forward(x, state)

    monkeypatch.setattr(model.encoder, "forward", enc)
    monkeypatch.setattr(model.decoder, "forward", dec)
    model(_input())
    assert seen["decoder"] is seen["encoder"]
    assert len(seen["decoder"]) == 3  # (h, c, sub): the sub-KAN states are carried over too


def test_variable_selection_weights_are_exposed():
    model = _model()
    info = model.interpret(_input())
    past, fut = info["past_weights"], info["future_weights"]
    assert past.shape == (3, T, N_OBS + N_KNOWN) and fut.shape == (3, H, N_KNOWN)
    for w in (past, fut):
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    assert info["future_columns"] == list(range(N_OBS, N_OBS + N_KNOWN))
    torch.testing.assert_close(info["prediction"], model(_input()))
    att = info["attention"]
    assert att.shape == (3, T + H, T + H)
    assert torch.all(att.triu(1) == 0)  # causal by default


def test_without_known_covariates():
    model = _model(n_known=0)
    x = _input(n_known=0)
    base = model(x)
    assert base.shape == (3, H)
    x2 = x.clone()
    x2[:, T:] = float("nan")
    torch.testing.assert_close(model(x2), base, rtol=0, atol=0)
    assert model.interpret(x)["future_weights"].shape == (3, H, 0)


def test_state_dict_and_checkpoint_round_trip(tmp_path):
    model = _model(sub_kan=[{"basis": "bspline", "order": 2}, "rbf"], cell_activation="tanh")
    x = _input()
    other = TKAT.from_config(model.config()).eval()
    assert not torch.allclose(other(x), model(x))
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)
    io.save(model, tmp_path / "ckpt")
    loaded = io.load(tmp_path / "ckpt")
    assert isinstance(loaded, TKAT) and loaded.config() == model.config()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_bad_input_gives_clear_errors():
    model = _model()
    with pytest.raises(ValueError, match=r"T\+H=10"):
        model(torch.randn(2, T, N_OBS + N_KNOWN))
    with pytest.raises(ValueError, match="F_obs"):
        model(torch.randn(2, T + H, N_OBS))
    x = _input()
    x[0, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="past rows"):
        model(x)
    x = _input()
    x[0, T + 1, N_OBS] = float("nan")
    with pytest.raises(ValueError, match="known future"):
        model(x)
    with pytest.raises(ValueError, match="num_heads"):
        TKAT(2, 1, 4, 2, hidden_size=6, num_heads=4)
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[1.0]])


def test_learns_a_known_future_signal():
    """The target is the known covariate of the same future step: only a model that reads the known
    future rows can fit it, and TKAT does within 30 Adam steps."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, T + H, N_OBS + N_KNOWN, generator=g)
    y = x[:, T:, N_OBS].clone()
    x[:, T:, :N_OBS] = float("nan")
    torch.manual_seed(0)
    model = TKAT(N_OBS, N_KNOWN, T, H, hidden_size=8, num_heads=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = torch.mean((model(x) - y) ** 2).item()
    for _ in range(30):
        loss = torch.mean((model(x) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * before
