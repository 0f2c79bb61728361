"""Prediction sinks."""
