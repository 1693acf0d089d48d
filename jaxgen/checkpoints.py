"""Orbax checkpoints: one per epoch for resumable training, plus exported parameter sets.

In a run of several processes (jaxgen.distributed) every process calls the same functions: orbax writes each
array once, together, into the folder they share; a checkpoint restores onto whatever devices and processes
the state it is restored like lives on (saved by 2 processes of 1 device, resumed by 1 process of 2, or the
reverse). Folders are removed and JSON files written by process 0 only."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from jaxgen import distributed, errors


class CheckpointExistsError(errors.OutputFolderError, RuntimeError):
    """A fresh run was asked to write where an earlier run's checkpoints are."""


class CorruptCheckpointError(errors.CheckpointError, RuntimeError):
    """A checkpoint exists but cannot be read."""


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class EpochCheckpointer:
    """Saves (state, history) after every epoch and restores the latest one."""

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        self.directory = Path(directory).resolve()
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def save(self, epoch: int, state, history: dict) -> None:
        self._manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), history=ocp.args.JsonSave(history)))
        self._manager.wait_until_finished()

    def restore(self, like_state):
        """(epoch, state, history) of the latest checkpoint, laid out like `like_state`."""
        epoch = self.latest_epoch()
        try:
            restored = self._manager.restore(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(_abstract(like_state)), history=ocp.args.JsonRestore()))
        except Exception as error:
            raise CorruptCheckpointError(
                f"the checkpoint of epoch {epoch + 1} in {self.directory} cannot be read "
                f"({errors.first_line(error)}); pass --overwrite to train from scratch") from error
        return epoch, restored.state, restored.history

    def close(self):
        self._manager.close()


def prepare_run_directory(directory: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start a fresh run on top of existing checkpoints unless told what to do."""
    directory = Path(directory)
    occupied = directory.exists() and any(directory.iterdir())
    distributed.barrier("jaxgen-run-directory-checked")  # every process looked before process 0 removes it
    if not occupied:
        return
    if overwrite:
        if distributed.is_main_process():
            shutil.rmtree(directory)
        distributed.barrier("jaxgen-run-directory-cleared")
    elif not resume:
        raise CheckpointExistsError(
            f"{directory} already holds checkpoints of an earlier run. Pass --resume to continue "
            "(or reuse) it, --overwrite to discard it, or choose another --out.")


def save_params(directory: str | Path, params, metadata: dict | None = None) -> None:
    """Export a finished model's parameters (and a JSON of how to rebuild it)."""
    directory = Path(directory).resolve()
    if directory.exists() and distributed.is_main_process():
        shutil.rmtree(directory)
    distributed.barrier("jaxgen-export-cleared")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory / "params", params)
    checkpointer.wait_until_finished()
    if distributed.is_main_process():
        (directory / "metadata.json").write_text(json.dumps(metadata or {}, indent=2))


def load_params(directory: str | Path, like_params=None):
    """(params, metadata) saved by `save_params`."""
    directory = Path(directory).resolve()
    if not (directory / "params").exists():
        raise errors.CheckpointError(f"no exported parameters in {directory} (expected {directory}/params): "
                                     "train the model first, or point at the right folder")
    try:
        params = ocp.StandardCheckpointer().restore(
            directory / "params", _abstract(like_params) if like_params is not None else None)
    except Exception as error:
        raise CorruptCheckpointError(f"{directory}/params cannot be read ({errors.first_line(error)}); export the "
                                     "model again, or point at another folder") from error
    metadata = json.loads((directory / "metadata.json").read_text()) if (directory / "metadata.json").exists() else {}
    # Orbax hands back arrays committed to a device, where initialised parameters are not; jit compiles
    # separately for each, so loaded parameters are returned like initialised ones.
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), params), metadata
