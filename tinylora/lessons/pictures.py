"""Drawing helpers the lessons' diagrams share: a matrix as a box with its shape, a node of a
computation graph, an arrow with a label. Each draws on an axes the lesson made; none of them
makes, shows or saves a figure (a lesson's cell does that, so a reader sees where each comes from).
"""

from __future__ import annotations

from matplotlib.patches import FancyBboxPatch, Rectangle


def matrix(ax, x: float, y: float, w: float, h: float, name: str, shape: str, color: str):
    """A matrix drawn as a w x h box at (x, y) (lower left): its name inside, its shape below."""
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black", lw=1))
    ax.text(x + w / 2, y + h / 2, name, ha="center", va="center", fontsize=10)
    ax.text(x + w / 2, y - 0.25, shape, ha="center", va="top", fontsize=8)


def node(ax, x: float, y: float, text: str, color: str = "white", width: float = 1.3,
         height: float = 0.6):
    """A node of a graph: a rounded box centred at (x, y)."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", facecolor=color, edgecolor="black"))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def arrow(ax, start, end, label: str = "", color: str = "black", label_color: str = "C3",
          dy: float = 0.15, fontsize: int = 8, shrink: float = 14):
    """An arrow from `start` to `end` (points), its label above its middle (shifted by dy); its
    ends stop `shrink` points short of the two points (clear of a node's box)."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2,
                            "shrinkA": shrink, "shrinkB": shrink})
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + dy, label, color=label_color,
                ha="center", va="bottom", fontsize=fontsize)


def blank(ax, xlim, ylim, title: str) -> None:
    """A diagram's axes: its limits, equal aspect, no ticks or frame, and its title."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
