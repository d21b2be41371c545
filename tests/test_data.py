"""MNIST loading: the offline split, clear errors, and a real training sanity check."""

import shutil

import pytest

import stalenb as sn
from stalenb import data, paths


#: (train, test) sizes of the two MNIST layouts the project knows: full MNIST and the offline
#: MNIST-10k split (8k / 2k of the official test set) that ``make data`` links for CI.
KNOWN_SIZES = {(60000, 10000), (8000, 2000)}


def test_mnist_loads_from_the_data_folder():
    root = paths.data_dir()
    train = data.mnist(root, train=True, download=False)
    test = data.mnist(root, train=False, download=False)
    assert (len(train), len(test)) in KNOWN_SIZES
    assert tuple(train.data.shape[1:]) == (28, 28)


def test_tensors_are_normalised():
    X, y = data.mnist_tensors(str(paths.data_dir()), train=True, download=False)
    assert X.shape[0] in {n_train for n_train, _ in KNOWN_SIZES}
    assert tuple(X.shape[1:]) == (1, 28, 28) and y.dtype.is_floating_point is False
    assert abs(float(X.mean())) < 0.2 and 0.8 < float(X.std()) < 1.2


def test_missing_files_name_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        data.mnist(tmp_path, download=False)
    msg = str(e.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    for f in data.RAW_FILES:
        assert f in msg


def test_corrupt_file_is_a_clear_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in data.RAW_FILES:
        shutil.copy(paths.data_dir() / "MNIST" / "raw" / f, raw / f)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(ValueError, match="unreadable"):
        data.mnist(tmp_path, download=False)


def test_models_have_the_poster_sizes():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(sn.models.lenet()) == 431_080
    assert count(sn.models.mlp()) == 784 * 800 + 800 + 800 * 500 + 500 + 500 * 10 + 10
    assert [m.out_channels for m in sn.models.lenet() if hasattr(m, "out_channels")] == [20, 50]
    with pytest.raises(ValueError, match="model must be one of"):
        sn.models.build("vgg")


@pytest.mark.slow
def test_sync_lenet_reaches_90_percent():
    cfg = sn.Config(protocol="sync", workers=4, batch_size=64, lr=0.05, steps=300, eval_every=100,
                  eval_size=2000, model="lenet", seed=0)
    h = sn.simulate(cfg, cache=False, progress=False)
    assert h["test_acc"].iloc[-1] >= 0.90, h
