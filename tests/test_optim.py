import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen.optim import clipped_adam


def _params():
    keys = jax.random.split(jax.random.key(0), 3)
    return {"dense": {"kernel": jax.random.normal(keys[0], (12, 5)), "bias": jnp.zeros(5)},
            "out": jax.random.normal(keys[1], (5, 2))}


def _run(tx, params, grads_per_step):
    state = tx.init(params)
    for grads in grads_per_step:
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipping on most steps / never
def test_clipped_adam_equals_optax_clip_then_adam(max_norm):
    params = _params()
    rng = np.random.default_rng(0)
    # Gradient norms from ~0.03 to ~30, so with max_norm 0.5 some steps clip and some do not.
    grads = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape) * 10.0 ** rng.uniform(-2, 1), jnp.float32),
                          params) for _ in range(40)]
    reference = optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(1e-2))
    expected, expected_state = _run(reference, params, grads)
    got, state = _run(clipped_adam(1e-2, max_norm), params, grads)
    chex.assert_trees_all_close(got, expected, atol=1e-6, rtol=1e-5)
    adam_state = expected_state[1][0]
    chex.assert_trees_all_close(state.mu, adam_state.mu, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(state.nu, adam_state.nu, rtol=1e-5, atol=1e-9)
    assert int(state.count) == 40
    # The parameters moved by far more than the tolerance: the comparison above is not vacuous.
    assert float(jnp.abs(got["out"] - params["out"]).max()) > 0.1


def test_clipped_adam_first_step_is_the_clipped_sign_step():
    # Adam's first step is -lr * g / (|g| + eps) elementwise, whatever clipping scaled g by.
    params = {"w": jnp.zeros(4)}
    grads = {"w": jnp.array([3.0, -4.0, 0.0, 1e-3])}
    tx = clipped_adam(0.1, max_norm=1.0)
    updates, _ = tx.update(grads, tx.init(params))
    np.testing.assert_allclose(updates["w"], [-0.1, 0.1, 0.0, -0.1 * 2e-4 / (2e-4 + 1e-8)], rtol=1e-5)


def test_clipped_adam_zero_gradients_leave_parameters_unchanged():
    params = _params()
    zeros = jax.tree.map(jnp.zeros_like, params)
    got, _ = _run(clipped_adam(1e-2, 1.0), params, [zeros] * 3)
    chex.assert_trees_all_equal(got, params)
