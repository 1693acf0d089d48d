"""The benchmark workloads: each runs the jaxgen version and its PyTorch twin in this process, taking
turns (`alternate`), and returns a row {workload, unit, jaxgen, pytorch, ratio, round_ratios, ...}.
Warm-up (and jaxgen's compilation, reported as compile_seconds) is excluded from the rates."""
from __future__ import annotations

import functools
import os
import platform
import tempfile
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax.sharding import NamedSharding, PartitionSpec as P

from benchmarks import torch_models
from jaxgen import cpu, data, ddpm, objectives, train
from jaxgen.models.autoencoders import MnistConvVAE, SpatialConvAE
from jaxgen.models.diffusion import DenoisingMLP

BATCH = 128
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Budget:
    seconds: float = 10.0  # measured time per side for the step workloads, over all rounds
    rounds: int = 5  # turns each side takes (see `alternate`); the dino run is repeated once per round
    dino_epochs: int = 100  # x 50 steps: the dino run (the study's full run is 400 epochs)
    epoch_images: int | None = None  # None: the whole MNIST training set


FULL = Budget()
QUICK = Budget(seconds=1.0, rounds=2, dino_epochs=5, epoch_images=2048)


def jax_parameter_count(params) -> int:
    return int(sum(np.size(p) for p in jax.tree.leaves(params.get("params", params))))


def _timed_calls(call, seconds: float) -> tuple[int, float]:
    """Run `call()` (which blocks) repeatedly for about `seconds`, at least once; (calls, elapsed)."""
    calls, started = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls, elapsed


def alternate(jaxgen_call, pytorch_call, rounds: int, seconds: float, jaxgen_units: int = 1,
              pytorch_units: int = 1) -> dict:
    """Rates of two warmed-up blocking calls, timed in turns: jaxgen, PyTorch, jaxgen, ... for `rounds`
    rounds of about `seconds` per side each (at least one call). On a shared machine whose speed drifts
    by 10-30% within minutes, taking turns lets the drift hit both sides alike, where timing one side
    and then the other can tilt the ratio either way. Each call does `*_units` units of work (steps);
    the rates are total units over total time, and the per-round ratios show the spread."""
    totals = {"jaxgen": [0, 0.0], "pytorch": [0, 0.0]}
    round_ratios = []
    for _ in range(rounds):
        rates = {}
        for side, call, units in (("jaxgen", jaxgen_call, jaxgen_units), ("pytorch", pytorch_call, pytorch_units)):
            calls, elapsed = _timed_calls(call, seconds)
            totals[side][0] += calls * units
            totals[side][1] += elapsed
            rates[side] = calls * units / elapsed
        round_ratios.append(rates["jaxgen"] / rates["pytorch"])
    return {"jaxgen": totals["jaxgen"][0] / totals["jaxgen"][1],
            "pytorch": totals["pytorch"][0] / totals["pytorch"][1], "round_ratios": round_ratios}


def jaxgen_step_call(params, objective, images: np.ndarray) -> dict:
    """A blocking call of jaxgen's compiled train chunk (train.make_train_chunk, the function train.fit
    runs: `steps` optimizer steps on one fixed batch of uint8 `images`), compiled and warmed up."""
    mesh = train.data_mesh()
    config = train.TrainConfig(epochs=1, batch_size=len(images), learning_rate=LEARNING_RATE)
    state = train.create_train_state(params, train.adam(config), mesh)
    chunk = train.make_train_chunk(objective, mesh, seed=0)
    steps = config.steps_per_call
    batches = jax.device_put({"image": np.stack([images] * steps), "label": np.zeros((steps, len(images)), np.int32)},
                             NamedSharding(mesh, P(None, "data")))
    holder = {"state": state}

    def call():
        holder["state"], terms = chunk(holder["state"], batches)
        jax.block_until_ready(terms)

    started = time.perf_counter()
    call()  # compiles
    compile_seconds = time.perf_counter() - started
    call()  # warm-up
    return {"call": call, "steps": steps, "compile_seconds": compile_seconds, "images": images,
            "parameters": jax_parameter_count(params)}


