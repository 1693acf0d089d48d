"""Layers with faster, mathematically identical formulations."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Parity formulation: output row 2m + a is a 2-tap correlation over input rows (m - 1 + a, m + a)
# with kernel rows PARITY_ROWS[a]; with the input padded by one on each side, window position m + a
# of one 2x2 convolution (4 * Cout channels, one group per parity) covers exactly those rows.
PARITY_ROWS = np.array([[0, 2], [1, 3]])


def parity_kernel(kernel):
    """(4, 4, Cin, Cout) transposed-conv kernel -> (2, 2, Cin, 4*Cout): output group (s, t) is the
    2x2 sub-kernel of output parity (a, b) = (1 - s, 1 - t) (the order `interleave_parities` needs).
    It has no zero taps: the common 3x3 sub-pixel kernel (3x3 convolution + depth-to-space) is 5/9
    zeros, so it does 2.25x the multiply-adds."""
    k_in, k_out = kernel.shape[2], kernel.shape[3]
    rows = PARITY_ROWS[::-1]
    taps = kernel[rows[:, None, :, None], rows[None, :, None, :]]  # (s, t, ty, tx, Cin, Cout)
    return taps.transpose(2, 3, 4, 0, 1, 5).reshape(2, 2, k_in, 4 * k_out)


def _conv2x2_padded(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def conv2x2_padded(x, kernel):
    """2x2 convolution of x padded by one pixel on every side: (N, H, W, C) -> (N, H+1, W+1, F).
    Its kernel gradient is one matmul (`conv2x2_kernel_gradient`): XLA:CPU's own kernel-gradient
    convolution for this window is up to 20x slower."""
    return _conv2x2_padded(x, kernel)


def _conv2x2_padded_fwd(x, kernel):
    return _conv2x2_padded(x, kernel), (x, kernel)


def _conv2x2_padded_bwd(residuals, dy):
    x, kernel = residuals
    dx = jax.vjp(lambda x: _conv2x2_padded(x, kernel), x)[1](dy)[0]
    return dx, conv2x2_kernel_gradient(x, dy)


def conv2x2_kernel_gradient(x, dy):
    """d loss / d kernel of `conv2x2_padded` from its input x (N, H, W, C) and output gradient dy
    (N, H+1, W+1, F): kernel tap (ty, tx) pairs x[i, j] with dy[i + 1 - ty, j + 1 - tx]. One matmul
    over every pixel, against whichever side is smaller to gather: the four shifted windows of
    the padded input (4C channels) or of dy (4F channels)."""
    _, height, width, c = x.shape
    f = dy.shape[-1]
    taps = [(ty, tx) for ty in (0, 1) for tx in (0, 1)]
    if (height + 1) * (width + 1) * c <= height * width * f:
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate([padded[:, ty:ty + height + 1, tx:tx + width + 1] for ty, tx in taps], axis=-1)
        gradient = patches.reshape(-1, 4 * c).T @ dy.reshape(-1, f)  # rows (tap, C)
        return gradient.reshape(2, 2, c, f)
    shifted = jnp.concatenate([dy[:, 1 - ty:1 - ty + height, 1 - tx:1 - tx + width] for ty, tx in taps], axis=-1)
    gradient = x.reshape(-1, c).T @ shifted.reshape(-1, 4 * f)  # columns (tap, F)
    return gradient.reshape(c, 2, 2, f).transpose(1, 2, 0, 3)


conv2x2_padded.defvjp(_conv2x2_padded_fwd, _conv2x2_padded_bwd)


def interleave_parities(y):
    """(N, H+1, W+1, 2, 2, C) parity-grouped 2x2 conv output -> (N, 2H, 2W, C). Output pixel
    (2m + a, 2n + b) is group (1 - a, 1 - b) at window position (m + a, n + b), which is pixel
    (2m + a + 1, 2n + b + 1) of the groups laid out as 2x2 blocks: one transpose and a one-pixel crop
    (backward: one pad and transpose, where slicing the four parities out needs four pads and adds)."""
    n, height, width, c = y.shape[0], y.shape[1] - 1, y.shape[2] - 1, y.shape[-1]
    blocks = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * height + 2, 2 * width + 2, c)
    return blocks[:, 1:-1, 1:-1]


class UpConv(nn.Module):
    """Exactly `nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))`
    (the same parameters, the same outputs), computed as one 2x2 convolution whose output groups
    are the four output parities, interleaved afterwards. On XLA:CPU the transposed convolution's
    gradient is several times slower than this (forward and backward of a decoder layer: ~2x faster
    than a 3x3 sub-pixel convolution, itself ~3x faster than nn.ConvTranspose)."""
    features: int
    kernel_init: callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        n, height, width, _ = x.shape
        y = conv2x2_padded(x, parity_kernel(kernel)).reshape(n, height + 1, width + 1, 2, 2, self.features)
        return interleave_parities(y) + bias


# pi / 2 split into three float32 parts (Cody-Waite): q * part is exact for the first two, so the
# reduced angle keeps float32 accuracy for |theta| up to ~1e4.
HALF_PI_PARTS = (1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8)


def sin_cos(theta):
    """(sin theta, cos theta) of float32 angles, within ~1e-7 of jnp.sin / jnp.cos for |theta| <= 1e4,
    about 5x faster on CPU: one shared range reduction to [-pi/4, pi/4] and two short Taylor
    polynomials (their truncation error, below 2e-9 there, is under float32 rounding), where XLA:CPU
    evaluates sin and cos separately with a slower general reduction."""
    quadrant = jnp.round(theta * (2.0 / np.pi))
    r = theta - quadrant * HALF_PI_PARTS[0] - quadrant * HALF_PI_PARTS[1] - quadrant * HALF_PI_PARTS[2]
    r2 = r * r
    sin_r = r + r * r2 * (-1 / 6 + r2 * (1 / 120 + r2 * (-1 / 5040 + r2 * (1 / 362880))))
    cos_r = 1 + r2 * (-1 / 2 + r2 * (1 / 24 + r2 * (-1 / 720 + r2 * (1 / 40320 + r2 * (-1 / 3628800)))))
    # theta = r + quadrant * pi / 2: rotate (sin r, cos r) by a quarter turn per quadrant.
    q = quadrant.astype(jnp.int32) & 3
    sin = jnp.select([q == 0, q == 1, q == 2], [sin_r, cos_r, -sin_r], -cos_r)
    cos = jnp.select([q == 0, q == 1, q == 2], [cos_r, -sin_r, -cos_r], sin_r)
    return sin, cos

