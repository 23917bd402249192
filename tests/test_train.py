"""Training: the P×K sampler, augmentation, the training loop, checkpoints and resume, and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceunlock.cli import main
from faceunlock.errors import EXIT_ERROR
from faceunlock.training import train as train_mod
from faceunlock.training.data import Augment, ChipDataset, FaceChips, PKSampler
from faceunlock.training.losses import BatchHardTripletLoss
from faceunlock.training.train import TrainConfig, freeze, initial_model, train
from faceunlock.vision.embed import network_input


@pytest.fixture(autouse=True)
def _one_thread():
    # One thread: on a shared 2-core machine, 2 threads made training steps over 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_chips(identities: int = 8, per: int = 4, seed: int = 0) -> FaceChips:
    """Each identity is a smooth random colour pattern; its images add noise and a small shift."""
    rng = np.random.default_rng(seed)
    chips, labels = [], []
    for i in range(identities):
        base = rng.uniform(0, 255, (10, 10, 3))
        base = np.kron(base, np.ones((15, 15, 1)))
        for _ in range(per):
            img = np.roll(base, rng.integers(-4, 5, 2), axis=(0, 1)) + rng.normal(0, 20, base.shape)
            chips.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(i)
    names = [f"id{i}/{j}.jpg" for i, j in enumerate(labels)]
    return FaceChips(np.stack(chips), np.array(labels), names, [f"id{i}" for i in range(identities)], [])


def test_sampler_batches_are_p_by_k_and_seeded():
    labels = np.repeat(np.arange(10), [2, 3, 5, 8, 4, 4, 6, 2, 9, 7])
    s = PKSampler(labels, p=4, k=3, seed=1)
    assert s.batches == len(labels) // 12
    s.set_epoch(0)
    batches = list(s)
    assert len(batches) == len(s) == s.batches
    for b in batches:
        assert len(b) == 12
        ids = [labels[i] for i, _ in b]
        assert len(set(ids)) == 4 and all(ids.count(c) == 3 for c in set(ids))
        assert len(set(b)) == 12, "repeats of an image are told apart by their draw"
    s.set_epoch(0)
    assert list(s) == batches
    s.set_epoch(1)
    assert list(s) != batches
    s.set_epoch(0, start=2)
    assert list(s) == batches[2:]


def test_sampler_shards_batches_across_ranks():
    labels = np.repeat(np.arange(6), 5)
    full = PKSampler(labels, 2, 2, seed=3, batches=7)
    full.set_epoch(2)
    ranks = [PKSampler(labels, 2, 2, seed=3, batches=7, rank=r, world_size=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(2)
    every = list(full)
    assert list(ranks[0]) == every[0::2] and list(ranks[1]) == every[1::2]
    assert len(ranks[0]) == 4 and len(ranks[1]) == 3


def test_sampler_rejects_too_few_identities():
    with pytest.raises(ValueError, match="identities"):
        PKSampler([0, 0, 1, 2, 3], p=2, k=2)  # only identity 0 has two images
    with pytest.raises(ValueError, match="K >= 2"):
        PKSampler([0, 0, 1, 1], p=2, k=1)


def test_augment_is_seeded_and_flips():
    chip = synthetic_chips(1, 1).chips[0]
    aug = Augment()
    a = aug(chip, np.random.default_rng(5))
    assert a.shape == chip.shape and a.dtype == np.uint8
    assert np.array_equal(a, aug(chip, np.random.default_rng(5)))
    assert not np.array_equal(a, aug(chip, np.random.default_rng(6)))
    mirror = Augment(flip=1.0, scale=0, shift=0, rotate=0, brightness=0, contrast=0, saturation=0)
    assert np.array_equal(mirror(chip, np.random.default_rng(0)), chip[:, ::-1])


def test_dataset_items_and_normalisation():
    fc = synthetic_chips(2, 2)
    ds = ChipDataset(fc.chips, fc.labels)
    x, y = ds[(3, 0)]
    assert x.shape == (150, 150, 3) and x.dtype == torch.uint8 and y == 1
    assert torch.equal(x, torch.from_numpy(fc.chips[3]))
    z = network_input(x[None].numpy(), np.array([10.0, 20.0, 30.0], np.float32))
    assert torch.allclose(z[0, 1], (x[..., 1].float() - 20) / 256)


def test_freeze_counts_trainable_parameters():
    model = initial_model("scratch", seed=0)
    everything = sum(p.numel() for p in model.parameters())
    assert freeze(model, 0) == everything
    assert freeze(model, 15) == model.fc.weight.numel()
    assert not model.stem.weight.requires_grad and model.fc.weight.requires_grad
    with pytest.raises(ValueError, match="freeze"):
        freeze(model, 16)


def test_loss_decreases_on_a_fixed_batch():
    """A few Adam steps of the port on one fixed batch of 8 identities × 4 chips lower batch-hard's loss."""
    fc = synthetic_chips(8, 4)
    model = initial_model("port", seed=0)
    freeze(model, 12)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss_fn = BatchHardTripletLoss(0.2)
    x = network_input(fc.chips, model.means.numpy())
    y = torch.from_numpy(fc.labels)
    losses = []
    for _ in range(3):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0
    assert losses[-1] < 0.8 * losses[0], losses


