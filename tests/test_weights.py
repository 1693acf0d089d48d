"""StyleGAN2 weights without torch: PyTorch's tensor files read as NumPy (checked against torch itself),
and `--weights NAME | URL | FILE | FOLDER` downloading, converting and caching once.

Downloads come from a local HTTP server on 127.0.0.1 that the tests start and stop (tests/local_server.py);
nothing else is contacted. The official-layout pickles are written with NVIDIA's own network code (draggan's vendored
copy, `pip install --no-deps draggan==1.1.6`); those tests skip without it."""
import io
import pickle
import zipfile

import numpy as np
import pytest

from jaxgen.errors import WeightsError
from jaxgen.stylegan import weights
from jaxgen.stylegan.convert import torch_pickle
from jaxgen.stylegan.generator import StyleGAN2Config, load_generator

torch = pytest.importorskip("torch")

# 16 px, 3 blocks, 6 w+ rows: the smallest generator that still has up-sampling blocks.
SMALL = StyleGAN2Config(z_dim=16, w_dim=16, img_resolution=16, channel_base=128, channel_max=16, mapping_layers=2)


def sample_tensors() -> dict:
    """Tensors of every common dtype and layout: views with offsets and strides, shared storages."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 7, generator=generator)
    return {
        "float": base, "transposed": base.t(), "offset_view": base[2:, 1:5], "strided": base[::2, ::3],
        "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3),
        "double": torch.randn(3, 2, dtype=torch.float64, generator=generator),
        "half": torch.randn(4, dtype=torch.float16, generator=generator),
        "bfloat16": torch.randn(5, generator=generator).to(torch.bfloat16),
        "long": torch.arange(-3, 9), "int8": torch.arange(-4, 4, dtype=torch.int8),
        "bool": torch.tensor([True, False, True]),
        "parameter": torch.nn.Parameter(torch.randn(2, 3, generator=generator)),
    }


def assert_same_tensors(read: dict, written: dict):
    assert set(read) == set(written)
    for name, tensor in written.items():
        expected = tensor.detach().to(torch.float32).numpy() if tensor.dtype == torch.bfloat16 else tensor.detach().numpy()
        got = np.asarray(read[name], np.float32) if tensor.dtype == torch.bfloat16 else np.asarray(read[name])
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_save_files_read_without_torch_equal_torch(tmp_path, zip_format):
    written = sample_tensors()
    torch.save({"tensors": written, "note": "ok", "step": 7}, tmp_path / "t.pt",
               _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(tmp_path / "t.pt") == zip_format
    read = torch_pickle.load(tmp_path / "t.pt")
    assert read["note"] == "ok" and read["step"] == 7
    assert_same_tensors(read["tensors"], written)


def test_plain_pickles_of_tensors_read_without_torch_equal_torch():
    """The official pickles' way: pickle.dump, each storage a legacy torch.save inside the pickle."""
    written = sample_tensors()
    read = torch_pickle.RestrictedUnpickler(
        io.BytesIO(pickle.dumps(written)), {("torch.storage", "_load_from_bytes"): torch_pickle.load_from_bytes}).load()
    assert_same_tensors(read, written)


def test_a_file_naming_other_code_is_refused_in_one_line_naming_it(tmp_path):
    torch.save({"weights": torch.ones(2), "callback": print}, tmp_path / "odd.pt")
    with pytest.raises(WeightsError) as refused:
        torch_pickle.load(tmp_path / "odd.pt")
    message = str(refused.value)
    assert "odd.pt" in message and "print, which" in message and "\n" not in message
    assert "weights_only" not in message
    (tmp_path / "cut.pt").write_bytes((tmp_path / "odd.pt").read_bytes()[:300])
    with pytest.raises(WeightsError, match="cut.pt"):
        torch_pickle.load(tmp_path / "cut.pt")


# ----------------------------------------------------------------------------- official pickles by URL

@pytest.fixture(scope="module")
def official_pickles(tmp_path_factory):
    """{'g.pkl': bytes, 'conditional.pkl': bytes, 'stylegan3.pkl': ...}: release pickles written as NVIDIA
    writes them, of a small seeded generator (and a conditional one)."""
    from benchmarks.torch_models import official_stylegan2_generator, official_stylegan2_networks
    try:
        networks = official_stylegan2_networks()
    except ModuleNotFoundError as error:
        pytest.skip(str(error))
    generator = official_stylegan2_generator(SMALL, seed=1)
    conditional = networks.Generator(z_dim=16, c_dim=10, w_dim=16, img_resolution=16, img_channels=3,
                                     synthesis_kwargs=dict(channel_base=128, channel_max=16))
    return {"g.pkl": pickle.dumps({"G_ema": generator}), "conditional.pkl": pickle.dumps({"G_ema": conditional})}


@pytest.fixture
def server(official_pickles, file_server):
    """tests/local_server.FileServer over the official pickles; `requests` lists the paths asked for."""
    for name, content in official_pickles.items():
        (file_server.folder / name).write_bytes(content)
    served = file_server()
    served.files = official_pickles
    return served


def requested(server) -> list[str]:
    return [path for path, _ in server.requests]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXGEN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAXGEN_MIRROR", raising=False)
    return tmp_path / "cache"


