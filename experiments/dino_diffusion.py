"""The 2-D DDPM study on the Datasaurus Dozen: three time/position embeddings, and the noise schedule, measured.

    python -m experiments.dino_diffusion                    # the dino, full budget, about a minute on 2 CPU cores
    python -m experiments.dino_diffusion --shape all        # all 13 shapes x 3 denoisers
    python -m experiments.dino_diffusion --schedule-sweep   # the Fourier model under 10 schedules
    python -m experiments.dino_diffusion --quick            # same code path, tiny budget

The config (budget, shape, schedule, Fourier scale) is experiments/configs/dino_diffusion.py; --help lists its flags.
"""
from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.sharding import PartitionSpec as P

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser
from experiments.configs.dino_diffusion import SHAPES, get_config
from jaxgen import cpu, data, ddpm, distributed, optim, parallel, point_sets
from jaxgen import train as train_module
from jaxgen.plots import save_figure
from jaxgen.models.diffusion import EMBEDDINGS, DenoisingMLP

NAME = "dino_diffusion"

NUM_STEPS, BETA_MIN, BETA_MAX = 50, 1e-4, 2e-2  # the assignment's schedule (the config's defaults)
# The study trains data-parallel on two CPU devices, one per core of a 2-core machine: a fixed count, so
# that its numbers do not depend on the machine's core count (a device count changes the order in which
# the gradients are summed, so the numbers by float rounding).
CPU_DEVICES = 2
SCHEDULE_PAIRS = ((1e-5, 1e-2), (1e-4, 2e-2), (1e-4, 5e-2), (1e-3, 1e-1), (1e-4, 2e-1))
SWEEP_STEPS = (10, 25, 50, 100, 200)
# In standardized units the dino spans about 4 x 3; 0.2 resolves its head, feet and spines.
MMD_BANDWIDTH = 0.2
SMOOTHING = 10  # epochs in the moving average of the plotted test loss
# The default Fourier scale, B ~ N(0, 1): frequencies up to ~2-3 cycles per standard deviation, enough for
# the dino's detail without the high-frequency noise that scales >= 5 give on 142 points.


def new_state(variables, config, mesh=None) -> train_module.TrainState:
    """The training state of a denoiser's parameters: clipped Adam fused (jaxgen.optim), since the optimizer
    of a 20,802-parameter MLP is ~14% of a CPU step with optax's chain."""
    return train_module.create_train_state(variables["params"],
                                           optim.clipped_adam(config.learning_rate, config.grad_clip_norm), mesh)


def training_program(model, variables, points, eval_set, schedule, config, mesh=None):
    """(program, inputs): `program(state, epochs, *inputs)` trains the denoiser for the epochs numbered
    `epochs` (`jaxgen.train.fit_scanned`'s run_epochs); `inputs` (its constants, the points, test set,
    schedule and seed) are replicated over the mesh."""
    mesh = mesh or train_module.data_mesh()
    program = epoch_program(model, config.steps_per_epoch, config.batch_size, mesh)
    constants = {k: v for k, v in variables.items() if k != "params"}
    inputs = (constants, points, eval_set, schedule, np.int32(config.seed))
    return program, distributed.replicate(inputs, train_module.replicated(mesh))


