import json

import pytest

from experiments import mnist_vae
from experiments.configs.mnist_vae import get_config
from tests.quick_study import run_quick_study

# The quick budget with fewer steps, for the test's time: the code path is the same.
FLAGS = ("--train-examples", "1024", "--batch-size", "128")
QUICK = get_config("quick").replace(train_examples=1024, batch_size=128)
MODELS = ("fc_100", "fc_200", "fc_300", "conv", "fc_2d")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run_quick_study(tmp_path_factory, mnist_vae, "mnist", *FLAGS)


def test_quick_run_writes_every_key(quick_run):
    out, results = quick_run
    for model in MODELS:
        assert results[model]["test_neg_elbo"] > 0
        assert set(results[model]["history"]["test"]) == {"loss", "recon", "kl"}
        assert len(results[model]["history"]["train"]["loss"]) == QUICK.epochs
    assert results["conv"]["num_params"] == 1_749_481
    assert results["conv"]["test_nll_iw"] > 0
    # The importance-weighted bound is tighter than the ELBO (on its subset, up to noise).
    assert results["conv"]["test_nll_iw"] < results["conv"]["test_neg_elbo"] + 3 * results["conv"]["iw"]["std_error"]
    assert 0.0 <= results["classifier"]["test_accuracy"] <= 1.0
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        assert 0.0 <= results["gmm"][key] <= 1.0
    histogram = results["prior_samples"]["class_histogram"]
    assert len(histogram) == 10 and sum(histogram) == QUICK.prior_samples


def test_quick_run_writes_report_and_figures(quick_run):
    out, _ = quick_run
    report = (out / "report.md").read_text()
    figures = sorted(p.name for p in out.glob("*.png"))
    assert "interpolation.png" in figures and "latent_2d_manifold.png" in figures and len(figures) >= 15
    for figure in figures:
        assert f"({figure})" in report
    assert not (out / ".staging").exists()


def test_rerun_without_resume_refuses_and_keeps_results(quick_run):
    out, results = quick_run
    with pytest.raises(Exception, match="--resume"):
        mnist_vae.main(["--quick", "--out", str(out), *FLAGS])
    assert json.loads((out / "results.json").read_text()) == results


def test_resume_reuses_finished_models(quick_run):
    out, results = quick_run
    mnist_vae.main(["--quick", "--out", str(out), "--resume", *FLAGS])
    again = json.loads((out / "results.json").read_text())
    # The resumed run says where each model continued: after its last epoch, at its last step.
    assert set(again["resumed"]) == {*MODELS, "classifier"}
    assert again["resumed"]["conv"] == {"epoch": QUICK.epochs, "step": QUICK.epochs * (1024 // 128),
                                        "of_epochs": QUICK.epochs}
    for model in MODELS:
        assert again[model]["test_neg_elbo"] == results[model]["test_neg_elbo"]
        assert again[model]["history"] == results[model]["history"]
