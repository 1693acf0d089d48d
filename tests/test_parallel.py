"""jaxgen.parallel, and the dino study's data-parallel training run on 2 CPU devices against 1. Each probe
runs in a subprocess made of two forced CPU devices (a device count is fixed when JAX starts)."""
import json

import numpy as np
import pytest

from tests.probes import run_probe

PRIMITIVES_PROBE = """
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P
from jaxgen import parallel

mesh = jax.make_mesh((2,), ("d",))
on_devices = lambda f, out_specs: jax.jit(jax.shard_map(f, mesh=mesh, in_specs=P(), out_specs=out_specs))
x = jnp.arange(24.0).reshape(2, 12)
# Device i's slice, put back together along the sliced axis by out_specs.
slices = on_devices(lambda x: parallel.local_slice(x, "d", 1), P(None, "d"))(x)
# Each device's own tree (device i holds i + 1 and i * 10), summed over both.
own = lambda: {"a": (jax.lax.axis_index("d") + 1.0) * jnp.ones(3), "b": jax.lax.axis_index("d") * 10.0}
summed = on_devices(lambda: parallel.sum_over_devices(own(), "d"), P())()
array_by_array = on_devices(lambda: jax.lax.psum(own(), "d"), P())()
# d/dw of sum(w * this device's slice): each device's own, or, w not made per-device, summed over both.
gradient = lambda w, x: jax.grad(lambda w: jnp.sum(w * parallel.local_slice(x, "d", 0)))(w)
own_gradient = on_devices(lambda w, x: gradient(parallel.per_device(w, "d"), x)[None], P("d"))(jnp.ones(12), x)
summed_gradient = on_devices(lambda w, x: gradient(w, x), P())(jnp.ones(12), x)
listed = lambda tree: jax.tree.map(lambda v: np.asarray(v).tolist(), tree)
print(json.dumps(listed({"slices": slices, "summed": summed, "array_by_array": array_by_array,
                         "own_gradient": own_gradient, "summed_gradient": summed_gradient})))
"""

# The dino study's training run, a short one on synthetic points, on a mesh of 1 and of 2 devices.
STUDY_PROBE = """
import json
import jax, jax.numpy as jnp, numpy as np
from experiments import dino_diffusion as study
from jaxgen import ddpm
from jaxgen.models.diffusion import DenoisingMLP

points = np.random.default_rng(0).normal(size=(143, 2)).astype(np.float32)
budget = study.get_config().replace(epochs=3, steps_per_epoch=4, eval_repeats=1)
schedule = ddpm.linear_schedule(study.NUM_STEPS, study.BETA_MIN, study.BETA_MAX)
eval_set = study.fixed_eval_set(points, budget.eval_repeats, 0)  # 143 triples: 72 per device, one padded
model = DenoisingMLP("fourier", study.NUM_STEPS)
variables = model.init(jax.random.key(0), points[:1], jnp.ones((1,), jnp.int32))
runs = {}
for devices in (1, 2):
    mesh = jax.make_mesh((devices,), ("data",), devices=jax.devices()[:devices])
    program, inputs = study.training_program(model, variables, jnp.asarray(points), eval_set, schedule, budget, mesh)
    state, history = program(study.new_state(variables, budget, mesh), np.arange(budget.epochs, dtype=np.int32),
                             *inputs)
    runs[devices] = {"history": jax.tree.map(lambda v: np.asarray(v).tolist(), history),
                     "kernel": np.asarray(state.params["Dense_0"]["kernel"]).ravel()[:50].tolist()}
print(json.dumps({"devices": jax.device_count(), "runs": runs}))
"""


def _on_two_devices(code):
    return json.loads(run_probe(code, {}, xla_flags="--xla_force_host_platform_device_count=2")[-1])


def test_slices_sums_and_per_device_gradients():
    out = _on_two_devices(PRIMITIVES_PROBE)
    x = np.arange(24.0).reshape(2, 12)
    np.testing.assert_array_equal(out["slices"], x)  # device 0 took the first half, device 1 the second
    assert out["summed"] == out["array_by_array"] == {"a": [3.0, 3.0, 3.0], "b": 10.0}
    np.testing.assert_array_equal(out["own_gradient"], x)  # row i: device i's slice, not summed
    np.testing.assert_array_equal(out["summed_gradient"], x.sum(0))


def test_the_dino_run_on_two_devices_trains_as_on_one():
    out = _on_two_devices(STUDY_PROBE)
    one, two = out["runs"]["1"], out["runs"]["2"]
    assert len(one["history"]["train"]["loss"]) == 3
    # The same draws and model; only the order of the gradient sums differs, so float rounding.
    for split in ("train", "test"):
        np.testing.assert_allclose(two["history"][split]["loss"], one["history"][split]["loss"], rtol=1e-5)
    np.testing.assert_allclose(two["kernel"], one["kernel"], rtol=1e-4, atol=1e-6)


def test_a_batch_that_does_not_split_over_the_devices_is_refused():
    from experiments import dino_diffusion as study

    class Mesh:  # a stand-in: the check comes before any use of the devices
        axis_names, size = ("data",), 3

    with pytest.raises(ValueError, match="does not split over 3 devices"):
        study.epoch_program(None, 1, study.get_config("quick").batch_size, Mesh())