def torch_device() -> torch.device:
    """Where the PyTorch side runs: the GPU when there is one (jax then uses it too), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torch_synchronize() -> None:
    """Wait for queued GPU work, so timed calls measure it (a no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def torch_step_call(model, loss_fn, images: np.ndarray):
    """A blocking call of one eager PyTorch Adam step on one fixed float NCHW batch, warmed up."""
    device = torch_device()
    model = model.to(device)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def call():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, x).backward()
        optimizer.step()
        torch_synchronize()

    for _ in range(3):
        call()
    return call


def _row(workload, unit, jaxgen_rate, torch_rate, **extra) -> dict:
    return {"workload": workload, "unit": unit, "jaxgen": jaxgen_rate, "pytorch": torch_rate,
            "ratio": jaxgen_rate / torch_rate, **extra}


def alternated_row(workload, unit, rates: dict, **extra) -> dict:
    """A results row from `alternate`'s rates, keeping the per-round ratios."""
    return _row(workload, unit, rates["jaxgen"], rates["pytorch"], round_ratios=rates["round_ratios"], **extra)


def synthetic_images(n: int, shape, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n,) + tuple(shape)) * 255).astype(np.uint8)


def step_workload(name, jaxgen: dict, torch_model, torch_loss, budget) -> dict:
    """Alternate a compiled jaxgen step call (`jaxgen_step_call`) with its PyTorch twin's step."""
    counts = {"jaxgen": jaxgen["parameters"], "pytorch": torch_models.parameter_count(torch_model)}
    if counts["jaxgen"] != counts["pytorch"]:
        raise AssertionError(f"{name}: parameter counts differ {counts}")
    pytorch = torch_step_call(torch_model, torch_loss, jaxgen["images"])
    rates = alternate(jaxgen["call"], pytorch, budget.rounds, budget.seconds / budget.rounds, jaxgen["steps"])
    return alternated_row(name, "steps/s", rates, compile_seconds=jaxgen["compile_seconds"],
                          parameters=counts["jaxgen"], batch_size=BATCH)


@functools.partial(jax.jit, static_argnums=0)
def initial_variables(model, *example_inputs):
    """`model.init` compiled as one program, once per architecture (the module is a static argument; (1) and
    (4) both initialise the MNIST VAE): ~4 s on 2 cores where running it operation by operation compiles each
    one for ~11 s (the conv models). The same keys draw the weights (bit for bit, checked on the models here)."""
    return model.init(*example_inputs)


def mnist_models(seed: int = 0):
    model = MnistConvVAE(20)
    params = initial_variables(model, jax.random.key(seed), jnp.zeros((1, 28, 28, 1)), jax.random.key(0))
    return model, params, mnist_twin(seed)


def mnist_twin(seed: int = 0):
    torch.manual_seed(seed)
    return torch_models.MnistConvVAE(20)


@functools.cache
def mnist_jaxgen_step() -> dict:
    """(1)'s compiled jaxgen step call, built once a process: (4) times the same call between its epochs."""
    model, params, _ = mnist_models()
    return jaxgen_step_call(params, objectives.vae_objective(model), synthetic_images(BATCH, (28, 28, 1)))


def cifar_models(seed: int = 0):
    model = SpatialConvAE((32, 32, 3), 512, (32, 64))
    params = initial_variables(model, jax.random.key(seed), jnp.zeros((1, 32, 32, 3)))
    torch.manual_seed(seed)
    return model, params, torch_models.SpatialConvAE((32, 64), 8)


def mnist_vae_step(budget: Budget) -> dict:
    """(1) The MNIST study's conv VAE, one Adam step on a batch of 128."""
    return step_workload("mnist_conv_vae_step", mnist_jaxgen_step(), mnist_twin(), torch_models.vae_loss, budget)


def cifar_ae_step(budget: Budget) -> dict:
    """(2) The CIFAR-10 study's conv AE (8x8x8 code), one Adam step on a batch of 128."""
    model, params, twin = cifar_models()
    jaxgen = jaxgen_step_call(params, objectives.autoencoder_objective(model), synthetic_images(BATCH, (32, 32, 3)))
    return step_workload("cifar_conv_ae_step", jaxgen, twin, torch_models.autoencoder_loss, budget)


