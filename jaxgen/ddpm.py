"""Denoising diffusion (Ho et al. 2020): noise schedules (linear, cosine), noising, loss and ancestral sampling."""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError

SCHEDULES = ("linear", "cosine")


class Schedule(NamedTuple):
    betas: jnp.ndarray  # (T + 1,), index 0 unused (beta_0 = 0) so that betas[t] is beta_t
    alphas: jnp.ndarray  # 1 - beta_t
    alpha_bars: jnp.ndarray  # prod_{s<=t} alpha_s; alpha_bars[0] = 1

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0] - 1


def _from_betas(betas) -> Schedule:
    betas = jnp.concatenate([jnp.zeros(1), jnp.asarray(betas, jnp.float32)])
    alphas = 1.0 - betas
    return Schedule(betas, alphas, jnp.cumprod(alphas))


def linear_schedule(num_steps: int = 50, beta_min: float = 1e-4, beta_max: float = 2e-2) -> Schedule:
    """beta_t rising linearly from beta_min (t = 1) to beta_max (t = T), as in Ho et al. 2020."""
    if num_steps < 2:
        raise ConfigError(f"--T must be at least 2, not {num_steps}")
    if not 0.0 < beta_min <= beta_max < 1.0:
        raise ConfigError(f"--beta-min {beta_min:g} and --beta-max {beta_max:g} must satisfy "
                          "0 < beta-min <= beta-max < 1")
    return _from_betas(jnp.linspace(beta_min, beta_max, num_steps))


def cosine_schedule(num_steps: int = 50, offset: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal 2021: abar_t = f(t) / f(0), f(t) = cos^2((t / T + s) / (1 + s) * pi / 2), s = `offset`;
    beta_t = 1 - abar_t / abar_{t-1}, clipped at `max_beta` (the last steps would otherwise reach 1)."""
    if num_steps < 2:
        raise ConfigError(f"--T must be at least 2, not {num_steps}")
    f = [math.cos((t / num_steps + offset) / (1 + offset) * math.pi / 2) ** 2 for t in range(num_steps + 1)]
    betas = [min(1.0 - f[t] / f[t - 1], max_beta) for t in range(1, num_steps + 1)]
    return _from_betas(betas)


def make_schedule(kind: str, num_steps: int, beta_min: float = 1e-4, beta_max: float = 2e-2) -> Schedule:
    """The schedule a study's flags name; the cosine schedule has no beta range of its own."""
    if kind == "linear":
        return linear_schedule(num_steps, beta_min, beta_max)
    if kind == "cosine":
        return cosine_schedule(num_steps)
    raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULES)}, not {kind!r}")


def q_sample(schedule: Schedule, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, for integer t of shape (B,)."""
    abar = schedule.alpha_bars[t][:, None]
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def epsilon_loss(predict_noise: Callable, schedule: Schedule, x0, t, noise):
    """Per-example squared error of the predicted noise (the 'simple' DDPM loss)."""
    predicted = predict_noise(q_sample(schedule, x0, t, noise), t)
    return jnp.mean(jnp.square(predicted - noise), axis=-1)


def ancestral_sample(predict_noise: Callable, schedule: Schedule, rng, shape, return_trajectory: bool = False):
    """x_T ~ N(0, I); x_{t-1} = mu_t(x_t, eps) + sigma_t z with sigma_t = sqrt(beta_t), no noise at t = 1.

    mu_t = (x_t - beta_t / sqrt(1 - abar_t) * eps_theta(x_t, t)) / sqrt(alpha_t).
    Returns x_0, and with `return_trajectory` the stack (T + 1, ...) of x_T ... x_0.
    """
    init_rng, loop_rng = jax.random.split(rng)
    x_T = jax.random.normal(init_rng, shape)

    def step(x, t):
        eps = predict_noise(x, jnp.full((shape[0],), t))
        mean = (x - schedule.betas[t] / jnp.sqrt(1.0 - schedule.alpha_bars[t]) * eps) / jnp.sqrt(schedule.alphas[t])
        z = jax.random.normal(jax.random.fold_in(loop_rng, t), shape)
        x = mean + jnp.where(t > 1, jnp.sqrt(schedule.betas[t]), 0.0) * z
        return x, x

    x0, trajectory = jax.lax.scan(step, x_T, jnp.arange(schedule.num_steps, 0, -1))
    if return_trajectory:
        return x0, jnp.concatenate([x_T[None], trajectory])
    return x0