@functools.lru_cache(maxsize=None)
def epoch_program(model, steps_per_epoch: int, batch_size: int, mesh):
    """One compiled function (state, epochs, constants, points, eval_set, schedule, seed) -> (state, history)
    training the epochs numbered `epochs` (a scan over them, each a scan over its steps), data-parallel over
    the devices of `mesh`. Epoch e draws its batches, times and noise from (seed, e) alone, so a run cut into
    blocks of epochs, or resumed, gives the numbers of a run in one piece. Every device draws the whole
    batches, so the draws are the same on any number of devices, and trains on its slice of each batch; one
    all-reduce per step sums the loss and the gradients. The data, schedule and seed are inputs, so one
    compiled program serves every shape, beta range and seed of a model (a new T is a new model: its time
    table has T rows)."""
    axis = mesh.axis_names[0]
    if batch_size % mesh.size:
        raise ValueError(f"batch size {batch_size} does not split over {mesh.size} devices; "
                         f"run on a device count that divides it")

    def run(state, epochs, constants, points, eval_set, schedule, seed):
        eval_count = eval_set[0].shape[0]
        # The test set padded (repeating its last triple, weighted 0) to an equal slice per device.
        padding = -eval_count % mesh.size
        eval_weights = jnp.arange(eval_count + padding) < eval_count
        eval_set = [jnp.pad(a, [(0, padding)] + [(0, 0)] * (a.ndim - 1), mode="edge") for a in eval_set]

        def predictor(params):
            return lambda x, t: model.apply({"params": params, **constants}, x, t)

        def step(state, draws):
            index, t, noise = draws
            def share(p):  # this device's share of the batch's mean loss: the sum over devices is the mean
                return ddpm.epsilon_loss(predictor(p), schedule, points[index], t, noise).sum() / batch_size

            loss, grads = parallel.sum_over_devices(
                jax.value_and_grad(share)(parallel.per_device(state.params, axis)), axis)
            return state.apply_gradients(grads=grads), loss

        def epoch(state, e):
            # One draw per epoch for all its steps: three large RNG calls instead of three per step.
            k_index, k_time, k_noise = jax.random.split(jax.random.fold_in(jax.random.key(seed), e), 3)
            shape = (steps_per_epoch, batch_size)
            draws = (jax.random.randint(k_index, shape, 0, points.shape[0]),
                     jax.random.randint(k_time, shape, 1, schedule.num_steps + 1),
                     jax.random.normal(k_noise, shape + (2,)))
            state, losses = jax.lax.scan(step, state, [parallel.local_slice(d, axis, 1) for d in draws])
            x0, t, noise, weights = (parallel.local_slice(a, axis) for a in (*eval_set, eval_weights))
            test = jax.lax.psum(jnp.sum(weights * ddpm.epsilon_loss(predictor(state.params), schedule, x0, t, noise)),
                                axis) / eval_count
            return state, (losses.mean(), test)

        state, (train_loss, test_loss) = jax.lax.scan(epoch, state, epochs)
        return state, {"train": {"loss": train_loss}, "test": {"loss": test_loss}}

    return jax.jit(jax.shard_map(run, mesh=mesh, in_specs=P(), out_specs=P()))


def fixed_eval_set(points, repeats, seed, num_steps=NUM_STEPS):
    rng = np.random.default_rng(seed + 7)
    x0 = np.repeat(points, repeats, axis=0)
    t = rng.integers(1, num_steps + 1, len(x0))
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


def train_denoiser(name, model, variables, points, eval_set, schedule, config, args, output):
    """Train one denoiser with `jaxgen.train.fit_scanned` (a checkpoint every --checkpoint-every epochs; --resume
    continues an unfinished model and reuses a finished one); (trained variables, history of its losses).
    The CPU cores are kept awake while the devices train, so that their per-step all-reduce does not wait for
    halted cores to wake (`jaxgen.cpu.cores_kept_awake`)."""
    mesh = train_module.data_mesh()
    program, inputs = training_program(model, variables, points, eval_set, schedule, config, mesh)
    with cpu.cores_kept_awake(jax.local_devices()):
        state, history = train_module.fit_scanned(
            new_state(variables, config, mesh), lambda state, epochs: program(state, epochs, *inputs),
            config.epochs, config.checkpoint_every, output.checkpoint_dir(name), resume=args.resume,
            overwrite=args.overwrite, desc=name, mesh=mesh,
            on_resume=lambda epoch, step: output.note_resumed(name, epoch, step, config.epochs))
    # On the host: sampling and scoring then run in each process alike, on its own devices.
    trained = {**variables, "params": jax.device_get(state.params)}
    return trained, {"train": history["train"], "test": history["test"]}


@functools.lru_cache(maxsize=None)
def sampler(model, num_samples: int):
    """Compiled ancestral sampling (variables, schedule, rng) -> (x_0, trajectory x_T ... x_0) of one model."""
    def sample(variables, schedule, rng):
        return ddpm.ancestral_sample(lambda x, t: model.apply(variables, x, t), schedule, rng, (num_samples, 2),
                                     return_trajectory=True)
    return jax.jit(sample)


def standardized(raw):
    return jnp.asarray((raw - raw.mean(0)) / raw.std(0))


def schedule_of(config) -> ddpm.Schedule:
    return ddpm.make_schedule(config.schedule, config.T, config.beta_min, config.beta_max)


def describe_schedule(kind, num_steps, beta_min, beta_max) -> str:
    if kind == "cosine":
        return f"cosine, T = {num_steps}"
    return f"linear, T = {num_steps}, β {beta_min:g} → {beta_max:g}"


