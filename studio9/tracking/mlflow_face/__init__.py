"""The MLflow face: MLflow's tracking-server REST protocol over Studio9's experiments, runs, logged
models, artifacts and model registry (``docs/mlflow-protocol.md``). One store, two faces: every
route calls the same services as the native ``/api/v1`` routes, as the caller."""
