"""Messaging: job delivery through Dramatiq brokers, events, and (later) external sources and streams."""

from studio9.messaging.ports import JobBroker
from studio9.messaging.worker import WorkerThreads

__all__ = ["JobBroker", "WorkerThreads"]
