"""Plots of a benchmark's distances: the ROC curve (log FAR) and genuine/impostor histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceunlock.evaluation.metrics import as_sorted, roc_curve


def write_plots(
    raw: dict, out_dir: Path, title: str, thresholds: dict[str, float] | None = None
) -> list[Path]:
    """ROC curve (log FAR) and genuine/impostor distance histograms as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    g, i = as_sorted(raw["genuine"]), as_sorted(raw["impostor"])
    far, tar = roc_curve(g, i)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    keep = far > 0
    ax.semilogx(far[keep], tar[keep])
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC: {title} ({g.size:,} genuine, {i.size:,} impostor pairs)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    roc_path = out_dir / "roc.png"
    fig.tight_layout()
    fig.savefig(roc_path, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    bins = np.linspace(0, max(g[-1], i[-1]), 120)
    ax.hist(g, bins=bins, density=True, alpha=0.6, label="genuine")
    ax.hist(i, bins=bins, density=True, alpha=0.6, label="impostor")
    for level, t in (thresholds or {}).items():
        ax.axvline(t, linestyle="--", linewidth=1, color="k")
        ax.text(t, ax.get_ylim()[1] * 0.9, f" {level}", fontsize=8, rotation=90)
    ax.set_xlabel("euclidean distance")
    ax.set_ylabel("density")
    ax.set_title(f"Distances: {title}", fontsize=9)
    ax.legend()
    hist_path = out_dir / "hist.png"
    fig.tight_layout()
    fig.savefig(hist_path, dpi=110)
    plt.close(fig)
    return [roc_path, hist_path]
