import contextlib
import re

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.models.autoencoders import MLPVAE, MnistConvVAE
from jaxgen.models.classifiers import DigitCNN
from jaxgen.models import diffusion, layers
from jaxgen.models.diffusion import DenoisingMLP
from jaxgen.models.layers import Conv3x3, DownConv, UpConv, sin_cos


def n_params(params):
    return sum(x.size for x in jax.tree.leaves(params))


@pytest.mark.parametrize("model, latent", [(MLPVAE((100, 100), 20), 20), (MLPVAE((300, 300), 2), 2),
                                           (MnistConvVAE(20), 20)])
def test_vae_shapes(model, latent):
    x = jnp.zeros((3, 28, 28, 1))
    params = model.init(jax.random.key(0), x, jax.random.key(1))
    logits, mean, logvar = model.apply(params, x, jax.random.key(2))
    chex.assert_shape(logits, (3, 28, 28, 1))
    chex.assert_shape([mean, logvar], (3, latent))
    chex.assert_shape(model.apply(params, jnp.zeros((5, latent)), method=model.decode), (5, 28, 28, 1))


def test_conv_vae_parameter_count_is_pinned():
    params = MnistConvVAE(20).init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), jax.random.key(1))
    assert n_params(params) == 1_749_481


def test_mlp_vae_parameter_count():
    params = MLPVAE((300, 300), 20).init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), jax.random.key(1))
    # 784*300+300 + 300*300+300 + 2*(300*20+20) | 20*300+300 + 300*300+300 + 300*784+784
    assert n_params(params) == 670_424


def test_classifier_shapes():
    model = DigitCNN()
    params = model.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)))
    chex.assert_shape(model.apply(params, jnp.zeros((4, 28, 28, 1))), (4, 10))