def _warn_synthetic(name: str) -> None:
    # Speed barely depends on the data, but a model trained on noise learns nothing: say so.
    print(f"warning: {name} not found (set JAXGEN_DATA_DIR, e.g. ../shared/data); using synthetic data", flush=True)


def dino_points(data_dir=None) -> np.ndarray:
    try:
        raw = data.load_datasaurus("dino", data_dir)
    except data.DataNotFoundError:
        _warn_synthetic("the Datasaurus dino")
        raw = np.random.default_rng(0).normal(size=(142, 2))
    return ((raw - raw.mean(0)) / raw.std(0)).astype(np.float32)


def dino_ddpm_run(budget: Budget) -> dict:
    """(3) The dino study's whole training run of the Fourier variant (same batch, schedule, clipping,
    Adam, per-epoch test loss), in steps per second."""
    from experiments import dino_diffusion as study

    points = dino_points()
    run_budget = study.get_config().replace(epochs=budget.dino_epochs)
    schedule = ddpm.linear_schedule(study.NUM_STEPS, study.BETA_MIN, study.BETA_MAX)
    eval_set = study.fixed_eval_set(points, run_budget.eval_repeats, 0)
    model = DenoisingMLP("fourier", study.NUM_STEPS)
    variables = model.init(jax.random.key(0), points[:1], jnp.ones((1,), jnp.int32))
    steps = run_budget.epochs * run_budget.steps_per_epoch
    # The study's training program (what jaxgen.train.fit_scanned calls), all epochs in one call.
    epochs = np.arange(run_budget.epochs, dtype=np.int32)
    started = time.perf_counter()
    program, inputs = study.training_program(model, variables, jnp.asarray(points), eval_set, schedule, run_budget)
    compiled = program.lower(study.new_state(variables, run_budget), epochs, *inputs).compile()
    compile_seconds = time.perf_counter() - started

    torch.manual_seed(0)
    twin = torch_models.FourierDenoisingMLP(study.NUM_STEPS)
    counts = {"jaxgen": jax_parameter_count(variables), "pytorch": torch_models.parameter_count(twin)}
    if counts["jaxgen"] != counts["pytorch"]:
        raise AssertionError(f"dino: parameter counts differ {counts}")
    def jaxgen_run():  # from the same start each time
        with cpu.cores_kept_awake(jax.local_devices()):
            jax.block_until_ready(compiled(study.new_state(variables, run_budget), epochs, *inputs))

    jaxgen_run()  # warm-up, as PyTorch's first epoch
    # Each round runs the whole training once per side (seconds=0: one call), jaxgen from the same start.
    rates = alternate(jaxgen_run,
                      torch_dino_call(twin, points, schedule, eval_set, run_budget), budget.rounds, 0.0, steps, steps)
    return alternated_row("dino_ddpm_run", "steps/s", rates, compile_seconds=compile_seconds,
                          parameters=counts["jaxgen"], batch_size=run_budget.batch_size, steps=steps)


def torch_dino_call(model, points, schedule, eval_set, run_budget):
    """A call running the dino training (`run_budget.epochs` epochs) in eager PyTorch, warmed up. Later
    calls continue from where the last stopped; the work per call is the same."""
    optimizer = torch.optim.Adam(model.parameters(), lr=run_budget.learning_rate)
    x_all = torch.from_numpy(points)
    alpha_bars = torch.from_numpy(np.array(schedule.alpha_bars, np.float32))
    eval_x0, eval_t, eval_noise = (torch.from_numpy(np.array(a)) for a in eval_set)
    generator = torch.Generator().manual_seed(0)
    num_steps = schedule.num_steps

    def epsilon_loss(x0, t, noise):
        abar = alpha_bars[t][:, None]
        return (model(abar.sqrt() * x0 + (1 - abar).sqrt() * noise, t) - noise).square().mean()

    def epoch():
        for _ in range(run_budget.steps_per_epoch):
            index = torch.randint(0, len(x_all), (run_budget.batch_size,), generator=generator)
            t = torch.randint(1, num_steps + 1, (run_budget.batch_size,), generator=generator)
            noise = torch.randn(run_budget.batch_size, 2, generator=generator)
            optimizer.zero_grad(set_to_none=True)
            epsilon_loss(x_all[index], t, noise).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), run_budget.grad_clip_norm)
            optimizer.step()
        with torch.no_grad():
            epsilon_loss(eval_x0, eval_t, eval_noise)

    def run():
        for _ in range(run_budget.epochs):
            epoch()

    epoch()  # warm-up
    return run


