"""Training: the fit loop under a strategy, callbacks, and (later) explanation-consistency losses."""

from tfxmed.training.loop import BEST_CHECKPOINT, TrainResult, compile_model, train

__all__ = ["BEST_CHECKPOINT", "TrainResult", "compile_model", "train"]
