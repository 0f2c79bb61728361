"""Where OpenLineage run events go (``studio9.catalog.ports.LineageEvents``): the event bus and,
when ``STUDIO9_OPENLINEAGE_URL`` is set, an OpenLineage HTTP endpoint (Marquez, DataHub,
OpenMetadata). One adapter, no URL scheme table: the bus is always there, the URL only adds a
destination, so the composition root builds ``http.HttpLineageSink`` directly.
"""
