import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import ddpm, metrics
from jaxgen.models.diffusion import DenoisingMLP, fourier_features


def test_schedule_known_values():
    schedule = ddpm.linear_schedule(50, 1e-4, 2e-2)
    assert schedule.num_steps == 50
    np.testing.assert_allclose(schedule.alpha_bars[0], 1.0)
    np.testing.assert_allclose(schedule.alpha_bars[1], 1 - 1e-4, rtol=1e-7)
    np.testing.assert_allclose(schedule.betas[50], 2e-2, rtol=1e-6)
    expected_final = np.prod(1 - np.linspace(1e-4, 2e-2, 50))
    np.testing.assert_allclose(schedule.alpha_bars[50], expected_final, rtol=1e-5)
    assert np.all(np.diff(np.asarray(schedule.alpha_bars)) < 0)  # strictly decreasing


def test_forward_noising_statistics():
    schedule = ddpm.linear_schedule(50, 1e-4, 2e-2)
    x0 = jnp.full((200_000, 2), 1.5)
    t = jnp.full((200_000,), 25)
    x_t = ddpm.q_sample(schedule, x0, t, jax.random.normal(jax.random.key(0), x0.shape))
    abar = float(schedule.alpha_bars[25])
    np.testing.assert_allclose(jnp.mean(x_t, 0), [1.5 * np.sqrt(abar)] * 2, atol=5e-3)
    np.testing.assert_allclose(jnp.std(x_t, 0), [np.sqrt(1 - abar)] * 2, rtol=1e-2)


def test_fourier_embedding_is_periodic_and_fixed():
    frequencies = jnp.array([[1.0, 0.0], [2.0, -3.0]])  # integer frequencies: period 1 in each coordinate
    x = jax.random.normal(jax.random.key(0), (5, 2))
    np.testing.assert_allclose(fourier_features(x, frequencies), fourier_features(x + 1.0, frequencies), atol=1e-4)
    chex.assert_shape(fourier_features(x, frequencies), (4, 5))  # feature-major
    model = DenoisingMLP("fourier", 50)
    variables = model.init(jax.random.key(1), x, jnp.ones((5,), jnp.int32))
    assert set(variables) == {"params", "constants"}  # B is not a trainable parameter
    chex.assert_shape(variables["constants"]["position_frequencies"], (64, 2))
    chex.assert_shape(variables["constants"]["time_frequencies"], (32, 1))
    grads = jax.grad(lambda v: jnp.sum(model.apply(v, x, jnp.full((5,), 7)) ** 2))(variables)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads["constants"]))
    assert any(float(jnp.abs(g).max()) > 0.0 for g in jax.tree.leaves(grads["params"]))


@pytest.mark.parametrize("embedding", ["no_time", "linear_time", "fourier"])
def test_denoiser_shapes_and_time_use(embedding):
    model = DenoisingMLP(embedding, 50)
    x = jax.random.normal(jax.random.key(0), (4, 2))
    variables = model.init(jax.random.key(1), x, jnp.ones((4,), jnp.int32))
    early, late = model.apply(variables, x, jnp.full((4,), 1)), model.apply(variables, x, jnp.full((4,), 50))
    chex.assert_shape(early, (4, 2))
    assert np.allclose(early, late) == (embedding == "no_time")  # only no_time ignores t


def test_sampler_with_a_perfect_oracle_returns_the_point_mass():
    schedule = ddpm.linear_schedule(50, 1e-4, 2e-2)
    point = jnp.array([0.7, -1.2])

    def oracle(x_t, t):  # the exact noise for data concentrated at `point`
        abar = schedule.alpha_bars[t][:, None]
        return (x_t - jnp.sqrt(abar) * point) / jnp.sqrt(1.0 - abar)

    x0, trajectory = ddpm.ancestral_sample(oracle, schedule, jax.random.key(0), (64, 2), return_trajectory=True)
    chex.assert_shape(trajectory, (51, 64, 2))
    np.testing.assert_allclose(x0, jnp.broadcast_to(point, (64, 2)), atol=1e-4)
    assert float(jnp.std(trajectory[0])) > 0.5  # it started from noise


def test_point_set_distances_on_known_sets():
    a = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(metrics.chamfer_distance(a, a), 0.0)
    np.testing.assert_allclose(metrics.chamfer_distance(a, a + jnp.array([0.0, 0.5])), 1.0, rtol=1e-6)
    np.testing.assert_allclose(metrics.gaussian_mmd(a, a, 0.3), 0.0, atol=1e-7)
    far = metrics.gaussian_mmd(a, a + 100.0, 0.3)  # disjoint sets: 2 * mean within-set kernel
    within = np.mean(np.exp(-np.array([[0, 1], [1, 0]]) / (2 * 0.09)))
    np.testing.assert_allclose(far, 2 * within, rtol=1e-5)
    assert float(metrics.gaussian_mmd(a, a + 0.1, 0.3)) < float(far)


