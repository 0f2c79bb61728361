"""Where domain events go (``studio9.messaging.ports.EventPublisher``, most also
``EventSubscriber``): in-process subscribers, a RabbitMQ topic exchange, an SNS topic.
``STUDIO9_EVENTS_URL``.

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "memory": "adapters.event_publisher.memory:MemoryEventPublisher",
    "amqp": "adapters.event_publisher.amqp:AmqpEventPublisher",
    "amqps": "adapters.event_publisher.amqp:AmqpEventPublisher",
    "sns": "adapters.event_publisher.sns:SnsEventPublisher",
}
