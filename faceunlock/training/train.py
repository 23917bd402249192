"""Triplet-loss training and fine-tuning of the face ResNet on identity folders.

One epoch draws P×K batches of augmented chips (see :mod:`faceunlock.training.data`), embeds
them, and steps on a batch-all or batch-hard triplet loss. After each epoch the model is checked
on LFW View 1 through the same detect → align → embed pipeline (threshold chosen on
pairsDevTrain, accuracy on pairsDevTest), a checkpoint is written, and one JSON line is appended
to the log. Everything random is seeded from (seed, epoch, step), so ``--resume`` continues a run
exactly where its last checkpoint left it.

Files, for ``--out run/model.pt``:

- ``run/model.pt``: weights after the last epoch, a state dict that
  :func:`faceunlock.vision.embed.load_face_resnet` reads;
- ``run/model.best.pt``: the trained epoch best on validation (epoch 0, the starting point, is only
  logged, for reference);
- ``run/model.ckpt``: model, optimiser and position, for ``--resume``;
- ``run/model.jsonl``: the log, one JSON line per epoch;
- ``run/model.eN.pt`` after each epoch N, with ``keep_epochs``.

Runs under ``torchrun`` too (DDP): each rank takes every world_size-th batch; rank 0 validates,
logs and saves.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from faceunlock.atomic import atomic_file
from faceunlock.evaluation.lfw import accuracy, best_threshold, pair_distances, parse_pairs
from faceunlock.evaluation.metrics import as_sorted, roc_auc
from faceunlock.training.data import Augment, ChipDataset, PKSampler, chips_for, load_identity_chips
from faceunlock.training.losses import LOSSES
from faceunlock.vision.embed import FaceResNet, embed_chips, load_face_resnet, network_input, save_state
from faceunlock.vision.threads import set_threads

DLIB_MEANS = (122.782, 117.001, 104.298)
"""dlib's per-channel RGB means, for a network trained from scratch."""

VAL_BATCH = 64
"""Chips per forward pass in validation."""

RESUME_KEYS = ("init", "loss", "p", "k", "margin", "squared", "soft_margin", "freeze", "seed", "augment")
"""Settings a resumed run must share with the run that wrote the checkpoint."""


@dataclass
class TrainConfig:
    data: Path
    out: Path
    init: str = "port"
    loss: str = "batch-hard"
    epochs: int = 3
    p: int = 16
    k: int = 4
    optimizer: str = "adam"
    lr: float = 3e-5
    schedule: str = "cosine"
    weight_decay: float = 0.0
    margin: float = 0.2
    squared: bool = False
    soft_margin: bool = False
    freeze: int = 0
    augment: bool = True
    seed: int = 0
    steps_per_epoch: int | None = None
    checkpoint_every: int = 0
    keep_epochs: bool = False
    device: str = "auto"
    threads: int = 2
    cache: Path | None = None
    min_face_size: float = 20
    val_root: Path | None = None
    val_pairs: Path | None = None
    val_threshold_pairs: Path | None = None
    val_flip: bool = False
    resume: bool = False
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def paths(self) -> dict[str, Path]:
        out = Path(self.out)
        stem = out.with_suffix("")
        return {
            "out": out,
            "best": stem.with_name(stem.name + ".best.pt"),
            "ckpt": stem.with_name(stem.name + ".ckpt"),
            "log": stem.with_name(stem.name + ".jsonl"),
        }

    def as_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def units(model: FaceResNet) -> list[nn.Module]:
    """The network's stages in forward order: the stem conv, then the 14 residual units (fc last)."""
    return [model.stem, *model.levels]


def freeze(model: FaceResNet, n: int) -> int:
    """Freeze the first n stages (see units); returns the number of trainable parameters."""
    stages = units(model)
    if not 0 <= n <= len(stages):
        raise ValueError(f"--freeze must be between 0 and {len(stages)}, got {n}")
    for i, stage in enumerate(stages):
        stage.requires_grad_(i >= n)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def initial_model(init: str, seed: int) -> FaceResNet:
    if init == "port":
        return load_face_resnet()
    if init == "scratch":
        torch.manual_seed(seed)
        model = FaceResNet()
        with torch.no_grad():
            model.means.copy_(torch.tensor(DLIB_MEANS))
        return model
    if Path(init).suffix in (".pt", ".pth", ".dat"):
        return load_face_resnet(init)
    raise ValueError(f"--init must be port, scratch or a weights file, got {init!r}")


