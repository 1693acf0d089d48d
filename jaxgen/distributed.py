"""One training run over several processes (hosts): joining the run, each process's share of a global
batch, and what only the first process does.

An entry point (a study's command, the benchmarks, the tests) calls `configure_process` once, before its
first JAX computation: it applies the CPU settings (`jaxgen.cpu.configure`) and then, when the run has
several processes, `jax.distributed.initialize`. Importing jaxgen changes nothing in the process.

Several processes run the same program (SPMD): every process runs every line of a study; the mesh of
`jaxgen.train` spans all processes' devices; each process places only its own rows of a batch
(`global_batch`); results are the same on every process, and only the main process (`is_main_process`)
writes files and shows progress. In one process all of this reduces to the single-process code path.
"""
from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np

from jaxgen import cpu, errors

# Seconds without a heartbeat after which the other processes give up on a lost one (JAX's default is 100).
HEARTBEAT_TIMEOUT_S = 60
# Seconds each process waits for all the others to join (a process that never starts).
JOIN_TIMEOUT_S = 300
# Launchers whose environment jax.distributed.initialize() reads by itself, and the variable that says the
# job has several processes: SLURM's srun, Open MPI's mpirun, JAX's own variable.
_LAUNCHER_PROCESS_COUNTS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


class ProcessLostError(errors.TrainingError, RuntimeError):
    """Another process of a multi-process run stopped (crashed, killed or preempted)."""


def configure_process(coordinator: str | None = None, num_processes: int | None = None,
                      process_id: int | None = None, auto: bool = False,
                      heartbeat_timeout_s: int = HEARTBEAT_TIMEOUT_S, join_timeout_s: int = JOIN_TIMEOUT_S) -> bool:
    """Set this process up for jaxgen's training; call it once, first thing (before any JAX computation).

    1. `jaxgen.cpu.configure()`: XLA:CPU's convolution kernels and glibc's memory reuse (settings read only
       at start-up; the user's own settings win).
    2. Join a multi-process run with `jax.distributed.initialize`: explicitly with `coordinator`
       ("HOST:PORT" of process 0), `num_processes` and `process_id`; or, with `auto` or when the
       environment shows a multi-process launch (srun with several tasks, mpirun, JAX_COORDINATOR_ADDRESS),
       with JAX's auto-detection (TPU pod slices, SLURM, Open MPI, Kubernetes). On CPU the processes'
       collectives go over gloo (TCP). A process that stops sending heartbeats for `heartbeat_timeout_s`
       is declared lost and the others stop.
    Returns whether the process joined a multi-process run."""
    cpu.configure()
    explicit = (coordinator, num_processes, process_id)
    if any(value is not None for value in explicit) and None in explicit:
        raise errors.ConfigError("--coordinator, --num-processes and --process-id go together: give all three "
                                 "(or none, to let JAX detect the cluster)")
    if not several_processes_asked(num_processes, auto):
        return False
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise errors.ConfigError(f"--process-id {process_id}: must be in 0..{num_processes - 1} "
                                 f"(--num-processes {num_processes})")
    if os.environ.get("PJRT_NPROC") == "0":  # XLA:CPU's client then has no threads to exchange topologies
        raise errors.ConfigError("this program runs each computation on one thread (PJRT_NPROC=0, set by "
                                 "jaxgen.cpu.run_each_computation_on_one_thread, as experiments.dino_diffusion "
                                 "does), which a multi-process run cannot start with; run it as one process")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the CPU's cross-process collectives
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=join_timeout_s,
                                   heartbeat_timeout_seconds=heartbeat_timeout_s)
    except (ValueError, RuntimeError) as error:
        where = f"--coordinator {coordinator}" if coordinator else "JAX's cluster auto-detection"
        raise errors.ConfigError(f"cannot join the multi-process run ({where}): {errors.first_line(error)}; check that "
                                 "every process got the same coordinator and process count, and that process 0 "
                                 "runs") from error
    return jax.process_count() > 1


def several_processes_asked(num_processes: int | None, auto: bool) -> bool:
    """Whether this process is to join a multi-process run: `num_processes` given (with the coordinator and
    process id, which go together), `auto`, or a launcher that started several (`configure_process`'s rule,
    for an entry point that must choose its other settings before calling it)."""
    return num_processes is not None or auto or launched_as_several_processes()


def launched_as_several_processes() -> bool:
    """Whether a launcher started this process as one of several (srun, mpirun, JAX_COORDINATOR_ADDRESS)."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    return any(int(os.environ.get(name, "1") or 1) > 1 for name in _LAUNCHER_PROCESS_COUNTS)


def is_multi_process() -> bool:
    """Whether this process is one of several in a run (asking does not start JAX's backend otherwise)."""
    return jax.distributed.is_initialized() and jax.process_count() > 1


def is_main_process() -> bool:
    """Whether this process writes the run's files and shows its progress (process 0, or the only one)."""
    return not jax.distributed.is_initialized() or jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (nothing in one process)."""
    if is_multi_process():
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def local_rows(sharding: jax.sharding.Sharding, global_shape: Sequence[int], axis: int) -> slice:
    """The rows along `axis` of an array of `global_shape` laid out by `sharding` that this process's
    devices hold: one consecutive range (processes own consecutive blocks of the mesh)."""
    indices = sharding.addressable_devices_indices_map(tuple(global_shape)).values()
    ranges = sorted({index[axis].indices(global_shape[axis])[:2] for index in indices})
    for (_, stop), (start, _) in zip(ranges, ranges[1:]):
        if stop != start:
            raise ValueError(f"this process's rows along axis {axis} are not one consecutive range: {ranges}")
    return slice(ranges[0][0], ranges[-1][1])


def global_batch(read_rows, sharding: jax.sharding.Sharding, global_shape: Sequence[int], axis: int):
    """A global array of `global_shape` laid out by `sharding` whose rows along `axis` come from
    `read_rows(rows: slice) -> pytree of numpy arrays`, called for this process's rows only (each process
    reads only its own share of the data). In one process, the whole batch placed by `jax.device_put`."""
    if not is_multi_process():
        return jax.device_put(read_rows(slice(0, global_shape[axis])), sharding)
    local = read_rows(local_rows(sharding, global_shape, axis))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        sharding, np.asarray(x), tuple(global_shape[:axis + 1]) + tuple(np.shape(x)[axis + 1:])), local)


def replicate(tree, sharding: jax.sharding.Sharding):
    """`tree` (the same value in every process) as arrays laid out by the replicated `sharding`. Typed PRNG
    keys travel as their key data. In one process, `tree` unchanged (jit places it)."""
    if not is_multi_process():
        return tree

    def place(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.make_array_from_process_local_data(sharding, np.asarray(jax.random.key_data(x)))
            return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=jax.random.key_impl(x)),
                           out_shardings=sharding)(data)
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x
        value = np.asarray(x)
        return jax.make_array_from_process_local_data(sharding, value, value.shape)

    return jax.tree.map(place, tree)


def lost_process_error(error: Exception) -> ProcessLostError | None:
    """The one-line error for a collective that failed because another process went away, else None."""
    text = str(error)
    if is_multi_process() and any(sign in text for sign in ("Gloo", "gloo", "heartbeat", "Connection reset",
                                                             "Connection closed", "DEADLINE_EXCEEDED")):
        return ProcessLostError(
            f"process {jax.process_index()} of {jax.process_count()} lost contact with another process of the "
            f"run ({errors.first_line(error, 120)}); the checkpoints of finished epochs are kept: start all "
            "processes again with --resume")
    return None
