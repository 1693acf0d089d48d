import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import image_prior
from experiments.configs.image_prior import get_config
from jaxgen import data, objectives, outliers, restoration
from jaxgen.models.autoencoders import BoundedAE
from jaxgen.uniformity import sliced_wasserstein_to_uniform, uniformity_report
from tests.quick_study import assert_report_shows_every_figure, run_quick_study

MODEL = BoundedAE((28, 28, 1), 10, (8, 16))


@pytest.fixture(scope="module")
def params():
    return MODEL.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))


def test_codes_are_bounded_by_the_sigmoid(params):
    extreme = jnp.concatenate([jnp.full((2, 28, 28, 1), 1e4), jnp.full((2, 28, 28, 1), -1e4),
                               jax.random.normal(jax.random.key(1), (4, 28, 28, 1))])
    codes = MODEL.apply(params, extreme, method=MODEL.encode)
    assert codes.shape == (8, 10)
    assert float(codes.min()) >= 0.0 and float(codes.max()) <= 1.0


def clustered_codes(n=256, d=10):
    return 0.5 + 0.02 * jax.random.normal(jax.random.key(2), (n, d))


def test_regulariser_prefers_uniform_codes_and_pushes_clusters_apart():
    rng = jax.random.key(3)
    uniform = jax.random.uniform(jax.random.key(4), (256, 10))
    clustered = clustered_codes()
    assert float(sliced_wasserstein_to_uniform(rng, uniform)) < 0.1 * float(sliced_wasserstein_to_uniform(rng, clustered))
    grad = jax.grad(lambda c: sliced_wasserstein_to_uniform(rng, c))(clustered)
    assert float(jnp.abs(grad).max()) > 0
    loss_and_grad = jax.jit(jax.value_and_grad(lambda c, r: sliced_wasserstein_to_uniform(r, c)))
    codes = clustered
    for step in range(20):  # plain gradient descent on the codes alone
        _, grad = loss_and_grad(codes, jax.random.fold_in(rng, step))
        codes = codes - 200.0 * grad
    assert float(codes.std(axis=0).mean()) > 3 * float(clustered.std(axis=0).mean())
    assert float(sliced_wasserstein_to_uniform(rng, codes)) < 0.2 * float(sliced_wasserstein_to_uniform(rng, clustered))


def test_uniformity_report_tells_uniform_from_clustered():
    uniform = np.random.default_rng(0).random((2000, 10))
    good, bad = uniformity_report(uniform), uniformity_report(np.asarray(clustered_codes(2000)))
    assert good["ks_mean"] < 0.05 and bad["ks_mean"] > 0.4
    assert good["sliced_w2_joint"] < 0.01 * bad["sliced_w2_joint"]
    assert good["mmd_joint"] < bad["mmd_joint"]
    corner = uniformity_report(np.asarray(0.1 * clustered_codes(2000)))  # all codes near the origin
    assert corner["occupied_orthants"] == 1 / 2 ** 10 < good["occupied_orthants"]


def test_restoration_objective_decreases(params):
    clean = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    noisy = clean + 0.2 * np.random.default_rng(1).normal(size=clean.shape).astype(np.float32)
    _, objective = restoration.restore(MODEL, params, noisy, np.ones((28, 28, 1), np.float32), 0.2, 0.01, steps=30)
    assert objective[-1] < 0.9 * objective[0]


def test_denoising_without_prior_returns_the_observation(params):
    observed = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    restored, _ = restoration.restore(MODEL, params, observed, np.ones((28, 28, 1), np.float32), 0.1, np.inf,
                                      steps=20)
    np.testing.assert_array_equal(restored, observed)


def test_inpainting_mask_and_data_term_touch_only_the_observed_pixels(params):
    mask = restoration.central_block_mask((28, 28), 10)
    assert mask.sum() == 28 * 28 - 100 and mask[9:19, 9:19].sum() == 0 and mask[:9].min() == 1
    x = jnp.asarray(np.random.default_rng(0).random((2, 28, 28, 1)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(1).random((2, 28, 28, 1)), jnp.float32)
    y_changed_inside = y.at[:, 12, 12, 0].set(0.0)
    y_changed_outside = y.at[:, 0, 0, 0].set(0.0)
    value = restoration.negative_log_posterior(MODEL, params, x, y, mask, 0.1, 0.01)
    np.testing.assert_array_equal(value, restoration.negative_log_posterior(MODEL, params, x, y_changed_inside,
                                                                            mask, 0.1, 0.01))
    assert not np.allclose(value, restoration.negative_log_posterior(MODEL, params, x, y_changed_outside, mask,
                                                                     0.1, 0.01))


def test_the_naive_model_is_a_sigmoid_code_and_nothing_else():
    naive = BoundedAE((28, 28, 1), 10, (8, 16), layer_norm=False)
    variables = naive.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    assert "pre_sigmoid_norm" not in variables["params"] and "pre_sigmoid_norm" in MODEL.init(
        jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
    pre = naive.apply(variables, x, method=lambda m, x: m.encoder(x))
    np.testing.assert_allclose(naive.apply(variables, x, method=naive.encode), jax.nn.sigmoid(pre), rtol=1e-6)
    # The assignment's loss is the norm |D(E(x)) - x|, the prior's energy; the logged recon stays the SSE.
    objective = objectives.bounded_ae_objective(naive, reconstruction="norm")
    terms = objective({"params": variables["params"]}, {"image": x}, jax.random.key(2))
    np.testing.assert_allclose(terms["loss"], jnp.sqrt(terms["recon"]), rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], restoration.prior_energy(naive, variables, x), rtol=1e-5)
    squared = objectives.bounded_ae_objective(naive)({"params": variables["params"]}, {"image": x}, jax.random.key(2))
    np.testing.assert_allclose(squared["loss"], terms["recon"], rtol=1e-6)


def test_class_split_and_auroc_per_set():
    dataset = data.Dataset(images=np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1), labels=np.arange(10) % 5,
                           class_names=tuple("01234"), source="test")
    inliers, held_out = outliers.split_classes(dataset, (0, 1))
    assert inliers.labels.tolist() == [0, 1, 0, 1] and sorted(set(held_out.labels.tolist())) == [2, 3, 4]
    assert len(inliers) + len(held_out) == 10
    auroc = outliers.auroc_per_set(np.array([0.0, 1.0, 2.0]), {"far": np.array([5.0, 6.0]),
                                                                 "mixed": np.array([0.5, 1.5])})
    assert auroc["far"] == 1.0 and auroc["mixed"] == pytest.approx(0.5)
    assert auroc["all"] == pytest.approx((6 + 3) / 12)


