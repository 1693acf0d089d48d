"""Denoising diffusion (Ho et al. 2020) with a linear beta schedule: noising, loss and ancestral sampling."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class Schedule(NamedTuple):
    betas: jnp.ndarray  # (T + 1,), index 0 unused (beta_0 = 0) so that betas[t] is beta_t
    alphas: jnp.ndarray  # 1 - beta_t
    alpha_bars: jnp.ndarray  # prod_{s<=t} alpha_s; alpha_bars[0] = 1

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0] - 1


def linear_schedule(num_steps: int = 50, beta_min: float = 1e-4, beta_max: float = 2e-2) -> Schedule:
    betas = jnp.concatenate([jnp.zeros(1), jnp.linspace(beta_min, beta_max, num_steps)])
    alphas = 1.0 - betas
    return Schedule(betas, alphas, jnp.cumprod(alphas))


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
