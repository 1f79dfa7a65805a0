"""Bar charts of one ``bench/run.py`` result: one PNG per scenario, every implementation as
a ratio to the floor (for latency: the difference from the floor, in ms).

Usage: ``python bench/plot.py RESULTS.json [OUT_DIR]`` (default ``docs/perf/``), or
``bench/run.py --plot``. Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "perf"
COLOURS = {"floor": "#888888", "ours": "#1f77b4", "ours_silenced": "#6baed6",
           "naive": "#ff7f0e", "httpx": "#d62728", "bare_webhook": "#ff7f0e"}
SKIP_METRICS = {"errors", "chunks", "client_errors"}


def plot(results: Path, out: Path = DEFAULT_OUT) -> list[Path]:
    """Write ``<scenario>.png`` for every scenario in ``results``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text())
    impls: list[str] = data["info"]["impls"]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for entry in data["table"]:
        if entry["metric"] in SKIP_METRICS or not entry["values"]:
            continue
        by_scenario.setdefault(entry["scenario"], []).append(entry)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for scenario, entries in by_scenario.items():
        fig, axes = plt.subplots(1, len(entries), figsize=(3.2 * len(entries) + 0.8, 3.4),
                                 squeeze=False)
        for ax, entry in zip(axes[0], entries, strict=True):
            names = [i for i in impls if entry["vs_floor"].get(i) is not None]
            values = [float(entry["vs_floor"][i]) for i in names]
            base = "floor"
            if not names and entry["values"].get("naive"):  # a scenario without a floor
                base, names = "naive", [i for i in impls if i in entry["values"]]
                values = [entry["values"][i] / entry["values"]["naive"] for i in names]
            bars = ax.bar(names, values, color=[COLOURS.get(i, "#999999") for i in names])
            delta = entry["compare"] == "delta"
            ax.axhline(0.0 if delta else 1.0, color="black", linewidth=0.8)
            for bar, value in zip(bars, values, strict=True):
                ax.annotate(f"{value:+.2f}" if delta else f"{value:.2f}×",
                            (bar.get_x() + bar.get_width() / 2, value), ha="center",
                            va="bottom", fontsize=8)
            label = entry["label"].split(" — ", 1)[-1] if " — " in entry["label"] else ""
            ax.set_title(label or entry["metric"], fontsize=9)
            ax.set_ylabel("ms − floor" if delta else f"× {base}", fontsize=8)
            ax.tick_params(axis="x", labelsize=7, rotation=30)
            ax.tick_params(axis="y", labelsize=7)
            if entry.get("target"):
                ax.set_xlabel(f"target (ours): {entry['target']}", fontsize=7)
        fig.suptitle(f"{scenario} — {entries[0]['label'].split(' — ', 1)[0]}", fontsize=10)
        fig.tight_layout()
        path = out / f"{scenario}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUT
    for written_path in plot(Path(sys.argv[1]), target):
        print(written_path)
