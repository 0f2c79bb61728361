"""Job-delivery brokers (Dramatiq brokers behind one small interface)."""
