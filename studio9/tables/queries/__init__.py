"""Read-only SQL over tables, as people ask it: ``POST /api/v1/sql/preview`` (``api.py``) and the
service behind it (``service.py``)."""
