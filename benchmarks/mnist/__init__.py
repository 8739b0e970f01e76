"""MNIST convnet: model space, config space and in-memory data."""
