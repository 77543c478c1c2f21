"""Experiments made of many runs: hyperparameter search, ablations over seeds, k-fold cross-validation."""
