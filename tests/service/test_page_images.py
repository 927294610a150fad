"""service.page_images: every image on a page, with what the page says about it."""
from __future__ import annotations

from service.page_images import extract_images

PAGE = """<!doctype html>
<html lang="en-GB">
<head><title>Ada's  blog</title><base href="https://cdn.example.org/site/"></head>
<body>
<figure>
  <img src="ship.jpg" alt="A ship" width="300">
  <figcaption>The <b>Cutty Sark</b> in dry dock</figcaption>
</figure>
<a href="/posts/1" class="card"><img src="data:image/gif;base64,R0lGOD" data-src="/img/card.jpg"
     alt=""><h3>Winter garden</h3></a>
<div class="author"><img src="jane.jpg" alt="Jane Doe"> <span>Jane Doe</span></div>
<button type="submit"><svg viewBox="0 0 10 10"><title>x</title><path d="M0 0"/></svg></button>
<input type="image" src="go.png" alt="Go">
<img src="map.png" usemap="#m" alt="Site map"><map name="m"><area href="/north" alt="North" coords="0,0,5,5"><area alt="no href"></map>
<picture><source srcset="hero.webp 1x, hero@2x.webp 2x"><img src="hero.jpg" alt="" id="hero"></picture>
<div role="img" aria-label="Five stars"><span>*****</span></div>
<object data="chart.svg" type="image/svg+xml">Sales chart</object>
<p lang="fr">Le <img src="tour.jpg" alt="La tour"> brille.</p>
<div aria-hidden="true"><img src="ornament.png" alt=""></div>
<img srcset="only-a.jpg 1x, only-b.jpg 2x" data-srcset="lazy-a.jpg 1x" alt="x">
</body></html>
"""


def by_src(page, suffix):
    return next(i for i in page.images if i.src and i.src.endswith(suffix))


def test_every_kind_of_image_in_document_order_with_source_positions():
    page = extract_images(PAGE, url="https://example.org/blog/")
    kinds = [i.kind for i in page.images]
    assert kinds == ["img", "img", "img", "svg", "input-image", "img", "area", "img", "role-img", "object",
                     "img", "img", "img"]
    assert page.lang == "en-GB" and page.title == "Ada's blog"
    ship = page.images[0]
    assert ship.html == '<img src="ship.jpg" alt="A ship" width="300">'
    assert (ship.line, ship.column) == (6, 3)
    # a multi-line start tag is kept as written
    card = page.images[1]
    assert card.html.startswith('<img src="data:image/gif') and "\n" in card.html and card.line == 9
    svg = page.images[3]
    assert svg.html.startswith("<svg viewBox") and svg.html.endswith("</svg>")
    obj = page.images[9]
    assert obj.html == '<object data="chart.svg" type="image/svg+xml">Sales chart</object>'


def test_sources_lazy_loading_base_and_picture_candidates():
    page = extract_images(PAGE, url="https://example.org/blog/")
    card = page.images[1]
    assert card.lazy and card.src == "https://cdn.example.org/img/card.jpg"
    assert page.images[0].src == "https://cdn.example.org/site/ship.jpg" and not page.images[0].lazy
    hero = by_src(page, "hero.jpg")
    assert hero.srcset == ["https://cdn.example.org/site/hero.webp", "https://cdn.example.org/site/hero@2x.webp"]
    only = page.images[-1]
    # lazy loaders swap data-srcset in when there is no real src: it is the image people see
    assert only.src == "https://cdn.example.org/site/lazy-a.jpg" and only.lazy
    assert "https://cdn.example.org/site/only-b.jpg" in only.srcset
    assert page.images[9].src == "https://cdn.example.org/site/chart.svg"


def test_what_the_page_says_about_each_image():
    page = extract_images(PAGE)
    ship, card, jane, svg, go = page.images[:5]
    assert ship.caption == "The Cutty Sark in dry dock" and ship.alt == "A ship"
    assert card.alt == "" and card.control.tag == "a" and card.control.href == "/posts/1"
    assert card.control.text == "Winter garden" and card.control.heading == "Winter garden"
    assert jane.nearby_text == "Jane Doe" and jane.control is None
    assert svg.control.tag == "button" and svg.control.text == "" and svg.alt is None
    assert go.control.tag == "input" and go.alt == "Go"
    area = page.images[6]
    assert area.alt == "North" and area.control.href == "/north"
    tour = by_src(page, "tour.jpg")
    assert tour.lang == "fr" and tour.nearby_text == "Le brille."
    assert ship.lang == "en-GB"
    ornament = by_src(page, "ornament.png")
    assert ornament.hidden and not ship.hidden
    stars = page.images[8]
    assert stars.role == "img" and stars.attrs["aria-label"] == "Five stars"


def test_selectors_are_unique_and_point_at_the_element():
    page = extract_images(PAGE)
    for image in page.images:
        found = page.parser.css(image.selector)
        assert len(found) == 1, image.selector
        assert found[0].mem_id == image.node.mem_id
    assert by_src(page, "hero.jpg").selector == "#hero"


def test_svg_parts_and_broken_markup_do_not_confuse_positions():
    source = ("<p>text<img src=a.png alt='one'>\n<svg><image href='x.png'/><g role='img'></g></svg>\n"
              "<div><img src=a.png alt='one'><img src=b.png></div><img src=c.png alt=unclosed <p>")
    page = extract_images(source)
    assert [i.kind for i in page.images] == ["img", "svg", "img", "img", "img"]
    assert [i.line for i in page.images[:4]] == [1, 2, 3, 3]
    assert page.images[2].column == 6 and page.images[2].html == "<img src=a.png alt='one'>"
    assert page.lang is None and page.images[0].lang is None
