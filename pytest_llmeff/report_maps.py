"""The base model's pruning maps in the report (the third study's pictures), written as ``heads.png``
and ``layers.png`` and linked from the page: per-head scores against the AH90 / AH80 thresholds,
and the angular distance between layers ℓ and ℓ + n, each row n normalised to [0, 1]."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def pruning_plots(maps: Any) -> dict[str, str]:
    """Base64 PNGs ``heads`` and ``layers`` of :class:`pytest_llmeff.compress.maps.PruningMaps`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = {}
    scores = np.array([row + [np.nan] * (max(map(len, maps.heads)) - len(row)) for row in maps.heads])
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * scores.shape[1], 0.9 + 0.5 * scores.shape[0]))
    image = ax.imshow(scores, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for (layer, unit), value in np.ndenumerate(scores):
        over = [t for t in maps.thresholds if value > t]
        mark = f"\n> {max(over):g}" if over else ""
        ax.text(unit, layer, f"{value:.2f}{mark}", ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 else "white", fontweight="bold" if over else "normal")
    bar = fig.colorbar(image, ax=ax)
    for t in maps.thresholds:
        bar.ax.axhline(t, color="red", lw=1)
    bar.set_label("share of attention one token receives (red: " + ", ".join(f"{t:g}" for t in maps.thresholds) + ")")
    ax.set_xlabel(maps.unit)
    ax.set_ylabel("layer")
    ax.set_title(f"head scores; removed above the threshold ({maps.samples} × {maps.window} tokens)", fontsize=9)
    out["heads"] = _png(fig)
    plt.close(fig)
    n_layers = len(maps.distances) + 1
    grid = np.full((n_layers - 1, n_layers - 1), np.nan)
    for n, row in enumerate(maps.distances, start=1):
        values = np.array(row)
        span = values.max() - values.min()
        grid[n - 1, :len(row)] = (values - values.min()) / span if span > 0 else 0.0
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * n_layers, 1.2 + 0.5 * n_layers))
    image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
    for n, row in enumerate(maps.distances, start=1):
        for start, d in enumerate(row):
            ax.text(start, n - 1, f"{d:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if grid[n - 1, start] > 0.6 else "white")
    fig.colorbar(image, ax=ax).set_label("angular distance, each row normalised to [0, 1]")
    ax.set_xlabel("first layer ℓ")
    ax.set_ylabel("block size n")
    ax.set_yticks(range(n_layers - 1), [str(n) for n in range(1, n_layers)])
    ax.set_title(f"d(h_ℓ, h_ℓ+n) at the {maps.position} token (values: raw distance)", fontsize=9)
    out["layers"] = _png(fig)
    plt.close(fig)
    return out


def maps_section(maps: Any, linked: Mapping[str, str]) -> str:
    if maps is None:
        return ""
    from pytest_llmeff.compress.maps import summary

    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary(maps))
    pictures = "".join(f'<figure><a href="{n}.png"><img alt="{n}" src="{n}.png"></a>'
                       f'<figcaption><a href="{n}.png">{n}.png</a></figcaption></figure>' for n in linked)
    return f"<h2>Pruning maps of the base model</h2><ul>{items}</ul>{pictures}"
