"""What every study shares: the command line, the error boundary, the output folder, results.json and report.md.

The command line of a study is generated from its config (`experiments/configs/NAME.py`): every field is a
flag (`--batch-size 16`) and a config override (`--config.batch_size=16`), validated before anything is
loaded. Common flags: --quick --out --data-dir --resume --overwrite --debug, and for a run over several
processes --coordinator --num-processes --process-id --distributed (docs/multi_host.md).

The output folder holds a `run.json` naming the study, its config and whether the run finished; a study
writes into `--out` only when it is empty, holds this study's own unfinished run (continued with --resume),
or --overwrite is given. Results are staged in `<out>/.staging` and moved into place only when the study
finishes, so a failed run never leaves a half-replaced folder; the folder is created on the first write,
after the data has loaded, so a failed start leaves nothing behind.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from experiments import configs
from jaxgen.errors import ConfigError, OutputFolderError, UserError

MARKER = "run.json"
STAGING = ".staging"
# What a study run writes at the top of its folder besides its figures; --overwrite removes these.
RUN_ARTIFACTS = (MARKER, "results.json", "report.md", STAGING, "checkpoints", "models")
DEBUG_ENV = "JAXGEN_DEBUG"
DATA_SOURCE_ENV = "JAXGEN_DATA_SOURCE"  # jaxgen.data.datasets.SOURCE_ENV, without importing JAX here
_ACTIVE: list["StudyOutput"] = []  # outputs opened in this process, tidied by the error boundary
# Studies whose --quick budget cannot show a recognisable figure in about a minute on 2 CPU cores (measured):
# their quick runs say so first, on the console and in report.md. A study may pass smoke_run= instead.
SMOKE_RUN_STUDIES = {"vae_stl10", "cifar_autoencoders", "image_prior", "dino_diffusion"}
SMOKE_RUN_NOTE = ("This is a --quick smoke run: its budget only checks that the code runs end to end, so its "
                  "figures and numbers are not meaningful. Run without --quick for the study's results.")


# ---------------------------------------------------------------------------------------------- command line

def study_parser(name: str, description: str, get_config: Callable | None = None) -> argparse.ArgumentParser:
    """The study's parser: the common flags, then one flag per config field (when `get_config` is given).
    Parse it with `parse_study_args`; a study may add flags of its own before that."""
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = parser.add_argument_group("common flags")
    common.add_argument("--quick", action="store_true",
                        help="the smallest budget on the same code path (a smoke run of about a minute)")
    common.add_argument("--out", default=None,
                        help=f"output folder (default runs/{name}, or runs/{name}_quick with --quick)")
    common.add_argument("--data-dir", default=None,
                        help="folder of the data files and download cache (default $JAXGEN_DATA_DIR, "
                             "then the user cache folder)")
    common.add_argument("--data-source", choices=("files", "tfds"), default=None,
                        help="read the official files (default) or through TensorFlow Datasets "
                             f"(the same as {DATA_SOURCE_ENV}=tfds)")
    common.add_argument("--resume", action="store_true",
                        help="continue this study's unfinished run in OUT (finished models are reused)")
    common.add_argument("--overwrite", action="store_true",
                        help="replace the run in OUT (its results, figures and checkpoints)")
    add_debug_flag(common)
    add_process_flags(parser)
    parser.set_defaults(_study=name, _get_config=get_config)
    if get_config is None:  # a study without a config (yet): the seed alone
        common.add_argument("--seed", type=int, default=0)
        return parser
    full, quick = get_config(None), get_config("quick")
    group = parser.add_argument_group(
        f"config (experiments/configs/{name}.py); each flag is also --config.FIELD=VALUE; "
        "defaults are the assignment's, --quick changes those marked")
    kinds = configs.field_types(type(full))
    for field in dataclasses.fields(full):
        default, quick_default = getattr(full, field.name), getattr(quick, field.name)
        text = f"{field.metadata.get('help', '')}; {configs.describe_range(field, kinds[field.name])}. " \
               f"Default {show_value(default)}" + (f" (--quick: {show_value(quick_default)})" if quick_default != default else "")
        options = [configs.flag(field.name), f"--config.{field.name}"]
        extra = {"nargs": "?", "const": "true"} if kinds[field.name] is bool else {}
        group.add_argument(*options, dest=f"config__{field.name}", default=None,
                           metavar=configs.metavar(type(full), field.name),
                           help=text.replace("%", "%%"), **extra)
    return parser


def add_debug_flag(parser) -> None:
    """--debug, read by `entry_point` (a command's parser, or a group of it)."""
    parser.add_argument("--debug", action="store_true", help=f"show the traceback of an error (also {DEBUG_ENV}=1)")


def add_process_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a run over several processes (read by `entry_point` before the study starts)."""
    group = parser.add_argument_group(
        "several processes (hosts); without these, JAX's auto-detection runs under srun or mpirun")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="address of process 0, which every process of the run connects to")
    group.add_argument("--num-processes", type=int, metavar="N", default=None, help="processes in the run")
    group.add_argument("--process-id", type=int, metavar="I", default=None, help="this process's index, 0..N-1")
    group.add_argument("--distributed", action="store_true",
                       help="join a multi-process run found by JAX's auto-detection (a TPU pod slice: "
                            "run the same command on every worker)")


def process_flags(argv) -> argparse.Namespace:
    """The multi-process flags in `argv` (the study's own flags are left for its parser)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_process_flags(parser)
    return parser.parse_known_args(argv)[0]


def configure_process(argv) -> bool:
    """The process settings, made once before the study's first JAX computation: jaxgen's CPU settings, then
    joining a multi-process run when the flags or the launcher say so. Processes other than 0 print nothing
    to stdout (their errors still reach stderr). Returns whether the run has several processes."""
    from jaxgen import distributed  # imports JAX, but starts no backend

    flags = process_flags(argv)
    several = distributed.configure_process(flags.coordinator, flags.num_processes, flags.process_id,
                                            auto=flags.distributed)
    if several and not distributed.is_main_process():
        sys.stdout = open(os.devnull, "w")
    return several


def show_value(value) -> str:
    """A config value as its flag takes it: a sequence comma-joined, None (no limit) as 'all'."""
    if isinstance(value, (list, tuple)):  # a tuple in a config, a list once read back from JSON
        return ",".join(map(str, value))
    return "all" if value is None else str(value)


def parse_study_args(parser: argparse.ArgumentParser, argv=None):
    """(args, config): the flags, and the validated config (quick variant with --quick, then the overrides).
    `args.seed` is the config's seed and `args.config` the config, for code that reads them there."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: pass one of them")
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out is empty: give a folder")
    if args.data_dir and Path(args.data_dir).is_file():
        raise ConfigError(f"--data-dir {args.data_dir} is a file: give the folder that holds the data files")
    if args.data_source:  # read by jaxgen.data.load, as when the user sets it
        os.environ[DATA_SOURCE_ENV] = args.data_source
    if args._get_config is None:
        args.config = None
        return args, None
    config = args._get_config("quick" if args.quick else None)
    overrides, sources = {}, {}
    for field in dataclasses.fields(config):
        text = getattr(args, f"config__{field.name}")
        if text is None:
            continue
        used = f"--config.{field.name}"
        source = used if any(a == used or a.startswith(used + "=") for a in argv) else configs.flag(field.name)
        sources[field.name] = source
        overrides[field.name] = configs.parse_value(type(config), field.name, text, source)
    config = configs.validate(config.replace(**overrides), sources)
    args.config, args.seed = config, config.seed
    return args, config


# ------------------------------------------------------------------------------------------- error boundary

def entry_point(run: Callable, argv=None) -> None:
    """Run a study's `main(argv)` as a command: an error a user can fix (jaxgen.errors.UserError) becomes one
    line on stderr and its kind's exit code (--debug or JAXGEN_DEBUG=1 shows the traceback); anything else
    is a bug and keeps its traceback. Background threads are stopped before the interpreter shuts down.
    The process is set up first (`configure_process`: CPU settings, joining a multi-process run); in such a
    run, losing another process is one line too (jaxgen.distributed.ProcessLostError)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        configure_process(argv)
        run(argv)
    except UserError as error:
        abandon_outputs()
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        _exit_quietly(f"error: {message}", error.exit_code)
    except KeyboardInterrupt:
        abandon_outputs()
        if debug:
            raise
        _exit_quietly("interrupted: the checkpoints of finished epochs are kept; continue with --resume", 130)
    except BaseException as error:
        abandon_outputs()
        lost = _lost_process(error)
        if lost is None or debug:
            raise
        _exit_quietly(f"error: {lost}", lost.exit_code)
    _exit_quietly(None, 0)


def _lost_process(error: BaseException):
    """The one-line error of a multi-process run whose collective failed because another process went away."""
    if "jaxgen.distributed" not in sys.modules or not isinstance(error, Exception):
        return None
    return sys.modules["jaxgen.distributed"].lost_process_error(error)


def _exit_quietly(message: str | None, code: int) -> None:
    """Print `message`, then exit without the shutdown tracebacks of threads still running (orbax's writers,
    prefetchers): their work is either done (checkpoints are awaited) or abandoned with the run."""
    _close_progress_bars()
    sys.stdout.flush()
    if message:
        print(message, file=sys.stderr)
    sys.stderr.flush()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if others and code:
        os._exit(code)
    sys.exit(code)


def _close_progress_bars() -> None:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def abandon_outputs() -> None:
    """Tidy the output folders of a failed run (see `StudyOutput.abandon`)."""
    while _ACTIVE:
        _ACTIVE.pop().abandon()


# ------------------------------------------------------------------------------------------- output folder

class StudyOutput:
    """The output folder of one study run. Constructing it checks the folder (refusing one that would lose
    results) and writes nothing; the folder is created on the first write (`open`, a figure or a checkpoint),
    which a study makes after its data has loaded. A quick run of a study in SMOKE_RUN_STUDIES (or with
    `smoke_run=True`) says first that its figures are not meaningful."""

    def __init__(self, name: str, args: argparse.Namespace, config: configs.StudyConfig | None = None,
                 smoke_run: bool | None = None):
        self.name = name
        self.config = config if config is not None else getattr(args, "config", None)
        self.budget = "quick" if getattr(args, "quick", False) else "full"
        self.resume, self.overwrite = bool(getattr(args, "resume", False)), bool(getattr(args, "overwrite", False))
        default = f"runs/{name}_quick" if self.budget == "quick" else f"runs/{name}"
        self.root = Path(args.out or default)
        self.staging = self.root / STAGING
        self.started = self._phase_started = time.time()
        self.phase_seconds: dict[str, float] = {}
        self.resumed: dict[str, dict] = {}
        self._opened = False
        self._created_root = False
        self._previous_marker: str | None = None
        self._check()
        _barrier("jaxgen-study-output-checked")  # every process checked the folder before process 0 writes
        self.smoke_run = self.budget == "quick" and (name in SMOKE_RUN_STUDIES if smoke_run is None else smoke_run)
        if self.smoke_run:
            print(SMOKE_RUN_NOTE, flush=True)

    # -- the checks, before anything is written
    def _config_dict(self) -> dict | None:
        return None if self.config is None else self.config.to_dict()

    def _check(self) -> None:
        root, flag = self.root, f"--out {self.root}"
        check_out_folder(root)
        if not root.exists() or not any(root.iterdir()):
            return
        marker = _read_marker(root)
        if marker is None:
            self._check_unmarked(flag)
            return
        self._previous_marker = (root / MARKER).read_text()
        study, state = marker.get("study"), marker.get("state", "unfinished")
        if study != self.name:
            if not self.overwrite:
                raise OutputFolderError(
                    f"{flag} holds a {state} {study} run ({root / MARKER}); choose another --out, "
                    f"or pass --overwrite to replace it")
            return
        if self.overwrite:
            return
        differences = _differences(marker.get("config"), self._config_dict())
        if state == "finished" and differences:
            raise OutputFolderError(
                f"{flag} holds a finished {study} run with another config ({differences}); choose another --out, "
                "or pass --overwrite to replace it")
        if state == "finished" and not self.resume:
            raise OutputFolderError(
                f"{flag} holds a finished {study} run with this config; pass --resume to reuse its trained models, "
                "--overwrite to train again, or choose another --out")
        if state != "finished" and not self.resume:
            raise OutputFolderError(
                f"{flag} holds an unfinished {study} run; pass --resume to continue it, or --overwrite to start over")
        if differences:
            raise OutputFolderError(
                f"{flag} holds an unfinished {study} run with another config ({differences}); pass the same "
                "settings with --resume, or --overwrite to start over")

    def _check_unmarked(self, flag: str) -> None:
        """A non-empty folder without run.json: a run of an older version, or something else entirely."""
        if self.overwrite:
            return
        root = self.root
        results = root / "results.json"
        if results.exists():
            try:
                study = json.loads(results.read_text()).get("study", "earlier")
            except (ValueError, OSError, AttributeError):
                study = "earlier"
            if study in (self.name, "earlier") and self.resume:
                return
            raise OutputFolderError(f"{flag} holds the results of an {study} run ({results}); choose another "
                                    "--out, or pass --overwrite to replace them")
        names = sorted(p.name for p in root.iterdir())
        if self.resume and set(names) <= {"checkpoints", "models", STAGING}:
            return
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise OutputFolderError(f"{flag} is not empty ({shown}) and holds no {self.name} run; choose an empty or "
                                "new folder, or pass --overwrite to write into it")

    # -- writing
    def open(self) -> "StudyOutput":
        """Create the folder (replacing an earlier run's files with --overwrite) and mark the run unfinished."""
        if self._opened:
            return self
        if not _main_process():  # another process of a multi-process run: its copies of the files go nowhere
            self.staging = Path(tempfile.mkdtemp(prefix=f"jaxgen-{self.name}-"))
            self._opened = True
            _ACTIVE.append(self)
            return self
        root = self.root
        if self.overwrite and root.exists():
            previous = _read_marker(root) or {}
            legacy_run = not previous and (root / "results.json").exists()  # written before run.json existed
            for name in list(RUN_ARTIFACTS) + list(previous.get("files", [])):
                _remove(root / name)
            if legacy_run:  # its figures; other files of a folder that held no run are left alone
                for path in list(root.glob("*.png")) + list(root.glob("*.npz")):
                    _remove(path)
        self._created_root = not root.exists()
        try:
            root.mkdir(parents=True, exist_ok=True)
            if self.staging.exists():
                shutil.rmtree(self.staging)
            self.staging.mkdir()
        except OSError as error:
            raise OutputFolderError(f"--out {root}: cannot create the folder ({error.strerror})") from error
        self._write_marker("unfinished")
        self._opened = True
        _ACTIVE.append(self)
        return self

    def _write_marker(self, state: str, files: list[str] | None = None) -> None:
        marker = {"study": self.name, "state": state, "budget": self.budget, "config": self._config_dict(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))}
        if files is not None:
            marker["files"] = files
        (self.root / MARKER).write_text(json.dumps(marker, indent=2) + "\n")

    def phase(self, name: str) -> None:
        """Print how long the study's latest phase took; the times also go to results.json."""
        now = time.time()
        self.phase_seconds[name] = round(now - self._phase_started, 1)
        self._phase_started = now
        print(f"{name}: {self.phase_seconds[name]:.1f} s")

    def checkpoint_dir(self, model: str) -> Path:
        self.open()
        return self.root / "checkpoints" / model

    def model_dir(self, model: str) -> Path:
        self.open()
        return self.root / "models" / model

    def figure(self, filename: str) -> Path:
        self.open()
        return self.staging / filename

    def note_resumed(self, model: str, epoch: int, step: int, of_epochs: int | None = None) -> None:
        """Record that `model` continued from a checkpoint after `epoch` epochs (`step` optimizer steps)."""
        self.resumed[model] = {"epoch": int(epoch), "step": int(step),
                               **({"of_epochs": int(of_epochs)} if of_epochs is not None else {})}

    def finish(self, results: dict, report: str) -> None:
        """Write results.json and report.md, then move every staged file into place (process 0 of a
        multi-process run; the others only drop their copies)."""
        self.open()
        if not _main_process():
            self.abandon()
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            return
        results = {"study": self.name, "budget": self.budget, **results}
        if self.smoke_run:
            results["smoke_run"] = SMOKE_RUN_NOTE
            report = f"**{SMOKE_RUN_NOTE}**\n\n{report}"
        if self.config is not None:
            results["config"] = self.config.to_dict()
        results["runtime_seconds"] = round(time.time() - self.started, 1)
        if self.phase_seconds:
            results["phase_seconds"] = self.phase_seconds
        if self.resumed:
            results["resumed"] = self.resumed
        (self.staging / "results.json").write_text(json.dumps(to_jsonable(results), indent=2))
        (self.staging / "report.md").write_text(report)
        files = sorted(p.name for p in self.staging.iterdir())
        for name in files:
            target = self.root / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(self.staging / name, target)
        self.staging.rmdir()
        self._write_marker("finished", files)
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        figures = sum(name.endswith(".png") for name in files)
        print(f"wrote {self.root}/results.json, report.md and {figures} figures")

    def abandon(self) -> None:
        """After a failure: drop the staged files; remove the folder if this run created it and left nothing
        worth keeping (no checkpoint); else put back the marker it found (an unfinished run stays one)."""
        if not self._opened:
            return
        if not _main_process():
            shutil.rmtree(self.staging, ignore_errors=True)
            self._opened = False
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        kept = [p for p in self.root.iterdir() if p.name != MARKER] if self.root.exists() else []
        if self._created_root and not kept:
            shutil.rmtree(self.root, ignore_errors=True)
        elif self._previous_marker is not None and not self.overwrite:
            (self.root / MARKER).write_text(self._previous_marker)
        self._opened = False


def check_out_folder(root: Path) -> None:
    """OutputFolderError unless --out `root` is a folder, or can be made one: its nearest existing ancestor
    (itself included) is a writable folder."""
    for parent in [root, *root.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputFolderError(f"--out {root}: {parent} is a file, not a folder; choose another --out")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputFolderError(f"--out {root}: {parent} is not writable; choose another --out")
            return


def _main_process() -> bool:
    """Whether this process writes the study's files: always, except in processes 1.. of a multi-process run."""
    distributed = sys.modules.get("jaxgen.distributed")
    return distributed is None or distributed.is_main_process()


def _barrier(name: str) -> None:
    distributed = sys.modules.get("jaxgen.distributed")
    if distributed is not None:
        distributed.barrier(name)


def _read_marker(root: Path) -> dict | None:
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "study" in marker else None


def _differences(there: dict | None, here: dict | None, shown: int = 3) -> str:
    """'epochs 2 there, 1 here; ...' for the fields that differ ('' when none)."""
    if there is None or here is None:
        return ""
    keys = [k for k in sorted(set(there) | set(here)) if there.get(k) != here.get(k)]
    parts = [f"{configs.flag(k)} {show_value(there.get(k))} there, {show_value(here.get(k))} here" for k in keys[:shown]]
    return "; ".join(parts) + ("; ..." if len(keys) > shown else "")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ---------------------------------------------------------------------------------------------- training

def train_model(name: str, params, objective, train_set, test_set, config, epochs: int, args, output,
                cosine_decay: bool = False):
    """Adam-train one model of a study with checkpoints under OUT/checkpoints/NAME; (params, history).
    `config` provides batch_size, learning_rate and seed; `args` the --resume / --overwrite flags."""
    from jaxgen import train  # JAX starts here, not when the command line is parsed

    settings = train.TrainConfig(epochs=epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
                                 seed=getattr(config, "seed", args.seed), cosine_decay=cosine_decay)
    state = train.create_train_state(params, train.adam(settings, len(train_set) // config.batch_size))
    state, history = train.fit(state, objective, train_set, test_set, settings, output.checkpoint_dir(name),
                               resume=args.resume, overwrite=args.overwrite, desc=name,
                               on_resume=lambda epoch, step: output.note_resumed(name, epoch, step, epochs))
    return state.params, history


# ---------------------------------------------------------------------------------------------- results


def to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
