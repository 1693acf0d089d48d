"""StyleGAN2 generator and converters.

The reference is NVIDIA's stylegan2-ada-pytorch code as vendored by the `draggan` package
(`pip install --no-deps draggan==1.1.6`, with torch); those tests skip without it."""
import functools
import pickle
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import WeightsError
from jaxgen.stylegan.convert import convert
from jaxgen.stylegan.convert.__main__ import main
from jaxgen.stylegan.convert.official import read_release_pickle
from jaxgen.stylegan.generator import (FIR_TAPS, StyleGAN2Config, StyleGAN2Generator, conv2d, load_generator,
                                       modulated_conv2d, upfirdn2d, variable_shapes)

# 32 px, channels 32, 32, 16, 8 at 4, 8, 16, 32 px, num_ws 8: a few seconds to compile.
TINY = StyleGAN2Config(z_dim=32, w_dim=32, img_resolution=32, channel_base=256, channel_max=32)
# Low enough that some activations hit it, so clamping is compared too.
CONV_CLAMP = 1.0
TOLERANCE = 1e-4


@functools.partial(jax.jit, static_argnames=("module", "method", "truncation_cutoff", "noise_mode"))
def jax_apply(variables, inputs, module, method="__call__", **kwargs):
    return module.apply(variables, inputs, method=method, **kwargs)


def random_variables(config, seed=0):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32), variable_shapes(config))


def max_abs_difference(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# ----------------------------------------------------------------------------- pure JAX

def depthwise_upfirdn2d(x, up, pad, gain):
    """upfirdn2d as one depthwise convolution with the 2-D [1,3,3,1] filter (the plain form)."""
    before, after = pad
    spatial = (before, after + up - 1, up - 1)
    x = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), spatial, spatial, (0, 0, 0)))
    fir = np.outer(FIR_TAPS, FIR_TAPS)
    kernel = np.tile((fir / fir.sum() * gain)[:, :, None, None], (1, 1, 1, x.shape[-1])).astype(np.float32)
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=x.shape[-1])


@pytest.mark.parametrize("up, pad, gain", [(2, (2, 1), 4.0), (1, (1, 1), 4.0), (1, (0, -1), 1.0)])
def test_separable_upfirdn2d_equals_the_depthwise_convolution(up, pad, gain):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 9, 5)), jnp.float32)
    probe = jnp.asarray(np.random.default_rng(1).normal(size=upfirdn2d(x, up, pad, gain).shape), jnp.float32)
    np.testing.assert_allclose(upfirdn2d(x, up, pad, gain), depthwise_upfirdn2d(x, up, pad, gain), atol=1e-5)
    gradients = [jax.grad(lambda x: jnp.sum(f(x, up, pad, gain) * probe))(x) for f in (upfirdn2d, depthwise_upfirdn2d)]
    np.testing.assert_allclose(*gradients, atol=1e-5)


