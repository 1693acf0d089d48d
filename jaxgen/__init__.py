"""jaxgen: autoencoders, VAEs, a 2-D DDPM and StyleGAN2 inversion in JAX/Flax."""
import os

# XLA:CPU hands matmuls, reductions and convolutions to YNNPACK by default. Its convolutions are the
# slow part of our conv models' training steps: with XLA's own (Eigen) convolutions instead, a 4x4
# stride-2 conv layer's forward + backward runs ~1.7x faster and the conv VAE / AE steps 10-20% faster
# (README, speed section). Matmuls and reductions stay on YNNPACK. XLA reads the flag when JAX starts
# its CPU backend, so it takes effect when jaxgen is imported before the first computation; a flag the
# user set wins. GPU and TPU compilers ignore it.
_YNN_FUSIONS = "--xla_cpu_experimental_ynn_fusion_type"
if _YNN_FUSIONS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_YNN_FUSIONS}=individual_dot,reduce".strip()
