"""Evidence -> one plain sentence and an honest confidence, by templates.

The offline models say *what* is in the picture (COCO objects with boxes and counts,
ImageNet classes, text, faces). From the boxes, ``models.offline.scene`` reads the
main subject, how it relates to the next thing (riding, holding, sitting at, on, in
front of, next to), the setting and the main object's colour, each by a rule an editor
can check. The sentence says only that: no actions beyond those relations, no names,
places, gender or age. A small text generator would read better and invent more; we
prefer the reverse for alt text.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from models.draft import OUT_OF_DOMAIN, Evidence, Label
from models.offline import scene as S


@lru_cache(maxsize=1)
def _words():
    """inflect's engine, built on first use (importing inflect takes a while)."""
    import inflect

    return inflect.engine()

_MASS_NOUNS = {"broccoli"}  # "some broccoli", never "three broccolis"
_HERDS = {"sheep": "a flock of sheep", "bird": "a flock of birds", "cow": "a herd of cows",
          "elephant": "a herd of elephants", "zebra": "a herd of zebras", "horse": "a herd of horses",
          "giraffe": "a group of giraffes", "banana": "a bunch of bananas"}
_ANIMATE_FIRST = ["person", "dog", "cat", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "bird"]

# ImageNet classes that say where a picture was taken.
SCENES = {
    "alp": "in the mountains", "cliff": "on a cliff", "coral reef": "on a coral reef", "geyser": "by a geyser",
    "lakeside": "by a lake", "promontory": "on a headland", "sandbar": "on a sandbar", "seashore": "on a beach",
    "valley": "in a valley", "volcano": "by a volcano", "library": "in a library", "restaurant": "in a restaurant",
    "bakery": "in a bakery", "barbershop": "in a barbershop", "bookshop": "in a bookshop",
    "butcher shop": "in a butcher shop", "grocery store": "in a grocery store", "toyshop": "in a toy shop",
    "shoe shop": "in a shoe shop", "confectionery": "in a sweet shop", "planetarium": "at a planetarium",
    "cinema": "at a cinema", "church": "at a church", "mosque": "at a mosque", "monastery": "at a monastery",
    "palace": "at a palace", "castle": "at a castle", "boathouse": "by a boathouse", "greenhouse": "in a greenhouse",
    "dock": "at a dock", "pier": "on a pier", "suspension bridge": "by a suspension bridge",
    "steel arch bridge": "by a bridge", "viaduct": "by a viaduct", "dam": "by a dam", "fountain": "by a fountain",
    "patio": "on a patio", "ballplayer": "at a baseball game", "scoreboard": "at a stadium", "stage": "on a stage",
    "park bench": "in a park", "ski": "in the snow", "snowmobile": "in the snow", "dogsled": "in the snow",
    "runway": "at an airport", "airliner": "at an airport", "passenger car": "at a railway station",
    "streetcar": "on a city street", "trolleybus": "on a city street", "traffic light": "on a street",
    "kitchen": "in a kitchen", "microwave": "in a kitchen", "dining table": "at a table",
    "wardrobe": "in a bedroom", "four-poster": "in a bedroom", "studio couch": "in a living room",
    "home theater": "in a living room", "tennis ball": "on a tennis court", "racket": "on a tennis court",
    "volleyball": "at a volleyball game", "football helmet": "at a football game", "rugby ball": "at a rugby game",
    "wreck": "at a shipwreck", "lifeboat": "on the water", "canoe": "on the water", "speedboat": "on the water",
    "paddle": "on the water",
}
_SCENES = SCENES

# ImageNet index ranges that refine a COCO class ("dog" -> "golden retriever").
_REFINES = {"dog": [(151, 269)], "cat": [(281, 286)], "bear": [(294, 298)], "bird": [(7, 25), (80, 101), (127, 147)]}

