"""The config system: every study's config, its command line, and the values a run records."""
import dataclasses
import importlib
import json

import pytest

from experiments import common, configs
from jaxgen.errors import ConfigError

STUDIES = ("mnist_vae", "vae_stl10", "cifar_autoencoders", "image_prior", "dino_diffusion")
BUDGET_FLAGS = ("--epochs", "--batch-size", "--learning-rate", "--seed", "--quick", "--out", "--resume",
                "--overwrite", "--debug", "--data-dir")


def parse(study, *argv):
    parser = common.study_parser(study, "", importlib.import_module(f"experiments.configs.{study}").get_config)
    return common.parse_study_args(parser, list(argv))


@pytest.mark.parametrize("study", STUDIES)
def test_config_module_says_how_to_run_it(study):
    module = importlib.import_module(f"experiments.configs.{study}")
    for key in ("COMMAND:", "RUNTIME:", "RESULT:"):
        assert key in module.__doc__, key
    full, quick = module.get_config(), module.get_config("quick")
    assert full != quick and quick.epochs <= full.epochs
    assert module.get_config("full") == full
    for field in dataclasses.fields(full):
        assert field.metadata.get("help"), f"{study}.{field.name} has no help text"
    # Both variants are valid, and JSON holds them.
    configs.validate(full), configs.validate(quick)
    json.dumps(full.to_dict())
    with pytest.raises(ConfigError, match="variant"):
        module.get_config("runlocal")


@pytest.mark.parametrize("study", STUDIES)
def test_help_lists_the_budget_flags_with_the_assignment_defaults(study, capsys):
    main = importlib.import_module(f"experiments.{study}").main
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in BUDGET_FLAGS:
        assert flag in text, flag
    full = configs.load(study)
    assert f"Default {full.epochs}" in text and "--config.epochs" in text
    quick = configs.load(study, "quick")
    assert f"(--quick: {quick.epochs})" in text


@pytest.mark.parametrize("study", STUDIES)
def test_short_flags_and_config_overrides_set_the_same_fields(study):
    _, short = parse(study, "--quick", "--epochs", "1", "--batch-size", "16", "--seed", "3")
    _, dotted = parse(study, "--quick", "--config.epochs=1", "--config.batch_size=16", "--config.seed=3")
    expected = configs.load(study, "quick").replace(epochs=1, batch_size=16, seed=3)
    assert short == dotted == expected
    args, full = parse(study, "--learning-rate", "0.005")
    assert full == configs.load(study).replace(learning_rate=0.005) and args.seed == 0 and not args.quick


@pytest.mark.parametrize("study", STUDIES)
@pytest.mark.parametrize("argv, flag", [
    (["--epochs", "0"], "--epochs 0"), (["--epochs", "-1"], "--epochs -1"), (["--batch-size", "0"], "--batch-size 0"),
    (["--config.batch_size=-5"], "--config.batch_size -5"), (["--learning-rate", "abc"], "--learning-rate abc"),
    (["--learning-rate", "nan"], "--learning-rate nan"), (["--seed", "1.5"], "--seed 1.5")])
def test_a_value_out_of_range_is_refused_naming_the_flag_and_range(study, argv, flag):
    with pytest.raises(ConfigError) as error:
        parse(study, *argv)
    message = str(error.value)
    assert message.startswith(flag) and "must be" in message and "\n" not in message


def test_typed_values_optional_counts_tuples_and_switches():
    _, config = parse("vae_stl10", "--train-examples", "all", "--channels", "8,16", "--unlabeled",
                      "--config.interpolation_pairs=1,2,3,4")
    assert config.train_examples is None and config.channels == (8, 16) and config.unlabeled is True
    assert config.interpolation_pairs == (1, 2, 3, 4)
    _, config = parse("vae_stl10", "--config.unlabeled=false", "--train-examples", "100")
    assert config.unlabeled is False and config.train_examples == 100
    with pytest.raises(ConfigError, match="--unlabeled .*--dataset stl10"):
        parse("vae_stl10", "--unlabeled", "--dataset", "cifar10")
    with pytest.raises(ConfigError, match="--dataset imagenet: must be one of stl10"):
        parse("vae_stl10", "--dataset", "imagenet")
    with pytest.raises(ConfigError, match="even number"):
        parse("vae_stl10", "--style-pairs", "1,2,3")
    with pytest.raises(ConfigError, match="--arithmetic"):
        parse("cifar_autoencoders", "--arithmetic", "dog,cat")
    with pytest.raises(ConfigError, match="multiple of 64"):
        parse("cifar_autoencoders", "--latent-dim", "100")


