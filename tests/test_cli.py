"""The detect / classify / heatmap CLIs end to end, run as a user runs them (python -m)."""
from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest

from conftest import FIXTURES, astronaut_bgr, contains, fixture_paths, moving_frames, \
    run_module
from perception.types import LABELS

KNOWN_LABELS = set(LABELS)


def write_png(path, image) -> str:
    import cv2

    assert cv2.imwrite(str(path), image)
    return str(path)


def write_video(path, frames, fps: float = 10.0) -> str:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def assert_one_line_error(proc, *names):
    """Exit 2, no traceback, one stderr line naming each of ``names``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])


@pytest.mark.parametrize("module", ["perception.detect", "perception.classify",
                                    "perception.heatmap", "perception.dataset"])
def test_help(module):
    proc = run_module(module, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: " + module.split(".")[1])


def test_detect_image_writes_annotated_png_and_json(tmp_path):
    import cv2

    image = astronaut_bgr()
    source = write_png(tmp_path / "astronaut.png", image)
    out = tmp_path / "result" / "annotated.png"
    proc = run_module("perception.detect", source, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    annotated = cv2.imread(str(out))
    assert annotated.shape == image.shape
    assert np.abs(annotated.astype(int) - image).sum() > 0  # something was drawn
    report = json.loads((tmp_path / "result" / "annotated.json").read_text())
    assert report["kind"] == "image" and len(report["frames"]) == 1
    (face,) = report["frames"][0]["faces"]
    assert face["label"] in KNOWN_LABELS and 0.0 <= face["score"] <= 1.0
    assert isinstance(face["track_id"], int)
    assert contains((0, 0, image.shape[1], image.shape[0]), face["box"])


def test_detect_folder_writes_one_image_per_photo(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in fixture_paths("with_mask")[:1] + fixture_paths("without_mask")[:1]:
        shutil.copy(path, str(photos))
    out = tmp_path / "annotated"
    proc = run_module("perception.detect", str(photos), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    written = sorted(p for p in os.listdir(str(out)) if p.endswith(".png"))
    assert len(written) == 2
    report = json.loads((out / "detections.json").read_text())
    assert [len(f["faces"]) for f in report["frames"]] == [1, 1]


def test_detect_video_writes_video_and_keeps_track_ids(tmp_path):
    import cv2

    frames, _ = moving_frames([os.path.join(FIXTURES, "without_mask", "152.jpg")],
                              [(100, 120)], (4, 2), 12)
    source = write_video(tmp_path / "walk.mp4", frames)
    out = tmp_path / "walk_detected.mp4"
    proc = run_module("perception.detect", source, "--out", str(out), "--detect-every", "4")
    assert proc.returncode == 0, proc.stderr
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    capture.release()
    report = json.loads((tmp_path / "walk_detected.json").read_text())
    assert report["kind"] == "video" and len(report["frames"]) == len(frames)
    assert [f["detected"] for f in report["frames"]] == [i % 4 == 0 for i in range(12)]
    ids = {face["track_id"] for f in report["frames"] for face in f["faces"]}
    assert len(ids) == 1


def test_classify_writes_one_row_per_crop_with_relative_paths(tmp_path):
    crops = tmp_path / "crops"
    (crops / "a" / "b").mkdir(parents=True)
    masked, unmasked = fixture_paths("with_mask")[0], fixture_paths("without_mask")[0]
    shutil.copy(masked, str(crops / "a" / "one.jpg"))
    shutil.copy(unmasked, str(crops / "a" / "b" / "two.jpg"))
    shutil.copy(unmasked, str(crops / "three.jpg"))
    (crops / "notes.txt").write_text("not an image")
    out = tmp_path / "preds.csv"
    proc = run_module("perception.classify", "--crops-dir", str(crops), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    with open(str(out), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "label", "score"]
    assert sorted(r["path"] for r in rows) == ["a/b/two.jpg", "a/one.jpg", "three.jpg"]
    assert all(r["label"] in KNOWN_LABELS and 0.0 <= float(r["score"]) <= 1.0 for r in rows)
    by_path = {r["path"]: r for r in rows}
    assert by_path["a/b/two.jpg"] == dict(by_path["three.jpg"], path="a/b/two.jpg")


def test_heatmap_on_a_crop_and_on_a_photo(tmp_path):
    import cv2

    crop_out = tmp_path / "crop_cam.png"
    proc = run_module("perception.heatmap", fixture_paths("without_mask")[0], "--crop",
                      "--out", str(crop_out))
    assert proc.returncode == 0, proc.stderr
    assert min(cv2.imread(str(crop_out)).shape[:2]) >= 256

    image = astronaut_bgr()
    photo_out = tmp_path / "photo_cam.png"
    proc = run_module("perception.heatmap", write_png(tmp_path / "a.png", image),
                      "--out", str(photo_out), "--target", "unmasked")
    assert proc.returncode == 0, proc.stderr
    overlay = cv2.imread(str(photo_out)).astype(int)
    assert overlay.shape == image.shape
    changed = np.abs(overlay - image).sum(axis=2) > 30
    # The overlay covers the face (upper middle), not the whole photo.
    ys, xs = np.nonzero(changed)
    assert 0.02 < changed.mean() < 0.3
    assert ys.mean() < image.shape[0] / 2


# -- bad input: one line, exit 2 ------------------------------------------------------------
def test_unreadable_image(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is no jpeg")
    assert_one_line_error(run_module("perception.detect", str(bad)), bad)
    assert_one_line_error(run_module("perception.heatmap", str(bad), "--crop"), bad)


def test_missing_input_and_empty_folder(tmp_path):
    missing = tmp_path / "nowhere.jpg"
    assert_one_line_error(run_module("perception.detect", str(missing)), missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_module("perception.detect", str(empty)), empty)
    out = tmp_path / "p.csv"
    assert_one_line_error(run_module("perception.classify", "--crops-dir", str(empty),
                                     "--out", str(out)), empty)
    assert not out.exists()


def test_video_that_will_not_open(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 2048)
    assert_one_line_error(run_module("perception.detect", str(bad)), bad)


def test_missing_weights(tmp_path):
    weights = tmp_path / "missing.pt"
    crops = tmp_path / "crops"
    crops.mkdir()
    shutil.copy(fixture_paths("with_mask")[0], str(crops))
    assert_one_line_error(run_module("perception.classify", "--crops-dir", str(crops),
                                     "--out", str(tmp_path / "p.csv"), "--weights",
                                     str(weights)), weights)


def test_bad_arguments_are_one_line_too():
    assert_one_line_error(run_module("perception.detect", "x.jpg", "--detect-every", "0"),
                          "--detect-every")
    assert_one_line_error(run_module("perception.classify", "--out", "p.csv"), "--crops-dir")
