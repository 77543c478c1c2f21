"""Training: the fit loop under a strategy, callbacks, and (later) explanation-consistency losses."""

from tfxmed.training.loop import TrainResult, compile_model, train

__all__ = ["TrainResult", "compile_model", "train"]
