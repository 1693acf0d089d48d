"""The 2-D DDPM study on the Datasaurus dino: three time/position embeddings, measured.

    python -m experiments.dino_diffusion            # full budget, about a minute on 2 CPU cores
    python -m experiments.dino_diffusion --quick    # same code path, tiny budget

The config (budget, Fourier scale) is experiments/configs/dino_diffusion.py; --help lists its flags.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser
from experiments.configs.dino_diffusion import get_config
from jaxgen import checkpoints, cpu, data, ddpm, metrics, optim, parallel, train
from jaxgen.plots import save_figure
from jaxgen.models.diffusion import EMBEDDINGS, DenoisingMLP

NAME = "dino_diffusion"


NUM_STEPS, BETA_MIN, BETA_MAX = 50, 1e-4, 2e-2
# The study trains data-parallel on two CPU devices, one per core of a 2-core machine: a fixed count, so
# that its numbers do not depend on the machine's core count (a device count changes the order in which
# the gradients are summed, so the numbers by float rounding).
CPU_DEVICES = 2
FORWARD_TIMES = (1, 6, 12, 25, 50)
SCHEDULE_PAIRS = ((1e-5, 1e-2), (1e-4, 2e-2), (1e-4, 5e-2), (1e-3, 1e-1), (1e-4, 2e-1))
TRAJECTORY_TIMES = (50, 40, 30, 20, 10, 5, 0)
# In standardized units the dino spans about 4 x 3; 0.2 resolves its head, feet and spines.
MMD_BANDWIDTH = 0.2
SMOOTHING = 10  # epochs in the moving average of the plotted test loss
# The default Fourier scale, B ~ N(0, 1): frequencies up to ~2-3 cycles per standard deviation, enough for
# the dino's detail without the high-frequency noise that scales >= 5 give on 142 points.


def make_train_run(model, schedule, points, eval_set, budget, seed, mesh=None):
    """The whole training run as one compiled function: scan over epochs, each a scan over steps,
    data-parallel over the devices of `mesh` (default: all local devices, `train.data_mesh`). Every
    device draws each epoch's whole batches, so the draws are the same on any number of devices, and
    trains on its slice of each batch; one all-reduce per step sums the loss and the gradients."""
    mesh = mesh or train.data_mesh()
    axis = mesh.axis_names[0]
    if budget.batch_size % mesh.size:
        raise ValueError(f"batch size {budget.batch_size} does not split over {mesh.size} devices; "
                         f"run on a device count that divides it")
    # Clipped Adam fused (jaxgen.optim): the optimizer of a 20,802-parameter MLP is ~14% of a CPU step.
    tx = optim.clipped_adam(budget.learning_rate, budget.grad_clip_norm)
    eval_count = eval_set[0].shape[0]
    # The test set padded (repeating its last triple, weighted 0) to an equal slice per device.
    padding = -eval_count % mesh.size
    eval_weights = jnp.arange(eval_count + padding) < eval_count
    eval_set = [jnp.pad(a, [(0, padding)] + [(0, 0)] * (a.ndim - 1), mode="edge") for a in eval_set]

    def run(variables):
        constants = {k: v for k, v in variables.items() if k != "params"}

        def predictor(params):
            return lambda x, t: model.apply({"params": params, **constants}, x, t)

        def step(carry, draws):
            params, opt_state = carry
            index, t, noise = draws
            def share(p):  # this device's share of the batch's mean loss: the sum over devices is the mean
                return ddpm.epsilon_loss(predictor(p), schedule, points[index], t, noise).sum() / budget.batch_size

            loss, grads = parallel.sum_over_devices(jax.value_and_grad(share)(parallel.per_device(params, axis)), axis)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        def epoch(carry, e):
            # One draw per epoch for all its steps: three large RNG calls instead of three per step.
            k_index, k_time, k_noise = jax.random.split(jax.random.fold_in(jax.random.key(seed), e), 3)
            shape = (budget.steps_per_epoch, budget.batch_size)
            draws = (jax.random.randint(k_index, shape, 0, points.shape[0]),
                     jax.random.randint(k_time, shape, 1, NUM_STEPS + 1),
                     jax.random.normal(k_noise, shape + (2,)))
            carry, losses = jax.lax.scan(step, carry, [parallel.local_slice(d, axis, 1) for d in draws])
            x0, t, noise, weights = (parallel.local_slice(a, axis) for a in (*eval_set, eval_weights))
            test = jax.lax.psum(jnp.sum(weights * ddpm.epsilon_loss(predictor(carry[0]), schedule, x0, t, noise)),
                                axis) / eval_count
            return carry, (losses.mean(), test)

        params = variables["params"]
        (params, _), (train_loss, test_loss) = jax.lax.scan(epoch, (params, tx.init(params)),
                                                            jnp.arange(budget.epochs))
        return {"params": params, **constants}, {"train": {"loss": train_loss}, "test": {"loss": test_loss}}

    return jax.jit(jax.shard_map(run, mesh=mesh, in_specs=P(), out_specs=P()))


def run_training(train_run, variables):
    """`train_run(variables)` to its end, with the CPU cores kept awake while the devices train, so that
    their per-step all-reduce does not wait for halted cores to wake (`jaxgen.cpu.cores_kept_awake`);
    `train_run` is `make_train_run`'s function over all local devices, or its compiled form."""
    with cpu.cores_kept_awake(jax.devices()):
        return jax.block_until_ready(train_run(variables))