class PairValidator:
    """LFW-style pair accuracy of a model: threshold chosen on one pairs file, accuracy on another.

    Chips come from the evaluation pipeline (MTCNN, the central face, alignment) and are cached.
    Without threshold pairs the threshold is the best one on the test pairs (optimistic).
    """

    def __init__(
        self,
        root: Path,
        test_pairs: Path,
        threshold_pairs: Path | None,
        detector,
        cache_dir: Path | None,
        flip: bool = False,
        progress: bool = True,
    ):
        self.test = parse_pairs(test_pairs)
        self.train = parse_pairs(threshold_pairs) if threshold_pairs else []
        names = sorted({n for p in self.test + self.train for n in (p.a, p.b)})
        self.index = {n: i for i, n in enumerate(names)}
        self.chips, _ = chips_for(Path(root), names, detector, "central", cache_dir, progress)
        self.flip = flip

    def __call__(self, model: FaceResNet, device: torch.device) -> dict:
        started = time.perf_counter()
        model.eval()
        emb = embed_chips(model, self.chips, self.flip, VAL_BATCH, device)
        d, same = pair_distances(emb, self.index, self.test)
        t_best = best_threshold(d, same)
        result = {
            "accuracy_best_threshold": accuracy(d, same, t_best),
            "auc": roc_auc(as_sorted(d[same]), as_sorted(d[~same])),
            "mean_genuine": float(d[same].mean()),
            "mean_impostor": float(d[~same].mean()),
            "images": len(self.chips),
        }
        if self.train:
            t = best_threshold(*pair_distances(emb, self.index, self.train))
            result.update(accuracy=accuracy(d, same, t), threshold=t)
        else:
            result.update(accuracy=result["accuracy_best_threshold"], threshold=t_best)
        result["seconds"] = round(time.perf_counter() - started, 1)
        return result


