"""jaxgen: autoencoders, VAEs, a 2-D DDPM and StyleGAN2 inversion in JAX/Flax.

Importing jaxgen changes nothing in the process: a program sets it up with one call before its first JAX
computation, `jaxgen.distributed.configure_process()` (CPU settings, then joining a multi-process run)."""
