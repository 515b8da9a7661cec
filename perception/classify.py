"""`classify`: label a folder of face crops, one CSV row per image.

Meant for evaluating the classifier on crops cut by someone else (another detector, a data
set of face crops): every image file is taken to BE a face crop and is classified whole,
without running the face detector and without adding a margin. For full photos use
`detect` instead.
"""
from __future__ import annotations

import csv
import os
import sys
from typing import List, Optional

from perception.cli import make_parser, positive_int, run

PROG = "classify"


def build_parser():
    parser = make_parser(
        PROG,
        "Classify every image under --crops-dir (recursively) as masked / unmasked /\n"
        "incorrect. Each image must already be a face crop: the WHOLE image is classified,\n"
        "no face detection is run. Writes a CSV with columns path,label,score where path is\n"
        "relative to --crops-dir (with '/' separators) and score is the probability of label.",
        epilog="example:\n  python -m perception.classify --crops-dir crops/ --out preds.csv")
    parser.add_argument("--crops-dir", required=True, metavar="DIR",
                        help="folder of face crops (searched recursively)")
    parser.add_argument("--out", required=True, metavar="CSV", help="CSV file to write")
    parser.add_argument("--weights", metavar="PATH",
                        help="classifier weights (default: the shipped "
                             "perception/models/mask_classifier.pt)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                        help="crops per forward pass (default 32)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="torch threads (default 1)")
    return parser


def classify_folder(crops_dir: str, out_csv: str, weights: Optional[str] = None,
                    batch_size: int = 32) -> int:
    """Classify every image under ``crops_dir`` into ``out_csv``; returns the row count."""
    from perception.classifier import MaskClassifier
    from perception.video import list_images, read_image

    paths = list_images(crops_dir, recursive=True)
    classifier = MaskClassifier(weights)
    folder = os.path.dirname(os.path.abspath(out_csv))
    os.makedirs(folder, exist_ok=True)
    partial = out_csv + ".partial"  # a bad image half-way must not leave a short CSV behind
    try:
        with open(partial, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "score"])
            for start in range(0, len(paths), batch_size):
                chunk = paths[start:start + batch_size]
                crops = [read_image(p)[:, :, ::-1] for p in chunk]  # BGR -> RGB
                for path, result in zip(chunk, classifier.classify(crops)):
                    relative = os.path.relpath(path, crops_dir).replace(os.sep, "/")
                    writer.writerow([relative, result.label, "%.4f" % result.score])
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    os.replace(partial, out_csv)
    return len(paths)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> None:
        import torch

        torch.set_num_threads(args.threads)
        count = classify_folder(args.crops_dir, args.out, args.weights, args.batch_size)
        print("%s: classified %d image(s) into %s" % (PROG, count, args.out))

    return run(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