def mnist_images(n: int | None) -> np.ndarray:
    try:
        images = data.load("mnist", "train", allow_download=False).images
    except data.DataNotFoundError:
        _warn_synthetic("MNIST")
        images = synthetic_images(60000, (28, 28, 1))
    return images[:n] if n else images


def mnist_vae_epoch(budget: Budget) -> dict:
    """(4) Whole epochs of (1) through train.fit (shuffling, batching, host-to-device copies, per-epoch
    checkpoint), in images per second, and their share of the pure step rate of (1)'s compiled call.

    An epoch is too long to time in slices, so the sides take turns by whole epochs: after each jaxgen
    epoch (train.fit's `after_epoch`) come a block of pure steps and one PyTorch epoch, for
    `budget.rounds` rounds after a first, compiling round. A burst of load on the machine then hits a
    round of both, not the one side that was timed while it lasted."""
    images = mnist_images(budget.epoch_images)
    train_set = data.Dataset(images, np.zeros(len(images), np.int64), (), "mnist")
    model, params, twin = mnist_models()
    seen = len(images) // BATCH * BATCH
    pure_step = mnist_jaxgen_step()

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(np.array(images))),
                                         batch_size=BATCH, shuffle=True, drop_last=True)
    optimizer = torch.optim.Adam(twin.parameters(), lr=LEARNING_RATE)

    def torch_epoch_seconds() -> float:
        started = time.perf_counter()
        for (batch,) in loader:
            x = batch.permute(0, 3, 1, 2).float() / 255.0
            optimizer.zero_grad(set_to_none=True)
            torch_models.vae_loss(twin, x).backward()
            optimizer.step()
        return time.perf_counter() - started

    torch_seconds, step_rates = [], []

    def between_epochs(epoch, _state, _history):
        if epoch > 0:  # the first round compiles and warms up; PyTorch warms up alongside
            calls, elapsed = _timed_calls(pure_step["call"], budget.seconds / budget.rounds)
            step_rates.append(calls * pure_step["steps"] / elapsed)
        torch_seconds.append(torch_epoch_seconds())

    config = train.TrainConfig(epochs=budget.rounds + 1, batch_size=BATCH, learning_rate=LEARNING_RATE)
    state = train.create_train_state(params, train.adam(config))
    with tempfile.TemporaryDirectory() as directory:
        _, history = train.fit(state, objectives.vae_objective(model), train_set, None, config, directory,
                               desc="mnist epoch", after_epoch=between_epochs)
    jaxgen_seconds, torch_seconds = history["epoch_seconds"][1:], torch_seconds[1:]
    jaxgen_rate = seen * budget.rounds / sum(jaxgen_seconds)
    step_rate = float(np.mean(step_rates))
    return _row("mnist_conv_vae_epoch", "images/s", jaxgen_rate, seen * budget.rounds / sum(torch_seconds),
                images=seen, round_ratios=[p / j for j, p in zip(jaxgen_seconds, torch_seconds)],
                pure_step_rate=step_rate, share_of_step_rate=jaxgen_rate / (step_rate * BATCH),
                round_shares_of_step_rate=[seen / (j * s * BATCH) for j, s in zip(jaxgen_seconds, step_rates)])


def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo's "model name"): the same core count on another CPU
    can move the ratios by up to a half (benchmarks/NOTES.md), so every result records which CPU ran it."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    devices = jax.devices()
    return {"device_kind": devices[0].device_kind, "platform": devices[0].platform, "devices": len(devices),
            "cpu_model": cpu_model(), "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "jax": jax.__version__, "torch": torch.__version__}
