"""`dataset`: PASCAL VOC annotations -> CSV -> TFRecord (TF Object Detection API layout).

Face-mask detection data sets mostly ship PASCAL VOC XML; the TensorFlow Object Detection
API wants TFRecords of tf.train.Example. This tool converts between them without
TensorFlow: the CSV is the human-checkable middle step, and the TFRecord writer below is a
small hand-written encoder of the two formats involved:

- the record framing: uint64 length, masked CRC-32C of the length, the data, masked
  CRC-32C of the data (all little-endian);
- the tf.train.Example protobuf: Example{features=1: Features{feature=1: map<string,
  Feature>}}, Feature{bytes_list=1 | float_list=2 | int64_list=3}, each list a repeated
  field 1 (floats and int64s packed).

Keys written per image: image/height, image/width, image/filename, image/source_id,
image/encoded, image/format, image/object/bbox/{xmin,xmax,ymin,ymax} (normalised to 0..1),
image/object/class/text and image/object/class/label (1-based ids: 0 is the API's
background).
"""
from __future__ import annotations

import csv
import os
import struct
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from perception.cli import make_parser, run
from common.errors import InputError

PROG = "dataset"
CSV_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


# -- VOC XML -> CSV ----------------------------------------------------------------------
def _text(element: ET.Element, tag: str, path: str) -> str:
    found = element.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise InputError("%s has no <%s>; every VOC annotation needs filename, size "
                         "(width, height) and per object name and bndbox" % (path, tag))
    return found.text.strip()


def _number(element: ET.Element, tag: str, path: str) -> int:
    text = _text(element, tag, path)
    try:
        return int(round(float(text)))
    except ValueError:
        raise InputError("%s: <%s> is %r, expected a number" % (path, tag, text)) from None


