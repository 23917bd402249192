"""The network's input path: one normalisation and flip averaging for the daemon and for training."""

import numpy as np
import pytest
import torch

from faceunlock.vision.embed import Embedder, embed_chips, load_face_resnet, network_input
from faceunlock.vision.embed_input import check_chips, flip_average, mirror, normalise

MEANS = np.array([10.0, 20.0, 30.0], np.float32)


def chips(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 150, 150, 3), dtype=np.uint8)


def test_normalise_is_per_channel_nchw_float32():
    c = chips(2)
    x = normalise(c, MEANS)
    assert x.shape == (2, 3, 150, 150) and x.dtype == np.float32
    for k in range(3):
        np.testing.assert_array_equal(x[:, k], (c[..., k].astype(np.float32) - MEANS[k]) / 256)
    np.testing.assert_array_equal(np.ascontiguousarray(x), x)


def test_mirror_flips_left_to_right_and_averages():
    c = chips(1)
    assert np.array_equal(mirror(c)[0, :, 0], c[0, :, -1])
    np.testing.assert_array_equal(normalise(mirror(c), MEANS), normalise(c, MEANS)[..., ::-1])
    a, b = np.ones((2, 128), np.float32), np.full((2, 128), 3.0, np.float32)
    assert flip_average(a, b).dtype == np.float32 and np.all(flip_average(a, b) == 2.0)


BAD = [np.zeros((150, 150, 3), np.float32), np.zeros((2, 150, 150), np.uint8), np.zeros((1, 112, 112, 3))]


@pytest.mark.parametrize("bad", BAD)
def test_bad_chips_are_refused(bad):
    with pytest.raises(ValueError, match="chips must be uint8"):
        check_chips(bad)


def test_tensor_input_is_channels_last_with_the_same_values():
    c = chips(3)
    t = network_input(c, MEANS)
    assert t.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(t.numpy(), normalise(c, MEANS))


def test_training_validation_embeds_as_the_embedder_does():
    """Training's validation runs embed_chips on its model: the same descriptors as the Embedder's."""
    threads = torch.get_num_threads()
    try:
        c = chips(5, seed=1)
        embedder = Embedder(flip=True, threads=1)
        model = load_face_resnet()
        expected = embedder.embed(c)
        np.testing.assert_allclose(embed_chips(model, c, flip=True, batch_size=64), expected, atol=1e-5)
        plain = embed_chips(model, c, batch_size=2)
        mirrored = embed_chips(model, c[:, :, ::-1], batch_size=2)
        np.testing.assert_allclose(flip_average(plain, mirrored), expected, atol=1e-5)
        assert not np.allclose(plain, expected, atol=1e-3), "flip averaging changes the descriptors"
    finally:
        torch.set_num_threads(threads)
