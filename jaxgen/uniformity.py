"""How uniformly codes fill the unit cube [0, 1]^d: a differentiable regulariser and diagnostics.

The regulariser is the sliced squared 2-Wasserstein distance to Uniform[0, 1]^d,
    SW2^2(P, U) = E_theta [ W2^2(theta#P, theta#U) ],  theta uniform on the sphere,
and in one dimension W2^2 between two equal-size samples is the mean squared difference of
their sorted values. So for a batch of n codes: draw K directions and n uniform points, project
both, sort, and average the squared differences. It is zero in expectation only when every 1-D
projection of the code distribution matches the uniform one (Cramer-Wold), it needs no critic
network, and its gradient moves each code towards the uniform sample of the same rank: clustered
codes are pushed apart, into the empty parts of the cube.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats


def random_directions(rng, num: int, dim: int):
    directions = jax.random.normal(rng, (num, dim))
    return directions / jnp.linalg.norm(directions, axis=1, keepdims=True)


def sliced_wasserstein_to_uniform(rng, codes, num_projections: int = 64):
    """Monte Carlo estimate of SW2^2 between the batch `codes` (n, d) and Uniform[0, 1]^d."""
    direction_rng, sample_rng = jax.random.split(rng)
    directions = random_directions(direction_rng, num_projections, codes.shape[1])
    uniform = jax.random.uniform(sample_rng, codes.shape, codes.dtype)
    projected_codes = jnp.sort(codes @ directions.T, axis=0)
    projected_uniform = jnp.sort(uniform @ directions.T, axis=0)
    return jnp.mean((projected_codes - projected_uniform) ** 2)


def uniformity_report(codes: np.ndarray, seed: int = 0, num_uniform: int = 2000) -> dict:
    """Diagnostics of codes (n, d) against Uniform[0, 1]^d.

    - ks_per_dim: Kolmogorov-Smirnov statistic of each coordinate against U[0, 1] (0 = uniform
      marginal, 1 = a point mass); ks_mean is their mean.
    - sliced_w2_joint: SW2^2 to the uniform cube over 500 fixed random directions (joint).
    - mmd_joint: squared MMD to 2,000 uniform points, Gaussian kernel of bandwidth 0.2 * sqrt(d).
    - occupied_orthants: fraction of the 2^d half-cube cells (each coordinate < or >= 0.5) that
      hold at least one code, against the fraction that as many uniform points would occupy.
    """
    from jaxgen.metrics import gaussian_mmd

    codes = np.asarray(codes, np.float64)
    n, d = codes.shape
    rng = np.random.default_rng(seed)
    ks = [float(stats.kstest(codes[:, i], "uniform").statistic) for i in range(d)]
    uniform = rng.random((num_uniform, d))
    directions = rng.normal(size=(500, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    reference = rng.random((n, d))
    sliced = np.mean((np.sort(codes @ directions.T, 0) - np.sort(reference @ directions.T, 0)) ** 2)
    mmd = float(gaussian_mmd(jnp.asarray(codes, jnp.float32), jnp.asarray(uniform, jnp.float32), 0.2 * np.sqrt(d)))
    cells = lambda x: len({tuple(row) for row in (x >= 0.5).astype(np.int8)})  # noqa: E731
    return {"ks_per_dim": ks, "ks_mean": float(np.mean(ks)), "sliced_w2_joint": float(sliced), "mmd_joint": mmd,
            "occupied_orthants": cells(codes) / 2 ** d, "occupied_orthants_uniform": cells(reference) / 2 ** d}
