"""Does a draft name a thing the human references name? Word match plus object synonyms.

A draft that says "a person" names the same thing as a reference that says "a woman", and
"a golden retriever" the same thing as "a dog". The synonym sets follow the COCO-object
synonym list of the CHAIR hallucination metric (Rohrbach et al., "Object Hallucination in
Image Captioning", EMNLP 2018), shortened to the common words: a fixed, general list, not
one fitted to any reference. Used for the confidence calibration in evaluation reports.
"""
from __future__ import annotations

from functools import lru_cache

from evaluation.noun_overlap import _words, content_nouns

SYNONYMS: dict[str, set[str]] = {
    "person": {"person", "people", "man", "men", "woman", "women", "boy", "girl", "child", "children", "kid", "kids",
               "player", "guy", "lady", "baby", "toddler", "skier", "surfer", "snowboarder", "skateboarder",
               "rider", "crowd", "group", "family", "couple", "adult", "teenager", "pedestrian", "worker", "chef"},
    "bicycle": {"bicycle", "bike", "cycle"}, "car": {"car", "vehicle", "taxi", "suv", "van", "automobile"},
    "motorcycle": {"motorcycle", "motorbike", "bike", "scooter", "moped"},
    "airplane": {"airplane", "plane", "jet", "aircraft", "airliner", "jetliner"},
    "bus": {"bus", "coach"}, "train": {"train", "locomotive", "tram", "subway"},
    "truck": {"truck", "lorry", "pickup"}, "boat": {"boat", "ship", "canoe", "kayak", "sailboat", "yacht", "ferry"},
    "traffic light": {"light", "signal", "stoplight"}, "fire hydrant": {"hydrant"}, "stop sign": {"sign"},
    "bench": {"bench"}, "bird": {"bird", "albatross", "pelican", "seagull", "gull", "duck", "goose", "pigeon",
                                 "parrot", "owl", "eagle", "vulture"},
    "cat": {"cat", "kitten", "kitty"}, "dog": {"dog", "puppy", "pup", "bulldog", "retriever", "terrier"},
    "horse": {"horse", "pony"}, "sheep": {"sheep", "lamb", "ram", "goat"},
    "cow": {"cow", "cattle", "bull", "calf", "ox", "steer"}, "elephant": {"elephant"}, "bear": {"bear"},
    "zebra": {"zebra"}, "giraffe": {"giraffe"}, "umbrella": {"umbrella", "parasol"},
    "tennis racket": {"racket", "racquet"}, "baseball bat": {"bat"}, "baseball glove": {"glove", "mitt"},
    "skis": {"ski", "skis", "skiing"}, "snowboard": {"snowboard", "snowboarding"},
    "surfboard": {"surfboard", "board", "surfing"}, "skateboard": {"skateboard", "board", "skateboarding"},
    "sports ball": {"ball", "baseball", "football", "soccer", "tennis"}, "kite": {"kite"},
    "dining table": {"table", "desk"}, "tv": {"television", "tv", "monitor", "screen"},
    "laptop": {"laptop", "computer", "notebook"}, "cell phone": {"phone", "cellphone", "smartphone"},
    "cake": {"cake", "cupcake", "dessert", "pie"}, "donut": {"donut", "doughnut"},
    "couch": {"couch", "sofa"}, "toilet": {"toilet"}, "sink": {"sink", "basin", "washbasin"},
    "refrigerator": {"refrigerator", "fridge"}, "oven": {"oven", "stove"}, "potted plant": {"plant", "flower"},
    "bowl": {"bowl", "dish"}, "cup": {"cup", "mug"}, "wine glass": {"glass"}, "bed": {"bed"},
}


@lru_cache(maxsize=1)
def _word_to_classes() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for cls, words in SYNONYMS.items():
        for word in words | set(cls.split()):
            out.setdefault(word, set()).add(cls)
    return out


def _concepts(words: set[str]) -> set[str]:
    table = _word_to_classes()
    found = set(words)
    for word in words:
        found |= {f"class:{c}" for c in table.get(word, ())}
    return found


def names_a_referenced_thing(draft: str, references: list[str]) -> bool:
    """True when a thing the draft names is named in at least one reference, as the same
    word or as a synonym of the same COCO object class."""
    if not references:
        return False
    ref_words = set().union(*(_words(r) for r in references))
    return bool(_concepts(content_nouns(draft)) & _concepts(ref_words))


def mentions(object_class: str, references: list[str]) -> bool:
    """Does any reference name this COCO object class (or a synonym of it)?"""
    ref_words = set().union(*(_words(r) for r in references)) if references else set()
    return bool(SYNONYMS.get(object_class, {object_class}) & ref_words) or object_class in " ".join(references).lower()
