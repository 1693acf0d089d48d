"""Speed against PyTorch, side by side (issue 8): `python -m benchmarks.run`. Not built yet."""
