"""Attribution scores (forward hooks) and pruning (a new, smaller model; kept edges unchanged)."""

import pytest
import torch

import kanlab
from kanlab.interpret import attribute, capture_layer_inputs, prune, prune_inputs, select_nodes
from kanlab.utils import seeded


def _random_kan(widths, seed=0, grid_size=5):
    with seeded(seed):
        model = kanlab.KAN(widths, grid_size=grid_size, dtype=torch.float64)
        for layer in model.layers:
            torch.nn.init.normal_(layer.coef, std=0.5)
            torch.nn.init.normal_(layer.bias, std=0.3)
    return model


def _x(n=300, d=2, seed=1):
    return 2 * torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) - 1


def test_capture_uses_temporary_hooks_and_matches_layer_inputs():
    model = _random_kan([2, 3, (2, 1), 1])
    x = _x()
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    captured = capture_layer_inputs(model, x)
    expected = model.layer_inputs(x)[:-1]
    for a, b in zip(captured, expected):
        torch.testing.assert_close(a, b.detach())
    assert all(not layer._forward_hooks for layer in model.layers)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_edge_scales_are_stds_and_scores_are_conserved():
    model = _random_kan([3, 4, (2, 1), 2])
    x = _x(d=3)
    attr = attribute(model, x)
    inputs = model.layer_inputs(x)
    for l, layer in enumerate(model.layers):
        manual = layer.edge_outputs(inputs[l]).detach().std(dim=0)
        torch.testing.assert_close(attr.edge_scale[l], manual)
    # each layer hands on exactly the score it receives: the inputs' scores sum to the number of outputs
    for scores in attr.node_score:
        assert float(scores.sum()) == pytest.approx(model.out_features)
    assert attr.input_score.shape == (3,)


def test_unused_input_gets_zero_score():
    model = _random_kan([3, 4, 1])
    with torch.no_grad():
        model.layers[0].coef[:, 2] = 0
        model.layers[0].base_weight[:, 2] = 0
    scores = kanlab.attribute(model, _x(d=3)).input_score
    assert scores[2] == 0 and scores[0] > 0 and scores[1] > 0


def test_select_all_nodes_is_an_identical_copy_and_the_original_is_untouched():
    model = _random_kan([2, (3, 1), 1])
    x = _x()
    state = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    copy = select_nodes(model, [[0, 1], [0, 1, 2, 3], [0]], x=x)
    torch.testing.assert_close(copy(x), model(x))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert copy is not model and copy.widths == model.widths


def test_kept_edges_keep_their_functions():
    model = _random_kan([2, 5, 1])
    x = _x()
    small = select_nodes(model, [[0, 1], [1, 3], [0]], x=x)
    assert small.widths == [2, 2, 1]
    old0, new0 = model.layers[0].edge_outputs(x), small.layers[0].edge_outputs(x)
    torch.testing.assert_close(new0, old0[:, [1, 3], :])
    h_old, h_new = model.layer_inputs(x)[1], small.layer_inputs(x)[1]
    torch.testing.assert_close(small.layers[1].edge_outputs(h_new)[:, :, :],
                               model.layers[1].edge_outputs(h_old)[:, :, [1, 3]])
    # grids travel with their features
    torch.testing.assert_close(small.layers[1].basis.grid, model.layers[1].basis.grid[[1, 3]])


def test_removing_a_constant_node_is_exact():
    """A hidden node with no input is a constant; its outgoing contribution is folded into the bias."""
    model = _random_kan([2, 3, 1])
    with torch.no_grad():
        model.layers[0].coef[1] = 0
        model.layers[0].base_weight[1] = 0
    x = _x()
    pruned = prune(model, x, threshold=1e-6)
    assert pruned.widths == [2, 2, 1]
    torch.testing.assert_close(pruned(x), model(x))


def test_prune_inputs_drops_an_unused_feature():
    model = _random_kan([3, 4, 1])
    model.names = ["a", "b", "c"]
    with torch.no_grad():
        model.layers[0].coef[:, 1] = 0
        model.layers[0].base_weight[:, 1] = 0
    x = _x(d=3)
    small, kept = prune_inputs(model, x)
    assert kept == [0, 2] and small.names == ["a", "c"] and small.in_features == 2
    torch.testing.assert_close(small(x[:, kept]), model(x))


def test_prune_validates_its_input():
    model = _random_kan([2, 3, 1])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        prune(model, _x(d=3))
    with pytest.raises(TypeError, match="kanlab.KAN"):
        prune(torch.nn.Linear(2, 1), _x())
    with pytest.raises(ValueError, match="NaN"):
        prune(model, _x() * float("nan"))


def test_regularised_kan_on_the_demo_formula_prunes_to_2_1_1():
    """[2, 5, 1] trained on exp(sin(πx) + y²) with sparsity regularisation prunes to [2, 1, 1]."""
    from kanlab.interpret.pipeline import sparsify

    data = kanlab.make_dataset("exp(sin(pi*x)+y**2)", n_train=500, n_test=10, seed=0, dtype=torch.float64)
    x, y = data["train_input"], data["train_label"]
    y = (y - y.mean()) / y.std()
    with seeded(0):
        model = kanlab.KAN([2, 5, 1], grid_size=5, dtype=torch.float64)
    pruned = sparsify(model, x, y, lamb=0.01, steps=20)
    assert pruned.widths == [2, 1, 1]
    assert model.widths == [2, 5, 1]  # the trained original is left as it was
    # both inputs still matter, through the single hidden node
    assert (kanlab.attribute(pruned, x).input_score > 0.1).all()