def learning_rate(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant" or total <= 1:
        return cfg.lr
    # Cosine from lr down to lr / 10 over the whole run.
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be adam or sgd, got {cfg.optimizer!r}")


def make_loss(cfg: TrainConfig) -> nn.Module:
    if cfg.loss == "batch-hard":
        return LOSSES[cfg.loss](cfg.margin, squared=cfg.squared, soft=cfg.soft_margin)
    if cfg.loss == "batch-all":
        if cfg.soft_margin:
            raise ValueError("--soft-margin is a batch-hard option")
        return LOSSES[cfg.loss](cfg.margin, squared=cfg.squared)
    raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {cfg.loss!r}")


def _dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def _atomic_save(obj, path: Path) -> None:
    with atomic_file(path, 0o644) as fh:
        torch.save(obj, fh)


def _log(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def train(cfg: TrainConfig, validator: PairValidator | None = None, data=None) -> dict:
    """Run (or resume) training; returns the last epoch's log record with the best validation.

    ``data`` may be a ready FaceChips (tests); otherwise chips are made from ``cfg.data``.
    """
    rank, world, local_rank = _dist_info()
    distributed = world > 1
    device = pick_device(cfg.device)
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        set_threads(cfg.threads)
    main_rank = rank == 0
    paths = cfg.paths()
    paths["out"].parent.mkdir(parents=True, exist_ok=True)

    if data is None:
        from faceunlock.vision.detect import Detector

        detector = Detector(min_face_size=cfg.min_face_size, threads=cfg.threads)
        cache = Path(cfg.cache) if cfg.cache else paths["out"].parent / "cache"
        if distributed and not main_rank:
            dist.barrier()  # rank 0 detects and fills the cache first
        data = load_identity_chips(Path(cfg.data), detector, cache, progress=cfg.progress and main_rank)
        if distributed and main_rank:
            dist.barrier()
    dataset = ChipDataset(data.chips, data.labels, Augment() if cfg.augment else None, seed=cfg.seed)
    sampler = PKSampler(data.labels, cfg.p, cfg.k, cfg.seed, cfg.steps_per_epoch, rank=rank, world_size=world)
    steps_per_epoch = sampler.batches
    total_steps = cfg.epochs * steps_per_epoch

    model = initial_model(cfg.init, cfg.seed)
    trainable = freeze(model, cfg.freeze)
    model = model.to(device, memory_format=torch.channels_last)
    loss_fn = make_loss(cfg)
    optimizer = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])

    start_epoch, start_step, best = 0, 0, None
    running = {"loss": 0.0, "fraction": 0.0, "steps": 0, "seconds": 0.0}
    if cfg.resume:
        if not paths["ckpt"].exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {paths['ckpt']}")
        ckpt = torch.load(paths["ckpt"], map_location="cpu", weights_only=False)
        differ = [k for k in RESUME_KEYS if ckpt["config"].get(k) != cfg.as_json().get(k)]
        if differ:
            raise ValueError(f"--resume: settings differ from the checkpoint's: {', '.join(differ)}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, start_step, best = ckpt["epoch"], ckpt["step"], ckpt["best"]
        running = ckpt["running"]
        if start_step >= steps_per_epoch:
            start_epoch, start_step = start_epoch + 1, 0
    elif main_rank:
        paths["log"].write_text("")

    net = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint(epoch: int, step: int) -> None:
        if main_rank:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "best": best,
                "running": running,
                "config": cfg.as_json(),
            }
            _atomic_save(state, paths["ckpt"])

    def validate() -> dict | None:
        return validator(model, device) if validator is not None and main_rank else None

    if main_rank and not cfg.resume:
        _log(
            paths["log"],
            {
                "event": "start",
                "config": cfg.as_json(),
                "images": len(dataset),
                "identities": len(data.identities),
                "steps_per_epoch": steps_per_epoch,
                "trainable_parameters": trainable,
                "device": str(device),
                "world_size": world,
            },
        )
        val = validate()
        if val is not None:  # the starting point, for reference; "best" is chosen among trained epochs
            _log(paths["log"], {"event": "epoch", "epoch": 0, "val": val})

    record: dict = {}
    lr = learning_rate(cfg, start_epoch * steps_per_epoch + start_step, total_steps)
    for epoch in range(start_epoch, cfg.epochs):
        step0 = start_step if epoch == start_epoch else 0
        if step0 == 0:
            running = {"loss": 0.0, "fraction": 0.0, "steps": 0, "seconds": 0.0}
        sampler.set_epoch(epoch, step0)
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=0)
        net.train()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            initial=len(range(rank, step0, world)),
            total=len(range(rank, steps_per_epoch, world)),
            disable=not (cfg.progress and main_rank),
        )
        step = step0
        tick = time.perf_counter()
        means = model.means.cpu().numpy()
        for chips, labels in bar:
            lr = learning_rate(cfg, epoch * steps_per_epoch + step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = network_input(chips.numpy(), means, device)
            loss = loss_fn(net(x), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += world
            running["loss"] += loss.item()
            running["fraction"] += loss_fn.stats["fraction"]
            running["steps"] += 1
            bar.set_postfix(loss=f"{loss.item():.4f}", active=f"{loss_fn.stats['fraction']:.2f}")
            if (
                cfg.checkpoint_every
                and running["steps"] % cfg.checkpoint_every == 0
                and step < steps_per_epoch
            ):
                running["seconds"] += time.perf_counter() - tick
                tick = time.perf_counter()
                checkpoint(epoch, step)
        bar.close()
        running["seconds"] += time.perf_counter() - tick
        stats = torch.tensor([running["loss"], running["fraction"], running["steps"]], dtype=torch.float64)
        if distributed:
            import torch.distributed as dist

            dist.all_reduce(stats)
        n = max(stats[2].item(), 1)
        val = validate()
        if val is not None and (
            best is None or (val["accuracy"], val["auc"]) > (best["accuracy"], best["auc"])
        ):
            best = {"epoch": epoch + 1, **val}
            if main_rank:
                _atomic_save(model.state_dict(), paths["best"])
        record = {
            "event": "epoch",
            "epoch": epoch + 1,
            "steps": int(stats[2].item()),
            "loss": stats[0].item() / n,
            "fraction_active": stats[1].item() / n,
            "lr": lr,
            "train_s": round(running["seconds"], 1),
            "val": val,
            "best_epoch": best["epoch"] if best else None,
        }
        if main_rank:
            _log(paths["log"], record)
            save_state(model, paths["out"])
            if cfg.keep_epochs:
                save_state(model, paths["out"].with_name(f"{paths['out'].stem}.e{epoch + 1}.pt"))
            checkpoint(epoch + 1, 0)
        if distributed:
            dist.barrier()
    if distributed:
        dist.destroy_process_group()
    return {**record, "best": best, "paths": {k: str(v) for k, v in paths.items()}}