def read_voc(path: str) -> List[Dict]:
    """The rows (one per object, CSV_COLUMNS keys) of one VOC annotation file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError("%s is not well-formed XML (%s); fix or remove it" % (path, exc))
    filename = _text(root, "filename", path)
    size = root.find("size")
    if size is None:
        raise InputError("%s has no <size>; every VOC annotation needs filename, size "
                         "(width, height) and per object name and bndbox" % path)
    width, height = _number(size, "width", path), _number(size, "height", path)
    rows = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        if box is None:
            raise InputError("%s: an <object> has no <bndbox>" % path)
        row = OrderedDict([("filename", filename), ("width", width), ("height", height),
                           ("class", _text(obj, "name", path))])
        for key in ("xmin", "ymin", "xmax", "ymax"):
            row[key] = _number(box, key, path)
        rows.append(row)
    return rows


def voc_to_rows(annotations_dir: str) -> List[Dict]:
    """Every object of every ``*.xml`` in ``annotations_dir`` (sorted by file name)."""
    if not os.path.isdir(annotations_dir):
        raise InputError("%s is not a folder; pass the folder that holds the VOC .xml files"
                         % annotations_dir)
    names = sorted(f for f in os.listdir(annotations_dir) if f.lower().endswith(".xml"))
    if not names:
        raise InputError("folder %s holds no .xml files; pass the VOC annotations folder"
                         % annotations_dir)
    rows: List[Dict] = []
    for name in names:
        rows.extend(read_voc(os.path.join(annotations_dir, name)))
    return rows


def write_csv(rows: Iterable[Dict], path: str) -> int:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    count = 0
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def read_csv(path: str) -> List[Dict]:
    """Rows of a labels CSV, checked: the columns, numbers, and boxes inside the image."""
    if not os.path.isfile(path):
        raise InputError("CSV %s does not exist; make it with `dataset xml2csv`" % path)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = tuple(reader.fieldnames or ())
        missing = [c for c in CSV_COLUMNS if c not in columns]
        if missing:
            raise InputError("CSV %s lacks column(s) %s (has %s); it needs %s, as written by "
                             "`dataset xml2csv`" % (path, ", ".join(missing),
                                                    ", ".join(columns) or "none",
                                                    ",".join(CSV_COLUMNS)))
        rows = []
        for line, raw in enumerate(reader, start=2):
            row = {"filename": raw["filename"], "class": raw["class"]}
            for key in ("width", "height", "xmin", "ymin", "xmax", "ymax"):
                try:
                    row[key] = int(round(float(raw[key])))
                except (TypeError, ValueError):
                    raise InputError("CSV %s line %d: %s is %r, expected a number"
                                     % (path, line, key, raw[key])) from None
            if not row["filename"] or not row["class"]:
                raise InputError("CSV %s line %d: empty filename or class" % (path, line))
            if not (0 <= row["xmin"] < row["xmax"] <= row["width"]
                    and 0 <= row["ymin"] < row["ymax"] <= row["height"]):
                raise InputError("CSV %s line %d: box (%d, %d, %d, %d) is empty or outside "
                                 "the %dx%d image" % (path, line, row["xmin"], row["ymin"],
                                                      row["xmax"], row["ymax"], row["width"],
                                                      row["height"]))
            rows.append(row)
    if not rows:
        raise InputError("CSV %s has a header but no rows" % path)
    return rows


# -- TFRecord writing ----------------------------------------------------------------------
def _crc32c_table() -> List[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord uses (zlib.crc32 is another CRC)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc32c(length)) + data
            + struct.pack("<I", masked_crc32c(data)))


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited (wire type 2) protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_feature(kind: str, values: Sequence) -> bytes:
    """A tf.train.Feature holding ``values`` as 'bytes', 'float' or 'int64'."""
    if kind == "bytes":
        inner = b"".join(_field(1, v if isinstance(v, bytes) else str(v).encode("utf-8"))
                         for v in values)
        return _field(1, inner)
    if kind == "float":
        packed = struct.pack("<%df" % len(values), *[float(v) for v in values])
        return _field(2, _field(1, packed) if values else b"")
    if kind == "int64":
        packed = b"".join(_varint(int(v)) for v in values)
        return _field(3, _field(1, packed) if values else b"")
    raise ValueError("feature kind must be bytes, float or int64, got %r" % (kind,))


def encode_example(features: Dict[str, Tuple[str, Sequence]]) -> bytes:
    """A serialised tf.train.Example from {key: (kind, values)} (keys sorted, as TF does)."""
    entries = b"".join(
        _field(1, _field(1, key.encode("utf-8")) + _field(2, encode_feature(*features[key])))
        for key in sorted(features))
    return _field(1, entries)


def class_ids(rows: Sequence[Dict], labels: Optional[Sequence[str]] = None) -> Dict[str, int]:
    """1-based ids per class: ``labels`` order if given, else sorted class names."""
    names = sorted({row["class"] for row in rows})
    if labels is None:
        return {name: i + 1 for i, name in enumerate(names)}
    unknown = [n for n in names if n not in labels]
    if unknown:
        raise InputError("classes %s are not in --labels %s; add them or fix the CSV"
                         % (", ".join(unknown), ",".join(labels)))
    return {name: i + 1 for i, name in enumerate(labels)}


def image_example(rows: Sequence[Dict], image_path: str, ids: Dict[str, int]) -> bytes:
    """The tf.train.Example of one image and all its boxes (rows share the filename)."""
    import cv2
    import numpy as np

    first = rows[0]
    if not os.path.isfile(image_path):
        raise InputError("image %s (listed in the CSV) does not exist; check --images"
                         % image_path)
    with open(image_path, "rb") as handle:
        encoded = handle.read()
    decoded = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise InputError("cannot decode image %s; it is damaged or not an image" % image_path)
    if (decoded.shape[1], decoded.shape[0]) != (first["width"], first["height"]):
        raise InputError("image %s is %dx%d but the CSV says %dx%d; regenerate the CSV"
                         % (image_path, decoded.shape[1], decoded.shape[0], first["width"],
                            first["height"]))
    ext = os.path.splitext(image_path)[1].lower().lstrip(".")
    image_format = "jpeg" if ext in ("jpg", "jpeg") else ext
    width, height = float(first["width"]), float(first["height"])
    filename = first["filename"].encode("utf-8")
    return encode_example({
        "image/height": ("int64", [first["height"]]),
        "image/width": ("int64", [first["width"]]),
        "image/filename": ("bytes", [filename]),
        "image/source_id": ("bytes", [filename]),
        "image/encoded": ("bytes", [encoded]),
        "image/format": ("bytes", [image_format.encode("utf-8")]),
        "image/object/bbox/xmin": ("float", [r["xmin"] / width for r in rows]),
        "image/object/bbox/xmax": ("float", [r["xmax"] / width for r in rows]),
        "image/object/bbox/ymin": ("float", [r["ymin"] / height for r in rows]),
        "image/object/bbox/ymax": ("float", [r["ymax"] / height for r in rows]),
        "image/object/class/text": ("bytes", [r["class"].encode("utf-8") for r in rows]),
        "image/object/class/label": ("int64", [ids[r["class"]] for r in rows]),
    })


def write_tfrecord(rows: Sequence[Dict], images_dir: str, out_path: str,
                   labels: Optional[Sequence[str]] = None) -> Tuple[int, Dict[str, int]]:
    """One record per image of ``rows`` (grouped by filename, CSV order); returns count, ids."""
    if not os.path.isdir(images_dir):
        raise InputError("--images %s is not a folder; pass the folder holding the images "
                         "named in the CSV" % images_dir)
    ids = class_ids(rows, labels)
    grouped: "OrderedDict[str, List[Dict]]" = OrderedDict()
    for row in rows:
        grouped.setdefault(row["filename"], []).append(row)
    records = [frame_record(image_example(group, os.path.join(images_dir, name), ids))
               for name, group in grouped.items()]
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as handle:
        for record in records:
            handle.write(record)
    return len(records), ids


def label_map_text(ids: Dict[str, int]) -> str:
    """The TF Object Detection API label map (pbtxt) for ``ids``."""
    return "".join("item {\n  id: %d\n  name: '%s'\n}\n" % (i, name)
                   for name, i in sorted(ids.items(), key=lambda kv: kv[1]))


# -- command line ----------------------------------------------------------------------------
def build_parser():
    parser = make_parser(
        PROG,
        "Convert PASCAL VOC annotations to a CSV, and a CSV plus images to a TFRecord in\n"
        "the TensorFlow Object Detection API layout (no TensorFlow needed).",
        epilog="examples:\n"
               "  dataset xml2csv data/annotations --out labels.csv\n"
               "  dataset tfrecord --csv labels.csv --images data/images --out train.tfrecord")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    xml2csv = commands.add_parser(
        "xml2csv", help="VOC .xml folder -> CSV (one row per box)",
        description="Read every .xml (PASCAL VOC) in a folder and write one CSV row per "
                    "object: " + ",".join(CSV_COLUMNS))
    xml2csv.add_argument("annotations", metavar="VOC_ANN_DIR",
                         help="folder with the VOC .xml files")
    xml2csv.add_argument("--out", required=True, metavar="CSV", help="CSV file to write")
    tfrecord = commands.add_parser(
        "tfrecord", help="CSV + images -> TFRecord (TF Object Detection API)",
        description="Write one tf.train.Example per image of the CSV, with its encoded bytes "
                    "and all its boxes (normalised), class names and 1-based class ids.")
    tfrecord.add_argument("--csv", required=True, metavar="CSV",
                          help="labels CSV (columns %s)" % ",".join(CSV_COLUMNS))
    tfrecord.add_argument("--images", required=True, metavar="DIR",
                          help="folder holding the images named in the CSV")
    tfrecord.add_argument("--out", required=True, metavar="TFRECORD", help="file to write")
    tfrecord.add_argument("--labels", metavar="A,B,...",
                          help="class names in id order (id 1 first); default: sorted names")
    tfrecord.add_argument("--label-map", metavar="PBTXT",
                          help="also write the matching label map for the API")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body() -> None:
        if args.command == "xml2csv":
            count = write_csv(voc_to_rows(args.annotations), args.out)
            print("%s: %d box(es) from %s -> %s" % (PROG, count, args.annotations, args.out))
            return
        labels = [n.strip() for n in args.labels.split(",") if n.strip()] if args.labels \
            else None
        count, ids = write_tfrecord(read_csv(args.csv), args.images, args.out, labels)
        if args.label_map:
            with open(args.label_map, "w") as handle:
                handle.write(label_map_text(ids))
        print("%s: %d image(s) -> %s (class ids: %s)"
              % (PROG, count, args.out, ", ".join("%s=%d" % kv for kv in sorted(ids.items()))))

    return run(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
