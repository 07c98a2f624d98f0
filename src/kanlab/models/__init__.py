"""Models: the KAN stack, MLP baselines and the variant models, all in one registry."""

from .deeponet import DeepOKAN, DeepONet
from .factory import create_model, list_models, register_model
from .kan import KAN
from .mlp import MLP, matched_mlp
from .tkat import TKAT
from .vision import CNN, KANConvMLP, KConvKAN, WavKAN, matched_cnn

register_model("kan")(KAN)
register_model("mlp")(MLP)
register_model("deeponet")(DeepONet)
register_model("deepokan")(DeepOKAN)
register_model("tkat")(TKAT)

__all__ = ["KAN", "MLP", "matched_mlp", "create_model", "list_models", "register_model",
           "KConvKAN", "KANConvMLP", "CNN", "WavKAN", "matched_cnn", "DeepONet", "DeepOKAN", "TKAT"]
