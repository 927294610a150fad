"""Relations, setting and colour from detector boxes: what a template captioner can honestly say.

Everything here is geometry on the detector's boxes (fractions of the image), a few
ImageNet classes and cheap pixel counts, so it is deterministic and costs well under a
millisecond per image. Each rule is one an editor can read and check:

- the **main subject** is a person, else the biggest animal, else the biggest thing that is
  not furniture (tables, beds, sinks are where things are, rarely what a picture is of);
- a person **rides** a horse, bicycle, board... when the two boxes overlap and the vehicle's
  box sits lower than the person's middle; **holds** a small thing that lies mostly inside
  the person's box; **sits at** a table or **on** a couch or bench that overlaps the lower
  half of the person's box; **flies** a kite that is above them;
- a thing is **on** a surface (bed, couch, table, car...) when its bottom edge lies inside
  the surface's box and most of its width is over it; **in front of** a screen or vehicle
  when it overlaps it and reaches lower in the picture; **next to** a thing of similar
  height beside it without overlapping;
- the **setting** follows from what is in the picture (an oven: a kitchen; skis: snow;
  cars and traffic lights: a street; grazing animals over green ground: a field) or from
  a confident ImageNet scene class;
- the **colour** of the main object is named only when one colour covers most of the middle
  of its box. People never get a colour, gender or age: that is not the pixels' to say.
"""
from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image

ANIMALS = frozenset({"dog", "cat", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "bird"})
RIDDEN = {"horse": "riding a horse", "bicycle": "riding a bicycle", "motorcycle": "riding a motorcycle",
          "skateboard": "riding a skateboard", "surfboard": "riding a surfboard",
          "snowboard": "riding a snowboard", "elephant": "riding an elephant", "skis": "skiing"}
HELD = frozenset({"umbrella", "tennis racket", "baseball bat", "frisbee", "cell phone", "cup", "wine glass",
                  "bottle", "knife", "toothbrush", "remote", "banana", "donut", "hot dog", "sandwich", "book",
                  "teddy bear", "scissors", "baseball glove", "skateboard", "surfboard", "kite", "pizza", "cake"})
SEATS = {"dining table": "sitting at a table", "couch": "sitting on a couch", "bench": "sitting on a bench",
         "chair": "sitting on a chair", "bed": "on a bed", "toilet": "on a toilet"}
SURFACES = frozenset({"bed", "couch", "chair", "bench", "dining table", "car", "suitcase", "laptop", "keyboard",
                      "toilet", "sink", "truck", "motorcycle", "bicycle", "boat", "bowl", "oven", "refrigerator"})
# Furniture and fittings: what things stand on or in front of, rarely what a picture is of.
BACKGROUND = frozenset({"dining table", "chair", "bed", "couch", "bench", "toilet", "sink", "refrigerator", "oven",
                        "tv", "potted plant"})
INSIDE = frozenset({"sink", "bowl", "suitcase", "boat"})  # "in a sink", not "on a sink"
FRONTS = frozenset({"tv", "laptop", "refrigerator", "car", "bus", "train", "truck", "oven", "fire hydrant"})
FOOD = frozenset({"pizza", "cake", "sandwich", "donut", "broccoli", "hot dog", "banana", "apple", "orange",
                  "carrot"})
GRAZERS = frozenset({"horse", "sheep", "cow", "elephant", "zebra", "giraffe"})
COLOURED = frozenset({"car", "bus", "truck", "train", "motorcycle", "bicycle", "airplane", "boat", "fire hydrant",
                      "umbrella", "kite", "teddy bear", "couch", "suitcase", "frisbee", "cat", "dog", "vase",
                      "toilet", "bed", "skateboard", "surfboard", "clock"})
ANIMAL_COLOURS = frozenset({"black", "white", "brown", "grey", "orange", "black and white"})

