"""Shares of assets: the use cases (``service``) and their HTTP routes (``api``)."""
