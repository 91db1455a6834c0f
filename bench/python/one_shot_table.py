#!/usr/bin/env python3
"""Markdown table of one-shot runs: one row per results folder, test accuracy (%) per method.

usage: one_shot_table.py DIR [DIR ...]   (each DIR is a `fedrebasin simulate --one-shot --out DIR` folder)
Folders that differ only in their seed (a trailing -sN) are averaged; the row then shows mean ± half the spread ((max - min) / 2).
"""
import json
import re
import sys
from collections import OrderedDict

ORDER = ["fedavg", "wm", "wm+repair", "wm+rescale", "mergemany", "mergemany+repair", "mergemany+rescale",
         "best-single", "ensemble"]


def main(folders):
    rows = OrderedDict()
    for folder in folders:
        with open(f"{folder}/results.json") as f:
            results = json.load(f)
        with open(f"{folder}/settings.json") as f:
            settings = json.load(f)
        key = (settings["model"], settings["partition"], settings["clients"])
        accuracy = {m["name"]: m["accuracy"] for m in results["methods"]}
        rows.setdefault(key, []).append(accuracy)
    methods = [m for m in ORDER if any(m in a for runs in rows.values() for a in runs)]
    print("| model | split | clients | seeds | " + " | ".join(methods) + " |")
    print("| --- | --- | ---: | ---: |" + " ---: |" * len(methods))
    for (model, partition, clients), runs in rows.items():
        cells = []
        for m in methods:
            values = [100 * a[m] for a in runs if m in a]
            text = f"{sum(values) / len(values):.2f}"
            if len(values) > 1:
                text += f" ±{(max(values) - min(values)) / 2:.2f}"
            cells.append(text)
        print(f"| {model} | {partition} | {clients} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
