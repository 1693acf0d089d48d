"""The one training loop: jit-compiled, data-parallel, checkpointed and resumable.

- Data parallel: batches are split along the mesh axis 'data' over every device of every process;
  parameters and optimizer state are replicated. XLA inserts the gradient all-reduce. In a run of
  several processes (jaxgen.distributed) each process reads and places only its own rows of each batch,
  evaluations are gathered to every process, and only process 0 shows progress.
- Several steps run inside one compiled call (unrolled), so Python dispatch does not
  dominate small models. For the smallest (the dino DDPM), `fit_scanned` is the same loop with a block
  of whole epochs, data drawn on the devices, per call: the same checkpoints, resume and progress.
- Reproducible: the example order of epoch e depends on (seed, e) only and the step's
  RNG is fold_in(seed, step), so a resumed run replays the uninterrupted one bit for bit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from jaxgen import data as data_lib
from jaxgen import distributed, errors
from jaxgen.checkpoints import EpochCheckpointer, prepare_run_directory

Objective = Callable  # (params, batch, rng) -> {'loss': (B,), term: (B,), ...}
EVAL_RNG_OFFSET = 1_000_003  # eval batches draw from RNG streams that training never uses


class Tunable(NamedTuple):
    """An objective `fn(params, batch, rng, settings)` whose numeric settings (a pytree of scalars, such as
    a noise level) enter the compiled programs as inputs: models trained with one `fn` and different
    settings share the compiled train step and evaluation. Called like any objective."""
    fn: Callable
    settings: Any

    def __call__(self, params, batch, rng):
        return self.fn(params, batch, rng, self.settings)


def _tunable(objective: Objective) -> Tunable:
    return objective if isinstance(objective, Tunable) else Tunable(_without_settings(objective), ())


@cache
def _without_settings(objective: Objective):
    return lambda params, batch, rng, settings: objective(params, batch, rng)


class NonFiniteLossError(errors.TrainingError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class TrainState(train_state.TrainState):
    pass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    seed: int = 0
    eval_batch_size: int = 500
    steps_per_call: int = 4
    grad_clip_norm: float | None = None
    cosine_decay: bool = False  # decay the learning rate to 0 over all epochs


def data_mesh() -> jax.sharding.Mesh:
    # Auto axes: XLA propagates the batch sharding through the model (no per-op annotations).
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh):
    return NamedSharding(mesh, P())


@cache  # one optimizer per config: it is part of TrainState's tree structure, so models share compiled steps
def adam(config: TrainConfig, steps_per_epoch: int | None = None) -> optax.GradientTransformation:
    learning_rate = config.learning_rate
    if config.cosine_decay:
        if not steps_per_epoch:
            raise ValueError("cosine_decay needs steps_per_epoch")
        learning_rate = optax.cosine_decay_schedule(config.learning_rate, config.epochs * steps_per_epoch)
    # optim.clipped_adam is this update fused (equal to float rounding); the conv studies keep optax's
    # chain, under 1% of their steps, so that their published numbers reproduce bit for bit.
    clip = [optax.clip_by_global_norm(config.grad_clip_norm)] if config.grad_clip_norm else []
    return optax.chain(*clip, optax.adam(learning_rate))


def create_train_state(params, tx: optax.GradientTransformation, mesh=None) -> TrainState:
    mesh = mesh or data_mesh()
    state = TrainState.create(apply_fn=None, params=params, tx=tx)
    return jax.device_put(state, replicated(mesh))


def _check_batch_size(batch_size: int, mesh) -> None:
    if batch_size % mesh.size:
        raise ValueError(f"batch size {batch_size} must be a multiple of the {mesh.size} devices "
                         "it is split over")


def make_train_chunk(objective: Objective, mesh, seed: int):
    """A jitted function running one optimizer step per leading-axis slice of `batches`."""
    objective = _tunable(objective)
    program = _train_chunk_program(objective.fn, mesh)
    settings, base_rng = distributed.replicate((objective.settings, jax.random.key(seed)), replicated(mesh))
    return lambda state, batches: program(state, batches, settings, base_rng)


@cache
def _train_chunk_program(objective_fn, mesh):
    def step(state, batch, settings, base_rng):
        rng = jax.random.fold_in(base_rng, state.step)

        def mean_loss(params):
            terms = objective_fn(params, {**batch, "step": state.step}, rng, settings)
            return terms["loss"].mean(), terms

        grads, terms = jax.grad(mean_loss, has_aux=True)(state.params)
        return state.apply_gradients(grads=grads), jax.tree.map(jnp.mean, terms)

    def chunk(state, batches, settings, base_rng):
        # Unrolled on purpose: XLA:CPU runs convolutions inside a while loop (lax.scan)
        # about 8x slower than the same steps unrolled.
        all_terms = []
        for i in range(jax.tree.leaves(batches)[0].shape[0]):
            state, terms = step(state, jax.tree.map(lambda b: b[i], batches), settings, base_rng)
            all_terms.append(terms)
        return state, jax.tree.map(lambda *t: jnp.stack(t), *all_terms)

    batch_sharding = NamedSharding(mesh, P(None, "data"))
    return jax.jit(chunk, in_shardings=(replicated(mesh), batch_sharding, replicated(mesh), replicated(mesh)),
                   out_shardings=(replicated(mesh), replicated(mesh)), donate_argnums=0)


def batched_apply(fn: Callable, arrays: dict, batch_size: int, mesh=None, desc: str | None = None,
                  operands: tuple = ()):
    """Apply a per-example function `fn(batch_dict, batch_index, *operands) -> pytree of (B, ...)`
    over a whole dataset in fixed-size batches (the last one padded), returning numpy arrays of
    (N, ...). `operands` (e.g. parameters) are replicated; passing them here rather than closing
    over them lets repeated calls with the same `fn` reuse one compiled program."""
    mesh = mesh or data_mesh()
    _check_batch_size(batch_size, mesh)
    n = len(next(iter(arrays.values())))
    batch_sharding = NamedSharding(mesh, P("data"))
    compiled = jax.jit(fn, in_shardings=(batch_sharding, None) + (replicated(mesh),) * len(operands),
                       out_shardings=replicated(mesh))
    operands = distributed.replicate(operands, replicated(mesh))
    outputs = []
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=desc is None or not distributed.is_main_process(),
                      leave=False):
        real = min(batch_size, n - start)
        batch = distributed.global_batch(lambda rows: _padded_rows(arrays, start, real, rows), batch_sharding,
                                         (batch_size,), axis=0)
        result = compiled(batch, jnp.int32(start // batch_size), *operands)
        outputs.append(jax.tree.map(lambda x: np.asarray(x)[:real], result))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)


def _padded_rows(arrays: dict, start: int, real: int, rows: slice) -> dict:
    """Rows `rows` of the batch of `arrays` from `start` holding `real` examples, padded with copies of the
    first example (dropped from the results)."""
    if rows.stop <= real:  # no padding: a plain slice (a memory map reads just these rows)
        return {k: v[start + rows.start:start + rows.stop] for k, v in arrays.items()}
    positions = np.arange(rows.start, rows.stop)
    positions = np.where(positions < real, positions, 0)
    return {k: np.asarray(v[start:start + real])[positions] for k, v in arrays.items()}


def make_evaluator(objective: Objective, batch_size: int, seed: int, mesh=None) -> Callable:
    """evaluate(params, images, labels, desc=None) -> dataset means of every term of `objective`,
    with a fixed RNG stream per batch; compiled once, reused for every set of parameters."""
    objective = _tunable(objective)
    base_rng = jax.random.fold_in(jax.random.key(seed), EVAL_RNG_OFFSET)
    per_example = _evaluation(objective.fn)

    def evaluate_params(params, images, labels, desc: str | None = None) -> dict[str, float]:
        terms = batched_apply(per_example, {"image": images, "label": labels}, batch_size, mesh, desc,
                              (params, objective.settings, base_rng))
        return {k: float(np.mean(v)) for k, v in terms.items()}

    return evaluate_params


@cache
def _evaluation(objective_fn):
    def per_example(batch, index, params, settings, base_rng):
        return objective_fn(params, batch, jax.random.fold_in(base_rng, index), settings)
    return per_example


def evaluate(objective: Objective, params, images, labels, batch_size: int, seed: int, mesh=None,
             desc: str | None = None) -> dict[str, float]:
    """Dataset means of every term of `objective`, with a fixed RNG stream per batch."""
    return make_evaluator(objective, batch_size, seed, mesh)(params, images, labels, desc)


def fit(state: TrainState, objective: Objective, train: data_lib.Dataset, test: data_lib.Dataset | None,
        config: TrainConfig, checkpoint_dir, resume: bool = False, overwrite: bool = False,
        desc: str = "train", mesh=None, after_epoch=None, on_resume=None):
    """Train for `config.epochs` epochs; returns (state, history).

    history = {'train': {term: [per epoch]}, 'test': {term: [...]}, 'epoch_seconds': [...]}.
    A checkpoint is written after each epoch. With `resume`, training continues from the
    latest one (and does nothing if it is already complete). `after_epoch(epoch, state, history)`,
    if given, is called after each checkpoint, outside the epoch's timing (the speed benchmark
    times PyTorch's epochs there, taking turns with these). A resumed run says where it continues,
    and calls `on_resume(epochs_done, step)` if given.
    """
    mesh = mesh or data_mesh()
    _check_batch_size(config.batch_size, mesh)
    steps_per_epoch = len(train) // config.batch_size
    if steps_per_epoch == 0:
        raise errors.ConfigError(f"batch size {config.batch_size} (--batch-size) is larger than the {len(train)} "
                                 "training examples; choose a smaller one")
    prepare_run_directory(checkpoint_dir, resume, overwrite)
    checkpointer = EpochCheckpointer(checkpoint_dir)
    try:  # the checkpointer's writer threads end with the run, also when it fails
        first_epoch, state, history = _resumed(checkpointer, state, config.epochs, resume, desc, on_resume)
        return _fit_epochs(state, history, first_epoch, objective, train, test, config, checkpointer, desc, mesh,
                           after_epoch, steps_per_epoch)
    finally:
        checkpointer.close()


def fit_scanned(state: TrainState, run_epochs: Callable, epochs: int, epochs_per_call: int, checkpoint_dir,
                resume: bool = False, overwrite: bool = False, desc: str = "train", mesh=None, on_resume=None):
    """The loop's scanned mode, for models so small that Python's dispatch would dominate even `fit`'s
    unrolled steps (the dino DDPM: an MLP of 20,802 parameters): a block of `epochs_per_call` epochs, their
    data drawn on the devices, their steps and their evaluations, is one compiled call (a `lax.scan`).
    Returns (state, history) like `fit`, with the same checkpoints after every block, resume, NaN guard and
    progress, in one process or several.

    `run_epochs(state, epochs) -> (state, {'train': {term: (k,)}, 'test': {term: (k,)}})` trains the k epochs
    numbered by the int32 vector `epochs` (replicated over `mesh`) and returns each one's mean terms. It
    must draw an epoch's data from the epoch's number only, so that any cut of the run into blocks, a
    resumed run's included, gives the same numbers (fold the number into the RNG key, as the dino study does).
    """
    mesh = mesh or data_mesh()
    if epochs_per_call < 1:
        raise ValueError(f"epochs_per_call must be at least 1, not {epochs_per_call}")
    prepare_run_directory(checkpoint_dir, resume, overwrite)
    checkpointer = EpochCheckpointer(checkpoint_dir)
    try:
        first_epoch, state, history = _resumed(checkpointer, state, epochs, resume, desc, on_resume)
        say = _say()
        bar = tqdm(total=epochs, initial=first_epoch, desc=desc, unit="epoch", leave=False,
                   disable=not distributed.is_main_process())
        for start in range(first_epoch, epochs, epochs_per_call):
            started = time.perf_counter()
            numbers = np.arange(start, min(start + epochs_per_call, epochs), dtype=np.int32)
            state, terms = run_epochs(state, distributed.replicate(numbers, replicated(mesh)))
            terms = jax.device_get(terms)
            seconds = time.perf_counter() - started
            for offset, epoch in enumerate(numbers):
                _check_finite(np.asarray(terms["train"]["loss"][offset]), int(epoch), desc)
                _record(history, {k: v[offset] for k, v in terms["train"].items()},
                        {k: v[offset] for k, v in terms.get("test", {}).items()}, seconds / len(numbers))
            checkpointer.save(int(numbers[-1]), state, history)
            bar.update(len(numbers))
            bar.set_postfix(loss=f"{history['train']['loss'][-1]:.4g}")
            say(f"{desc} epoch {int(numbers[-1]) + 1}/{epochs}: " + _summary(history))
        bar.close()
        return state, history
    finally:
        checkpointer.close()


def _say():
    """print for the run's progress lines: process 0 prints them, above any progress bar."""
    return tqdm.write if distributed.is_main_process() else (lambda text: None)