def fixed_eval_set(points, repeats, seed):
    rng = np.random.default_rng(seed + 7)
    x0 = np.repeat(points, repeats, axis=0)
    t = rng.integers(1, NUM_STEPS + 1, len(x0))
    return jnp.asarray(x0), jnp.asarray(t), jnp.asarray(rng.standard_normal(x0.shape), jnp.float32)


def moving_average(values, window):
    values = np.asarray(values)
    kernel = np.ones(min(window, len(values))) / min(window, len(values))
    return np.convolve(values, kernel, mode="valid")


def scatter(ax, points, title="", size=3):
    ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.set_xlim(-3.5, 3.5)
    ax.set_ylim(-3.5, 3.5)
    ax.axis("off")


def train_or_restore(variant, model, variables, train_run, args, output):
    """Train, or with --resume reuse a finished model; a fresh run never replaces one silently."""
    directory = output.model_dir(variant)
    checkpoints.prepare_run_directory(directory, args.resume, args.overwrite)
    if args.resume and (directory / "params").exists():
        restored, meta = checkpoints.load_params(directory, variables)
        epochs = len(meta["history"]["train"]["loss"])
        print(f"{variant}: already trained ({epochs} epochs), reused from {directory}")
        output.note_resumed(variant, epochs, epochs * output.config.steps_per_epoch)
        return restored, meta["history"]
    trained, history = run_training(train_run, variables)
    history = jax.tree.map(lambda v: np.asarray(v).tolist(), history)
    if not np.all(np.isfinite(history["train"]["loss"])):
        raise train.NonFiniteLossError(f"{variant}: the training loss became NaN/inf; nothing was saved. "
                                       "Lower --learning-rate or --fourier-scale.")
    checkpoints.save_params(directory, trained, {"variant": variant, "history": history,
                                                 "fourier_scale": model.fourier_scale})
    return trained, history


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    raw = data.load_datasaurus("dino", args.data_dir)
    output.open()
    points = jnp.asarray((raw - raw.mean(0)) / raw.std(0))
    schedule = ddpm.linear_schedule(NUM_STEPS, BETA_MIN, BETA_MAX)
    results = {"budget": output.budget, "config": config.to_dict(),
               "schedule": {"T": NUM_STEPS, "beta_min": BETA_MIN, "beta_max": BETA_MAX},
               "mmd_bandwidth": MMD_BANDWIDTH, "num_points": int(points.shape[0])}

    # Forward process figures.
    fig, ax = plt.subplots(figsize=(4, 4))
    scatter(ax, np.asarray(points), "the dino, standardized", 6)
    save_figure(fig, output.figure("dino.png"))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(np.arange(NUM_STEPS + 1), schedule.alpha_bars, marker=".")
    ax.set(xlabel="t", ylabel=r"$\bar\alpha_t$", title=f"linear schedule, T={NUM_STEPS}, β {BETA_MIN:g}→{BETA_MAX:g}")
    save_figure(fig, output.figure("alpha_bar.png"))
    fig, axes = plt.subplots(1, len(FORWARD_TIMES), figsize=(3 * len(FORWARD_TIMES), 3))
    noise = jax.random.normal(jax.random.key(config.seed), points.shape)
    for ax, t in zip(axes, FORWARD_TIMES):
        x_t = ddpm.q_sample(schedule, points, jnp.full((points.shape[0],), t), noise)
        scatter(ax, np.asarray(x_t), f"t = {t}, ᾱ = {float(schedule.alpha_bars[t]):.3f}", 6)
    save_figure(fig, output.figure("forward_noising.png"))
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for beta_min, beta_max in SCHEDULE_PAIRS:
        ax.plot(ddpm.linear_schedule(NUM_STEPS, beta_min, beta_max).alpha_bars, label=f"β {beta_min:g} → {beta_max:g}")
    ax.set(xlabel="t", ylabel=r"$\bar\alpha_t$", title="how fast each linear schedule destroys the signal")
    ax.legend(fontsize=8)
    save_figure(fig, output.figure("alpha_bar_schedules.png"))

    # Reverse process: three variants, same schedule, optimizer, seed, batches and budget.
    eval_set = fixed_eval_set(np.asarray(points), config.eval_repeats, config.seed)
    sample_rng = jax.random.fold_in(jax.random.key(config.seed), 999)
    bootstrap = points[np.random.default_rng(config.seed).integers(0, points.shape[0], config.num_samples)]
    results["data_floor"] = {"mmd": float(metrics.gaussian_mmd(bootstrap, points, MMD_BANDWIDTH)),
                             "chamfer": float(metrics.chamfer_distance(bootstrap, points))}
    samples, trajectories = {}, {}
    for variant in EMBEDDINGS:
        model = DenoisingMLP(variant, NUM_STEPS, fourier_scale=config.fourier_scale)
        variables = model.init(jax.random.key(config.seed), points[:1], jnp.ones((1,), jnp.int32))
        train_run = make_train_run(model, schedule, points, eval_set, config, config.seed)
        trained, history = train_or_restore(variant, model, variables, train_run, args, output)
        predict = jax.jit(lambda x, t, v=trained, m=model: m.apply(v, x, t))
        samples[variant], trajectories[variant] = ddpm.ancestral_sample(
            predict, schedule, sample_rng, (config.num_samples, 2), return_trajectory=True)
        results[variant] = {"final_test_loss": history["test"]["loss"][-1],
                            "mmd": float(metrics.gaussian_mmd(samples[variant], points, MMD_BANDWIDTH)),
                            "chamfer": float(metrics.chamfer_distance(samples[variant], points)),
                            "history": history}
        print(f"{variant}: test loss {results[variant]['final_test_loss']:.4f}, MMD {results[variant]['mmd']:.4f}, "
              f"Chamfer {results[variant]['chamfer']:.4f}")

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for variant in EMBEDDINGS:
        ax.plot(np.arange(SMOOTHING, config.epochs + 1) if config.epochs >= SMOOTHING else [config.epochs],
                moving_average(results[variant]["history"]["test"]["loss"], SMOOTHING), label=variant)
    ax.set(xlabel="epoch", ylabel="test ε-MSE", title=f"test loss ({SMOOTHING}-epoch moving average)")
    ax.legend()
    save_figure(fig, output.figure("test_loss.png"))
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.9))
    scatter(axes[0], np.asarray(points), "data", 6)
    for ax, variant in zip(axes[1:], EMBEDDINGS):
        scatter(ax, np.asarray(samples[variant]), f"{variant}: MMD {results[variant]['mmd']:.3f}, "
                                                  f"Chamfer {results[variant]['chamfer']:.3f}")
    save_figure(fig, output.figure("samples.png"))
    fig, axes = plt.subplots(len(EMBEDDINGS), len(TRAJECTORY_TIMES), figsize=(2.2 * len(TRAJECTORY_TIMES), 6.8))
    for row, variant in zip(axes, EMBEDDINGS):
        for ax, t in zip(row, TRAJECTORY_TIMES):
            scatter(ax, np.asarray(trajectories[variant][NUM_STEPS - t]), f"{variant}, t = {t}", 2)
    save_figure(fig, output.figure("reverse_trajectory.png"))
    output.finish(results, write_report(results))


