"""Kept so `python -m jaxgen.convert SRC DST` still works: see `jaxgen.stylegan.convert`."""
from jaxgen.stylegan.convert.__main__ import main

if __name__ == "__main__":
    main()
