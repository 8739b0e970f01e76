"""The Syne Tune tutorial's running example: a two-layer MLP on Fashion-MNIST (model and config space)."""
