"""Message streams (the original TAURUS): items from a queue or HTTP, batched by size and time into jobs."""

from studio9.messaging.streams.domain import Batch, Item, StreamMode, StreamSpec, StreamState
from studio9.messaging.streams.runner import StreamRunner
from studio9.messaging.streams.service import StreamService, StreamView

__all__ = [
    "Batch",
    "Item",
    "StreamMode",
    "StreamRunner",
    "StreamService",
    "StreamSpec",
    "StreamState",
    "StreamView",
]
