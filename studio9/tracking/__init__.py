"""Experiment tracking: MLflow-style runs, their params, metrics, tags and inputs, and logged models."""
