"""A readable text summary of a converted store (what `floodlab inspect` shows)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from floodlab.data.load.store import Store


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if c == 0 else f"{{:>{w}}}" for c, w in enumerate(widths))
    return [fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [
        fmt.format(*r) for r in rows
    ]


def _files(paths: list[str]) -> str:
    """`dir/{a, b}` for files of one folder, else the paths joined."""
    parents = {str(PurePath(p).parent) for p in paths}
    if len(paths) > 1 and len(parents) == 1:
        return f"{parents.pop()}/{{{', '.join(PurePath(p).name for p in paths)}}}"
    return ", ".join(paths)


def describe_splits(info: dict[str, Any]) -> str:
    """One line on how a store's splits were made (its provenance["splits"])."""
    chips = info.get("chips", {})
    files = _files(list(info.get("files", [])))
    random = chips.get("random", 0)
    counts = ", ".join(f"{k} {v}" for k, v in info.get("random_split_counts", {}).items())
    if info.get("method") == "official":
        return f"official, from {files or 'the dataset'}"
    if info.get("method") == "random":
        expected = info.get("expected")
        why = f"expected {expected}" if expected else "the dataset has no official split"
        return (
            f"RANDOM: the source has no split files ({why}); {random} chips got a seeded "
            f"grouped 80/10/10 split (seed {info.get('seed')}: {counts})"
        )
    return (
        f"official from {files}, but {random} chips listed in none of them got a "
        f"seeded random grouped 80/10/10 split (seed {info.get('seed')}: {counts})"
    )


def summarise(store: Store) -> dict[str, Any]:
    """Everything `floodlab inspect` shows, as plain (JSON-able) data."""
    arrays = {}
    for name in sorted(store.group.array_keys()):
        a = store.array(name)
        dtype = "string" if "StringDType" in str(a.dtype) else str(a.dtype)
        arrays[name] = {"shape": list(a.shape), "dtype": dtype, "chunks": list(a.chunks)}
    return {
        "path": str(store.path),
        "dataset": store.dataset,
        "chips": len(store),
        "chip_shape": list(store.chip_shape),
        "splits": store.attrs.get("split_counts", {}),
        "modalities": {m: list(v["bands"]) for m, v in store.attrs["modalities"].items()},
        "arrays": arrays,
        "stats": store.attrs.get("stats", {}),
        "class_balance": store.attrs.get("class_balance", {}),
        "provenance": store.attrs.get("provenance", {}),
        "skipped": store.attrs.get("provenance", {}).get("skipped", []),
    }


def describe(store: Store) -> str:
    """Dataset, chips per split, arrays, band statistics, class balance, provenance.

    Args:
        store: an open store.

    Returns:
        Multi-line text for people (no trailing newline).
    """
    info = summarise(store)
    prov = info["provenance"]
    h, w = info["chip_shape"]
    lines = [
        f"store    {info['path']}",
        f"dataset  {info['dataset']}: {info['chips']} chips of {h}x{w} px",
        "splits   " + ", ".join(f"{k} {v}" for k, v in info["splits"].items()),
    ]
    sources = store.attrs.get("label_source_counts", {})
    if sources:
        lines.append("labels   " + ", ".join(f"{k} {v}" for k, v in sources.items()))
    lines += ["", "arrays"]
    rows = [
        [name, "x".join(map(str, a["shape"])), a["dtype"], "x".join(map(str, a["chunks"]))]
        for name, a in info["arrays"].items()
    ]
    lines += ["  " + r for r in _table(["name", "shape", "dtype", "chunks"], rows)]
    for mod, bands in info["modalities"].items():
        if bands:
            lines.append(f"  {mod} bands: {', '.join(bands)}")
    stats = info["stats"]
    if stats:
        split = store.attrs.get("stats_split", "train")
        lines += ["", f"band statistics ({split} split; dB, reflectance x10000, indices)"]
        keys = ["count", "mean", "std", "p1", "p2", "p50", "p98", "p99"]
        rows = [[band] + [_num(st.get(k)) for k in keys] for band, st in stats.items()]
        lines += ["  " + r for r in _table(["band", *keys], rows)]
    balance = info["class_balance"]
    if balance:
        lines += ["", "class balance (pixels; -1 = invalid)"]
        for name, by_split in balance.items():
            for split, entry in by_split.items():
                parts = [
                    f"{k}: {_num(n)} ({entry['fractions'][k]:.1%})"
                    for k, n in entry["counts"].items()
                    if n
                ]
                lines.append(f"  {name:<10} {split:<8} " + ", ".join(parts))
    lines += [
        "",
        "provenance",
        f"  source     {prov.get('source')}",
        f"  created    {prov.get('created')} by floodlab {prov.get('floodlab_version')}"
        f" (converter {prov.get('converter_version')})",
        f"  options    {prov.get('options')}",
    ]
    if "splits" in prov:
        lines.append(f"  splits     {describe_splits(prov['splits'])}")
    units = prov.get("sar_units")
    if units:
        how = "declared" if units["declared"] else "expected and checked"
        line = f"  SAR units  {units['input']} ({how})"
        if units["conversion"] != "none":
            line += f", converted to {units['stored']}: {units['conversion']}"
        lines.append(line)
    skipped = info["skipped"]
    lines.append(f"  skipped    {len(skipped)} chip(s)")
    for bad in skipped:
        lines.append(f"    {bad['id']}: {bad['reason']}")
    return "\n".join(lines)
