"""python -m jaxgen.stylegan.convert SRC DST [--format official|rosinality]"""
from __future__ import annotations

import argparse
import sys

from jaxgen.errors import UserError
from jaxgen.stylegan.convert import FORMATS, convert


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxgen.stylegan.convert",
                                     description="Convert a StyleGAN2 checkpoint to jaxgen's Flax generator "
                                                 "(no torch needed).")
    parser.add_argument("src", help="NVIDIA release .pkl or rosinality .pt")
    parser.add_argument("dst", help="output folder (replaced if present)")
    parser.add_argument("--format", choices=FORMATS, help="default: guessed from the file")
    args = parser.parse_args(argv)
    try:
        config = convert(args.src, args.dst, args.format)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    print(f"Wrote {args.dst}: {config}")


if __name__ == "__main__":
    main()
