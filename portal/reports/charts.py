"""Lay out accessible bar charts: each row a label in text, a bar drawn by the server as SVG
and its figure, with the same figures in a table behind a "Show the figures as a table".

The labels and figures are HTML text at the body size, so they stay readable at any width
and zoom (an SVG drawn whole would shrink them with the chart on a phone). A bar's length
is a share of the longest bar, given to its SVG as a width attribute (the
Content-Security-Policy allows no inline styles).
"""

from __future__ import annotations

from dataclasses import dataclass

SLIVER = 0.5  # the shortest bar, in per cent of the longest, when the value is not zero


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    percent: float  # of the longest bar: 100 for it, at least a sliver when not zero


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart: one bar per row, in the order given."""

    title: str
    bars: list[Bar]
    unit: str

    @classmethod
    def of(cls, title: str, rows: list[tuple[str, int]], unit: str = "case studies") -> BarChart:
        """Build the chart of (label, value) rows, in the order given."""
        top = max((value for _, value in rows), default=0)
        bars = [
            Bar(
                label=label,
                value=value,
                percent=round(max(SLIVER, 100 * value / top), 1) if value and top else 0.0,
            )
            for label, value in rows
        ]
        return cls(title=title, bars=bars, unit=unit)

    @property
    def summary(self) -> str:
        """Say in words what the chart shows, for readers who can't see it."""
        if not self.bars:
            return "No figures yet."
        top = max(self.bars, key=lambda bar: bar.value)
        total = sum(bar.value for bar in self.bars)
        return (
            f"Bar chart of {len(self.bars)} rows, {total} {self.unit} in all; "
            f"the most is {top.label} with {top.value}. "
            "The figures are also in a table after the chart."
        )
