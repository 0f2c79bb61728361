"""Placeholder: the native routes under /api/v1/experiments and /api/v1/runs."""

from litestar import Controller


class ExperimentController(Controller):
    path = "/experiments"
    tags = ["experiments"]


class RunController(Controller):
    path = "/runs"
    tags = ["runs"]
