"""Where domain events go: in-process subscribers, a RabbitMQ topic exchange, an SNS topic."""
