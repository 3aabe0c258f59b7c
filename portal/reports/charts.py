"""Lay out accessible bar charts for the server to draw as SVG, beside a table of the figures."""

from __future__ import annotations

from dataclasses import dataclass

LABEL_WIDTH = 300  # most viewBox units (pixels at full size) for the labels on the left
CHARACTER_WIDTH = 8  # about, at the 14px the labels are drawn in
BAR_WIDTH = 380  # for the longest bar; its figure is written after it
ROW_HEIGHT = 30
BAR_HEIGHT = 20


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: float  # in viewBox units; at least a sliver when the value is not zero


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart: one bar per row, longest bar scaled to BAR_WIDTH."""

    title: str
    bars: list[Bar]
    unit: str

    label_width: int
    bar_height = BAR_HEIGHT

    @classmethod
    def of(cls, title: str, rows: list[tuple[str, int]], unit: str = "case studies") -> BarChart:
        """Build the chart of (label, value) rows, in the order given."""
        top = max((value for _, value in rows), default=0)
        longest = max((len(label) for label, _ in rows), default=0)
        bars = [
            Bar(
                label=label,
                value=value,
                y=i * ROW_HEIGHT,
                width=max(2.0, BAR_WIDTH * value / top) if value and top else 0.0,
            )
            for i, (label, value) in enumerate(rows)
        ]
        label_width = min(LABEL_WIDTH, max(60, CHARACTER_WIDTH * longest + 20))
        return cls(title=title, bars=bars, unit=unit, label_width=label_width)

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW_HEIGHT

    @property
    def width(self) -> int:
        return self.label_width + BAR_WIDTH + 60

    @property
    def summary(self) -> str:
        """Say in words what the chart shows, for readers who can't see it."""
        if not self.bars:
            return "No figures yet."
        top = max(self.bars, key=lambda bar: bar.value)
        total = sum(bar.value for bar in self.bars)
        return (
            f"Bar chart of {len(self.bars)} rows, {total} {self.unit} in all; "
            f"the most is {top.label} with {top.value}. The same figures are in the table."
        )
