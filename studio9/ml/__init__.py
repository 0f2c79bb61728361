"""Machine learning on scikit-learn: training jobs, the model registry, online prediction."""
