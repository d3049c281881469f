"""The Train widget's live plot of loss, pixel accuracy and spine Dice per epoch.

Drawn with QPainter: a redraw costs about a millisecond, so the plot never holds up
the viewer (a matplotlib canvas took 300–600 ms per epoch here). Empty, each panel
has a 0–1 axis and says that no epoch has been trained yet.
"""

from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

#: what the plot draws: (title, metric key) per panel; the validation key has "val_"
PLOT_PANELS = (("loss", "loss"), ("pixel accuracy", "accuracy"), ("spine Dice", "spine_dice"))
#: what an empty panel says
NO_EPOCHS = "no epochs yet"
#: the legend of the loss panel: (key prefix, label)
LEGEND = (("", "training"), ("val_", "validation"))


class MetricsPlot(QWidget):
    """A live plot of training metrics per epoch, one small panel per metric."""

    colours = {"": QColor("#4fc3f7"), "val_": QColor("#ffb74d")}

    def __init__(self):
        super().__init__()
        self.history: list[dict] = []
        #: per panel (metric key), the texts it drew last: y-axis top, x-axis, note
        self.drawn: dict[str, dict[str, str]] = {}
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def reset(self) -> None:
        """Start over with no epochs (a new training, or a fine-tune's own history)."""
        self.history = []
        self.update()

    def add(self, epoch: int, metrics: dict) -> None:
        """Add one epoch's metrics and redraw."""
        self.history.append({"epoch": epoch, **metrics})
        self.update()

    def series(self, key: str) -> list[tuple[float, float]]:
        """``(epoch, value)`` pairs of one metric, in order."""
        return [
            (float(r["epoch"]), float(r[key]))
            for r in self.history
            if isinstance(r.get(key), int | float)
        ]

    def axis_top(self, key: str) -> float:
        """The top of a panel's y-axis: 1 for scores and for a loss not yet drawn."""
        values = [v for prefix in self.colours for _, v in self.series(prefix + key)]
        if key != "loss" or not values:
            return 1.0
        return max(max(values) * 1.1, 1e-3)

    def paintEvent(self, _event):
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        painter.setFont(small)
        width = self.width() / len(PLOT_PANELS)
        for i, (title, key) in enumerate(PLOT_PANELS):
            self._panel(painter, QRectF(i * width, 0, width, self.height()), title, key)
        painter.end()

    def _panel(self, painter, rect, title, key) -> None:
        box = rect.adjusted(30, 16, -6, -16)
        lines = {prefix: self.series(prefix + key) for prefix in self.colours}
        epochs = [e for pts in lines.values() for e, _ in pts]
        first, last = (min(epochs), max(epochs)) if epochs else (1.0, 1.0)
        top = self.axis_top(key)
        self.drawn[key] = self._frame(
            painter, rect, box, title, top, (first, last) if epochs else None
        )
        span = max(last - first, 1.0)

        def point(e, v):
            x = box.left() + (e - first) / span * box.width()
            y = box.bottom() - min(max(v / top, 0.0), 1.0) * box.height()
            return QPointF(x, y)

        for prefix, pts in lines.items():
            if pts:
                self._line(painter, [point(e, v) for e, v in pts], self.colours[prefix], prefix)
        if key == "loss" and self.history:
            self._legend(painter, box)

    def _frame(self, painter, rect, box, title, top, epochs) -> dict[str, str]:
        """Title, box, y-axis ends and the x-axis text (or the empty note); returns the texts."""
        fg = self.palette().windowText().color()
        painter.setPen(QPen(fg))
        painter.drawText(rect, Qt.AlignHCenter | Qt.AlignTop, title)
        painter.setPen(QPen(fg.darker(150) if fg.lightness() > 128 else fg.lighter(200)))
        painter.drawRect(box)
        painter.setPen(QPen(fg))
        drawn = {"top": f"{top:.2g}", "x": "", "note": ""}
        painter.drawText(QRectF(rect.left(), box.top() - 6, 28, 12), Qt.AlignRight, drawn["top"])
        painter.drawText(QRectF(rect.left(), box.bottom() - 6, 28, 12), Qt.AlignRight, "0")
        if not epochs:
            drawn["note"] = NO_EPOCHS
            painter.drawText(box, Qt.AlignCenter, NO_EPOCHS)
            return drawn
        first, last = epochs
        drawn["x"] = f"epoch {int(first)}–{int(last)}" if last > first else f"epoch {int(last)}"
        below = QRectF(box.left(), box.bottom() + 1, box.width(), 14)
        painter.drawText(below, Qt.AlignHCenter, drawn["x"])
        return drawn

    @staticmethod
    def _line(painter, points, colour, prefix: str) -> None:
        """One metric's line with a dot per epoch; validation (a prefix) dashed."""
        pen = QPen(colour, 1.6)
        if prefix:
            pen.setStyle(Qt.DashLine)
        painter.setPen(pen)
        path = QPainterPath(points[0])
        for p in points[1:]:
            path.lineTo(p)
        painter.drawPath(path)
        painter.setBrush(colour)
        for p in points:
            painter.drawEllipse(p, 2.0, 2.0)
        painter.setBrush(Qt.NoBrush)

    def _legend(self, painter, box) -> None:
        fg = self.palette().windowText().color()
        for j, (prefix, label) in enumerate(LEGEND):
            painter.setPen(QPen(self.colours[prefix], 2))
            y = box.top() + 8 + 11 * j
            painter.drawLine(QPointF(box.right() - 58, y), QPointF(box.right() - 48, y))
            painter.setPen(QPen(fg))
            painter.drawText(QPointF(box.right() - 45, y + 4), label)


def metrics_plot_class() -> type[MetricsPlot]:
    """The plot widget class (kept for callers that ask for it by function)."""
    return MetricsPlot