def test_the_number_of_steps_sets_the_schedule_the_curve_and_the_sampler():
    short, long = ddpm.linear_schedule(10, 1e-4, 2e-2), ddpm.linear_schedule(200, 1e-4, 2e-2)
    assert (short.num_steps, long.num_steps) == (10, 200)
    chex.assert_shape([short.betas, short.alpha_bars], (11,))
    chex.assert_shape([long.betas, long.alpha_bars], (201,))
    # The same beta range over more steps destroys more signal: abar_T = prod(1 - beta_t).
    np.testing.assert_allclose(short.alpha_bars[-1], np.prod(1 - np.linspace(1e-4, 2e-2, 10)), rtol=1e-5)
    np.testing.assert_allclose(long.alpha_bars[-1], np.prod(1 - np.linspace(1e-4, 2e-2, 200)), rtol=1e-4)
    assert float(long.alpha_bars[-1]) < 0.2 < 0.9 < float(short.alpha_bars[-1])
    for schedule in (short, long):  # one network call per step: x_T and T more states
        steps_seen = []

        def oracle(x, t):
            jax.debug.callback(lambda t: steps_seen.append(int(t[0])), t)
            return jnp.zeros_like(x)

        _, trajectory = ddpm.ancestral_sample(oracle, schedule, jax.random.key(0), (3, 2), return_trajectory=True)
        jax.effects_barrier()
        chex.assert_shape(trajectory, (schedule.num_steps + 1, 3, 2))
        assert steps_seen == list(range(schedule.num_steps, 0, -1))


def test_cosine_schedule_known_values():
    schedule = ddpm.cosine_schedule(100)
    s = 0.008
    f = lambda t: np.cos((t / 100 + s) / (1 + s) * np.pi / 2) ** 2  # noqa: E731
    np.testing.assert_allclose(schedule.alpha_bars[1:60], [f(t) / f(0) for t in range(1, 60)], rtol=1e-5)
    assert float(schedule.betas[-1]) == pytest.approx(0.999)  # clipped, the unclipped last beta is 1
    assert float(schedule.alpha_bars[-1]) < 1e-4
    assert np.all(np.diff(np.asarray(schedule.alpha_bars)) < 0)
    assert float(schedule.alpha_bars[50]) == pytest.approx(0.5, abs=0.02)  # half the signal power at T / 2


def test_make_schedule_refuses_bad_flags_in_one_line():
    from jaxgen.errors import ConfigError

    assert ddpm.make_schedule("cosine", 25).num_steps == 25
    np.testing.assert_array_equal(ddpm.make_schedule("linear", 25, 1e-3, 1e-1).betas,
                                  ddpm.linear_schedule(25, 1e-3, 1e-1).betas)
    for bad, flag in ((lambda: ddpm.make_schedule("sigmoid", 50), "--schedule"),
                      (lambda: ddpm.linear_schedule(1), "--T"),
                      (lambda: ddpm.linear_schedule(50, 0.1, 0.01), "--beta-min"),
                      (lambda: ddpm.linear_schedule(50, 1e-4, 1.0), "--beta-max")):
        with pytest.raises(ConfigError, match=flag):
            bad()


def test_held_out_half_floor_is_met_by_fresh_draws_and_missed_by_a_wrong_shape():
    from jaxgen import point_sets

    rng = np.random.default_rng(0)
    circle = lambda n: np.c_[np.cos(a := rng.uniform(0, 2 * np.pi, n)), np.sin(a)]  # noqa: E731
    data = circle(142)
    reference, held_out = point_sets.split_half_splits(142, 5, 0)
    assert reference.shape == (5, 71) and held_out.shape == (5, 71)
    assert all(not set(r) & set(h) for r, h in zip(reference, held_out))  # disjoint halves
    fresh = point_sets.distances_to_held_out_half(circle(1000), data, 0.2)
    wrong = point_sets.distances_to_held_out_half(rng.normal(size=(1000, 2)), data, 0.2)
    assert fresh["splits"] == 14 and fresh["half_size"] == 71
    assert fresh["floor"] == wrong["floor"]  # the floor depends on the data and the seed only
    assert fresh["floor"]["chamfer"] > 0.05  # not the same points: no zero by construction
    for metric in ("mmd", "chamfer"):
        assert abs(fresh["model"][metric] - fresh["floor"][metric]) < 3 * fresh["floor"][f"{metric}_std"]
        assert wrong["model"][metric] > fresh["floor"][metric] + 3 * fresh["floor"][f"{metric}_std"]