def test_the_temperature_sweep_widens_until_the_optimum_is_inside():
    scored = []

    def score(T):  # peaks at T = 1000, far above the initial range
        scored.append(T)
        return {"temperature": T, "psnr": -abs(np.log10(T) - 3.0)}

    rows, best, inside = restoration.sweep_temperature(score, (0.01, 0.1, 1.0))
    assert best["temperature"] == pytest.approx(1000.0) and inside
    assert [r["temperature"] for r in rows] == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0])
    _, best, inside = restoration.sweep_temperature(score, (0.01, 0.1, 1.0), max_widenings=2)
    assert best["temperature"] == pytest.approx(100.0) and not inside  # the limit is reported, not hidden
    _, best, inside = restoration.sweep_temperature(score, (10.0, 1000.0, 1e5))
    assert best["temperature"] == 1000.0 and inside and len(scored) == 7 + 5 + 3  # nothing added when inside


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run_quick_study(tmp_path_factory, image_prior, "mnist", "--train-examples", "1024",
                           "--test-examples", "400", "--validation-images", "8", "--restoration-images", "8",
                           "--restoration-steps", "10", "--outliers-per-kind", "64", "--uniform-decodes", "64")


def test_quick_run_writes_every_row_over_the_seeds(quick_run):
    out, results = quick_run
    seeds = get_config("quick").seeds
    assert len(seeds) >= 2 and results["config"]["seeds"] == list(seeds)
    assert set(results["per_seed"]) == {str(s) for s in seeds}
    assert image_prior.VARIANTS == ("naive", "layernorm", "regularized")
    for variant in image_prior.VARIANTS:
        summary = results[variant]
        for metric in ("ks_mean", "sliced_w2_joint", "denoise_psnr", "denoise_ssim", "inpaint_psnr", "inpaint_ssim",
                       "auroc_held_out_digits", "auroc_noise", "auroc_inverted", "auroc_all"):
            values = summary[metric]["values"]
            assert len(values) == len(seeds) and np.isfinite(values).all(), (variant, metric)
            assert summary[metric]["mean"] == pytest.approx(np.mean(values))
            assert summary[metric]["std"] == pytest.approx(np.std(values))
        for seed in seeds:
            scores = results["per_seed"][str(seed)][variant]
            assert 0.0 <= scores["uniformity"]["ks_mean"] <= 1.0
            assert all(0.0 <= a <= 1.0 for a in scores["outlier_auroc"].values())
            assert 0.0 <= scores["code_range"][0] <= scores["code_range"][1] <= 1.0
            assert len(scores["history"]["train"]["recon"]) == get_config("quick").epochs
            for task in ("denoise", "inpaint"):
                sweep = [row["temperature"] for row in scores["restoration_T_sweep"][task]]
                assert scores[task]["temperature"] in sweep and set(get_config("quick").temperatures) <= set(sweep)
                assert scores[task]["temperature_inside_sweep"] == (min(sweep) < scores[task]["temperature"]
                                                                    < max(sweep))
    assert results["outlier_sets"]["held_out_digits"] > 0
    assert results["train_examples"] < 1024  # digits 0-4 only
    assert results["per_seed"][str(seeds[0])]["naive"]["history"]["train"]["uniformity"][0] > 0  # logged only
    for key in ("regularized_vs_naive", "regularized_vs_layernorm"):
        outcomes = {row["metric"]: row["outcome"] for row in results["verdict"][key]}
        assert {"auroc_held_out_digits", "auroc_all", "denoise_psnr", "inpaint_psnr"} <= set(outcomes)
        assert set(outcomes.values()) <= {"better", "worse", "no consistent difference"}
    report = (out / "report.md").read_text()
    assert "## Verdict" in report and "expectation" in report
    assert_report_shows_every_figure(out)
