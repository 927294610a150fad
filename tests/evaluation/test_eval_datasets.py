from __future__ import annotations

import json

import pytest

from evaluation import datasets
from tests.support.images import COCO_FIXTURES


def test_jsonl_loader_reads_the_fixture_set():
    samples = datasets.load_samples(str(COCO_FIXTURES / "references.jsonl"))
    assert len(samples) == 8
    first = samples[0]
    assert first.image.is_file() and first.image.parent == COCO_FIXTURES
    assert first.caption is None and len(first.references) == 5
    assert first.meta["license"] == 4
    assert len(datasets.load_samples(str(COCO_FIXTURES / "references.jsonl"), limit=3)) == 3


def test_jsonl_loader_cleans_fields_and_names_bad_rows(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"id": 7, "image": "a.jpg", "caption": "  ", "references": ["ok", " ", None]})
                    + "\n\n" + json.dumps({"image": "b.jpg"}) + "\n")
    with pytest.raises(ValueError, match=r"set.jsonl:3"):
        datasets.load_samples(str(path))
    path.write_text(json.dumps({"id": 7, "image": "a.jpg", "caption": "  ", "references": ["ok", " ", None]}) + "\n")
    (sample,) = datasets.load_samples(str(path))
    assert sample.id == "7" and sample.caption is None and sample.references == ["ok"]


def test_coco_caption_annotations(tmp_path):
    (tmp_path / "images").mkdir()
    annotations = {
        "images": [{"id": 42, "file_name": "000042.jpg", "license": 4}, {"id": 7, "file_name": "000007.jpg"}],
        "annotations": [{"image_id": 42, "id": 1, "caption": "A dog  on a\nsofa."},
                        {"image_id": 42, "id": 2, "caption": "A brown dog."},
                        {"image_id": 7, "id": 3, "caption": "Two cats."}],
    }
    path = tmp_path / "captions_val.json"
    path.write_text(json.dumps(annotations))
    samples = datasets.load_samples(str(path))
    assert [s.id for s in samples] == ["42", "7"]
    assert samples[0].references == ["A dog on a sofa.", "A brown dog."]
    assert samples[0].image == tmp_path / "images" / "000042.jpg"
    assert samples[0].meta["coco_image_id"] == 42 and samples[0].caption is None
    other = datasets.load_samples(str(path), image_root=tmp_path / "elsewhere")
    assert other[1].image == tmp_path / "elsewhere" / "000007.jpg"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="COCO"):
        datasets.load_samples(str(path))


def test_shipped_names_need_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "data_root", lambda: None)
    with pytest.raises(FileNotFoundError, match="ALTTEXT_EVAL_DATA"):
        datasets.load_samples("concadia")
    monkeypatch.setattr(datasets, "data_root", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        datasets.load_samples("coco", split="test")


def test_data_root_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("ALTTEXT_EVAL_DATA", str(tmp_path))
    assert datasets.data_root() == tmp_path
    assert datasets.resolve("coco") == tmp_path / "coco" / "dev.jsonl"
