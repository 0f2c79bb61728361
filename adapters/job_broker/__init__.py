"""Job delivery (``studio9.messaging.ports.JobBroker``): Dramatiq brokers behind one small interface.
``STUDIO9_BROKER_URL``.

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "memory": "adapters.job_broker.memory:MemoryJobBroker",
    "amqp": "adapters.job_broker.rabbitmq:RabbitmqJobBroker",
    "amqps": "adapters.job_broker.rabbitmq:RabbitmqJobBroker",
    "sqs": "adapters.job_broker.sqs:SqsJobBroker",
}
