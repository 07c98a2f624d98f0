"""Models: the KAN stack, MLP baselines and the variant models, all in one registry."""

from .factory import create_model, list_models, register_model
from .kan import KAN
from .mlp import MLP, matched_mlp
from .tkat import TKAT

register_model("kan")(KAN)
register_model("mlp")(MLP)
register_model("tkat")(TKAT)

__all__ = ["KAN", "MLP", "TKAT", "matched_mlp", "create_model", "list_models", "register_model"]