def test_contradicting_common_flags_are_refused():
    with pytest.raises(ConfigError, match="--resume and --overwrite"):
        parse("mnist_vae", "--resume", "--overwrite")


def test_unknown_field_gets_argparse_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("mnist_vae", "--config.no_such_field=1")
    assert exit_info.value.code == 2
    assert "--config.no_such_field" in capsys.readouterr().err


def test_a_run_records_exactly_the_flags_given_and_resumes_only_the_same_config(tmp_path, capsys):
    """The dino study end to end (embedded data, no data folder): flags in, the same config out."""
    from experiments import dino_diffusion
    out = tmp_path / "run"
    dino_diffusion.main(["--quick", "--epochs", "1", "--batch-size", "16", "--out", str(out)])
    expected = configs.load("dino_diffusion", "quick").replace(epochs=1, batch_size=16).to_dict()
    results = json.loads((out / "results.json").read_text())
    assert results["config"] == expected and results["study"] == "dino_diffusion" and results["budget"] == "quick"
    marker = json.loads((out / common.MARKER).read_text())
    assert marker["state"] == "finished" and marker["config"] == expected
    assert set(marker["files"]) == {p.name for p in out.iterdir()} - {common.MARKER, "checkpoints", "models"}
    # The same config written as overrides continues the run: every model is reused, and said so.
    capsys.readouterr()
    dino_diffusion.main(["--quick", "--config.epochs=1", "--config.batch_size=16", "--out", str(out), "--resume"])
    again = json.loads((out / "results.json").read_text())
    assert again["config"] == expected
    assert set(again["resumed"]) == {p.name for p in (out / "checkpoints").iterdir()}
    timing = {"runtime_seconds", "phase_seconds", "resumed"}
    assert {k: v for k, v in again.items() if k not in timing} == {k: v for k, v in results.items() if k not in timing}
    assert "already trained" in capsys.readouterr().out
    # Another config is refused before anything is read or written.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(common.OutputFolderError, match="--epochs 1 there, 2 here"):
        dino_diffusion.main(["--quick", "--epochs", "2", "--batch-size", "16", "--out", str(out), "--resume"])
    with pytest.raises(common.OutputFolderError, match="finished dino_diffusion run with this config"):
        dino_diffusion.main(["--quick", "--epochs", "1", "--batch-size", "16", "--out", str(out)])
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def output_for(out, *flags, study="mnist_vae"):
    args, config = parse(study, "--quick", "--out", str(out), *flags)
    return common.StudyOutput(study, args, config)


def test_overwrite_replaces_another_runs_files_and_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"study": "dino_diffusion", "state": "finished", "config": {},
                                              "files": ["results.json", "report.md", "samples.png"]}))
    for name in ("results.json", "report.md", "samples.png", "notes.txt"):
        (out / name).write_text(name)
    (out / "models" / "fourier").mkdir(parents=True)
    with pytest.raises(common.OutputFolderError, match="finished dino_diffusion run"):
        output_for(out)
    output = output_for(out, "--overwrite")
    assert (out / "samples.png").exists()  # nothing is removed before the run has its data
    output.open()
    assert sorted(p.name for p in out.iterdir()) == [".staging", "notes.txt", "run.json"]
    output.figure("interpolation.png").write_bytes(b"png")
    output.note_resumed("conv", 2, 16, 2)
    output.finish({"score": 1.0}, "# report\n")
    assert sorted(p.name for p in out.iterdir()) == ["interpolation.png", "notes.txt", "report.md", "results.json",
                                                      "run.json"]
    results = json.loads((out / "results.json").read_text())
    assert results["study"] == "mnist_vae" and results["resumed"] == {"conv": {"epoch": 2, "step": 16,
                                                                               "of_epochs": 2}}
    assert results["config"] == configs.load("mnist_vae", "quick").to_dict()


def test_a_failed_run_leaves_nothing_new_behind(tmp_path):
    out = tmp_path / "new"
    output = output_for(out)
    assert not out.exists()  # checking the folder writes nothing
    output.figure("a.png").write_bytes(b"png")
    common.abandon_outputs()
    assert not out.exists()
    # A failed continuation keeps the checkpoints and the marker it found; the staged figures go.
    out.mkdir()
    marker = json.dumps({"study": "mnist_vae", "state": "unfinished",
                         "config": configs.load("mnist_vae", "quick").to_dict()})
    (out / "run.json").write_text(marker)
    (out / "checkpoints" / "conv").mkdir(parents=True)
    output = output_for(out, "--resume")
    output.figure("a.png").write_bytes(b"png")
    common.abandon_outputs()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "run.json"]
    assert (out / "run.json").read_text() == marker