def _resumed(checkpointer, state, epochs, resume, desc, on_resume):
    """(first epoch to train, state, history): the latest checkpoint's with `resume`, else a fresh start."""
    if not resume or checkpointer.latest_epoch() is None:
        return 0, state, {"train": {}, "test": {}, "epoch_seconds": []}
    last, state, history = checkpointer.restore(state)
    first_epoch = last + 1
    step = int(jax.device_get(state.step))
    if first_epoch >= epochs:
        _say()(f"{desc}: already trained ({first_epoch} epochs, step {step}), reused from {checkpointer.directory}")
    else:
        _say()(f"{desc}: resuming after epoch {first_epoch}/{epochs} (step {step}) from {checkpointer.directory}")
    if on_resume is not None:
        on_resume(first_epoch, step)
    return first_epoch, state, history


def _record(history, train_terms: dict, test_terms: dict, seconds: float) -> None:
    """Append one epoch's mean terms and its time to `history`."""
    for name, value in train_terms.items():
        history["train"].setdefault(name, []).append(float(value))
    for name, value in test_terms.items():
        history["test"].setdefault(name, []).append(float(value))
    history["epoch_seconds"].append(seconds)


def _fit_epochs(state, history, first_epoch, objective, train, test, config, checkpointer, desc, mesh, after_epoch,
                steps_per_epoch):
    say = _say()
    train_chunk = make_train_chunk(objective, mesh, config.seed)
    evaluate_test = make_evaluator(objective, config.eval_batch_size, config.seed, mesh)
    batch_sharding = NamedSharding(mesh, P(None, "data"))

    for epoch in range(first_epoch, config.epochs):
        started = time.perf_counter()
        order = np.stack(data_lib.batch_indices(len(train), config.batch_size, config.seed, epoch))
        sums: dict[str, float] = {}
        bar = tqdm(total=steps_per_epoch, desc=f"{desc} {epoch + 1}/{config.epochs}", leave=False,
                   disable=not distributed.is_main_process())
        pending = None
        for start in range(0, steps_per_epoch, config.steps_per_call):
            idx = order[start:start + config.steps_per_call]
            # (steps, batch) global; this process reads its own columns of `idx` only
            batches = distributed.global_batch(
                lambda rows: {"image": train.images[idx[:, rows]], "label": train.labels[idx[:, rows]]},
                batch_sharding, idx.shape, axis=1)
            state, terms = train_chunk(state, batches)  # dispatched asynchronously
            if pending is not None:  # read the previous chunk while this one runs
                _accumulate(sums, *pending, epoch, desc, bar)
            pending = (terms, len(idx))
        _accumulate(sums, *pending, epoch, desc, bar)
        bar.close()
        test_terms = {} if test is None else evaluate_test(state.params, test.images, test.labels)
        _record(history, {name: total / steps_per_epoch for name, total in sums.items()}, test_terms,
                time.perf_counter() - started)
        checkpointer.save(epoch, state, history)
        say(f"{desc} epoch {epoch + 1}/{config.epochs}: " + _summary(history))
        if after_epoch is not None:
            after_epoch(epoch, state, history)
    return state, history


def _check_finite(losses: np.ndarray, epoch: int, desc: str) -> None:
    if not np.all(np.isfinite(losses)):
        raise NonFiniteLossError(
            f"{desc}: the loss became {np.ravel(losses)[~np.isfinite(np.ravel(losses))][0]} during epoch {epoch + 1}. "
            "Training stopped; the last good checkpoint is kept. "
            "Lower the learning rate, enable gradient clipping, or check the input data.")


def _accumulate(sums, terms, n_steps, epoch, desc, bar):
    terms = jax.device_get(terms)
    losses = np.asarray(terms["loss"])
    _check_finite(losses, epoch, desc)
    for name, values in terms.items():
        sums[name] = sums.get(name, 0.0) + float(np.sum(values))
    bar.update(n_steps)
    bar.set_postfix(loss=f"{losses[-1]:.4g}")


def _summary(history) -> str:
    parts = [f"train {k}={v[-1]:.4g}" for k, v in history["train"].items()]
    parts += [f"test {k}={v[-1]:.4g}" for k, v in history["test"].items()]
    return ", ".join(parts) + f" ({history['epoch_seconds'][-1]:.1f}s)"


def epochs_completed(history) -> int:
    return len(history["epoch_seconds"])