# Settings read from what is in the picture, most specific first.
_KITCHEN = {"oven", "microwave", "refrigerator", "toaster"}
_STREET = {"traffic light", "stop sign", "fire hydrant", "parking meter", "bus"}
_VEHICLES = {"car", "truck", "motorcycle", "bicycle", "bus"}


@dataclass(frozen=True)
class Det:
    name: str
    score: float
    box: Box

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def width(self) -> float:
        return max(0.0, self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return max(0.0, self.box[3] - self.box[1])


def _intersection(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _x_overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0]))


def main_subject(dets: Sequence[Det]) -> str | None:
    """The class a describer would start with: a person (unless only a speck beside bigger
    animals), else the biggest animal, else the biggest thing that is not furniture, else the
    biggest thing. Animate things count when they are not tiny next to the biggest thing."""
    if not dets:
        return None
    size: dict[str, float] = {}
    for d in dets:
        size[d.name] = max(size.get(d.name, 0.0), d.area * d.score)
    biggest = max(size.values())
    animate = {n: a for n, a in size.items() if (n == "person" or n in ANIMALS) and a >= 0.1 * biggest}
    if animate:
        if "person" in animate and animate["person"] >= 0.1 * max(animate.values()):
            return "person"
        return max(sorted(animate), key=lambda n: animate[n])
    things = {n: a for n, a in size.items() if n not in BACKGROUND} or size
    return max(sorted(things), key=lambda n: things[n])


def relation(subject: Det, other: Det) -> str | None:
    """How ``subject`` relates to ``other`` by the rules in the module docstring, or None."""
    s, o = subject.box, other.box
    inter = _intersection(s, o)
    o_mid_y = (o[1] + o[3]) / 2
    s_mid_y = (s[1] + s[3]) / 2
    if subject.name == "person":
        if other.name in RIDDEN and inter > 0 and o_mid_y > s_mid_y and _x_overlap(s, o) >= 0.5 * min(
                subject.width, other.width):
            return RIDDEN[other.name]
        if other.name == "kite" and o[3] < s[1]:
            return "flying a kite"
        if other.name in HELD and other.area < subject.area and inter >= 0.6 * other.area:
            return f"holding {_a(other.name)}"
        if other.name in SEATS and inter > 0 and o[1] > s_mid_y - 0.1 * subject.height and o[1] < s[3]:
            return SEATS[other.name]
        if other.name == "laptop" and inter >= 0.3 * other.area:
            return "using a laptop"
    if subject.name in FOOD and other.name == "dining table" and inter >= 0.5 * subject.area:
        return "on a table"
    if other.name in SURFACES and other.area > subject.area and o[1] <= s[3] <= o[3] and s[1] < o[3] \
            and _x_overlap(s, o) >= 0.6 * subject.width and s_mid_y <= o_mid_y + 0.1:
        return f"{'in' if other.name in INSIDE else 'on'} {_a(other.name)}"
    if other.name in FRONTS and inter > 0.2 * subject.area and s[3] > o[3]:
        return f"in front of {_a(other.name)}"
    v_overlap = max(0.0, min(s[3], o[3]) - max(s[1], o[1]))
    gap = max(o[0] - s[2], s[0] - o[2])
    if inter == 0 and 0 <= gap < 0.15 and v_overlap >= 0.5 * min(subject.height, other.height) \
            and other.area >= 0.25 * subject.area:
        return f"next to {_a(other.name)}"
    return None


_SPOKEN = {"dining table": "table", "tv": "television", "cell phone": "phone", "hair drier": "hair dryer",
           "mouse": "computer mouse", "remote": "remote control", "skis": "pair of skis", "sports ball": "ball"}


def spoken(name: str) -> str:
    return _SPOKEN.get(name, name)


def _a(name: str) -> str:
    word = spoken(name)
    return ("an " if word[0] in "aeiou" else "a ") + word