def test_weights_by_url_download_convert_and_cache_once(server, cache, tmp_path):
    url = f"{server.url}/g.pkl"
    module, variables, first = weights.load(url, progress=False)
    assert requested(server) == ["/g.pkl"] and first.converted_now
    assert module.config == StyleGAN2Config(**{**SMALL.to_dict(), "conv_clamp": None})
    assert first.folder == cache / "stylegan2" / "converted" / first.sha256
    assert first.sha256 == weights.file_sha256(next((cache / "stylegan2" / "downloads").glob("*-g.pkl")))
    # The same weights as converting the file directly.
    (tmp_path / "g.pkl").write_bytes(server.files["g.pkl"])
    _, direct, _ = weights.load(str(tmp_path / "g.pkl"))
    np.testing.assert_array_equal(variables["params"]["synthesis"]["b16"]["conv0"]["kernel"],
                                  direct["params"]["synthesis"]["b16"]["conv0"]["kernel"])

    # A second run needs neither the network nor the pickle.
    for downloaded in (cache / "stylegan2" / "downloads").glob("*-g.pkl"):
        downloaded.unlink()
    _, again, second = weights.load(url, progress=False)
    assert requested(server) == ["/g.pkl"] and not second.converted_now and second.folder == first.folder
    np.testing.assert_array_equal(again["buffers"]["mapping"]["w_avg"], variables["buffers"]["mapping"]["w_avg"])
    # Pinned to the recorded hash: still no request; pinned to another: refused.
    assert weights.resolve(url, sha256=first.sha256).folder == first.folder
    assert requested(server) == ["/g.pkl"]
    with pytest.raises(Exception, match="sha256|checksum"):
        weights.resolve(url, sha256="0" * 64, progress=False)


def test_unsupported_weights_are_refused_in_one_line(server, cache, tmp_path):
    with pytest.raises(WeightsError, match="conditional") as refused:
        weights.resolve(f"{server.url}/conditional.pkl", progress=False)
    assert "supported" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(WeightsError, match="conditional.*ffhq"):  # refused before any download
        weights.resolve("cifar10")
    with pytest.raises(WeightsError, match="no such file.*ffhq, ffhq-512"):
        weights.resolve(str(tmp_path / "missing.pkl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="not a converted generator"):
        weights.resolve(str(tmp_path / "empty"))
    with pytest.raises(WeightsError, match="64 hex"):
        weights.resolve("ffhq", sha256="abc")
    assert not list((cache / "stylegan2" / "converted").glob("*")) if (cache / "stylegan2" / "converted").exists() \
        else True


def test_release_table_lists_official_nvidia_urls():
    for name, release in weights.RELEASES.items():
        assert release.url.startswith(("https://api.ngc.nvidia.com/", "https://nvlabs-fi-cdn.nvidia.com/")), name
        assert release.url.endswith(".pkl") and release.resolution in (32, 256, 512, 1024)
    assert "ffhq" in weights.supported_names() and "cifar10" not in weights.supported_names()


def test_a_converted_folder_loads_as_it_is(server, cache, tmp_path):
    resolved = weights.resolve(f"{server.url}/g.pkl", progress=False)
    again = weights.resolve(str(resolved.folder))
    assert again.folder == resolved.folder and again.sha256 == resolved.sha256
    module, _ = load_generator(again.folder)
    assert module.config.img_resolution == 16


def release_pickle(tmp_path, monkeypatch, synthesis_modules: dict, c_dim: int = 0, architecture: str = "skip"):
    """A pickle laid out as NVIDIA's persistence module writes one, with no tensors: enough to be refused."""
    import sys
    import types

    module = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: the reader has its own
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)

    class Saved:
        def __init__(self, state):
            self.state = state

        def __reduce__(self):
            return _reconstruct_persistent_obj, ({"class_name": "X", "state": self.state, "module_src": "raise"},)

    blocks = {name: Saved({"architecture": architecture}) for name in synthesis_modules}
    generator = Saved({"c_dim": c_dim, "_modules": {"mapping": Saved({}), "synthesis": Saved({"_modules": blocks})}})
    path = tmp_path / "network.pkl"
    path.write_bytes(pickle.dumps({"G_ema": generator}))
    return path


@pytest.mark.parametrize("blocks, c_dim, architecture, refusal", [
    (("input", "L0_36_512"), 0, "skip", "StyleGAN3"),
    (("b4", "b8"), 10, "skip", "conditional generator \\(c_dim = 10"),
    (("b4", "b8"), 0, "resnet", "'resnet' architecture"),
])
def test_other_architectures_are_refused_in_one_line(tmp_path, monkeypatch, blocks, c_dim, architecture, refusal):
    path = release_pickle(tmp_path, monkeypatch, dict.fromkeys(blocks), c_dim, architecture)
    with pytest.raises(WeightsError, match=refusal) as refused:
        weights.resolve(str(path))
    assert str(path) in str(refused.value) and "supported:" in str(refused.value) and "\n" not in str(refused.value)


def test_a_cut_or_foreign_pickle_is_refused_in_one_line(tmp_path, cache):
    (tmp_path / "notes.pkl").write_text("these are not weights")
    with pytest.raises(WeightsError, match="notes.pkl could not be read as a StyleGAN release pickle"):
        weights.resolve(str(tmp_path / "notes.pkl"))
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"G_ema": list(range(1000))})[:50])
    with pytest.raises(WeightsError, match="cut.pkl"):
        weights.resolve(str(tmp_path / "cut.pkl"))