def write_report(results) -> str:
    rows = [[v, results[v]["final_test_loss"], results[v]["mmd"], results[v]["chamfer"]] for v in EMBEDDINGS]
    rows.append(["data bootstrap (floor)", "", results["data_floor"]["mmd"], results["data_floor"]["chamfer"]])
    order = {m: sorted(EMBEDDINGS, key=lambda v: results[v][m]) for m in ("mmd", "chamfer")}
    expected = ["fourier", "linear_time", "no_time"]
    verdict = " ".join(
        f"On {m.upper() if m == 'mmd' else 'Chamfer'} the order is {' < '.join(order[m])}"
        + (" (as expected)." if order[m] == expected else " — not the expected fourier < linear_time < no_time.")
        for m in order)
    return f"""# The 2-D DDPM study on the Datasaurus dino

{results['num_points']} points, standardized to zero mean and unit std. Linear schedule, T = {results['schedule']['T']},
β from {results['schedule']['beta_min']:g} to {results['schedule']['beta_max']:g}. Budget: {results['budget']}
({results['config']['epochs']} epochs × {results['config']['steps_per_epoch']} Adam steps, batch
{results['config']['batch_size']}, lr {results['config']['learning_rate']:g}, global-norm clip
{results['config']['grad_clip_norm']:g}); the same seed, batches and noise for every variant.
Fourier scale (std of B): {results['config']['fourier_scale']:g}.

## Forward process

![dino](dino.png) ![alpha bar](alpha_bar.png)

![forward](forward_noising.png)

![schedules](alpha_bar_schedules.png)

## Reverse process

{markdown_table(["variant", "final test ε-MSE", f"MMD² (σ = {results['mmd_bandwidth']})", "Chamfer"], rows)}

MMD² is the biased (V-statistic) squared kernel MMD with a Gaussian kernel of bandwidth {results['mmd_bandwidth']}
(standardized units) between {results['config']['num_samples']} samples and the 142 data points; Chamfer is the
mean nearest-neighbour distance from samples to data plus that from data to samples. The floor compares
{results['config']['num_samples']} points bootstrapped from the data with the data itself (Chamfer ≈ 0 there by
construction, since nearly every data point is drawn).

{verdict}

![test loss](test_loss.png)

![samples](samples.png)

![trajectory](reverse_trajectory.png)
"""


def configure_process() -> None:
    """How the study sets up JAX's CPU backend, before its first computation (benchmarks.dino does the
    same): each computation on one thread, which runs these small ones faster, and the CPU split into
    CPU_DEVICES devices that train data-parallel, one thread each."""
    cpu.run_each_computation_on_one_thread()
    cpu.split_into_devices(CPU_DEVICES)


if __name__ == "__main__":
    configure_process()
    common.entry_point(main)
