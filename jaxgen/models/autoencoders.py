"""The autoencoder family as flax.linen modules.

Every VAE exposes `encode(x) -> (mean, logvar)`, `decode(z) -> logits` and
`__call__(x, rng) -> (logits, mean, logvar)`; images are NHWC floats in [0, 1] and
decoders return logits (apply a sigmoid for pixels).
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.models.layers import Conv3x3, DownConv, UpConv


def reparameterize(rng, mean, logvar):
    """z = mean + sigma * eps, eps ~ N(0, I): a sample of q(z|x) that gradients pass through."""
    return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)


class MLPVAE(nn.Module):
    """Fully connected VAE: flatten -> hidden ReLU layers -> (mean, logvar); mirrored decoder."""
    hidden: Sequence[int] = (300, 300)
    latent_dim: int = 20
    image_shape: Sequence[int] = (28, 28, 1)

    def setup(self):
        self.encoder_layers = [nn.Dense(width) for width in self.hidden]
        self.to_mean = nn.Dense(self.latent_dim)
        self.to_logvar = nn.Dense(self.latent_dim)
        self.decoder_layers = [nn.Dense(width) for width in reversed(self.hidden)]
        self.to_pixels = nn.Dense(int(np.prod(self.image_shape)))

    def encode(self, x):
        h = x.reshape(x.shape[0], -1)
        for layer in self.encoder_layers:
            h = nn.relu(layer(h))
        return self.to_mean(h), self.to_logvar(h)

    def decode(self, z):
        h = z
        for layer in self.decoder_layers:
            h = nn.relu(layer(h))
        return self.to_pixels(h).reshape((z.shape[0],) + tuple(self.image_shape))

    def __call__(self, x, rng):
        mean, logvar = self.encode(x)
        return self.decode(reparameterize(rng, mean, logvar)), mean, logvar


class MnistConvVAE(nn.Module):
    """The MNIST study's conv VAE, layer for layer (1,749,481 parameters at latent 20):
    Conv32/4/2 -> Conv64/4/2 -> FC256 -> FC128 -> (mean, logvar) | FC128 -> FC256 ->
    FC 64*7*7 -> ConvT32/4/2 -> ConvT1/4/2."""
    latent_dim: int = 20

    def setup(self):
        self.conv1 = DownConv(32)
        self.conv2 = DownConv(64)
        self.enc_fc1 = nn.Dense(256)
        self.enc_fc2 = nn.Dense(128)
        self.to_mean = nn.Dense(self.latent_dim)
        self.to_logvar = nn.Dense(self.latent_dim)
        self.dec_fc1 = nn.Dense(128)
        self.dec_fc2 = nn.Dense(256)
        self.dec_fc3 = nn.Dense(64 * 7 * 7)
        self.deconv1 = UpConv(32)
        self.deconv2 = UpConv(1)

    def encode(self, x):
        h = nn.relu(self.conv1(x))
        h = nn.relu(self.conv2(h))
        h = h.reshape(h.shape[0], -1)
        h = nn.relu(self.enc_fc1(h))
        h = nn.relu(self.enc_fc2(h))
        return self.to_mean(h), self.to_logvar(h)

    def decode(self, z):
        h = nn.relu(self.dec_fc1(z))
        h = nn.relu(self.dec_fc2(h))
        h = nn.relu(self.dec_fc3(h)).reshape(z.shape[0], 7, 7, 64)
        h = nn.relu(self.deconv1(h))
        return self.deconv2(h)

    def __call__(self, x, rng):
        mean, logvar = self.encode(x)
        return self.decode(reparameterize(rng, mean, logvar)), mean, logvar


class ConvEncoder(nn.Module):
    """Stride-2 4x4 conv stages (ReLU), each halving the image, then one dense layer to `features`."""
    channels: Sequence[int]
    features: int

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.channels):
            x = nn.relu(DownConv(width, name=f"conv{i + 1}")(x))
        return nn.Dense(self.features, name="to_code")(x.reshape(x.shape[0], -1))


class ConvDecoder(nn.Module):
    """The mirror of ConvEncoder: dense to the smallest feature map, then stride-2 up-convolutions
    (exact 4x4 transposed convolutions) back to `image_shape`; returns logits."""
    channels: Sequence[int]  # the encoder's, first stage first
    image_shape: Sequence[int]

    @nn.compact
    def __call__(self, z):
        height, width, image_channels = self.image_shape
        factor = 2 ** len(self.channels)
        h = nn.relu(nn.Dense(height // factor * width // factor * self.channels[-1], name="from_code")(z))
        h = h.reshape(z.shape[0], height // factor, width // factor, self.channels[-1])
        for i, width_out in enumerate(reversed(self.channels[:-1])):
            h = nn.relu(UpConv(width_out, name=f"upconv{i + 1}")(h))
        return UpConv(image_channels, name=f"upconv{len(self.channels)}")(h)


def check_divisible(image_shape, channels):
    factor = 2 ** len(channels)
    if image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(f"{len(channels)} stride-2 stages need image sides divisible by {factor}, "
                         f"got {tuple(image_shape[:2])}")


class ConvVAE(nn.Module):
    """Conv VAE for any image size: ConvEncoder -> (mean, logvar) -> z -> ConvDecoder."""
    image_shape: Sequence[int] = (96, 96, 3)
    latent_dim: int = 128
    channels: Sequence[int] = (32, 64, 128, 256)

    def setup(self):
        check_divisible(self.image_shape, self.channels)
        self.encoder = ConvEncoder(self.channels, 2 * self.latent_dim)
        self.decoder = ConvDecoder(self.channels, self.image_shape)

    def encode(self, x):
        return tuple(jnp.split(self.encoder(x), 2, axis=-1))  # (mean, logvar)

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, x, rng):
        mean, logvar = self.encode(x)
        return self.decode(reparameterize(rng, mean, logvar)), mean, logvar


class BoundedAE(nn.Module):
    """Deterministic conv autoencoder whose codes live in [0, 1]^code_dim (the encoder ends in a
    sigmoid): the image prior P(I) ~ exp(-|D(E(I)) - I| / T). Decoder returns logits.

    `layer_norm=False` is the assignment's naive model: conv encoder, sigmoid, nothing else. With
    the squared error, Adam's first steps move all 3,136 weights into the code layer the same way
    and the pre-activations reach ~30 within 40 steps: every code saturates into one corner of the
    cube, gradients vanish, and the decoder can only learn the mean image. `layer_norm=True` (a
    named variant) puts a LayerNorm before the sigmoid, which keeps the pre-activations at unit scale."""
    image_shape: Sequence[int] = (28, 28, 1)
    code_dim: int = 10
    channels: Sequence[int] = (32, 64)
    layer_norm: bool = True

    def setup(self):
        check_divisible(self.image_shape, self.channels)
        self.encoder = ConvEncoder(self.channels, self.code_dim)
        if self.layer_norm:
            self.pre_sigmoid_norm = nn.LayerNorm()
        self.decoder = ConvDecoder(self.channels, self.image_shape)

    def encode(self, x):
        h = self.encoder(x)
        return nn.sigmoid(self.pre_sigmoid_norm(h) if self.layer_norm else h)

    def decode(self, code):
        return self.decoder(code)

    def __call__(self, x):
        code = self.encode(x)
        return self.decode(code), code


class SpatialEncoder(nn.Module):
    """Stride-2 4x4 conv stages (ReLU), then a 3x3 conv to a `code_channels`-deep code map, flattened.

    `feature_mask` (B, h, w, 1), when given, multiplies the first stage's feature maps: the masked
    conv AE drops patches of features, not of pixels."""
    channels: Sequence[int]
    code_channels: int

    @nn.compact
    def __call__(self, x, feature_mask=None):
        for i, width in enumerate(self.channels):
            x = nn.relu(DownConv(width, name=f"conv{i + 1}")(x))
            if i == 0 and feature_mask is not None:
                x = x * feature_mask
        code = Conv3x3(self.code_channels, name="to_code")(x)
        return code.reshape(code.shape[0], -1)


class SpatialDecoder(nn.Module):
    """The mirror of SpatialEncoder: 3x3 conv from the code map, then exact 4x4 stride-2 transposed
    convolutions back to `image_shape`; returns logits."""
    channels: Sequence[int]  # the encoder's, first stage first
    image_shape: Sequence[int]

    @nn.compact
    def __call__(self, code):
        height, width = code_map_size(self.image_shape, self.channels)
        h = code.reshape(code.shape[0], height, width, -1)
        h = nn.relu(Conv3x3(self.channels[-1], name="from_code")(h))
        for i, width_out in enumerate(reversed(self.channels[:-1])):
            h = nn.relu(UpConv(width_out, name=f"upconv{i + 1}")(h))
        return UpConv(self.image_shape[-1], name=f"upconv{len(self.channels)}")(h)


def code_map_size(image_shape, channels) -> tuple[int, int]:
    """(height, width) of the code map after the stride-2 stages."""
    check_divisible(image_shape, channels)
    factor = 2 ** len(channels)
    return image_shape[0] // factor, image_shape[1] // factor


def code_channels(image_shape, channels, latent_dim: int) -> int:
    """Depth of a code map holding `latent_dim` numbers; a clear error when it cannot."""
    height, width = code_map_size(image_shape, channels)
    if latent_dim % (height * width):
        raise ValueError(f"latent size {latent_dim} is not a whole number of {height}x{width} code maps: "
                         f"use a multiple of {height * width}")
    return latent_dim // (height * width)


class SpatialConvAE(nn.Module):
    """Fully convolutional autoencoder with a spatial code of `latent_dim` numbers
    (e.g. 32x32x3 -> 8x8x8 = 512). `__call__(x, feature_mask=None) -> (logits, code)`; the same
    module is the AE, every denoising AE (noise is in the objective) and the masked conv AE."""
    image_shape: Sequence[int] = (32, 32, 3)
    latent_dim: int = 512
    channels: Sequence[int] = (32, 64)

    def setup(self):
        self.encoder = SpatialEncoder(self.channels, code_channels(self.image_shape, self.channels, self.latent_dim))
        self.decoder = SpatialDecoder(self.channels, self.image_shape)

    def encode(self, x, feature_mask=None):
        return self.encoder(x, feature_mask)

    def decode(self, code):
        return self.decoder(code)

    def __call__(self, x, feature_mask=None):
        code = self.encode(x, feature_mask)
        return self.decode(code), code


class SpatialConvVAE(nn.Module):
    """SpatialConvAE's VAE twin: the code map has a mean and a log-variance channel block, each
    flattened to `latent_dim` numbers; the usual VAE interface."""
    image_shape: Sequence[int] = (32, 32, 3)
    latent_dim: int = 512
    channels: Sequence[int] = (32, 64)

    def setup(self):
        depth = code_channels(self.image_shape, self.channels, self.latent_dim)
        self.encoder = SpatialEncoder(self.channels, 2 * depth)
        self.decoder = SpatialDecoder(self.channels, self.image_shape)

    def encode(self, x):
        height, width = code_map_size(self.image_shape, self.channels)
        code = self.encoder(x).reshape(x.shape[0], height, width, -1)
        mean, logvar = jnp.split(code, 2, axis=-1)
        return mean.reshape(x.shape[0], -1), logvar.reshape(x.shape[0], -1)

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, x, rng):
        mean, logvar = self.encode(x)
        return self.decode(reparameterize(rng, mean, logvar)), mean, logvar
