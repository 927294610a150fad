"""Pixel statistics and the offline sentence templates, without loading any model."""
from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw, ImageFont

from models.draft import Evidence, Label
from models.offline.compose import MAX_CONFIDENCE, compose
from models.pixels import image_kind, is_greyscale, pixel_stats
from tests.support.images import coco_fixture


def _jpeg(image: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _bar_chart() -> Image.Image:
    font = ImageFont.load_default(size=18)
    chart = Image.new("RGB", (480, 320), "white")
    draw = ImageDraw.Draw(chart)
    draw.line((40, 280, 460, 280), fill="black", width=2)
    draw.line((40, 20, 40, 280), fill="black", width=2)
    for i, (h, colour) in enumerate(zip([120, 200, 90, 240], ["#4472c4", "#ed7d31", "#a5a5a5", "#ffc000"])):
        draw.rectangle((70 + i * 95, 280 - h, 130 + i * 95, 280), fill=colour)
        draw.text((75 + i * 95, 290), f"Q{i + 1}", fill="black", font=font)
    return chart


def _logo() -> Image.Image:
    logo = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(logo).ellipse((50, 50, 250, 250), fill="#d62728")
    return logo


@pytest.mark.parametrize("encode", [lambda im: im, _jpeg], ids=["png", "jpeg"])
def test_kinds_of_image(encode):
    chart = pixel_stats(encode(_bar_chart()))
    assert image_kind(chart, text_area=0.02, text_chars=8, object_count=0) == "chart"
    logo = pixel_stats(encode(_logo()))
    assert image_kind(logo, text_area=0.0, text_chars=0, object_count=0) == "logo"
    photo = pixel_stats(encode(coco_fixture("000000020247")))
    assert image_kind(photo, text_area=0.0, text_chars=0, object_count=0) == "photo"
    # a bus covered in a poster: lots of text, but a photo of things
    assert image_kind(photo, text_area=0.4, text_chars=90, object_count=2) == "photo"
    page = pixel_stats(encode(Image.new("RGB", (400, 300), "white")))
    assert image_kind(page, text_area=0.4, text_chars=120, object_count=0) == "text"


def test_greyscale_checks_agree():
    colour = coco_fixture("000000555705")
    grey = colour.convert("L").convert("RGB")
    assert not is_greyscale(colour) and not pixel_stats(colour).greyscale
    assert is_greyscale(grey) and pixel_stats(_jpeg(grey)).greyscale


def _evidence(objects=(), labels=(), **kw) -> Evidence:
    return Evidence(objects=[Label(name=n, score=s, count=c) for n, s, c in objects],
                    labels=[Label(name=n, score=s) for n, s in labels], kind=kw.pop("kind", "photo"), **kw)


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([("sheep", 0.9, 5)], "A flock of sheep."),
        ([("cat", 0.9, 3)], "Three cats."),
        ([("person", 0.8, 60)], "A crowd of people."),
        ([("person", 0.8, 4)], "A group of people."),
        ([("car", 0.8, 9)], "Many cars."),
        ([("dog", 0.9, 1), ("person", 0.7, 2)], "Two people and a dog."),
        ([("broccoli", 0.9, 3)], "Some broccoli."),
        ([("skis", 0.9, 2)], "Two pairs of skis."),
        ([("sports ball", 0.9, 1)], "A ball."),
    ],
)
def test_counts_and_nouns(objects, expected):
    assert compose(_evidence(objects))[0] == expected


def test_breed_refines_a_single_dog_only():
    one = _evidence([("dog", 0.9, 1)], [("golden retriever", 0.8)])
    two = _evidence([("dog", 0.9, 2)], [("golden retriever", 0.8)])
    assert compose(one)[0] == "A golden retriever."
    assert compose(two)[0] == "Two dogs."


def test_scene_from_imagenet():
    from models.offline.compose import SCENES
    from models.offline.scene import setting

    place = setting({"person"}, [("ballplayer", 0.5)], 0.0, SCENES)
    assert place == "at a baseball game"
    sentence, _ = compose(_evidence([("person", 0.9, 60)], scene=place))
    assert sentence == "A crowd of people at a baseball game."


def test_weak_evidence_lowers_confidence_and_names_nothing():
    strong = compose(_evidence([("cat", 0.95, 2)]))[1]
    weak_object = compose(_evidence([("cat", 0.51, 2)]))[1]
    only_classifier = compose(_evidence(labels=[("tripod", 0.4)]))
    nothing = compose(_evidence(labels=[("tripod", 0.1)]))
    assert MAX_CONFIDENCE >= strong > weak_object > only_classifier[1] > nothing[1]
    assert only_classifier[0] == "A tripod."
    assert nothing[0] == "A photograph; no objects could be recognised."


def test_faces_count_people_the_detector_missed():
    assert compose(_evidence(faces=2))[0] == "Two people."
    assert compose(_evidence([("person", 0.9, 3)], faces=1))[0] == "A group of people."


def test_medium_and_text():
    assert compose(_evidence(kind="chart"), ["Q1", "Q2"], 0.9)[0] == "Chart, with the text “Q1 / Q2”."
    assert compose(_evidence([("dog", 0.9, 1)], greyscale=True))[0] == "Black-and-white photograph: a dog."
    text, conf = compose(_evidence(kind="text"), ["OPEN 24 HOURS"], 0.99)
    assert text == "Text reading “OPEN 24 HOURS”." and conf > 0.7


def test_the_evidence_says_where_the_setting_came_from():
    # The merge states a setting beside a caption only when it was read from the things seen: a
    # whole-image class gives no confidence for it (service.merge._without_guessed_setting).
    from models.offline.backend import describe

    photo = coco_fixture("000000555705")
    person = ("person", 0.9, (0.3, 0.2, 0.6, 0.9))
    from_class = describe(photo, [Label(name="ballplayer", score=0.6)], [person], [], [])[2]
    assert (from_class.scene, from_class.scene_source) == ("at a baseball game", "classes")
    glove = ("baseball glove", 0.8, (0.5, 0.5, 0.6, 0.6))
    from_things = describe(photo, [Label(name="ballplayer", score=0.6)], [person, glove], [], [])[2]
    assert (from_things.scene, from_things.scene_source) == ("on a baseball field", "objects")
    nothing = describe(photo, [], [person], [], [])[2]
    assert (nothing.scene, nothing.scene_source) == (None, None)
