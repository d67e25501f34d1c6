"""synthloop: improve a model by generating the training data it is missing."""

__version__ = "0.1.0"