def train_and_score(name, embedding, points, schedule, config, args, output):
    """Train one denoiser on `points` under `schedule`, sample it, and score its samples against a held-out
    half of the points (with the floor of the other half). (scores, samples, trajectory)."""
    model = DenoisingMLP(embedding, schedule.num_steps, fourier_scale=config.fourier_scale)
    variables = model.init(jax.random.key(config.seed), points[:1], jnp.ones((1,), jnp.int32))
    eval_set = fixed_eval_set(np.asarray(points), config.eval_repeats, config.seed, schedule.num_steps)
    trained, history = train_denoiser(name, model, variables, points, eval_set, schedule, config, args, output)
    samples, trajectory = sampler(model, config.num_samples)(trained, schedule,
                                                              jax.random.fold_in(jax.random.key(config.seed), 999))
    distances = point_sets.distances_to_held_out_half(samples, points, MMD_BANDWIDTH, config.seed)
    scores = {"final_test_loss": history["test"]["loss"][-1], **distances["model"],
              "sampler_steps": int(trajectory.shape[0] - 1), "history": history}
    return scores, distances, np.asarray(samples), np.asarray(trajectory)


def forward_figures(points, schedule, config, output):
    T = schedule.num_steps
    fig, ax = plt.subplots(figsize=(4, 4))
    scatter(ax, np.asarray(points), f"{first_shape(config)}, standardized", 6)
    save_figure(fig, output.figure("data.png"))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(np.arange(T + 1), schedule.alpha_bars, marker="." if T <= 100 else None)
    ax.set(xlabel="t", ylabel=r"$\bar\alpha_t$",
           title=describe_schedule(config.schedule, T, config.beta_min, config.beta_max))
    save_figure(fig, output.figure("alpha_bar.png"))
    times = sorted({max(1, round(T * f)) for f in (0.02, 0.12, 0.25, 0.5, 1.0)})
    fig, axes = plt.subplots(1, len(times), figsize=(3 * len(times), 3))
    noise = jax.random.normal(jax.random.key(config.seed), points.shape)
    for ax, t in zip(np.atleast_1d(axes), times):
        x_t = ddpm.q_sample(schedule, points, jnp.full((points.shape[0],), t), noise)
        scatter(ax, np.asarray(x_t), f"t = {t}, ᾱ = {float(schedule.alpha_bars[t]):.3f}", 6)
    save_figure(fig, output.figure("forward_noising.png"))
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for beta_min, beta_max in SCHEDULE_PAIRS:
        ax.plot(ddpm.linear_schedule(T, beta_min, beta_max).alpha_bars, label=f"β {beta_min:g} → {beta_max:g}")
    ax.plot(ddpm.cosine_schedule(T).alpha_bars, "k--", label="cosine")
    ax.set(xlabel="t", ylabel=r"$\bar\alpha_t$", title=f"how fast each schedule destroys the signal (T = {T})")
    ax.legend(fontsize=8)
    save_figure(fig, output.figure("alpha_bar_schedules.png"))


def first_shape(config) -> str:
    return SHAPES[0] if config.shape == "all" else config.shape


