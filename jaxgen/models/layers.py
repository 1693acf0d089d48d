"""Layers with faster, mathematically identical formulations."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def conv_nhwc(x, kernel, strides=(1, 1), padding="VALID"):
    """XLA's convolution of NHWC images with an HWIO kernel (the layout of every layer here)."""
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_windows(x, size):
    """(N, P, Q, C) -> (N, P-size+1, Q-size+1, size*size*C): the taps of every size x size window side
    by side, in the order of kernel.reshape(size*size*C, F), so a valid convolution is one matmul."""
    rows, cols = x.shape[1] - size + 1, x.shape[2] - size + 1
    return jnp.concatenate([x[:, ty:ty + rows, tx:tx + cols] for ty in range(size) for tx in range(size)], axis=-1)


@jax.custom_vjp
def conv2x2_matmul(x, kernel):
    """Valid 2x2 convolution (N, P, Q, C) -> (N, P-1, Q-1, F) as one matmul over the gathered windows,
    which also give the kernel gradient (windows^T @ dy). For inputs with few channels (an image
    after space-to-depth) this is 2-3x faster on XLA:CPU than its convolution; for wide inputs the
    gather costs more than it saves."""
    return _conv2x2_matmul_fwd(x, kernel)[0]


def _conv2x2_matmul_fwd(x, kernel):
    windows = conv_windows(x, 2)
    y = (windows.reshape(-1, windows.shape[-1]) @ kernel.reshape(-1, kernel.shape[-1])).reshape(
        windows.shape[:3] + kernel.shape[-1:])
    return y, (x, windows, kernel)


