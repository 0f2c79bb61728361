"""Queues a message stream pulls items from (``studio9.messaging.streams.ports.StreamSource``),
named by a stream's ``source`` URL (``http`` streams need none).

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "sqs": "adapters.stream_source.sqs:SqsStreamSource",
    "amqp": "adapters.stream_source.amqp:AmqpStreamSource",
    "amqps": "adapters.stream_source.amqp:AmqpStreamSource",
}