def compare_denoisers(config, args, output, results):
    """The three denoisers on each shape (one, or all 13): scores, the samples grid, and for the first shape
    the test-loss curves and the reverse trajectories."""
    schedule = schedule_of(config)
    shapes = SHAPES if config.shape == "all" else (config.shape,)
    results["shapes"] = {}
    samples, trajectories = {}, {}
    for shape in shapes:
        points = standardized(data.load_datasaurus(shape, args.data_dir))
        entry = {"num_points": int(points.shape[0])}
        for variant in EMBEDDINGS:
            entry[variant], distances, samples[shape, variant], trajectory = train_and_score(
                f"{shape}_{variant}", variant, points, schedule, config, args, output)
            if shape == shapes[0]:
                trajectories[variant] = trajectory
            print(f"{shape} {variant}: test loss {entry[variant]['final_test_loss']:.4f}, "
                  f"MMD {entry[variant]['mmd']:.4f}, Chamfer {entry[variant]['chamfer']:.4f}")
        entry["data_floor"] = distances["floor"]
        entry["splits"], entry["half_size"] = distances["splits"], distances["half_size"]
        results["shapes"][shape] = entry
        samples[shape, "data"] = np.asarray(points)
    output.phase("denoisers")

    fig, axes = plt.subplots(len(shapes), 4, figsize=(12, 3.1 * len(shapes)), squeeze=False)
    for row, shape in zip(axes, shapes):
        entry = results["shapes"][shape]
        scatter(row[0], samples[shape, "data"], f"{shape}: data", 6)
        for ax, variant in zip(row[1:], EMBEDDINGS):
            scatter(ax, samples[shape, variant][:1000], f"{variant}: MMD² {entry[variant]['mmd']:.4f}, "
                                                        f"Chamfer {entry[variant]['chamfer']:.3f}")
    save_figure(fig, output.figure("samples.png"))

    first = results["shapes"][shapes[0]]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for variant in EMBEDDINGS:
        ax.plot(np.arange(SMOOTHING, config.epochs + 1) if config.epochs >= SMOOTHING else [config.epochs],
                moving_average(first[variant]["history"]["test"]["loss"], SMOOTHING), label=variant)
    ax.set(xlabel="epoch", ylabel="test ε-MSE", title=f"{shapes[0]}: test loss ({SMOOTHING}-epoch moving average)")
    ax.legend()
    save_figure(fig, output.figure("test_loss.png"))
    T = schedule.num_steps
    times = sorted({T, round(0.8 * T), round(0.6 * T), round(0.4 * T), round(0.2 * T), round(0.1 * T), 0},
                   reverse=True)
    fig, axes = plt.subplots(len(EMBEDDINGS), len(times), figsize=(2.2 * len(times), 6.8))
    for row, variant in zip(axes, EMBEDDINGS):
        for ax, t in zip(row, times):
            scatter(ax, trajectories[variant][T - t][:1000], f"{variant}, t = {t}", 2)
    save_figure(fig, output.figure("reverse_trajectory.png"))


def sweep_settings(config):
    """(label, schedule kind, T, beta_min, beta_max): T swept at the default beta range, the beta ranges at
    T = 50, and the cosine schedule at T = 50 (the default setting appears once)."""
    settings = [(f"T={T}", "linear", T, BETA_MIN, BETA_MAX) for T in SWEEP_STEPS]
    settings += [(f"β {lo:g}→{hi:g}", "linear", NUM_STEPS, lo, hi) for lo, hi in SCHEDULE_PAIRS
                 if (lo, hi) != (BETA_MIN, BETA_MAX)]
    return settings + [("cosine", "cosine", NUM_STEPS, BETA_MIN, BETA_MAX)]