MAX_CONFIDENCE = 0.9  # calibrated, but never certain: these models see a fraction of the world
UNSURE_BELOW = 0.5  # a thing people would name less often than not is left out
OUT_OF_DOMAIN_CONFIDENCE = 0.35  # what the photo models say about a map or a drawing is a guess


@lru_cache(maxsize=1)
def _refinements() -> dict[str, str]:
    """ImageNet class name -> the COCO class it refines."""
    from models.offline.classifier import imagenet_names

    names = imagenet_names()
    return {names[i]: coco for coco, ranges in _REFINES.items() for lo, hi in ranges for i in range(lo, hi)}


def _noun_phrase(name: str, count: int) -> str:
    spoken = S.spoken(name)
    if name in _MASS_NOUNS:
        return spoken if count == 1 else f"some {spoken}"
    if count == 1:
        return _words().a(spoken)
    if name == "person":
        if count >= 15:
            return "a crowd of people"
        return "two people" if count == 2 else "a group of people"
    if count >= 3 and name in _HERDS:
        return _HERDS[name]
    plural = "pairs of skis" if name == "skis" else _words().plural_noun(spoken)
    if count >= 8:
        return f"many {plural}"
    return f"{_words().number_to_words(count)} {plural}"


def _order(objects: Sequence[Label]) -> list[Label]:
    def key(label: Label) -> tuple:
        animate = _ANIMATE_FIRST.index(label.name) if label.name in _ANIMATE_FIRST else len(_ANIMATE_FIRST)
        return (label.name in S.BACKGROUND, animate, -label.count * label.score, label.name)

    return sorted(objects, key=key)


def _quote(lines: Sequence[str], limit: int = 80) -> str:
    text = " / ".join(lines)
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + "…"
    return f"“{text}”"


def _subject_phrase(obj: Label, evidence: Evidence) -> str:
    refinements = _refinements()
    refined = next(
        (lab.name for lab in evidence.labels[:2] if lab.score >= 0.4 and refinements.get(lab.name) == obj.name), None)
    if refined and obj.count == 1:
        return _words().a(refined)
    phrase = _noun_phrase(obj.name, obj.count)
    colour = evidence.colour
    if colour and obj.name in S.COLOURED and (obj.name not in S.ANIMALS or colour in S.ANIMAL_COLOURS) \
            and obj.name != "person":
        if obj.count == 1:
            phrase = _words().a(f"{colour} {S.spoken(obj.name)}")
    return phrase


def _with_relations(evidence: Evidence, objects: list[Label], place: str | None) -> tuple[str, list[str]]:
    """The main subject with its relation to one other thing and the setting, then other
    things (at most three things in all). Returns (phrase, class names said)."""
    dets = [S.Det(d.name, d.score, d.box) for d in evidence.detections]
    by_name = {o.name: o for o in objects}
    main = S.main_subject([d for d in dets if d.name in by_name]) if dets else None
    if main is None:
        main = objects[0].name
    phrase = _subject_phrase(by_name[main], evidence)
    said = [main]
    main_boxes = sorted((d for d in dets if d.name == main), key=lambda d: -d.area)
    related = False
    if main_boxes:
        for other in sorted((d for d in dets if d.name != main and d.name in by_name), key=lambda d: -d.area):
            rel = S.relation(main_boxes[0], other)
            if rel:
                phrase, related = f"{phrase} {rel}", True
                said.append(other.name)
                break
    rest = [o for o in objects if o.name not in said][: max(0, 3 - len(said))]
    extra = [_noun_phrase(o.name, o.count) for o in rest]
    said += [o.name for o in rest]
    if place and place.split()[-1] in " ".join(S.spoken(n) for n in said):
        place = None  # "a bed in a bed..." never; "a dog on a bed in a bedroom" is fine
    if extra and not related:
        phrase = _words().join([phrase, *extra], final_sep="")
        extra = []
    if place:
        phrase = f"{phrase} {place}"
    if extra:
        phrase = f"{phrase}, with {_words().join(extra, final_sep='')}"
    return phrase, said


