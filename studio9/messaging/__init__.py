"""Messaging: job delivery through brokers, events, and (later) external sources and streams."""

from studio9.messaging.ports import JobBroker, JobConsumer

__all__ = ["JobBroker", "JobConsumer"]
