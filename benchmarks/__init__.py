"""Speed against PyTorch, side by side, as ratios measured in one run: `python -m benchmarks.run` (docs/speed.md)."""