def setting(names: set[str], labels: Sequence[tuple[str, float]], ground_green: float,
            scenes: dict[str, str], said: str = "") -> str | None:
    """Where the picture was taken, as a phrase ("in a kitchen"), or None. ``said`` is the
    sentence so far: a setting is not added when it repeats a thing already named."""
    candidates: list[str] = []
    if names & {"skis", "snowboard"}:
        candidates.append("in the snow")
    if "tennis racket" in names:
        candidates.append("on a tennis court")
    if names & {"baseball bat", "baseball glove"}:
        candidates.append("on a baseball field")
    if "surfboard" in names:
        candidates.append("in the water")
    if names & _KITCHEN or ("sink" in names and "toilet" not in names and names & {"oven", "bowl", "cup"}):
        candidates.append("in a kitchen")
    if "toilet" in names:
        candidates.append("in a bathroom")
    if "bed" in names:
        candidates.append("in a bedroom")
    if "couch" in names and "tv" in names:
        candidates.append("in a living room")
    if names & _STREET or len(names & _VEHICLES) >= 2 or ("car" in names and "person" in names):
        candidates.append("on a street")
    if "train" in names:
        candidates.append("on the tracks")
    if "boat" in names:
        candidates.append("on the water")
    if names & GRAZERS and ground_green >= 0.3 and not names & (_VEHICLES | _KITCHEN):
        candidates.append("in a field")
    scene = next((scenes[n] for n, s in labels[:3] if s >= 0.25 and n in scenes), None)
    if scene:
        candidates.append(scene)
    for phrase in candidates:
        noun = phrase.split()[-1]
        if noun not in said:
            return phrase
    return None


# --- pixels ----------------------------------------------------------------------------------


def _colour_name(h: float, s: float, v: float) -> str:
    if v < 0.22:
        return "black"
    if s < 0.18:
        return "white" if v > 0.78 else "grey"
    deg = h * 360
    if deg < 15 or deg >= 340:
        return "red" if v > 0.35 else "brown"
    if deg < 40:
        return "orange" if v > 0.7 and s > 0.5 else "brown"
    if deg < 70:
        return "yellow" if v > 0.5 else "brown"
    if deg < 165:
        return "green"
    if deg < 255:
        return "blue"
    if deg < 290:
        return "purple"
    return "pink"


def dominant_colour(image: Image.Image, box: Box, share: float = 0.5) -> str | None:
    """The colour covering at least ``share`` of the middle of a box (its central 60%), or
    "black and white" when those two together do; None when no colour dominates."""
    w, h = image.size
    x0, y0, x1, y1 = box
    cx0, cx1 = x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0)
    cy0, cy1 = y0 + 0.2 * (y1 - y0), y1 - 0.2 * (y1 - y0)
    crop = image.crop((int(cx0 * w), int(cy0 * h), max(int(cx0 * w) + 1, int(cx1 * w)),
                       max(int(cy0 * h) + 1, int(cy1 * h))))
    crop = crop.convert("RGB").resize((24, 24), Image.BILINEAR)
    pixels = np.asarray(crop, dtype=np.float32).reshape(-1, 3) / 255.0
    counts: dict[str, int] = {}
    for r, g, b in pixels:
        name = _colour_name(*colorsys.rgb_to_hsv(float(r), float(g), float(b)))
        counts[name] = counts.get(name, 0) + 1
    total = float(len(pixels))
    best = max(sorted(counts), key=lambda n: counts[n])
    if counts[best] / total >= share:
        return best
    if counts.get("black", 0) / total >= 0.25 and counts.get("white", 0) / total >= 0.25:
        return "black and white"
    return None


def ground_green(image: Image.Image) -> float:
    """Share of green (grass-like) pixels in the bottom third of the picture."""
    small = image.convert("RGB").resize((48, 48), Image.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32)[32:] / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    green = (g > r * 1.05) & (g > b * 1.05) & (g > 0.15)
    return float(green.mean())
