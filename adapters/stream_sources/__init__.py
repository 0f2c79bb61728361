"""Queues message streams pull items from: SQS (S3 notifications through SNS, or plain messages), RabbitMQ."""
