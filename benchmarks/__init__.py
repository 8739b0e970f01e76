"""What is tuned: named benchmarks, the MNIST convnet and NAS-Bench-201."""
