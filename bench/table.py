"""The results as a plain-text table (stdout of scripts/bench, and the table in docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

from bench.runner import CASES

HEADERS = ("case", "projector", "baseline", "ratio (paired min-max)", "goal", "met")


def _figure(side: dict[str, Any] | None) -> str:
    if not side:
        return "-"
    return f"{_number(side['median'])} {side['unit']} ±{side['spread_pct']:.0f}%"


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _ratio(entry: dict[str, Any]) -> str:
    ratio = entry.get("ratio")
    if ratio is None:
        return str(entry.get("status", "-"))
    spread = entry.get("ratio_spread")
    if spread:
        return f"{ratio:.3g} ({spread['min']:.3g}-{spread['max']:.3g})"
    return f"{ratio:.3g}"


def _met(entry: dict[str, Any]) -> str:
    met = entry.get("goal_met")
    return "-" if met is None else ("yes" if met else "NO")


def rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name in CASES:
        entry = results.get(name)
        if entry is None:
            continue
        status = entry.get("status")
        if name == "backfill_vs_scan" and entry.get("by_segments"):
            for segments, sub in entry["by_segments"].items():
                out.append(
                    (
                        f"{name} @{segments}",
                        _figure(sub.get("subject")),
                        _figure(sub.get("baseline")),
                        _ratio(sub),
                        entry["goal"].removeprefix("ratio ") if segments == "4" else "-",
                        _met(sub) if segments == "4" else "-",
                    )
                )
            continue
        if status != "measured":
            out.append((name, status or "-", entry.get("reason", "")[:60], "-", entry.get("goal", "-"), "-"))
            continue
        if name == "aggregate_writes":
            sink, naive = entry["sink"], entry["naive"]
            out.append(
                (
                    name,
                    f"{sink['writes_per_touched_group_per_batch']:.3g} writes/group/batch "
                    f"(max {sink['max_writes_to_one_group_in_a_batch']}), "
                    f"{sink['write_actions_per_change']:.3g} writes/change",
                    f"{naive['writes_per_change']:.3g} writes/change",
                    _ratio(entry),
                    entry["goal"].removeprefix("ratio "),
                    _met(entry),
                )
            )
            out.append(
                (
                    "  (changes/s, moto-bound)",
                    _figure(entry["subject"]),
                    _figure(entry["baseline"]),
                    f"{entry['changes_per_s_ratio']:.3g}",
                    "-",
                    "-",
                )
            )
            continue
        out.append(
            (
                name,
                _figure(entry["subject"]),
                _figure(entry["baseline"]),
                _ratio(entry),
                entry["goal"].removeprefix("ratio "),
                _met(entry),
            )
        )
    return out


def _lay_out(table: list[tuple[str, ...]], markdown: bool) -> list[str]:
    """Rows (the first one the headers) as Markdown or as aligned plain-text columns."""
    columns = len(table[0])
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in table]
        lines.insert(1, "|" + "|".join(" --- " for _ in range(columns)) + "|")
        return lines
    widths = [max(len(row[i]) for row in table) for i in range(columns)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def render(results: dict[str, Any], markdown: bool = False) -> str:
    lines = _lay_out([HEADERS, *rows(results)], markdown)
    if markdown:
        return "\n".join(lines)
    machine = results.get("machine", {})
    head = (
        f"projector benchmarks {results.get('date')} on {machine.get('cpu_count')} x {machine.get('cpu_model')}, "
        f"load {machine.get('load_average_at_start')}{' (quick)' if results.get('quick') else ''}"
    )
    return "\n".join([head, "", *lines])


COMPARE_HEADERS = ("case", "before: ratio", "after: ratio", "goal", "met after")


def compare(before: dict[str, Any], after: dict[str, Any], markdown: bool = False) -> str:
    """Two results files side by side, case by case: the before/after table of docs/benchmarks.md."""
    earlier = {row[0]: row for row in rows(before)}
    table: list[tuple[str, ...]] = [COMPARE_HEADERS]
    for row in rows(after):
        old = earlier.get(row[0])
        table.append((row[0], old[3] if old else "-", row[3], row[4], row[5]))
    return "\n".join(_lay_out(table, markdown))
