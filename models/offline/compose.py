"""Evidence -> one plain sentence and an honest confidence, by templates.

The offline models say *what* is in the picture (COCO objects with counts, ImageNet
classes, text, faces) but not what is happening, so the sentence names things and
counts them and never adds actions, relations, names or places the evidence does
not support. A small text generator would read better and invent more; we prefer
the reverse for alt text.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from models.draft import Evidence, Label


@lru_cache(maxsize=1)
def _words():
    """inflect's engine, built on first use (importing inflect takes a while)."""
    import inflect

    return inflect.engine()


# How COCO class names are said in a sentence.
_SPOKEN = {
    "sports ball": "ball", "dining table": "table", "tv": "television", "cell phone": "mobile phone",
    "hair drier": "hair dryer", "mouse": "computer mouse", "remote": "remote control",
    "skis": "pair of skis", "motorcycle": "motorbike",
}
_MASS_NOUNS = {"broccoli"}  # "some broccoli", never "three broccolis"
_ANIMATE_FIRST = ["person", "dog", "cat", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "bird"]

# ImageNet classes that say where a picture was taken.
_SCENES = {
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
"kitchen": "in a kitchen", "microwave": "in a kitchen",
    "dining table": "at a table", "wardrobe": "in a bedroom", "four-poster": "in a bedroom",
    "studio couch": "in a living room", "home theater": "in a living room", "tennis ball": "on a tennis court",
    "racket": "on a tennis court", "volleyball": "at a volleyball game", "football helmet": "at a football game",
    "rugby ball": "at a rugby game", "wreck": "at a shipwreck", "lifeboat": "on the water",
    "canoe": "on the water", "speedboat": "on the water", "paddle": "on the water",
}

# ImageNet index ranges that refine a COCO class ("dog" -> "golden retriever").
_REFINES = {"dog": [(151, 269)], "cat": [(281, 286)], "bear": [(294, 298)], "bird": [(7, 25), (80, 101), (127, 147)]}

MAX_CONFIDENCE = 0.75  # offline drafts always deserve a human glance more than a VLM's


@lru_cache(maxsize=1)
def _refinements() -> dict[str, str]:
    """ImageNet class name -> the COCO class it refines."""
    from models.offline.classifier import imagenet_names

    names = imagenet_names()
    return {names[i]: coco for coco, ranges in _REFINES.items() for lo, hi in ranges for i in range(lo, hi)}


def _noun_phrase(name: str, count: int) -> str:
    spoken = _SPOKEN.get(name, name)
    if name in _MASS_NOUNS:
        return spoken if count == 1 else f"some {spoken}"
    if count == 1:
        return _words().a(spoken)
    if name == "skis":
        plural = "pairs of skis"
    else:
        plural = _words().plural_noun(spoken)
    if count >= 15 and name == "person":
        return f"a crowd of about {count} people"
    if count >= 8:
        return f"about {count} {plural}"
    return f"{_words().number_to_words(count)} {plural}"


def _order(objects: Sequence[Label]) -> list[Label]:
    def key(label: Label) -> tuple:
        animate = _ANIMATE_FIRST.index(label.name) if label.name in _ANIMATE_FIRST else len(_ANIMATE_FIRST)
        return (animate, -label.count * label.score, label.name)

    return sorted(objects, key=key)


def _quote(lines: Sequence[str], limit: int = 80) -> str:
    text = " / ".join(lines)
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + "…"
    return f"“{text}”"


def compose(evidence: Evidence, text_lines: Sequence[str] = (), text_score: float = 0.0) -> tuple[str, float]:
    """Return (sentence, confidence in [0, MAX_CONFIDENCE])."""
    objects = _order(evidence.objects)[:3]
    top = evidence.labels[0] if evidence.labels else None
    refinements = _refinements()

    # What is in it.
    phrases = []
    for obj in objects:
        refined = next(
            (lab.name for lab in evidence.labels[:2] if lab.score >= 0.4 and refinements.get(lab.name) == obj.name),
            None,
        )
        phrases.append(_words().a(refined) if refined and obj.count == 1 else _noun_phrase(obj.name, obj.count))
    scene = next((_SCENES[lab.name] for lab in evidence.labels[:3] if lab.score >= 0.25 and lab.name in _SCENES), None)

    if phrases:
        subject = _words().join(phrases, final_sep="")
        score = sum(o.score for o in objects) / len(objects)
        confidence = 0.35 + 0.35 * score
    elif top is not None and top.score >= 0.3 and top.name not in _SCENES:
        subject = _words().a(top.name)
        confidence = 0.15 + 0.4 * top.score
    elif scene:
        subject, confidence = "a view", 0.3
    else:
        subject, confidence = "", 0.1

    if evidence.faces and not any(o.name == "person" for o in evidence.objects):
        # the detector missed people the face finder saw (close-ups, partial bodies)
        phrases.append(_noun_phrase("person", evidence.faces))
        subject = _words().join(phrases, final_sep="")
        confidence = max(confidence, 0.4)

    # How it is made.
    if evidence.kind in ("text", "screenshot") and text_lines:
        lead = "Screenshot with the text" if evidence.kind == "screenshot" else "Text reading"
        return f"{lead} {_quote(text_lines)}.", min(MAX_CONFIDENCE, 0.35 + 0.4 * text_score)
    medium = {
        "chart": "Chart", "logo": "Logo", "illustration": "Illustration", "screenshot": "Screenshot",
    }.get(evidence.kind)
    if evidence.greyscale and medium is None:
        medium = "Black-and-white photograph"

    sentence = subject
    if scene and subject:
        sentence = f"{subject} {scene}"
    if medium and sentence:
        sentence = f"{medium}: {sentence}"
    elif medium:
        sentence = medium
    elif not sentence:
        sentence = "A photograph; no objects could be recognised"
    if text_lines:
        sentence += f", with the text {_quote(text_lines, 60)}"
        confidence = max(confidence, 0.3 + 0.3 * text_score)
    sentence = sentence[0].upper() + sentence[1:] + "."
    return sentence, round(min(MAX_CONFIDENCE, confidence), 3)