def test_quick_smoke_run_says_so_first(tmp_path, capsys):
    output = output_for(tmp_path / "out", study="vae_stl10")
    assert capsys.readouterr().out.startswith("This is a --quick smoke run")
    output.finish({}, "# Conv VAE\n")
    assert (tmp_path / "out" / "report.md").read_text().startswith("**This is a --quick smoke run")
    assert not output_for(tmp_path / "full", study="mnist_vae").smoke_run


# ------------------------------------------------------------------ stylegan_inversion: iterations, not epochs

def test_stylegan_inversion_config_and_help(capsys):
    from experiments import stylegan_inversion
    from experiments.configs import stylegan_inversion as module
    from jaxgen.stylegan import invert, targets

    for key in ("COMMAND:", "RUNTIME:", "RESULT:"):
        assert key in module.__doc__, key
    full, quick = module.get_config(), module.get_config("quick")
    assert quick.iterations < full.iterations == 1000 and full.batch_size == 8
    assert all(field.metadata.get("help") for field in dataclasses.fields(full))
    configs.validate(full), configs.validate(quick)
    assert module.ALIGN_MODES == targets.ALIGN_MODES and module.RECIPES == ("plain", *invert.RECIPES)
    with pytest.raises(SystemExit) as exit_info:
        stylegan_inversion.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    # Every flag the study had before its config, and the common ones.
    for flag in ("--iterations", "--batch-size", "--learning-rate", "--seed", "--lpips-weight", "--cos-weight",
                 "--lpips-resolution", "--crossover-k", "--align", "--recipe", "--weights", "--weights-sha256",
                 "--self-test", "--targets", "--crop-box", *BUDGET_FLAGS[3:]):
        assert flag in text, flag
    assert "Default 1000 (--quick: 10)" in text and "--config.iterations" in text


def parse_stylegan(*argv):
    from experiments import stylegan_inversion
    return stylegan_inversion.parse_args(list(argv))


def test_stylegan_inversion_flags_and_overrides():
    from experiments.configs import stylegan_inversion as module
    _, short = parse_stylegan("--self-test", "--quick", "--iterations", "3", "--batch-size", "4", "--align", "off",
                              "--targets", "a.png")
    _, dotted = parse_stylegan("--self-test", "--quick", "--config.iterations=3", "--config.batch_size=4",
                               "--config.align=off", "--targets", "a.png")
    expected = module.get_config("quick").replace(iterations=3, batch_size=4, align="off",
                                                  lpips_resolution=module.SELF_TEST_LPIPS_RESOLUTION)
    assert short == dotted == expected
    args, config = parse_stylegan("--weights", "ffhq", "--crop-box", "0.1,0.2,0.5,0.6")
    assert config == module.get_config() and config.lpips_resolution == 256  # 48 only with --self-test
    assert args.crop_box == [(0.1, 0.2, 0.5, 0.6)]
    _, config = parse_stylegan("--self-test", "--lpips-resolution", "64")
    assert config.lpips_resolution == 64


@pytest.mark.parametrize("argv, message", [
    (["--iterations", "0"], "--iterations 0: must be an integer in [1,"),
    (["--config.batch_size=-5"], "--config.batch_size -5: must be"),
    (["--learning-rate", "nan"], "--learning-rate nan: must be"),
    (["--recipe", "mine"], "--recipe mine: must be one of plain, official, rosinality"),
    (["--align", "maybe"], "--align maybe: must be one of auto, on, off"),
    (["--lpips-resolution", "8"], "--lpips-resolution 8: must be"),
    (["--weights", "ffhq"], "--weights and --self-test"),
    (["--crop-box", "0.5,0.1,0.2,0.9"], "--crop-box 0.5,0.1,0.2,0.9: must lie inside"),
    (["--crop-box", "1,2"], "--crop-box 1,2: must be four numbers"),
    (["--crop-box", "0,0,1,1", "--crop-box", "0,0,1,1"], "--crop-box given 2 times"),
    (["--weights-sha256", "ab"], "--weights-sha256"),
    (["--targets", "a.png", "--self-test-targets", "3"], "--self-test-targets"),
    (["--align", "on"], "--align aligns --targets"),
])
def test_stylegan_inversion_refuses_bad_and_ignored_flags(argv, message):
    from jaxgen.errors import UserError
    with pytest.raises(UserError) as error:
        parse_stylegan("--self-test", *argv)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
