"""Kept short so `python -m jaxgen.align IN... --out DIR --size 1024` works too: see `jaxgen.stylegan.align`."""
from jaxgen.stylegan.align import main

if __name__ == "__main__":
    main()
