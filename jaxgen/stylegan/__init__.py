"""StyleGAN2 in Flax: the generator, checkpoints from other formats, weights by name, face
alignment and inversion.

  generator.py   the config-F generator, `save_generator` / `load_generator`
  convert/       one reader per source format (official pickle, rosinality .pt), without torch
  weights.py     `--weights ffhq | URL | FILE | FOLDER`: download, convert once, cache
  align.py       FFHQ face alignment (dlib landmarks; `pip install jaxgen[align]`)
  invert.py      inversion in z / w / w+ and the published projectors' recipes
  targets.py     inversion targets: files, folders, globs -> aligned squares at the generator's resolution
  scores.py      per-image L2, PSNR, LPIPS and cosine distance of inversions
  self_test.py   a seeded random 32 px generator and targets it generated (CPU engine check)
  perceptual.py  LPIPS-VGG

Nothing here is imported by `import jaxgen.stylegan`; import the module you need.
"""
