"""Relations, setting, colour and confidence of the offline drafter, on boxes built in code."""
from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw

from models.draft import Detection, Evidence, Label
from models.offline import scene as S
from models.offline.compose import OUT_OF_DOMAIN_CONFIDENCE, SCENES, compose, label_confidence
from models.pixels import kind_from_classes


def _ev(dets, *, scene=None, colour=None, kind="photo", labels=()) -> Evidence:
    counts: dict[str, list[float]] = {}
    for name, score, _ in dets:
        counts.setdefault(name, []).append(score)
    objects = [Label(name=n, score=max(s), count=len(s)) for n, s in counts.items()]
    return Evidence(objects=objects, detections=[Detection(name=n, score=s, box=b) for n, s, b in dets],
                    labels=[Label(name=n, score=s) for n, s in labels], scene=scene, colour=colour, kind=kind)


RIDER = ("person", 0.95, (0.40, 0.10, 0.60, 0.60))


@pytest.mark.parametrize(
    ("dets", "scene", "expected"),
    [
        ([RIDER, ("horse", 0.9, (0.30, 0.35, 0.75, 0.95))], "in a field", "A person riding a horse in a field."),
        ([RIDER, ("skis", 0.8, (0.35, 0.55, 0.65, 0.62))], "in the snow", "A person skiing in the snow."),
        ([RIDER, ("umbrella", 0.9, (0.42, 0.12, 0.55, 0.30))], "on a street", "A person holding an umbrella on a street."),
        ([RIDER, ("kite", 0.9, (0.50, 0.00, 0.60, 0.08))], None, "A person flying a kite."),
        ([("person", 0.9, (0.10, 0.10, 0.40, 0.90)), ("person", 0.9, (0.60, 0.10, 0.90, 0.90)),
          ("dining table", 0.9, (0.05, 0.55, 0.95, 1.00))], None, "Two people sitting at a table."),
        ([("cat", 0.95, (0.30, 0.30, 0.60, 0.60)), ("bed", 0.9, (0.00, 0.40, 1.00, 1.00))], "in a bedroom",
         "A cat on a bed in a bedroom."),
        ([("cat", 0.95, (0.30, 0.50, 0.60, 0.95)), ("tv", 0.9, (0.20, 0.10, 0.80, 0.70))], None,
         "A cat in front of a television."),
        ([("dog", 0.95, (0.05, 0.40, 0.45, 0.90)), ("person", 0.9, (0.50, 0.10, 0.80, 0.95))], None,
         "A person next to a dog."),
        ([("pizza", 0.95, (0.30, 0.50, 0.60, 0.70)), ("dining table", 0.9, (0.00, 0.40, 1.00, 1.00))], None,
         "A pizza on a table."),
    ],
)
def test_relations_from_boxes(dets, scene, expected):
    assert compose(_ev(dets, scene=scene))[0] == expected


def test_boxes_apart_are_not_related():
    far = _ev([("cat", 0.9, (0.0, 0.0, 0.1, 0.1)), ("car", 0.9, (0.7, 0.7, 1.0, 1.0))])
    assert compose(far)[0] == "A cat and a car."


def test_main_subject_is_the_biggest_animate_thing_not_the_furniture():
    dets = [S.Det("dining table", 0.9, (0.0, 0.3, 1.0, 1.0)), S.Det("dog", 0.9, (0.3, 0.2, 0.6, 0.6))]
    assert S.main_subject(dets) == "dog"


@pytest.mark.parametrize(
    ("names", "labels", "green", "expected"),
    [
        ({"person", "skis"}, [], 0.0, "in the snow"),
        ({"oven", "person"}, [], 0.0, "in a kitchen"),
        ({"toilet", "sink"}, [], 0.0, "in a bathroom"),
        ({"car", "traffic light"}, [], 0.0, "on a street"),
        ({"cow"}, [], 0.6, "in a field"),
        ({"cow"}, [], 0.05, None),  # no grass seen: no field claimed
        ({"person"}, [("seashore", 0.6)], 0.0, "on a beach"),
        ({"person"}, [("seashore", 0.1)], 0.0, None),
    ],
)
def test_setting_rules(names, labels, green, expected):
    assert S.setting(names, labels, green, SCENES) == expected


def test_colour_of_the_main_object():
    image = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(image).rectangle((40, 40, 160, 160), fill=(200, 20, 30))
    assert S.dominant_colour(image, (0.2, 0.2, 0.8, 0.8)) == "red"
    flag = Image.new("RGB", (200, 200), "white")
    for k, fill in enumerate([(200, 20, 30), (20, 160, 40), (20, 40, 200)]):
        ImageDraw.Draw(flag).rectangle((40 + 40 * k, 0, 80 + 40 * k, 200), fill=fill)
    assert S.dominant_colour(flag, (0.0, 0.0, 1.0, 1.0)) is None  # three stripes: no one colour
    bus = _ev([("bus", 0.95, (0.1, 0.1, 0.9, 0.9))], colour="red", scene="on a street")
    assert compose(bus)[0] == "A red bus on a street."


def test_people_get_no_colour_gender_or_age():
    sentence = compose(_ev([("person", 0.95, (0.1, 0.1, 0.9, 0.9))], colour="white"))[0]
    assert sentence == "A person."
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    assert not words & {"man", "woman", "boy", "girl", "young", "old", "white", "black"}


def test_confidence_follows_the_evidence_and_unsure_things_are_left_out():
    assert label_confidence(Label(name="cat", score=0.95), 0.3) > label_confidence(Label(name="cat", score=0.55), 0.3)
    assert label_confidence(Label(name="cat", score=0.9), 0.3) > label_confidence(Label(name="cat", score=0.9), 0.001)
    sure = _ev([("dog", 0.97, (0.1, 0.1, 0.6, 0.9))])
    with_unsure = _ev([("dog", 0.97, (0.1, 0.1, 0.6, 0.9)), ("kite", 0.51, (0.90, 0.0, 0.91, 0.01))])
    assert compose(with_unsure)[0] == compose(sure)[0] == "A dog."
    assert compose(_ev([("dog", 0.6, (0.1, 0.1, 0.2, 0.2))]))[1] < compose(sure)[1]


@pytest.mark.parametrize(
    ("labels", "best_object", "kind"),
    [
        ([("book jacket", 0.5)], 0.3, "document"),
        ([("web site", 0.6)], 0.0, "screenshot"),
        ([("comic book", 0.4)], 0.0, "illustration"),
        ([("book jacket", 0.5)], 0.9, "photo"),  # a confident object: a photo of a book
        ([("tabby", 0.5)], 0.0, "photo"),
    ],
)
def test_kind_from_classes(labels, best_object, kind):
    assert kind_from_classes("photo", labels, best_object) == kind


def test_out_of_domain_images_are_unsure_and_say_their_kind():
    sentence, confidence = compose(_ev([("cake", 0.9, (0.2, 0.2, 0.8, 0.8))], kind="map"))
    assert sentence == "Map: a cake." and confidence <= OUT_OF_DOMAIN_CONFIDENCE
