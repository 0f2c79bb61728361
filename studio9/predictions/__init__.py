"""Predictions (the original PEGASUS): the prediction sink port and idempotent imports.

Built by a later issue.
"""