def config(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(
        data=tmp_path / "none",
        out=tmp_path / "run" / "m.pt",
        init="port",
        epochs=2,
        p=4,
        k=2,
        steps_per_epoch=2,
        freeze=11,
        lr=1e-4,
        threads=1,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_gives_identical_weights(tmp_path, monkeypatch):
    fc = synthetic_chips(8, 4)
    straight = config(tmp_path / "a", loss="batch-all", checkpoint_every=1)
    train(straight, data=fc)

    broken = config(tmp_path / "b", loss="batch-all", checkpoint_every=1)
    real_lr = train_mod.learning_rate

    def fail_at_step_3(cfg, step, total):
        if step == 3:
            raise Interrupt
        return real_lr(cfg, step, total)

    monkeypatch.setattr(train_mod, "learning_rate", fail_at_step_3)
    with pytest.raises(Interrupt):
        train(broken, data=fc)
    ckpt = torch.load(broken.paths()["ckpt"], weights_only=False)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 1), "the last checkpoint is one step into epoch 2"
    monkeypatch.setattr(train_mod, "learning_rate", real_lr)
    broken.resume = True
    result = train(broken, data=fc)
    assert result["epoch"] == 2
    assert_same_state(state(straight.paths()["out"]), state(broken.paths()["out"]))
    log = [json.loads(line) for line in broken.paths()["log"].read_text().splitlines()]
    assert [r.get("epoch") for r in log if r["event"] == "epoch"] == [1, 2]
    assert all(0 <= r["fraction_active"] <= 1 and np.isfinite(r["loss"]) for r in log[1:])

    with pytest.raises(ValueError, match="loss"):
        train(config(tmp_path / "b", loss="batch-hard", resume=True), data=fc)


@pytest.fixture(scope="module")
def tiny_celeba(data_dir, tmp_path_factory):
    """8 identities × 4 real photos from celeba-train (links), and a 4-pair LFW file."""
    src = data_dir / "celeba-train"
    root = tmp_path_factory.mktemp("celeba")
    for ident in sorted(p for p in src.iterdir() if p.is_dir())[:8]:
        (root / ident.name).mkdir()
        for img in sorted(ident.glob("*.jpg"))[:4]:
            (root / ident.name / img.name).symlink_to(img)
    return root


def test_train_command_end_to_end(tiny_celeba, lfw_dir, tmp_path, capsys):
    """Real photos through detect → align → train, validated on LFW pairs; resume == straight run."""
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "2\nAaron_Peirsol\t1\t2\nAaron_Peirsol\t3\t4\n"
        "AJ_Cook\t1\tMarsha_Thomason\t1\nAaron_Peirsol\t1\tAbdullah_Gul\t3\n"
    )
    cache = tmp_path / "cache"

    def run(out: Path, epochs: int, *extra: str) -> int:
        args = ["train", "--data", str(tiny_celeba), "--out", str(out), "--cache", str(cache)]
        args += ["--epochs", str(epochs), "--p", "4", "--k", "2", "--steps-per-epoch", "2", "--freeze", "11"]
        args += ["--val-root", str(lfw_dir), "--val-pairs", str(pairs), "--val-threshold-pairs", str(pairs)]
        # A constant learning rate: the cosine schedule spans --epochs, which differ between the runs.
        args += ["--lr", "1e-4", "--schedule", "constant", "--threads", "1", "--no-progress", "--seed", "7"]
        return main([*args, *extra])

    assert run(tmp_path / "a" / "m.pt", 2, "--keep-epochs") == 0
    assert "best validation" in capsys.readouterr().out
    assert run(tmp_path / "b" / "m.pt", 1) == 0
    assert run(tmp_path / "b" / "m.pt", 2, "--resume") == 0
    assert_same_state(state(tmp_path / "a" / "m.pt"), state(tmp_path / "b" / "m.pt"))
    log = [json.loads(line) for line in (tmp_path / "a" / "m.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "start" and log[0]["identities"] == 8 and log[0]["images"] <= 32
    epochs = [r for r in log if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    for r in epochs:
        assert 0 <= r["val"]["accuracy"] <= 1 and r["val"]["images"] == 7
    best = max(epochs[1:], key=lambda r: (r["val"]["accuracy"], r["val"]["auc"]))
    assert epochs[-1]["best_epoch"] == best["epoch"]
    assert_same_state(state(tmp_path / "a" / "m.best.pt"), state(tmp_path / "a" / f"m.e{best['epoch']}.pt"))
    assert_same_state(state(tmp_path / "a" / "m.pt"), state(tmp_path / "a" / "m.e2.pt"))
    # The weights load like any other: the model card's loader reads them.
    from faceunlock.vision.embed import load_face_resnet

    load_face_resnet(tmp_path / "a" / "m.pt")


def test_train_command_errors(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.pt")]) == EXIT_ERROR
    assert "not a folder" in capsys.readouterr().err
