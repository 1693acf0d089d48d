"""jaxgen: autoencoders, VAEs, a 2-D DDPM and StyleGAN2 inversion in JAX/Flax."""
from jaxgen import cpu

cpu.configure()