@pytest.mark.parametrize("up, demodulate", [(1, True), (1, False), (2, True)])
def test_fused_modulated_conv_matches_per_sample_convolutions(up, demodulate):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 6, 5)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 5, 4)).astype(np.float32)
    styles = rng.normal(size=(3, 5)).astype(np.float32)
    expected = []
    for sample, style in zip(x, styles):
        weights = kernel * style[None, None, :, None]
        if demodulate:
            weights = weights / np.sqrt(np.sum(weights ** 2, axis=(0, 1, 2)) + 1e-8)
        if up == 1:  # an ordinary convolution, independent of the library
            y = jax.lax.conv_general_dilated(sample[None], weights, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        else:  # the up-sampling arithmetic itself is checked against the official code below
            y = conv2d(sample[None], weights, up=2)
        expected.append(y[0])
    for fused in (True, False):
        result = modulated_conv2d(x, kernel, styles, demodulate=demodulate, up=up, fused=fused)
        assert result.shape == (3, 6 * up, 6 * up, 4)
        assert max_abs_difference(result, np.stack(expected)) < 1e-4


def test_truncation_with_psi_zero_returns_w_avg():
    module, variables = StyleGAN2Generator(TINY), random_variables(TINY)
    w_avg = variables["buffers"]["mapping"]["w_avg"]
    z = jax.random.normal(jax.random.key(1), (5, TINY.z_dim))
    ws = jax_apply(variables, z, module, "mapping", truncation_psi=0.0)
    np.testing.assert_allclose(ws, np.broadcast_to(w_avg, ws.shape), atol=1e-6)
    untruncated = jax_apply(variables, z, module, "mapping", truncation_psi=1.0)
    cut = jax_apply(variables, z, module, "mapping", truncation_psi=0.0, truncation_cutoff=3)
    np.testing.assert_allclose(cut[:, :3], ws[:, :3], atol=1e-6)
    np.testing.assert_allclose(cut[:, 3:], untruncated[:, 3:], atol=1e-6)
    assert max_abs_difference(untruncated, ws) > 0.1


def test_generator_accepts_w_and_w_plus_and_random_noise():
    module, variables = StyleGAN2Generator(TINY), random_variables(TINY)
    w = jax.random.normal(jax.random.key(2), (2, TINY.w_dim))
    image = jax_apply(variables, w, module, "synthesis")
    assert image.shape == (2, 32, 32, 3) and module.num_ws == TINY.num_ws == 8
    w_plus = jnp.repeat(w[:, None], TINY.num_ws, axis=1)
    np.testing.assert_array_equal(jax_apply(variables, w_plus, module, "synthesis"), image)
    noisy = [jax_apply(variables, w, module, "synthesis", noise_mode="random", rngs={"noise": jax.random.key(k)})
             for k in (0, 1)]
    assert max_abs_difference(*noisy) > 1e-3
    assert StyleGAN2Config.from_dict(TINY.to_dict()) == TINY


def test_restricted_unpickler_never_runs_pickled_code(tmp_path):
    target = tmp_path / "written_by_the_pickle.txt"

    class RunsCodeWhenUnpickled:
        def __reduce__(self):
            return Path.write_text, (target, "pwned")

    source = tmp_path / "evil.pkl"
    source.write_bytes(pickle.dumps({"G_ema": RunsCodeWhenUnpickled()}))
    assert "G_ema" in read_release_pickle(source)
    with pytest.raises(WeightsError, match="not a StyleGAN generator"):
        convert(source, tmp_path / "out")
    assert not target.exists()


# ----------------------------------------------------------------------------- official code

@pytest.fixture(scope="module")
def official_networks():
    """NVIDIA's `training.networks` from draggan's vendored copy, without importing draggan."""
    pytest.importorskip("torch")
    from benchmarks.torch_models import official_stylegan2_networks
    try:
        return official_stylegan2_networks()
    except ModuleNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def official_generator(official_networks):
    import torch
    from benchmarks.torch_models import official_stylegan2_generator
    generator = official_stylegan2_generator(StyleGAN2Config(**{**TINY.to_dict(), "conv_clamp": CONV_CLAMP}), seed=0)
    with torch.no_grad():  # biases, noise strengths and w_avg start at constants: make them matter
        for name, parameter in generator.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                parameter.add_(0.5 * torch.randn_like(parameter))
        generator.mapping.w_avg.copy_(torch.randn(TINY.w_dim))
    return generator.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def converted_official(official_generator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("official")
    with open(folder / "network.pkl", "wb") as file:  # exactly as the official releases are written
        pickle.dump({"G_ema": official_generator}, file)
    sources_run_before = [name for name in sys.modules if name.startswith("_imported_module_")]
    config = convert(folder / "network.pkl", folder / "flax")
    assert [name for name in sys.modules if name.startswith("_imported_module_")] == sources_run_before
    assert config == StyleGAN2Config(**{**TINY.to_dict(), "conv_clamp": CONV_CLAMP})
    return load_generator(folder / "flax")


def torch_images(images):
    return images.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("psi, cutoff", [(1.0, None), (0.7, None), (0.7, 3)])
def test_official_pickle_from_z(official_generator, converted_official, psi, cutoff):
    import torch
    module, variables = converted_official
    z = np.random.default_rng(3).normal(size=(4, TINY.z_dim)).astype(np.float32)
    expected = official_generator(torch.from_numpy(z), None, truncation_psi=psi, truncation_cutoff=cutoff,
                                  noise_mode="const")
    result = jax_apply(variables, z, module, truncation_psi=psi, truncation_cutoff=cutoff)
    assert np.std(result) > 0.1
    assert max_abs_difference(result, torch_images(expected)) < TOLERANCE


def test_official_pickle_from_w_and_w_plus(official_generator, converted_official):
    import torch
    module, variables = converted_official
    z = torch.from_numpy(np.random.default_rng(4).normal(size=(3, TINY.z_dim)).astype(np.float32))
    ws = official_generator.mapping(z, None)
    expected = official_generator.synthesis(ws, noise_mode="const")
    result = jax_apply(variables, ws[:, 0].numpy(), module, "synthesis")
    assert max_abs_difference(result, torch_images(expected)) < TOLERANCE

    w_plus = ws + 0.5 * torch.randn(ws.shape, generator=torch.Generator().manual_seed(5))
    for noise_mode in ("const", "none"):
        expected = official_generator.synthesis(w_plus, noise_mode=noise_mode)
        result = jax_apply(variables, w_plus.numpy(), module, "synthesis", noise_mode=noise_mode)
        assert max_abs_difference(result, torch_images(expected)) < TOLERANCE


# ----------------------------------------------------------------------------- rosinality checkpoints

def rosinality_layout(official: dict) -> dict:
    """An official state dict under rosinality stylegan2-pytorch's names and shapes."""
    state = {"input.input": official["synthesis.b4.const"][None]}
    blur = official["synthesis.b8.resample_filter"] * 4

    def styled_conv(name, layer, upsample=False):
        state[f"{name}.conv.weight"] = official[f"{layer}.weight"][None]
        state[f"{name}.conv.modulation.weight"] = official[f"{layer}.affine.weight"]
        state[f"{name}.conv.modulation.bias"] = official[f"{layer}.affine.bias"]
        state[f"{name}.noise.weight"] = official[f"{layer}.noise_strength"].reshape(1)
        state[f"{name}.activate.bias"] = official[f"{layer}.bias"]
        if upsample:
            state[f"{name}.conv.blur.kernel"] = blur

    def to_rgb(name, layer, upsample=True):
        state[f"{name}.conv.weight"] = official[f"{layer}.weight"][None]
        state[f"{name}.conv.modulation.weight"] = official[f"{layer}.affine.weight"]
        state[f"{name}.conv.modulation.bias"] = official[f"{layer}.affine.bias"]
        state[f"{name}.bias"] = official[f"{layer}.bias"].reshape(1, -1, 1, 1)
        if upsample:
            state[f"{name}.upsample.kernel"] = blur

    for i in range(TINY.mapping_layers):
        state[f"style.{i + 1}.weight"] = official[f"mapping.fc{i}.weight"]
        state[f"style.{i + 1}.bias"] = official[f"mapping.fc{i}.bias"]
    styled_conv("conv1", "synthesis.b4.conv1")
    to_rgb("to_rgb1", "synthesis.b4.torgb", upsample=False)
    noises = [official["synthesis.b4.conv1.noise_const"]]
    for j, res in enumerate(TINY.block_resolutions[1:]):
        styled_conv(f"convs.{2 * j}", f"synthesis.b{res}.conv0", upsample=True)
        styled_conv(f"convs.{2 * j + 1}", f"synthesis.b{res}.conv1")
        to_rgb(f"to_rgbs.{j}", f"synthesis.b{res}.torgb")
        noises += [official[f"synthesis.b{res}.conv0.noise_const"], official[f"synthesis.b{res}.conv1.noise_const"]]
    state.update({f"noises.noise_{i}": noise[None, None] for i, noise in enumerate(noises)})
    return state


def random_official_state(channels: dict, w_dim: int, rng) -> dict:
    """Random tensors under the official names, for a checkpoint nobody trained."""
    state = {"synthesis.b4.const": rng.normal(size=(channels[4], 4, 4)),
             "synthesis.b8.resample_filter": np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64}
    for i in range(TINY.mapping_layers):
        state.update({f"mapping.fc{i}.weight": rng.normal(size=(w_dim, w_dim)),
                      f"mapping.fc{i}.bias": rng.normal(size=w_dim)})

    def layer(name, cin, cout, res, kernel=3, rgb=False):
        state.update({f"{name}.weight": rng.normal(size=(cout, cin, kernel, kernel)),
                      f"{name}.affine.weight": rng.normal(size=(cin, w_dim)),
                      f"{name}.affine.bias": rng.normal(size=cin), f"{name}.bias": rng.normal(size=cout)})
        if not rgb:
            state.update({f"{name}.noise_strength": rng.normal(size=()),
                          f"{name}.noise_const": rng.normal(size=(res, res))})

    previous = channels[4]
    for res, cout in channels.items():
        if res > 4:
            layer(f"synthesis.b{res}.conv0", previous, cout, res)
        layer(f"synthesis.b{res}.conv1", cout, cout, res)
        layer(f"synthesis.b{res}.torgb", cout, 3, res, kernel=1, rgb=True)
        previous = cout
    return {name: np.asarray(value, np.float32) for name, value in state.items()}


def save_rosinality_checkpoint(path, state: dict, latent_avg):
    torch = pytest.importorskip("torch")
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}
    torch.save({"g_ema": tensors, "latent_avg": torch.from_numpy(latent_avg)}, path)


def test_rosinality_checkpoint_lands_in_the_right_variables(tmp_path):
    rng = np.random.default_rng(6)
    state = rosinality_layout(random_official_state({4: 32, 8: 32, 16: 16, 32: 8}, TINY.w_dim, rng))
    latent_avg = rng.normal(size=TINY.w_dim).astype(np.float32)
    save_rosinality_checkpoint(tmp_path / "550000.pt", state, latent_avg)
    main([str(tmp_path / "550000.pt"), str(tmp_path / "flax")])
    module, variables = load_generator(tmp_path / "flax")
    assert module.config == TINY
    params, buffers = variables["params"], variables["buffers"]
    np.testing.assert_array_equal(params["mapping"]["fc0"]["kernel"], state["style.1.weight"].T)
    np.testing.assert_array_equal(params["mapping"]["fc7"]["bias"], state["style.8.bias"])
    np.testing.assert_array_equal(buffers["mapping"]["w_avg"], latent_avg)
    # Kernels go from (1, out, in, ky, kx) to (ky, kx, in, out), unflipped: the up-sampling
    # flip happens at run time, as in both PyTorch codes.
    assert params["synthesis"]["b8"]["conv0"]["kernel"][0, 2, 5, 7] == state["convs.0.conv.weight"][0, 7, 5, 0, 2]
    np.testing.assert_array_equal(params["synthesis"]["b32"]["conv1"]["kernel"],
                                  state["convs.5.conv.weight"][0].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(params["synthesis"]["b4"]["const"], state["input.input"][0].transpose(1, 2, 0))
    np.testing.assert_array_equal(params["synthesis"]["b16"]["conv0"]["affine"]["kernel"],
                                  state["convs.2.conv.modulation.weight"].T)
    np.testing.assert_array_equal(params["synthesis"]["b16"]["torgb"]["bias"], state["to_rgbs.1.bias"].reshape(-1))
    assert params["synthesis"]["b4"]["conv1"]["noise_strength"] == state["conv1.noise.weight"][0]
    np.testing.assert_array_equal(buffers["synthesis"]["b16"]["conv0"]["noise_const"], state["noises.noise_3"][0, 0])
    np.testing.assert_array_equal(buffers["synthesis"]["b32"]["conv1"]["noise_const"], state["noises.noise_6"][0, 0])
    image = jax_apply(variables, jnp.ones((2, TINY.z_dim)), module)
    assert image.shape == (2, 32, 32, 3) and bool(jnp.all(jnp.isfinite(image)))


def test_rosinality_checkpoint_reproduces_the_official_generator(official_generator, tmp_path):
    import torch
    official = {name: tensor.numpy() for name, tensor in official_generator.state_dict().items()}
    state = rosinality_layout(official)
    save_rosinality_checkpoint(tmp_path / "g.pt", state, official["mapping.w_avg"])
    convert(tmp_path / "g.pt", tmp_path / "flax")
    module, variables = load_generator(tmp_path / "flax")
    # rosinality's code never clamps; apply the official generator's clamp to compare like with like
    module = StyleGAN2Generator(StyleGAN2Config(**{**module.config.to_dict(), "conv_clamp": CONV_CLAMP}))
    z = np.random.default_rng(7).normal(size=(4, TINY.z_dim)).astype(np.float32)
    expected = official_generator(torch.from_numpy(z), None, truncation_psi=0.7, noise_mode="const")
    result = jax_apply(variables, z, module, truncation_psi=0.7)
    assert max_abs_difference(result, torch_images(expected)) < TOLERANCE
