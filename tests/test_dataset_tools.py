"""`dataset xml2csv` and `dataset tfrecord`, read back with independent readers.

The VOC files are written here over the MIT fixture photos (the GPL VOC data set never
enters the repository). The TFRecord is read back with the `tfrecord` package's reader and
its own protobuf classes, and each record's CRCs are checked with the `crc32c` package:
none of that shares code with our writer.
"""
from __future__ import annotations

import csv
import os
import shutil
import struct

import numpy as np
import pytest

from conftest import fixture_paths, read_bgr, run_module
from perception.dataset import CSV_COLUMNS, crc32c, masked_crc32c

VOC_TEMPLATE = """<annotation>
  <folder>images</folder>
  <filename>{filename}</filename>
  <path>/somewhere/images/{filename}</path>
  <source><database>Unknown</database></source>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
  <segmented>0</segmented>
{objects}</annotation>
"""
OBJECT_TEMPLATE = """  <object>
    <name>{class}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>
  </object>
"""


@pytest.fixture()
def voc(tmp_path, detector):
    """Images + VOC XML over fixture photos: one masked, one unmasked, one with two faces.

    Returns (annotations dir, images dir, expected rows in file-name order).
    """
    import cv2

    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    masked, unmasked = fixture_paths("with_mask")[0], fixture_paths("without_mask")[0]
    # A side-by-side pair: two faces in one image, a PNG to check the format field.
    left, right = read_bgr(masked), read_bgr(unmasked)
    height = min(left.shape[0], right.shape[0])
    left = cv2.resize(left, (left.shape[1] * height // left.shape[0], height))
    right = cv2.resize(right, (right.shape[1] * height // right.shape[0], height))
    cv2.imwrite(str(images / "pair.png"), np.hstack([left, right]))
    shutil.copy(masked, str(images / "a_masked.jpg"))
    shutil.copy(unmasked, str(images / "b_unmasked.jpg"))
    classes = {"a_masked.jpg": ["with_mask"], "b_unmasked.jpg": ["without_mask"],
               "pair.png": ["with_mask", "without_mask"]}
    expected = []
    for name in sorted(classes):
        image = read_bgr(str(images / name))
        faces = sorted(detector.detect(image), key=lambda f: f.box[0])
        assert len(faces) == len(classes[name])
        objects = ""
        for face, cls in zip(faces, classes[name]):
            x1, y1, x2, y2 = (int(round(v)) for v in face.box)
            row = {"filename": name, "width": image.shape[1], "height": image.shape[0],
                   "class": cls, "xmin": x1, "ymin": y1, "xmax": x2, "ymax": y2}
            expected.append(row)
            objects += OBJECT_TEMPLATE.format(**row)
        (annotations / (os.path.splitext(name)[0] + ".xml")).write_text(VOC_TEMPLATE.format(
            filename=name, width=image.shape[1], height=image.shape[0], objects=objects))
    return annotations, images, expected


def read_rows(path):
    with open(str(path), newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_xml2csv_writes_one_row_per_box(voc, tmp_path):
    annotations, _, expected = voc
    out = tmp_path / "labels.csv"
    proc = run_module("perception.dataset", "xml2csv", str(annotations), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    columns, rows = read_rows(out)
    assert tuple(columns) == CSV_COLUMNS
    assert rows == [{k: str(v) for k, v in row.items()} for row in expected]


def test_tfrecord_round_trip_with_independent_reader(voc, tmp_path):
    import crc32c as reference_crc
    from tfrecord import example_pb2
    from tfrecord.reader import tfrecord_loader

    annotations, images, expected = voc
    labels_csv, out = tmp_path / "labels.csv", tmp_path / "train.tfrecord"
    label_map = tmp_path / "label_map.pbtxt"
    assert run_module("perception.dataset", "xml2csv", str(annotations),
                      "--out", str(labels_csv)).returncode == 0
    proc = run_module("perception.dataset", "tfrecord", "--csv", str(labels_csv), "--images",
                      str(images), "--out", str(out), "--label-map", str(label_map))
    assert proc.returncode == 0, proc.stderr
    ids = {"with_mask": 1, "without_mask": 2}  # sorted class names, 1-based
    assert "id: 1\n  name: 'with_mask'" in label_map.read_text()

    # Framing: every record's length and data CRCs, recomputed by the crc32c package.
    data = out.read_bytes()
    offset, payloads = 0, []
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        (length_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
        payload = data[offset + 12:offset + 12 + length]
        (data_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
        for raw, stored in ((data[offset:offset + 8], length_crc), (payload, data_crc)):
            crc = reference_crc.crc32c(raw)
            assert stored == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
        payloads.append(payload)
        offset += 16 + length
    assert offset == len(data)

    by_file = {}
    for row in expected:
        by_file.setdefault(row["filename"], []).append(row)
    loaded = list(tfrecord_loader(str(out), None, None))
    assert len(loaded) == len(payloads) == len(by_file)
    for record, payload, (name, rows) in zip(loaded, payloads, sorted(by_file.items())):
        example = example_pb2.Example.FromString(payload)
        feature = example.features.feature

        def ints(key):
            return list(feature[key].int64_list.value)

        def floats(key):
            return np.array(feature[key].float_list.value)

        def strings(key):
            return list(feature[key].bytes_list.value)

        width, height = rows[0]["width"], rows[0]["height"]
        assert ints("image/width") == [width] and ints("image/height") == [height]
        assert int(record["image/width"][0]) == width
        assert strings("image/filename") == [name.encode()]
        assert strings("image/source_id") == [name.encode()]
        assert strings("image/format") == [b"png" if name.endswith(".png") else b"jpeg"]
        encoded = strings("image/encoded")[0]
        assert encoded == (images / name).read_bytes()
        assert record["image/encoded"] == encoded
        for key, column, size in (("xmin", "xmin", width), ("xmax", "xmax", width),
                                  ("ymin", "ymin", height), ("ymax", "ymax", height)):
            values = floats("image/object/bbox/" + key)
            assert np.allclose(values, [r[column] / size for r in rows], atol=1e-6)
            assert np.allclose(record["image/object/bbox/" + key], values)
            assert ((0.0 <= values) & (values <= 1.0)).all()
        assert strings("image/object/class/text") == [r["class"].encode() for r in rows]
        assert ints("image/object/class/label") == [ids[r["class"]] for r in rows]
        assert set(feature) == {
            "image/height", "image/width", "image/filename", "image/source_id",
            "image/encoded", "image/format", "image/object/bbox/xmin",
            "image/object/bbox/xmax", "image/object/bbox/ymin", "image/object/bbox/ymax",
            "image/object/class/text", "image/object/class/label"}


def test_crc32c_matches_the_published_check_value():
    # RFC 3720 (iSCSI) B.4: CRC-32C of the ASCII digits "123456789" is 0xE3069283.
    assert crc32c(b"123456789") == 0xE3069283
    assert masked_crc32c(b"") == 0xA282EAD8  # crc 0 rotated is 0, plus the mask constant


# -- bad input: one line, exit 2 ------------------------------------------------------------
def one_line_error(proc, *names):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for name in names:
        assert str(name) in lines[0], lines[0]


def test_wrong_csv_columns(tmp_path, voc):
    _, images, _ = voc
    bad = tmp_path / "preds.csv"
    bad.write_text("path,label,score\na.jpg,masked,0.9\n")
    proc = run_module("perception.dataset", "tfrecord", "--csv", str(bad), "--images",
                      str(images), "--out", str(tmp_path / "x.tfrecord"))
    one_line_error(proc, bad, "filename")


def test_missing_image_and_broken_xml(tmp_path, voc):
    annotations, images, _ = voc
    labels_csv = tmp_path / "labels.csv"
    run_module("perception.dataset", "xml2csv", str(annotations), "--out", str(labels_csv))
    os.remove(str(images / "b_unmasked.jpg"))
    proc = run_module("perception.dataset", "tfrecord", "--csv", str(labels_csv), "--images",
                      str(images), "--out", str(tmp_path / "x.tfrecord"))
    one_line_error(proc, "b_unmasked.jpg")
    broken = annotations / "zz.xml"
    broken.write_text("<annotation><filename>zz.jpg</filename>")
    proc = run_module("perception.dataset", "xml2csv", str(annotations), "--out",
                      str(tmp_path / "l.csv"))
    one_line_error(proc, broken)
    empty = tmp_path / "no_xml"
    empty.mkdir()
    one_line_error(run_module("perception.dataset", "xml2csv", str(empty), "--out",
                              str(tmp_path / "l.csv")), empty)


@pytest.mark.dataset
def test_the_real_voc_folder_converts_completely(tmp_path):
    # The cross-source VOC set (GPL data, read in place, never copied into the repo).
    from tfrecord.reader import tfrecord_loader

    from conftest import datasets_dir

    root = os.path.join(datasets_dir(), "mask-detection-voc")
    annotations, images = os.path.join(root, "annotations"), os.path.join(root, "images")
    xml_files = [f for f in os.listdir(annotations) if f.endswith(".xml")]
    labels_csv, out = tmp_path / "labels.csv", tmp_path / "voc.tfrecord"
    assert run_module("perception.dataset", "xml2csv", annotations,
                      "--out", str(labels_csv)).returncode == 0
    _, rows = read_rows(labels_csv)
    assert len({r["filename"] for r in rows}) == len(xml_files)
    assert {r["class"] for r in rows} <= {"with_mask", "without_mask"}
    proc = run_module("perception.dataset", "tfrecord", "--csv", str(labels_csv),
                      "--images", images, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    records = list(tfrecord_loader(str(out), None, None))
    assert len(records) == len(xml_files)
    boxes = sum(len(r["image/object/bbox/xmin"]) for r in records)
    assert boxes == len(rows)