def _conv2x2_matmul_bwd(residuals, dy):
    x, windows, kernel = residuals
    # `downconv` takes only the kernel gradient from here (its input gradient runs through `upconv`), so jit
    # prunes this one there; it keeps conv2x2_matmul differentiable in x on its own.
    dx = jax.vjp(lambda x: conv_nhwc(x, kernel), x)[1](dy)[0]
    dkernel = windows.reshape(-1, windows.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
    return dx, dkernel.reshape(kernel.shape)


conv2x2_matmul.defvjp(_conv2x2_matmul_fwd, _conv2x2_matmul_bwd)


def space_to_depth(x):
    """(N, 2h, 2w, C) -> (N, h, w, 4C): each 2x2 block's pixels in (row, column, C) order."""
    n, height, width, c = x.shape
    return x.reshape(n, height // 2, 2, width // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        n, height // 2, width // 2, 4 * c)


def space_to_depth_kernel(kernel):
    """(4, 4, C, F) stride-2 kernel -> (2, 2, 4C, F): tap (2 ty + r, 2 tx + s) of the 4x4 window
    becomes tap (ty, tx) of the 2x2 window over 2x2 blocks, at channel (r, s, C) of `space_to_depth`."""
    c, f = kernel.shape[2], kernel.shape[3]
    return kernel.reshape(2, 2, 2, 2, c, f).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c, f)


def kernel_and_bias(module, window, in_channels):
    """The parameters of DownConv, UpConv and Conv3x3 (a `window` x `window` kernel), named and
    initialised as flax's Conv / ConvTranspose name and initialise theirs, so checkpoints and weights
    copied from them fit."""
    kernel = module.param("kernel", module.kernel_init, (window, window, in_channels, module.features))
    return kernel, module.param("bias", nn.initializers.zeros, (module.features,))


# Up to this many input channels `downconv` runs as space-to-depth + `conv2x2_matmul`: the image
# layers (1 or 3 channels; for UpConv's backward, those producing an image), where XLA:CPU's strided
# convolution reaches only ~15-30 GFLOP/s.
DOWNCONV_MATMUL_MAX_CHANNELS = 4


def _downconv_by_matmul(x) -> bool:
    """Whether `downconv` of x takes the space-to-depth matmul form (and its matmul kernel gradient)."""
    return x.shape[-1] <= DOWNCONV_MATMUL_MAX_CHANNELS


def strided_conv4x4(x, kernel):
    """XLA's 4x4 stride-2 convolution with padding 1."""
    return conv_nhwc(x, kernel, (2, 2), ((1, 1), (1, 1)))


def downconv(x, kernel):
    """The 4x4 stride-2 convolution with padding 1, (N, 2h, 2w, C) -> (N, h, w, F) (odd sides: XLA's
    convolution and its own gradients). Forward: for inputs with at most DOWNCONV_MATMUL_MAX_CHANNELS
    channels as padding by one, space-to-depth (the 4x4 stride-2 windows become 2x2 windows of 2x2
    blocks) and one matmul over the gathered windows (`conv2x2_matmul`); wider inputs use XLA's
    convolution. Backward: the input gradient through `upconv`, its transpose."""
    if x.shape[1] % 2 or x.shape[2] % 2:
        return strided_conv4x4(x, kernel)
    return _even_downconv(x, kernel)


def _even_downconv_forward(x, kernel):
    if _downconv_by_matmul(x):
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return conv2x2_matmul(space_to_depth(padded), space_to_depth_kernel(kernel))
    return strided_conv4x4(x, kernel)


_even_downconv = jax.custom_vjp(_even_downconv_forward)


def computed_once(x):
    """x, unchanged (for finite x), in a form XLA computes once instead of into each of its consumers.

    XLA fuses a cheap elementwise producer (a bias and ReLU) into every consumer, a layout transpose
    included, and XLA:CPU runs a transpose fused with elementwise work ~6x slower than a plain one.
    A division counts as expensive, which XLA never duplicates, and x / (1 + 0 * x) is exactly x for
    finite x (inf becomes NaN; subnormals flush to zero, as in all of XLA:CPU's arithmetic), with no
    division by a constant for XLA to turn into a product."""
    return x / (1.0 + 0.0 * x)


def _even_downconv_fwd(x, kernel):
    if not _downconv_by_matmul(x):
        # XLA's kernel-gradient convolution reads x channel-major: transpose the activation the forward
        # convolution reads (6 -> 1.1-1.9 ms at 128x16x16x32, benchmarks/NOTES.md), not a recomputation.
        x = computed_once(x)
    return _even_downconv_forward(x, kernel), (x, kernel)


def _even_downconv_bwd(residuals, dy):
    # The input gradient is the transposed convolution of dy with the flipped kernel: `upconv`'s parity
    # form runs it ~1.6x faster on XLA:CPU than XLA's own input gradient (benchmarks/NOTES.md).
    x, kernel = residuals
    return upconv(dy, flip_kernel(kernel)), downconv_kernel_gradient(x, kernel, dy)


_even_downconv.defvjp(_even_downconv_fwd, _even_downconv_bwd)


def downconv_kernel_gradient(x, kernel, dy):
    """The gradient of downconv(x, kernel) (even sides) with respect to its kernel, for output gradient dy."""
    return jax.vjp(lambda k: _even_downconv_forward(x, k), kernel)[1](dy)[0]


class DownConv(nn.Module):
    """Exactly `nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))` (the same
    parameters, the same outputs), computed by `downconv`: halves an even-sized image."""
    features: int
    kernel_init: callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel, bias = kernel_and_bias(self, 4, x.shape[-1])
        return downconv(x, kernel) + bias


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


def interleave_parities(y):
    """(N, H+1, W+1, 2, 2, C) parity-grouped 2x2 conv output -> (N, 2H, 2W, C). Output pixel
    (2m + a, 2n + b) is group (1 - a, 1 - b) at window position (m + a, n + b), which is pixel
    (2m + a + 1, 2n + b + 1) of the groups laid out as 2x2 blocks: one transpose and a one-pixel crop
    (backward: one pad and transpose, where slicing the four parities out needs four pads and adds)."""
    n, height, width, c = y.shape[0], y.shape[1] - 1, y.shape[2] - 1, y.shape[-1]
    blocks = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * height + 2, 2 * width + 2, c)
    return blocks[:, 1:-1, 1:-1]