def schedule_sweep(config, args, output, results):
    """The Fourier model under each schedule of `sweep_settings`, on one shape: sample distances per setting."""
    points = standardized(data.load_datasaurus(config.shape, args.data_dir))
    rows, samples = [], {}
    for label, kind, T, beta_min, beta_max in sweep_settings(config):  # the floor is the same for every setting
        schedule = ddpm.make_schedule(kind, T, beta_min, beta_max)
        name = f"sweep_{kind}_T{T}_{beta_min:g}_{beta_max:g}"
        scores, distances, samples[label], _ = train_and_score(name, "fourier", points, schedule, config, args,
                                                               output)
        rows.append({"setting": label, "schedule": kind, "T": T, "beta_min": beta_min, "beta_max": beta_max,
                     "alpha_bar_T": float(schedule.alpha_bars[-1]), **scores})
        print(f"{label}: ᾱ_T {rows[-1]['alpha_bar_T']:.3g}, MMD {scores['mmd']:.4f}, Chamfer {scores['chamfer']:.4f}")
    results["schedule_sweep"] = {"shape": config.shape, "settings": rows, "data_floor": distances["floor"]}
    output.phase("schedule sweep")

    columns = 4
    fig, axes = plt.subplots(-(-len(rows) // columns), columns, figsize=(3 * columns, 3.1 * -(-len(rows) // columns)),
                             squeeze=False)
    for ax, row in zip(axes.flat, rows):
        scatter(ax, samples[row["setting"]][:1000], f"{row['setting']}: MMD² {row['mmd']:.4f}, "
                                                    f"Chamfer {row['chamfer']:.3f}")
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    save_figure(fig, output.figure("schedule_sweep_samples.png"))
    floor = distances["floor"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric, label in ((axes[0], "mmd", f"MMD² (σ = {MMD_BANDWIDTH})"), (axes[1], "chamfer", "Chamfer")):
        positions = np.arange(len(rows))
        ax.bar(positions, [r[metric] for r in rows], yerr=[r[f"{metric}_std"] for r in rows], color="tab:blue",
               alpha=0.8, capsize=2)
        ax.axhline(floor[metric], color="k", linestyle="--", label="data floor (held-out half)")
        ax.set_xticks(positions, [r["setting"] for r in rows], rotation=60, ha="right", fontsize=8)
        ax.set(ylabel=label, title=f"{config.shape}, Fourier model: {label} per schedule")
        ax.legend(fontsize=8)
    save_figure(fig, output.figure("schedule_sweep.png"))


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    points = standardized(data.load_datasaurus(first_shape(config), args.data_dir))
    output.open()
    schedule = schedule_of(config)
    results = {"budget": output.budget, "config": config.to_dict(),
               "schedule": {"kind": config.schedule, "T": schedule.num_steps, "beta_min": config.beta_min,
                            "beta_max": config.beta_max, "alpha_bar_T": float(schedule.alpha_bars[-1]),
                            "alpha_bars": np.asarray(schedule.alpha_bars).tolist()},
               "mmd_bandwidth": MMD_BANDWIDTH, "num_points": int(points.shape[0])}
    forward_figures(points, schedule, config, output)
    if config.schedule_sweep:
        schedule_sweep(config, args, output, results)
    else:
        compare_denoisers(config, args, output, results)
    output.finish(results, write_report(results))


def distance_cell(scores, metric) -> str:
    return f"{scores[metric]:.4g} ± {scores[metric + '_std']:.2g}"


def order_verdict(results) -> str:
    expected = ["fourier", "linear_time", "no_time"]
    shapes = results["shapes"]
    lines = []
    for metric, label in (("mmd", "MMD²"), ("chamfer", "Chamfer")):
        held = [s for s in shapes if sorted(EMBEDDINGS, key=lambda v: shapes[s][v][metric]) == expected]
        best = [s for s in shapes if min(EMBEDDINGS, key=lambda v: shapes[s][v][metric]) == "fourier"]
        at_floor = [s for s in shapes if shapes[s]["fourier"][metric]
                    <= shapes[s]["data_floor"][metric] + shapes[s]["data_floor"][metric + "_std"]]
        lines.append(f"- {label}: the expected order fourier < linear_time < no_time holds on {len(held)} of "
                     f"{len(shapes)} shapes{' (' + ', '.join(held) + ')' if held else ''}; fourier is the closest "
                     f"on {len(best)} of {len(shapes)}; fourier is within one standard deviation of the floor (or "
                     f"below it) on {len(at_floor)} of {len(shapes)}"
                     f"{' (' + ', '.join(at_floor) + ')' if at_floor else ''}.")
    return "\n".join(lines)


def write_report(results) -> str:
    config, schedule = results["config"], results["schedule"]
    header = f"""# The 2-D DDPM study on the Datasaurus Dozen

Each shape's 142 points, standardized to zero mean and unit std. Schedule:
{describe_schedule(schedule['kind'], schedule['T'], schedule['beta_min'], schedule['beta_max'])} (ᾱ_T =
{schedule['alpha_bar_T']:.3g}). Budget: {results['budget']} ({config['epochs']} epochs ×
{config['steps_per_epoch']} Adam steps, batch {config['batch_size']}, lr {config['learning_rate']:g}, global-norm clip
{config['grad_clip_norm']:g}); the same seed ({config['seed']}), batches and noise for every model.
Fourier scale (std of B): {config['fourier_scale']:g}.

**How samples are scored.** The data are split at random into two disjoint halves of 71 points; half A is the
reference. The floor is half B against A: what fresh draws from the data's distribution score (not the same points,
so not 0). Each model is scored on as many of its samples as B holds, against the same A. This is repeated for
{config['num_samples']} // 71 splits, each with its own chunk of samples; the tables give mean ± std over the splits.
MMD² is the biased (V-statistic) squared kernel MMD with a Gaussian kernel of bandwidth {results['mmd_bandwidth']}
(standardized units); Chamfer is the mean nearest-neighbour distance from samples to reference plus that from
reference to samples. The models train on all 142 points, so a model that memorises them can score below the floor.

## Forward process

![data](data.png) ![alpha bar](alpha_bar.png)

![forward](forward_noising.png)

![schedules](alpha_bar_schedules.png)
"""
    if "schedule_sweep" in results:
        sweep = results["schedule_sweep"]
        rows = [[r["setting"], r["T"], r["beta_min"] if r["schedule"] == "linear" else "-",
                 r["beta_max"] if r["schedule"] == "linear" else "-", r["alpha_bar_T"], r["final_test_loss"],
                 distance_cell(r, "mmd"), distance_cell(r, "chamfer")] for r in sweep["settings"]]
        rows.append(["data floor (held-out half)", "", "", "", "", "", distance_cell(sweep["data_floor"], "mmd"),
                     distance_cell(sweep["data_floor"], "chamfer")])
        best = min(sweep["settings"], key=lambda r: r["mmd"])
        worst = max(sweep["settings"], key=lambda r: r["mmd"])
        best_chamfer = min(sweep["settings"], key=lambda r: r["chamfer"])
        worst_chamfer = max(sweep["settings"], key=lambda r: r["chamfer"])
        return header + f"""
## Schedule sweep: the Fourier denoiser on the {sweep['shape']} under each schedule

T is swept at β {BETA_MIN:g} → {BETA_MAX:g}; the β ranges at T = {NUM_STEPS}; the cosine schedule at T = {NUM_STEPS}.
The test ε-MSE is on each model's own schedule, so it is not comparable across settings; the sample distances are.

{markdown_table(["setting", "T", "β min", "β max", "ᾱ_T", "final test ε-MSE", f"MMD² (σ = {results['mmd_bandwidth']})",
                 "Chamfer"], rows)}

Closest on MMD²: {best['setting']} ({best['mmd']:.4g}); farthest: {worst['setting']} ({worst['mmd']:.4g}). Closest on
Chamfer: {best_chamfer['setting']} ({best_chamfer['chamfer']:.4g}); farthest: {worst_chamfer['setting']}
({worst_chamfer['chamfer']:.4g}). Where ᾱ_T is far from 0 the sampler starts from N(0, I), where the forward
process never arrives; where the last β is near 1 the first reverse step divides by √(1 − β_T) and multiplies
the network's error at t = T.

![sweep](schedule_sweep.png)

![sweep samples](schedule_sweep_samples.png)
"""
    shapes = results["shapes"]
    rows = {m: [[s] + [distance_cell(shapes[s][v], m) for v in EMBEDDINGS] + [distance_cell(shapes[s]["data_floor"], m)]
                for s in shapes] for m in ("mmd", "chamfer")}
    loss_rows = [[s] + [shapes[s][v]["final_test_loss"] for v in EMBEDDINGS] for s in shapes]
    first = next(iter(shapes))
    return header + f"""
## Reverse process: three denoisers on {', '.join(shapes)}

MMD² (σ = {results['mmd_bandwidth']}) to the reference half:

{markdown_table(["shape"] + list(EMBEDDINGS) + ["data floor"], rows['mmd'])}

Chamfer to the reference half:

{markdown_table(["shape"] + list(EMBEDDINGS) + ["data floor"], rows['chamfer'])}

Final test ε-MSE (a fixed set of (x₀, t, ε) triples per shape):

{markdown_table(["shape"] + list(EMBEDDINGS), loss_rows)}

{order_verdict(results)}

![samples](samples.png)

Test loss and reverse trajectories of the {first}:

![test loss](test_loss.png)

![trajectory](reverse_trajectory.png)
"""


def configure_process(argv) -> None:
    """How the study sets up JAX's CPU backend, before its first computation (benchmarks.dino does the
    same): the CPU split into CPU_DEVICES devices that train data-parallel, one thread each, and each
    computation on one thread, which runs these small ones faster. In a run of N processes (--num-processes)
    each process takes CPU_DEVICES / N of the devices, so that the run has as many as one process has; the
    computations keep their thread pools there, without which the processes cannot join."""
    flags = common.process_flags(argv)
    if not distributed.several_processes_asked(flags.num_processes, flags.distributed):
        cpu.run_each_computation_on_one_thread()
        cpu.split_into_devices(CPU_DEVICES)
    else:  # a launcher's count is not known here: one device per process
        cpu.split_into_devices(max(1, CPU_DEVICES // (flags.num_processes or CPU_DEVICES)))


if __name__ == "__main__":
    configure_process(sys.argv[1:])
    common.entry_point(main)
