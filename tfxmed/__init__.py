"""tfxmed: explainable medical-image classifiers on TensorFlow/Keras."""

__version__ = "0.1.0"
__all__ = ["__version__"]
