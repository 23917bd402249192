"""Batch-all and batch-hard triplet losses against brute-force loops and pytorch-metric-learning."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from missing import need_module

from faceunlock.training.losses import BatchAllTripletLoss, BatchHardTripletLoss, pairwise_distances

MARGIN = 0.3


def random_batch(seed: int, n: int = 14, dim: int = 6, classes: int = 4):
    """float64 embeddings and labels with a class of size 1 guaranteed (label 99)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * 0.6
    labels = torch.randint(0, classes, (n,), generator=g)
    labels[-1] = 99
    return x, labels


def dist(x: np.ndarray, i: int, j: int, squared: bool) -> float:
    d2 = float(sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1])))
    return d2 if squared else math.sqrt(d2)


def brute_all(x, labels, margin, squared, average):
    x, labels = x.numpy(), labels.tolist()
    losses = []
    for a in range(len(x)):
        for p in range(len(x)):
            for n in range(len(x)):
                if a != p and labels[a] == labels[p] and labels[n] != labels[a]:
                    losses.append(max(0.0, dist(x, a, p, squared) - dist(x, a, n, squared) + margin))
    active = [v for v in losses if v > 0]
    kept = active if average == "positive" else losses
    return (sum(kept) / len(kept) if kept else 0.0), len(losses), len(active)


def brute_hard(x, labels, margin, squared, soft, average):
    x, labels = x.numpy(), labels.tolist()
    losses, active = [], 0
    for a in range(len(x)):
        pos = [dist(x, a, p, squared) for p in range(len(x)) if p != a and labels[p] == labels[a]]
        neg = [dist(x, a, n, squared) for n in range(len(x)) if labels[n] != labels[a]]
        if not pos or not neg:
            continue
        v = max(pos) - min(neg) + margin
        active += v > 0
        losses.append(math.log1p(math.exp(v)) if soft else max(0.0, v))
    kept = [v for v in losses if v > 0] if average == "positive" else losses
    return (sum(kept) / len(kept) if kept else 0.0), len(losses), active


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("average", ["positive", "all"])
def test_batch_all_matches_brute_force(seed, squared, average):
    x, labels = random_batch(seed)
    loss_fn = BatchAllTripletLoss(MARGIN, squared=squared, average=average)
    got = loss_fn(x, labels)
    want, valid, active = brute_all(x, labels, MARGIN, squared, average)
    assert got.dtype == torch.float64
    assert abs(got.item() - want) < 1e-6
    assert loss_fn.stats["valid"] == valid and loss_fn.stats["active"] == active
    assert 0 < active < valid, "the batch should mix active and inactive triplets"
    assert loss_fn.fraction_positive == pytest.approx(active / valid)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("average", ["all", "positive"])
def test_batch_hard_matches_brute_force(seed, squared, soft, average):
    x, labels = random_batch(seed)
    loss_fn = BatchHardTripletLoss(MARGIN, squared=squared, soft=soft, average=average)
    got = loss_fn(x, labels)
    want, valid, active = brute_hard(x, labels, MARGIN, squared, soft, average)
    assert abs(got.item() - want) < 1e-6
    assert loss_fn.stats["valid"] == valid and loss_fn.stats["active"] == active


