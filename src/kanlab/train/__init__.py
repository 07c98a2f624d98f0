"""Training: the fit loop, regularisation and callbacks."""

from .callbacks import Callback, EarlyStopping, History, ProgressBar, TrainState
from .loop import OPTIMIZERS, TrainingDivergedError, fit
from .operator import OperatorHistory, evaluate_operator, fit_operator
from .regularization import edge_scales, sparsity_penalty

__all__ = ["fit", "History", "Callback", "EarlyStopping", "ProgressBar", "TrainState", "OPTIMIZERS",
           "TrainingDivergedError", "edge_scales", "sparsity_penalty"]
__all__ += ["fit_operator", "evaluate_operator", "OperatorHistory"]
