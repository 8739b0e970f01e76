"""NAS-Bench-201: cell search space, model, encodings and tabular data."""
