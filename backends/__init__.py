"""Where trials run: one module per backend, chosen by name from ``backends.registry``."""