def flip_kernel(kernel):
    """(k, k, C, F) -> (k, k, F, C), taps reversed: the stride-2 convolution with the flipped kernel is
    the transpose (adjoint) of the transposed convolution with the kernel, and vice versa; a stride-1
    convolution's transpose is the convolution with its flipped kernel."""
    return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


@jax.custom_vjp
def upconv(x, kernel):
    """The stride-2 4x4 transposed convolution (N, h, w, C) -> (N, 2h, 2w, F) of `UpConv`: forward as
    one 2x2 convolution of x padded by one, whose 4F output channels are the four output parities
    (`parity_kernel`), interleaved afterwards; backward through `downconv`, of which it is the transpose."""
    n, height, width, _ = x.shape
    y = conv_nhwc(x, parity_kernel(kernel), padding=((1, 1), (1, 1)))
    return interleave_parities(y.reshape(n, height + 1, width + 1, 2, 2, kernel.shape[-1]))


def _upconv_fwd(x, kernel):
    # The kernel gradient reads x again, transposed (XLA's convolution) or reshaped (the matmul form); without
    # this XLA recomputes x's bias, ReLU and parity interleave there.
    x = computed_once(x)
    return upconv(x, kernel), (x, kernel)


def _upconv_bwd(residuals, dy):
    # upconv(., kernel) is the transpose of downconv(., flip_kernel(kernel)): the input gradient is that
    # convolution of dy, the kernel gradient its kernel gradient with cotangent x. On XLA:CPU this runs
    # ~1.5x faster than the parity convolution's own gradients (benchmarks/NOTES.md).
    x, kernel = residuals
    flipped = flip_kernel(kernel)
    return downconv(dy, flipped), flip_kernel(downconv_kernel_gradient(dy, flipped, x))


upconv.defvjp(_upconv_fwd, _upconv_bwd)


class UpConv(nn.Module):
    """Exactly `nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))`
    (the same parameters, the same outputs), computed by `upconv`: doubles the image. On XLA:CPU
    nn.ConvTranspose's forward and backward are several times slower (benchmarks/NOTES.md)."""
    features: int
    kernel_init: callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel, bias = kernel_and_bias(self, 4, x.shape[-1])
        return upconv(x, kernel) + bias


def shifted_tap_sum(z):
    """(N, H, W, 3, 3, F) -> (N, H, W, F): y[i, j] = sum over taps (ty, tx) of z[i + ty - 1, j + tx - 1,
    ty, tx], zero outside the image. With z = x @ (every tap's kernel side by side) this is the 3x3
    convolution with padding 1, its taps summed as shifted slices of the matmul's output (small fused
    loops) instead of gathered as shifted windows of its input."""
    height, width = z.shape[1], z.shape[2]
    y = z[:, :, :, 1, 1]
    for ty in range(3):
        for tx in range(3):
            if (ty, tx) != (1, 1):
                sy, sx = ty - 1, tx - 1  # y[i, j] takes z[i + sy, j + sx]: a slice, padded back to size
                part = z[:, max(sy, 0):height + min(sy, 0), max(sx, 0):width + min(sx, 0), ty, tx]
                y = y + jnp.pad(part, ((0, 0), (max(-sy, 0), max(sy, 0)), (max(-sx, 0), max(sx, 0)), (0, 0)))
    return y


def _narrows(kernel) -> bool:
    """Whether a 3x3 kernel has fewer output than input channels: `conv3x3`'s matmul forms apply."""
    return kernel.shape[-1] < kernel.shape[-2]


def conv3x3_forward(x, kernel):
    """3x3 convolution with padding 1, (N, H, W, C) -> (N, H, W, F), in its faster form on XLA:CPU: when
    it narrows (F < C: a code layer, or a widening layer's input gradient) one matmul over the pixels
    and `shifted_tap_sum` (64 -> 8 channels at 8x8, batch 128: 2.1-2.35 -> 0.9-1.1 ms), else XLA's
    convolution, which is faster there."""
    n, height, width, c = x.shape
    f = kernel.shape[-1]
    if _narrows(kernel):
        z = x.reshape(-1, c) @ kernel.transpose(2, 0, 1, 3).reshape(c, 9 * f)
        return shifted_tap_sum(z.reshape(n, height, width, 3, 3, f))
    return conv_nhwc(x, kernel, padding=((1, 1), (1, 1)))