def test_known_values_on_a_line():
    # a=0, p=1 (same class), n=1.2: d_ap=1, d_an=1.2 -> one triplet per anchor direction.
    x = torch.tensor([[0.0], [1.0], [1.2]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    # Valid triplets: (0,1,2): 1 - 1.2 + 0.3 = 0.1; (1,0,2): 1 - 0.2 + 0.3 = 1.1.
    ba = BatchAllTripletLoss(0.3)
    assert ba(x, labels).item() == pytest.approx(0.6)
    assert ba.stats == {"valid": 2, "active": 2, "fraction": 1.0}
    # Squared: (0,1,2): 1 - 1.44 + 0.3 < 0 is inactive; (1,0,2): 1 - 0.04 + 0.3 = 1.26.
    sq = BatchAllTripletLoss(0.3, squared=True)
    assert sq(x, labels).item() == pytest.approx(1.26)
    assert sq.stats == {"valid": 2, "active": 1, "fraction": 0.5}
    bh = BatchHardTripletLoss(0.0, soft=True)
    assert bh(x, labels).item() == pytest.approx(
        (F.softplus(torch.tensor(-0.2)) + F.softplus(torch.tensor(0.8))).item() / 2
    )


def test_pairwise_distances_exact_zero_and_finite_gradient():
    x = torch.tensor([[0.3, -1.0], [0.3, -1.0], [2.0, 0.5]], dtype=torch.float64, requires_grad=True)
    d = pairwise_distances(x)
    assert d[0, 1].item() == 0.0 and d[0, 0].item() == 0.0
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def naive_distances(x):
    return (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(-1).sqrt()


@pytest.mark.parametrize("make", [lambda: BatchAllTripletLoss(0.2), lambda: BatchHardTripletLoss(0.2)])
def test_finite_gradients_when_distances_are_zero(make):
    """Duplicated embeddings (same and different labels) and the diagonal are at distance 0."""
    base = torch.randn(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.cat([base, base[:2]]).requires_grad_(True)  # rows 4, 5 copy rows 0, 1
    labels = torch.tensor([0, 1, 0, 1, 0, 2])  # 4 is a positive of 0 at distance 0, 5 a negative of 1
    loss = make()(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    # The test can fail: the same loss built on a plain sqrt gives NaN gradients here.
    y = x.detach().clone().requires_grad_(True)
    naive_distances(y).sum().backward()
    assert not torch.isfinite(y.grad).all()


def test_all_embeddings_equal_gives_finite_gradients():
    x = torch.ones(6, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for loss_fn in (
        BatchAllTripletLoss(0.2),
        BatchHardTripletLoss(0.2),
        BatchHardTripletLoss(0.0, soft=True),
    ):
        x.grad = None
        loss = loss_fn(x, labels)
        assert loss.item() == pytest.approx(0.2 if loss_fn.margin else math.log(2))
        loss.backward()
        assert torch.isfinite(x.grad).all()


def test_masks_with_singleton_classes():
    x, _ = random_batch(1, n=7)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3])  # classes 2 and 3 have one image each
    ba = BatchAllTripletLoss(0.2)
    ba(x, labels)
    # Anchors of class 0: 3*2 ordered positives... per anchor 2 positives x 4 negatives; class 1: 1 x 5.
    assert ba.stats["valid"] == 3 * 2 * 4 + 2 * 1 * 5
    bh = BatchHardTripletLoss(0.2)
    bh(x, labels)
    assert bh.stats["valid"] == 5  # the two singletons are no anchors


@pytest.mark.parametrize("labels", [[3] * 6, list(range(6))], ids=["all-same", "all-different"])
@pytest.mark.parametrize("make", [BatchAllTripletLoss, BatchHardTripletLoss])
def test_no_valid_triplets(labels, make):
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    loss_fn = make(0.2)
    loss = loss_fn(x, torch.tensor(labels))
    assert loss.item() == 0.0
    assert loss_fn.stats == {"valid": 0, "active": 0, "fraction": 0.0}
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="margin"):
        BatchAllTripletLoss(-1)
    with pytest.raises(ValueError, match="average"):
        BatchHardTripletLoss(average="sum")
    with pytest.raises(ValueError, match="labels"):
        BatchAllTripletLoss()(torch.zeros(4, 3), torch.zeros(3))


def test_loss_drives_the_embedding():
    """A few gradient steps on the loss separate two classes (the gradient points the right way)."""
    labels = torch.tensor([0, 1] * 4)
    for loss_fn in (BatchAllTripletLoss(0.5), BatchHardTripletLoss(0.5)):
        x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        x.requires_grad_(True)
        opt = torch.optim.SGD([x], lr=0.1)
        first = loss_fn(x, labels).item()
        for _ in range(30):
            opt.zero_grad()
            loss_fn(x, labels).backward()
            opt.step()
        assert loss_fn(x, labels).item() < first * 0.5


@pytest.fixture
def pml():
    """pytorch-metric-learning, the reference implementation (a test dependency)."""
    need_module("pytorch_metric_learning", "the test extra")


def pml_distance(squared):
    from pytorch_metric_learning.distances import LpDistance

    return LpDistance(normalize_embeddings=False, p=2, power=2 if squared else 1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("squared", [False, True])
def test_batch_all_matches_pytorch_metric_learning(pml, seed, squared):
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.miners import TripletMarginMiner

    x, labels = random_batch(seed)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    miner = TripletMarginMiner(margin=MARGIN, type_of_triplets="all", distance=pml_distance(squared))
    oracle = TripletMarginLoss(margin=MARGIN, distance=pml_distance(squared))
    want = oracle(a, labels, miner(a, labels))
    got = BatchAllTripletLoss(MARGIN, squared=squared)(b, labels)
    assert abs(got.item() - want.item()) < 1e-6
    want.backward()
    got.backward()
    torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_matches_pytorch_metric_learning(pml, seed, squared, soft):
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.miners import BatchHardMiner
    from pytorch_metric_learning.reducers import MeanReducer

    x, labels = random_batch(seed)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    miner = BatchHardMiner(distance=pml_distance(squared))
    oracle = TripletMarginLoss(
        margin=MARGIN, distance=pml_distance(squared), smooth_loss=soft, reducer=MeanReducer()
    )
    want = oracle(a, labels, miner(a, labels))
    got = BatchHardTripletLoss(MARGIN, squared=squared, soft=soft)(b, labels)
    assert abs(got.item() - want.item()) < 1e-6
    want.backward()
    got.backward()
    torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=0)
