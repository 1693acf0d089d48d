"""python -m jaxgen.data download mnist cifar10 stl10 | python -m jaxgen.data --list

Fetches the official files ahead of time into the data folder ($JAXGEN_DATA_DIR, else the user cache
folder), checked against their published checksums; --list shows what is there and its size.
"""
from __future__ import annotations

import argparse
import sys

from jaxgen.data import datasets, downloads, stl10
from jaxgen.errors import UserError


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return ""


def download(names: list[str], data_dir: str | None) -> None:
    for name in names:
        for file in downloads.DATASET_FILES[name]:
            path = downloads.fetch(file, data_dir)
            print(f"{path} ({_size(path.stat().st_size)}, checksum verified)")
        if name == "stl10":  # extract now, so that the first study run starts at once
            folder = stl10.extract_archive(path, path.parent / stl10.BINARY_FOLDER)
            print(f"{folder}/ (extracted, read as memory maps)")


def show(data_dir: str | None) -> None:
    root = downloads.data_folder(data_dir)
    print(f"data folder: {root}" + ("" if root.exists() else " (empty: nothing downloaded yet)"))
    for name, files in downloads.DATASET_FILES.items():
        sizes = sum(downloads.REGISTRY[f].size for f in files)
        have = [f for f in files if (root / name / f).exists()]
        state = "downloaded" if len(have) == len(files) else f"{len(have)} of {len(files)} files" if have else "absent"
        print(f"  {name:8s} {_size(sizes):>9s} download  {state}")
    files = downloads.cached_files(root)
    total = sum(size for _, size in files)
    print(f"{len(files)} files, {_size(total)}:")
    for path, size in files:
        print(f"  {_size(size):>9s}  {path.relative_to(root)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxgen.data", description="Fetch the official data files ahead of "
                                     "time (checked against their published checksums), or list what the data folder holds.")
    parser.add_argument("--list", action="store_true", help="show the data folder, what it holds and the sizes")
    parser.add_argument("--data-dir", default=None, help="the data folder (default $JAXGEN_DATA_DIR, else the "
                                                         f"user cache folder, now {downloads.cache_dir()})")
    commands = parser.add_subparsers(dest="command")
    fetch = commands.add_parser("download", help="fetch datasets ahead of time")
    fetch.add_argument("datasets", nargs="+", choices=sorted(downloads.DATASET_FILES), metavar="DATASET",
                       help=f"one or more of {', '.join(downloads.DATASET_FILES)}")
    commands.add_parser("list", help="the same as --list")
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            download(args.datasets, args.data_dir)
        if args.list or args.command == "list":
            show(args.data_dir)
        elif args.command is None:
            parser.print_usage()
            return 2
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