@jax.custom_vjp
def conv3x3(x, kernel):
    """`conv3x3_forward` with hand-written gradients: the input gradient is the 3x3 convolution of the
    output gradient with the flipped kernel (so a widening layer's takes the narrowing form); a
    narrowing layer's kernel gradient is one matmul of x against the output gradient's nine shifted
    windows (9F channels), ~2x faster on XLA:CPU than XLA's kernel-gradient convolution with few output
    channels (64 -> 8 channels at 8x8, batch 128: 3.7-4.2 -> 1.6-2.0 ms); a widening layer keeps XLA's."""
    return conv3x3_forward(x, kernel)


def _conv3x3_fwd(x, kernel):
    if not _narrows(kernel):
        x = computed_once(x)  # a widening layer's kernel gradient is XLA's convolution: as in `downconv`
    return conv3x3_forward(x, kernel), (x, kernel)


def _conv3x3_bwd(residuals, dy):
    x, kernel = residuals
    dx = conv3x3_forward(dy, flip_kernel(kernel))
    if not _narrows(kernel):
        return dx, jax.vjp(lambda k: conv3x3_forward(x, k), kernel)[1](dy)[0]  # XLA's convolution's
    # Tap (ty, tx) pairs x[i, j] with dy[i + 1 - ty, j + 1 - tx]: tap (2 - ty, 2 - tx) of the 3x3 window
    # at (i, j) of dy padded by one, so the gradient comes out with its taps reversed.
    c = kernel.shape[-2]
    windows = conv_windows(jnp.pad(dy, ((0, 0), (1, 1), (1, 1), (0, 0))), 3)
    gradient = x.reshape(-1, c).T @ windows.reshape(-1, windows.shape[-1])  # columns (2 - ty, 2 - tx, F)
    return dx, gradient.reshape(c, 3, 3, -1)[:, ::-1, ::-1].transpose(1, 2, 0, 3)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


class Conv3x3(nn.Module):
    """Exactly `nn.Conv(features, (3, 3))` (padding SAME, stride 1; the same parameters, the same
    outputs), computed by `conv3x3`."""
    features: int
    kernel_init: callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel, bias = kernel_and_bias(self, 3, x.shape[-1])
        return conv3x3(x, kernel) + bias


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
    # theta = r + quadrant * pi / 2: rotate (sin r, cos r) by a quarter turn per quadrant q: odd q swaps
    # them, and the signs flip as (+, +), (+, -), (-, -), (-, +). Written with where and exact sign
    # flips, not jnp.select, which XLA:CPU lowers to an argmax over the stacked conditions.
    q = quadrant.astype(jnp.int32)
    odd = (q & 1) == 1
    sin = jnp.where(odd, cos_r, sin_r)
    cos = jnp.where(odd, sin_r, cos_r)
    return jnp.where((q & 2) == 2, -sin, sin), jnp.where(((q + 1) & 2) == 2, -cos, cos)


class FeatureMajorDense(nn.Module):
    """nn.Dense for feature-major activations: (in, N) -> (out, N), with nn.Dense's parameters (kernel
    (in, out), lecun-normal; bias (out,), zeros), so checkpoints of either fit the other. Why: in the
    usual (N, in) layout a weight gradient contracts the leading (batch) axis of both operands, which
    XLA:CPU cannot hand to YNNPACK and runs 2-3x slower in its own dot emitter; feature-major, the
    backward matmuls go to YNNPACK. (The forward one contracts the kernel's leading axis and stays in
    XLA's emitter; handing it to YNNPACK as well measured no faster, benchmarks/NOTES.md.)"""
    features: int

    @nn.compact
    def __call__(self, h):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (h.shape[0], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return jnp.einsum("io,in->on", kernel, h) + bias[:, None]