def compose(evidence: Evidence, text_lines: Sequence[str] = (), text_score: float = 0.0) -> tuple[str, float]:
    """Return (sentence, confidence in [0, MAX_CONFIDENCE])."""
    objects = _order(evidence.objects)
    top = evidence.labels[0] if evidence.labels else None

    if evidence.faces and not any(o.name == "person" for o in objects):
        # the detector missed people the face finder saw (close-ups, partial bodies)
        objects = [Label(name="person", score=0.6, count=evidence.faces), *objects]

    # What is in it, and how the main things relate.
    place = evidence.scene
    if len(objects) > 1:
        # Unsure things are left out, unless nothing surer is left.
        sure = [o for o in objects if label_confidence(o, _largest_area(evidence, o.name)) >= UNSURE_BELOW]
        objects = sure or objects[:1]
    if objects:
        subject, said = _with_relations(evidence, objects, place)
        # The draft is right when every thing it names is a thing people would name.
        confidence = 1.0
        for obj in (o for o in objects if o.name in said):
            confidence *= label_confidence(obj, _largest_area(evidence, obj.name))
    elif top is not None and top.score >= 0.3 and top.name not in _SCENES:
        subject = _words().a(top.name) + (f" {place}" if place else "")
        confidence = 0.1 + 0.4 * top.score
    elif place:
        subject, confidence = f"a view {place}", 0.3
    else:
        subject, confidence = "", 0.1

    # How it is made.
    if evidence.kind in ("text", "screenshot") and text_lines:
        lead = "Screenshot with the text" if evidence.kind == "screenshot" else "Text reading"
        return f"{lead} {_quote(text_lines)}.", min(MAX_CONFIDENCE, 0.35 + 0.4 * text_score)
    medium = {
        "chart": "Chart", "logo": "Logo", "illustration": "Illustration", "screenshot": "Screenshot",
        "diagram": "Diagram", "map": "Map", "document": "Document",
    }.get(evidence.kind)
    if evidence.greyscale and medium is None:
        medium = "Black-and-white photograph"

    sentence = subject
    if medium and sentence:
        sentence = f"{medium}: {sentence}"
    elif medium:
        sentence = medium
    elif not sentence:
        sentence = "A photograph; no objects could be recognised"
    if evidence.kind == "photo":
        text_lines = [line for line in text_lines if _legible(line)][:2]  # signs, not OCR noise
    if text_lines:
        joiner = " and the text" if ", with " in sentence else ", with the text"
        sentence += f"{joiner} {_quote(text_lines, 60)}"
        confidence = max(confidence, 0.3 + 0.3 * text_score)
    if evidence.kind in OUT_OF_DOMAIN:
        confidence = min(confidence, OUT_OF_DOMAIN_CONFIDENCE)
    sentence = sentence[0].upper() + sentence[1:] + "."
    return sentence, round(min(MAX_CONFIDENCE, confidence), 3)


def _legible(line: str) -> bool:
    """A line of text in a photo worth quoting: at least three letters and mostly letters
    (a sign or a name), not a number plate, a serial number or a few stray glyphs."""
    letters = sum(ch.isalpha() for ch in line)
    digits = sum(ch.isdigit() for ch in line)
    return letters >= 3 and digits <= 0.2 * len(line)


# Chance that people describing a photo name a detected thing, from the detector's score and
# the thing's size: a logistic fit on COCO dev (1 parameter each; see evaluation/results/README.md).
_CALIBRATION = (-1.27, 4.86, 0.342)


def label_confidence(label: Label, area: float = 0.05) -> float:
    """How likely a person describing the picture names this thing (0-1)."""
    bias, w_score, w_area = _CALIBRATION
    z = bias + w_score * label.score + w_area * math.log(area + 1e-3)
    return 1.0 / (1.0 + math.exp(-z))


def _largest_area(evidence: Evidence, name: str) -> float:
    areas = [(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in evidence.detections if d.name == name]
    return max(areas, default=0.05)
