"""Studio9: collaborative data management and ML that runs wherever the data is.

One modular monolith with pluggable backends: an edge box (SQLite, files, in-process
broker), a horizontally scaled cloud service (PostgreSQL, RabbitMQ, S3, OpenSearch), or
modules imported into another Python program.
"""

__version__ = "0.1.0"
