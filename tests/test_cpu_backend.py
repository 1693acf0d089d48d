"""jaxgen's import-time XLA:CPU setting: convolutions on XLA's own kernels, matmuls on YNNPACK."""
import os
import subprocess
import sys

PROBE = """
import jaxgen, jax, jax.numpy as jnp, os
x, k, w = jnp.ones((8, 32, 32, 32)), jnp.ones((3, 3, 32, 32)), jnp.ones((256, 256))
conv = jax.jit(lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
dot = jax.jit(lambda w: w @ w)
print(os.environ["XLA_FLAGS"])
print("conv-ynn" if "__ynn_fusion" in conv.lower(x, k).compile().as_text() else "conv-xla")
print("dot-ynn" if "__ynn_fusion" in dot.lower(w).compile().as_text() else "dot-xla")
"""


def _probe(xla_flags):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()


def test_importing_jaxgen_moves_convolutions_off_ynnpack_and_keeps_user_flags():
    flags, conv, dot = _probe("--xla_force_host_platform_device_count=2")
    assert flags.startswith("--xla_force_host_platform_device_count=2 ")  # the user's flags are kept
    assert (conv, dot) == ("conv-xla", "dot-ynn")


def test_a_user_setting_of_the_ynn_flag_wins():
    flags, conv, dot = _probe("--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution,reduce")
    assert flags == "--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution,reduce"
    assert (conv, dot) == ("conv-ynn", "dot-ynn")
