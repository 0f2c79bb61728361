"""Blob stores: files, job inputs and outputs, model artifacts."""