@pytest.mark.parametrize("c_in, c_out, size", [(64, 32, 7), (32, 1, 14), (3, 5, 4)])
def test_upconv_equals_transposed_convolution(c_in, c_out, size):
    """The parity formulation gives the same outputs, and its gradients through `downconv` (both of
    its ways: space-to-depth + matmul for c_out = 1, XLA's convolution for 32 and 5) the same
    gradients as nn.ConvTranspose (compared in float64, so float32 summation order cannot hide or
    fake a difference)."""
    reference = nn.ConvTranspose(c_out, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
    _compare_layers(reference, UpConv(c_out), c_in, size, (2 * size, 2 * size, c_out))


@pytest.mark.parametrize("c_in, c_out, size", [(3, 32, 8), (1, 4, 6), (4, 3, 4), (32, 8, 6), (16, 8, 10), (3, 5, 7)])
def test_downconv_equals_strided_convolution(c_in, c_out, size):
    """Both ways of DownConv (space-to-depth + matmul for <= 4 channels and even sizes; XLA's
    convolution for (32, 8, 6), (16, 8, 10) and the odd size 7), and its input gradient through
    UpConv (even sizes, also with an odd output: 10 -> 5), equal nn.Conv(4x4, stride 2, padding 1)."""
    reference = nn.Conv(c_out, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
    _compare_layers(reference, DownConv(c_out), c_in, size, (size // 2, size // 2, c_out))


@pytest.mark.parametrize("c_in, c_out, size", [(16, 4, 5), (4, 16, 6)])
def test_conv3x3_equals_flax_conv(c_in, c_out, size):
    """Both forms of Conv3x3 (matmul and shifted tap sums when narrowing, (16, 4, 5) forward and
    (4, 16, 6)'s input gradient; XLA's convolution when widening) and both kernel gradients (the
    hand-written one of a narrowing layer; XLA's for a widening one) equal nn.Conv(3x3)'s."""
    _compare_layers(nn.Conv(c_out, (3, 3)), Conv3x3(c_out), c_in, size, (size, size, c_out))


@contextlib.contextmanager
def float64():
    """64-bit floats while it lasts (jax.enable_x64's context manager is not in every jax the package admits)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def _compare_layers(reference, fast, c_in, size, out_shape):
    with float64():
        x = jax.random.normal(jax.random.key(0), (2, size, size, c_in), jnp.float64)
        params = reference.init(jax.random.key(1), x)
        params = jax.tree.map(lambda p: p.astype(jnp.float64) + 0.1 * jax.random.normal(jax.random.key(2), p.shape, jnp.float64),
                              params)  # non-zero bias
        assert jax.tree.map(jnp.shape, fast.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, params)
        expected, got = reference.apply(params, x), fast.apply(params, x)
        chex.assert_shape(got, (2,) + out_shape)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)

        def loss(module):
            return lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))
        grads_expected = jax.grad(loss(reference), argnums=(0, 1))(params, x)
        grads_got = jax.grad(loss(fast), argnums=(0, 1))(params, x)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), grads_got, grads_expected)


def test_computed_once_is_the_identity_bit_for_bit():
    # (Subnormal numbers are not among them: XLA:CPU's arithmetic flushes them to zero, x * 1 included.)
    x = np.asarray([0.0, -0.0, 1.2e-38, -3.5, 1.0, 3e38, -7.25, 0.1], np.float32)
    got = np.asarray(jax.jit(layers.computed_once)(x))
    np.testing.assert_array_equal(got.view(np.uint32), x.view(np.uint32))


class ReluStack(nn.Module):
    """Every place the layers use `computed_once`: a widening Conv3x3, DownConv and UpConv after a ReLU."""
    @nn.compact
    def __call__(self, x):
        h = nn.relu(Conv3x3(8)(x))
        h = nn.relu(DownConv(16)(h))
        return UpConv(3)(nn.relu(UpConv(8)(h)))


def _transposes_fused_with_a_relu(hlo: str) -> int:
    """Fused computations whose result is a layout transpose (a copy of a transpose) with a ReLU inside."""
    computations = hlo.split("\n\n")
    return sum(re.search(r"ROOT \S+ = \S+ copy\(%transpose", c) is not None and " maximum(" in c for c in computations)


def test_computed_once_keeps_relus_out_of_transposes_and_changes_no_bit(monkeypatch):
    """XLA's kernel-gradient convolutions read a layer's input in another layout; with `computed_once` the
    transpose reads the ReLU's output instead of recomputing bias and ReLU inside it (a fused transpose
    is ~6x slower on XLA:CPU), and the gradients are bit for bit those of the plain form."""
    model, x = ReluStack(), jax.random.normal(jax.random.key(0), (4, 16, 16, 3))
    params = model.init(jax.random.key(1), x)

    def compiled_gradient():
        grad = jax.jit(jax.grad(lambda p: jnp.sum(jnp.sin(model.apply(p, x)))))
        return grad(params), grad.lower(params).compile().as_text()

    fast, fast_hlo = compiled_gradient()
    monkeypatch.setattr(layers, "computed_once", lambda h: h)
    plain, plain_hlo = compiled_gradient()
    assert _transposes_fused_with_a_relu(plain_hlo) > 0  # what computed_once is there to prevent
    assert _transposes_fused_with_a_relu(fast_hlo) == 0
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32)),
                 fast, plain)


def test_sin_cos_equals_jnp_sin_and_cos():
    theta = jnp.concatenate([jnp.linspace(-1e4, 1e4, 200_001, dtype=jnp.float32),
                             jnp.asarray([0.0, np.pi / 4, np.pi / 2, -np.pi, 3 * np.pi / 4], jnp.float32)])
    sin, cos = jax.jit(sin_cos)(theta)
    np.testing.assert_allclose(sin, jnp.sin(theta), atol=2e-7)
    np.testing.assert_allclose(cos, jnp.cos(theta), atol=2e-7)
    # Gradients: d sin = cos, d cos = -sin (the range reduction's rounding has zero derivative).
    d_sin = jax.vmap(jax.grad(lambda x: sin_cos(x)[0]))(theta[:1000])
    d_cos = jax.vmap(jax.grad(lambda x: sin_cos(x)[1]))(theta[:1000])
    np.testing.assert_allclose(d_sin, jnp.cos(theta[:1000]), atol=1e-5)
    np.testing.assert_allclose(d_cos, -jnp.sin(theta[:1000]), atol=1e-5)


class PlainDenoisingMLP(nn.Module):
    """DenoisingMLP written the plain way: batch-major nn.Dense, jnp.sin / jnp.cos, t~ computed per example."""
    embedding: str
    num_steps: int = 50
    fourier_scale: float = 3.0

    @nn.compact
    def __call__(self, x, t):
        def features(u, frequencies):
            projected = 2.0 * jnp.pi * u @ frequencies.T
            return jnp.concatenate([jnp.cos(projected), jnp.sin(projected)], axis=-1)

        t_scaled = ((t.astype(jnp.float32) - 1.0) / (self.num_steps - 1))[:, None]
        if self.embedding == "fourier":
            b_pos = self.variable("constants", "position_frequencies",
                                  lambda: self.fourier_scale * jax.random.normal(self.make_rng("params"), (64, 2))).value
            b_time = self.variable("constants", "time_frequencies",
                                   lambda: self.fourier_scale * jax.random.normal(self.make_rng("params"), (32, 1))).value
            h = jnp.concatenate([features(x, b_pos), features(t_scaled, b_time)], axis=-1)
        else:
            h = jnp.concatenate([x, t_scaled if self.embedding == "linear_time" else 0 * t_scaled], axis=-1)
        for _ in range(3):
            h = nn.relu(nn.Dense(64)(h))
        return nn.Dense(2)(h)


@pytest.mark.parametrize("embedding", diffusion.EMBEDDINGS)
def test_denoiser_equals_the_plain_batch_major_network(embedding):
    """The feature-major layout, the time-feature table and layers.sin_cos change nothing but speed: the
    same parameters (names, shapes, init) give the same outputs and gradients."""
    model, plain = DenoisingMLP(embedding, 50, fourier_scale=3.0), PlainDenoisingMLP(embedding)
    x = jax.random.normal(jax.random.key(1), (64, 2)) * 2
    t = jax.random.randint(jax.random.key(2), (64,), 1, 51)
    variables = model.init(jax.random.key(0), x, t)
    chex.assert_trees_all_equal(variables, plain.init(jax.random.key(0), x, t))

    def output_and_grads(network):
        def loss(params):
            return jnp.sum(jnp.sin(network.apply({**variables, "params": params}, x, t)))
        return network.apply(variables, x, t), jax.grad(loss)(variables["params"])

    fast, reference = output_and_grads(model), output_and_grads(plain)
    chex.assert_shape(fast[0], (64, 2))
    assert float(jnp.abs(reference[0]).max()) > 0.1
    chex.assert_trees_all_close(fast, reference, atol=1e-5, rtol=1e-5)
