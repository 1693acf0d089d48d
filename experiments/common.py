"""What every study shares: the command line, the output folder, results.json and report.md.

Outputs are staged in `<out>/.staging` and moved into place only when the study finishes,
so a failed run never overwrites the figures or numbers of a finished one.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from jaxgen import train


def study_parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny budget on the same code path (a smoke test, under 2 minutes on 2 cores)")
    parser.add_argument("--out", default=None, help=f"output folder (default runs/{name}, or runs/{name}_quick with --quick)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the original data files (default $JAXGEN_DATA_DIR, then TFDS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoints in OUT/checkpoints (finished models are reused)")
    parser.add_argument("--overwrite", action="store_true", help="discard checkpoints of an earlier run in OUT")
    return parser


class StudyOutput:
    """The output folder of one study run."""

    def __init__(self, name: str, args: argparse.Namespace):
        default = f"runs/{name}_quick" if args.quick else f"runs/{name}"
        self.root = Path(args.out or default)
        self.staging = self.root / ".staging"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        self.started = self._phase_started = time.time()
        self.phase_seconds: dict[str, float] = {}

    def phase(self, name: str) -> None:
        """Print how long the study's latest phase took; the times also go to results.json."""
        now = time.time()
        self.phase_seconds[name] = round(now - self._phase_started, 1)
        self._phase_started = now
        print(f"{name}: {self.phase_seconds[name]:.1f} s")

    def checkpoint_dir(self, model: str) -> Path:
        return self.root / "checkpoints" / model

    def model_dir(self, model: str) -> Path:
        return self.root / "models" / model

    def figure(self, filename: str) -> Path:
        return self.staging / filename

    def finish(self, results: dict, report: str) -> None:
        """Write results.json and report.md, then move every staged file into place."""
        results = {**results, "runtime_seconds": round(time.time() - self.started, 1)}
        if self.phase_seconds:
            results["phase_seconds"] = self.phase_seconds
        (self.staging / "results.json").write_text(json.dumps(to_jsonable(results), indent=2))
        (self.staging / "report.md").write_text(report)
        for path in self.staging.iterdir():
            os.replace(path, self.root / path.name)
        self.staging.rmdir()
        print(f"wrote {self.root}/results.json, report.md and {len(list(self.root.glob('*.png')))} figures")


def train_model(name: str, params, objective, train_set, test_set, budget, epochs: int, args, output,
                cosine_decay: bool = False):
    """Adam-train one model of a study with checkpoints under OUT/checkpoints/NAME; (params, history).
    `budget` provides batch_size and learning_rate."""
    config = train.TrainConfig(epochs=epochs, batch_size=budget.batch_size, learning_rate=budget.learning_rate,
                               seed=args.seed, cosine_decay=cosine_decay)
    state = train.create_train_state(params, train.adam(config, len(train_set) // budget.batch_size))
    state, history = train.fit(state, objective, train_set, test_set, config, output.checkpoint_dir(name),
                               resume=args.resume, overwrite=args.overwrite, desc=name)
    return state.params, history


def to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        if isinstance(v, (int, np.integer)):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
