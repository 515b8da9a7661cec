"""Evaluate the mask classifier: ``python -m perception.evaluate --data ../shared/datasets``.

Why three sets: the held-out test split of mask-classification says how well the model
learnt its own source; the boxes of mask-detection-voc (another source, never trained on)
say how well it carries over to photos it has never seen the like of, which is what a patrol
robot meets (cut both as the pipeline cuts faces and as bare boxes, the way crops made by
another tool reach ``classify``); and detection + classification mAP on the full VOC photos
measures the whole pipeline (MTCNN boxes, our crop, our label) against hand-drawn boxes. The
``incorrect`` class has no real photos, so its recall is measured on masks synthesised onto
the test split's faces and reported as such.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import InputError
from perception.tracker import iou
from perception.types import ALERT_LABELS, LABELS


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int],
                     num_classes: int = len(LABELS)) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(truth, predicted):
        matrix[int(t), int(p)] += 1
    return matrix


def precision_recall(matrix: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall; NaN where a class has no predictions / no examples."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = true_positive / matrix.sum(axis=0)
        recall = true_positive / matrix.sum(axis=1)
    return precision, recall


def balanced_accuracy(matrix: np.ndarray, classes: Optional[Sequence[int]] = None) -> float:
    """Mean recall over ``classes`` (default: every class that has examples).

    A prediction of a class outside ``classes`` still counts as a miss: for masked vs
    unmasked, a face called ``incorrect`` is wrong for both.
    """
    _, recall = precision_recall(matrix)
    matrix = np.asarray(matrix)
    classes = range(len(matrix)) if classes is None else classes
    chosen = [recall[c] for c in classes if matrix[c].sum() > 0]
    if not chosen:
        raise ValueError("no examples of classes %s in the confusion matrix" % (list(classes),))
    return float(np.mean(chosen))


def alert_decision_accuracy(matrix: np.ndarray) -> float:
    """Balanced accuracy of the robot's decision: no alert for ``masked``, an alert for
    ``unmasked`` or ``incorrect``.

    Why beside masked vs unmasked: an unmasked face called ``incorrect`` is a wrong label
    but the right action (both raise an alert), while one called ``masked`` is a missed
    alert; operators care about the second.
    """
    matrix = np.asarray(matrix)
    alert = [LABELS.index(label) for label in ALERT_LABELS]
    quiet = [c for c in range(len(LABELS)) if c not in alert]
    decisions = np.array([[matrix[np.ix_(group, side)].sum() for side in (quiet, alert)]
                          for group in (quiet, alert)])
    return balanced_accuracy(decisions)


def average_precision(scores: Sequence[float], is_true: Sequence[bool], num_truth: int) -> float:
    """VOC (all-point interpolated) average precision of ranked detections.

    ``is_true`` says whether each detection matched a not-yet-matched true box.
    """
    if num_truth <= 0:
        raise ValueError("num_truth must be positive, got %r" % (num_truth,))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(is_true, dtype=np.float64)[order]
    true_pos = np.cumsum(hits)
    false_pos = np.cumsum(1.0 - hits)
    recall = true_pos / num_truth
    precision = true_pos / np.maximum(true_pos + false_pos, 1e-12)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match_detections(detections: List[Tuple[int, float, Sequence[float]]],
                     truths: Dict[int, List[Sequence[float]]], threshold: float = 0.5
                     ) -> List[bool]:
    """Greedy VOC matching, best score first: (image id, score, box) -> matched or not."""
    return _greedy_match(detections, truths, threshold)[0]


def found_truths(detections: List[Tuple[int, float, Sequence[float]]],
                 truths: Dict[int, List[Sequence[float]]], threshold: float = 0.5
                 ) -> Dict[int, List[bool]]:
    """The other side of ``match_detections``: per image, whether each true box was found."""
    return _greedy_match(detections, truths, threshold)[1]


def _greedy_match(detections, truths, threshold):
    used = {key: [False] * len(boxes) for key, boxes in truths.items()}
    result = [False] * len(detections)
    for k in sorted(range(len(detections)), key=lambda i: -detections[i][1]):
        image_id, _, box = detections[k]
        best, best_iou = -1, threshold
        for j, truth in enumerate(truths.get(image_id, [])):
            overlap = iou(box, truth)
            if overlap >= best_iou and not used[image_id][j]:
                best, best_iou = j, overlap
        if best >= 0:
            used[image_id][best] = True
            result[k] = True
    return result, used


#: Face heights (px) where recall is cut into buckets: a quarter of the Kaggle crowd faces
#: are under 16 px tall, and detectors differ most below 32.
HEIGHT_EDGES: Tuple[float, ...] = (16, 24, 32, 48)


def height_buckets(edges: Sequence[float] = HEIGHT_EDGES) -> List[str]:
    """Bucket names for ``edges``: '<16', '16-24', ..., '>=48'."""
    inner = ["%g-%g" % (lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]
    return ["<%g" % edges[0]] + inner + [">=%g" % edges[-1]]


def recall_by_height(heights: Sequence[float], found: Sequence[bool],
                     edges: Sequence[float] = HEIGHT_EDGES) -> Dict[str, List[int]]:
    """{bucket: [faces found, faces]} by true face height; a face of exactly 16 px is in
    '16-24'."""
    if len(heights) != len(found):
        raise ValueError("got %d heights but %d found flags" % (len(heights), len(found)))
    index = np.searchsorted(np.asarray(edges, dtype=np.float64),
                            np.asarray(heights, dtype=np.float64), side="right")
    out = {name: [0, 0] for name in height_buckets(edges)}
    names = height_buckets(edges)
    for bucket, hit in zip(index, found):
        out[names[bucket]][0] += int(bool(hit))
        out[names[bucket]][1] += 1
    return out


def summarise(truth: Sequence[int], predicted: Sequence[int]) -> Dict:
    """Confusion matrix, per-class precision/recall and balanced accuracies as plain data."""
    matrix = confusion_matrix(truth, predicted)
    precision, recall = precision_recall(matrix)
    present = [c for c in range(len(LABELS)) if matrix[c].sum() > 0]
    binary = [c for c in (0, 1) if matrix[c].sum() > 0]
    out = {"count": int(matrix.sum()), "confusion": matrix.tolist(),
           "precision": {LABELS[c]: _num(precision[c]) for c in range(len(LABELS))},
           "recall": {LABELS[c]: _num(recall[c]) for c in range(len(LABELS))},
           "balanced_accuracy": balanced_accuracy(matrix, present)}
    if binary:
        out["balanced_accuracy_masked_unmasked"] = balanced_accuracy(matrix, binary)
    out["balanced_accuracy_alert"] = alert_decision_accuracy(matrix)
    return out


def _num(value: float) -> Optional[float]:
    return None if np.isnan(value) else float(value)


def evaluate_test_split(classifier, data: str, seed: int, cache_dir: str) -> Dict:
    """Real test-split crops, and masks synthesised onto the test split's unmasked faces."""
    from perception.augment import view
    from perception.data import build_crop_set
    from perception.synth import synthesize

    crop_set = build_crop_set(data, cache_dir=cache_dir, seed=seed, progress=True)
    indices = crop_set.indices("test")
    real = [view(crop_set.crops[i]) for i in indices]  # the classifier resizes them
    predicted = _labels(classifier, real)
    report = {"real": summarise(crop_set.labels[indices], predicted)}
    rng = np.random.RandomState(seed + 12345)
    synth_images, synth_truth = [], []
    for i in indices:
        if crop_set.labels[i] != LABELS.index("unmasked") or np.isnan(crop_set.landmarks[i, 0, 0]):
            continue
        for placement in ("correct", "below_nose", "chin"):
            image, _ = synthesize(crop_set.crops[i], crop_set.landmarks[i], placement, rng=rng)
            synth_images.append(view(image))
            synth_truth.append(LABELS.index("masked" if placement == "correct" else "incorrect"))
    if synth_images:
        report["synthesised"] = summarise(synth_truth, _labels(classifier, synth_images))
    return report


def evaluate_voc_crops(classifier, data: str, framing: str = "live") -> Dict:
    """Every VOC box cut and classified (the cross-source set).

    ``framing`` "live" cuts it as the pipeline does (crop_face: square, with margin);
    "box" cuts exactly the hand-drawn box, as a folder of crops made by another tool and
    given to ``classify --crops-dir`` would hold it.
    """
    from perception.classifier import crop_face
    from perception.data import load_voc, read_rgb

    if framing not in ("live", "box"):
        raise ValueError("framing must be 'live' or 'box', got %r" % (framing,))
    crops, truth, where = [], [], []
    for entry in load_voc(data):
        image = read_rgb(entry.path)
        for box, label in entry.boxes:
            if framing == "live":
                crops.append(crop_face(image, box))
            else:
                x1, y1, x2, y2 = [int(round(v)) for v in box]
                crops.append(np.ascontiguousarray(image[max(0, y1):y2, max(0, x1):x2]))
            truth.append(LABELS.index(label))
            where.append((os.path.basename(entry.path), [float(v) for v in box]))
    results = _classify(classifier, crops)
    summary = summarise(truth, [LABELS.index(r.label) for r in results])
    # every verdict goes in the JSON report, so that an error can be looked up and looked at
    summary["verdicts"] = [
        {"image": name, "box": box, "truth": LABELS[t], "predicted": r.label,
         "probabilities": dict(zip(LABELS, (round(p, 4) for p in r.probabilities)))}
        for (name, box), t, r in zip(where, truth, results)]
    return summary


def evaluate_detection(detector, classifier, entries: Sequence, classes: Sequence[str] = LABELS,
                       threshold: float = 0.5) -> Dict:
    """Detector boxes labelled by the classifier against hand-drawn boxes (VocImage entries).

    A detection's class is the classifier's label (what the robot acts on) and its score is
    face score times the label's probability; a label outside ``classes`` counts for none.
    Besides per-class AP and mAP over ``classes``: class-blind face recall, precision and
    AP, recall by true face height, and the detector's seconds per image.

    ``per_class_all_scores`` scores the same boxes the way multi-class detectors (YOLO,
    SSD) are scored, and so the published figures for this data set: every box is a
    candidate for every class, at face score times that class's probability. A face
    called ``masked`` at 0.6 is then also an ``incorrect`` candidate at 0.3, ranked low.
    It says how well the probabilities rank faces; the first says what the robot does.
    """
    import time

    from perception.classifier import crop_face
    from perception.data import read_rgb

    detections: Dict[str, List] = {label: [] for label in LABELS}
    candidates: Dict[str, List] = {label: [] for label in LABELS}
    truths: Dict[str, Dict[int, List]] = {label: {} for label in LABELS}
    any_truth: Dict[int, List] = {}
    any_detection: List = []
    seconds = 0.0
    for image_id, entry in enumerate(entries):
        image = read_rgb(entry.path)
        for box, label in entry.boxes:
            truths[label].setdefault(image_id, []).append(box)
            any_truth.setdefault(image_id, []).append(box)
        start = time.perf_counter()
        faces = detector.detect(image, color="rgb")
        seconds += time.perf_counter() - start
        results = classifier.classify([crop_face(image, f.box) for f in faces])
        for face, result in zip(faces, results):
            detections[result.label].append((image_id, face.score * result.score, face.box))
            for label, probability in zip(LABELS, result.probabilities):
                candidates[label].append((image_id, face.score * probability, face.box))
            any_detection.append((image_id, face.score, face.box))
    per_class, per_class_all_scores = {}, {}
    for label in classes:
        count = sum(len(v) for v in truths[label].values())
        if count == 0:
            continue
        matched = match_detections(detections[label], truths[label], threshold)
        scores = [d[1] for d in detections[label]]
        per_class[label] = {"ap": average_precision(scores, matched, count),
                            "detections": len(detections[label]), "truth_boxes": count}
        matched = match_detections(candidates[label], truths[label], threshold)
        per_class_all_scores[label] = average_precision([d[1] for d in candidates[label]],
                                                        matched, count)
    if not per_class:
        raise InputError("no true boxes of %s in the %d images" % (list(classes), len(entries)))
    found = match_detections(any_detection, any_truth, threshold)
    total = sum(len(v) for v in any_truth.values())
    seen = found_truths(any_detection, any_truth, threshold)
    heights = [box[3] - box[1] for image_id in sorted(any_truth) for box in any_truth[image_id]]
    hits = [hit for image_id in sorted(any_truth) for hit in seen[image_id]]
    out = {"iou_threshold": threshold, "images": len(entries), "per_class": per_class,
           "map": float(np.mean([v["ap"] for v in per_class.values()])),
           "per_class_all_scores": per_class_all_scores,
           "map_all_scores": float(np.mean(list(per_class_all_scores.values()))),
           "faces_found": int(sum(found)), "faces_total": total,
           "face_precision": float(sum(found)) / len(found) if found else 0.0,
           "incorrect_detections": len(detections["incorrect"]),
           "face_ap": average_precision([d[1] for d in any_detection], found, total),
           "recall_by_height": recall_by_height(heights, hits),
           "seconds_per_image": seconds / max(1, len(entries))}
    if "masked" in per_class and "unmasked" in per_class:
        out["map_masked_unmasked"] = (per_class["masked"]["ap"] + per_class["unmasked"]["ap"]) / 2
        out["map_masked_unmasked_all_scores"] = (per_class_all_scores["masked"]
                                                 + per_class_all_scores["unmasked"]) / 2
    return out


def evaluate_voc_detection(classifier, data: str, min_face_size: int = 20,
                           threshold: float = 0.5) -> Dict:
    """mAP@threshold of MTCNN boxes labelled by the classifier against the VOC boxes (two
    classes: a face called ``incorrect`` counts for neither)."""
    from perception.data import load_voc
    from perception.detector import FaceDetector

    return evaluate_detection(FaceDetector(min_face_size=min_face_size), classifier,
                              load_voc(data), ("masked", "unmasked"), threshold)


#: Detectors compared on the Kaggle test split: "name" or "name:upscale".
KAGGLE_DETECTORS = ("mtcnn", "centerface", "centerface:2")


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> Tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion: honest for small counts
    such as the ~25 real masks below the nose of the Kaggle test split."""
    if trials <= 0:
        return float("nan"), float("nan")
    p = successes / float(trials)
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denominator
    half = z * np.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


#: Faces at least this tall are the ones the robot may alert on (``alert_min_face_px``).
ROBOT_MIN_FACE_PX = 12


def rates(truth: Sequence[int], predicted: Sequence[int]) -> Dict[str, List]:
    """The issue's classification targets as [successes, trials, low, high] (Wilson 95%):
    masked and unmasked recall, incorrect recall, the alert rate (predicted unmasked or
    incorrect) of unmasked and of incorrect faces, and false alerts on masked faces."""
    masked, unmasked, incorrect = (LABELS.index(x) for x in ("masked", "unmasked", "incorrect"))
    alerting = {LABELS.index(x) for x in ALERT_LABELS}
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    out = {}
    for name, rows, hit in (
            ("recall masked", truth == masked, predicted == masked),
            ("recall unmasked", truth == unmasked, predicted == unmasked),
            ("recall incorrect", truth == incorrect, predicted == incorrect),
            ("alert rate unmasked", truth == unmasked, np.isin(predicted, list(alerting))),
            ("alert rate incorrect", truth == incorrect, np.isin(predicted, list(alerting))),
            ("false alerts masked", truth == masked, np.isin(predicted, list(alerting)))):
        k, n = int(np.sum(hit & rows)), int(np.sum(rows))
        out[name] = [k, n] + list(wilson_interval(k, n))
    return out


def evaluate_kaggle_crops(classifier, data: str, split_file: Optional[str] = None) -> Dict:
    """Every labelled face of the Kaggle test split, cut as the pipeline cuts it, classified.

    Reported for all faces and for the faces the robot may alert on (>= 12 px tall), with
    the targets' rates and their Wilson intervals, and alert-decision accuracy by height.
    """
    from perception.classifier import crop_face
    from perception.data import read_rgb
    from perception.kaggle import TEST_SPLIT_FILE, load_kaggle, load_test_split

    entries = load_kaggle(data, load_test_split(split_file or TEST_SPLIT_FILE))
    crops, truth, heights = [], [], []
    for entry in entries:
        image = read_rgb(entry.path)
        for box, label in entry.boxes:
            crops.append(crop_face(image, box))
            truth.append(LABELS.index(label))
            heights.append(box[3] - box[1])
    predicted = _labels(classifier, crops)
    truth_a, predicted_a, heights_a = np.asarray(truth), np.asarray(predicted), np.asarray(heights)
    alerting = [LABELS.index(x) for x in ALERT_LABELS]
    right = np.isin(truth_a, alerting) == np.isin(predicted_a, alerting)
    out = {"images": len(entries), "all": summarise(truth, predicted),
           "alert_decision_by_height": recall_by_height(heights, right)}
    out["all"]["rates"] = rates(truth, predicted)
    big = heights_a >= ROBOT_MIN_FACE_PX
    out["robot"] = summarise(truth_a[big], predicted_a[big])
    out["robot"]["rates"] = rates(truth_a[big], predicted_a[big])
    return out


def format_kaggle_crops(result: Dict) -> str:
    """(e): the summaries, the targets' rates with intervals, and accuracy by height."""
    parts = []
    for key, title in (("all", "(e) mask-detection-kaggle test split, labelled boxes cut as "
                               "the pipeline cuts them, all faces"),
                       ("robot", "(e') the same, faces >= %d px tall (the robot alerts on no "
                                 "smaller face)" % ROBOT_MIN_FACE_PX)):
        lines = [format_summary(title, result[key]), "  rate                    value    "
                 "(k/n)       Wilson 95%"]
        for name, (k, n, low, high) in result[key]["rates"].items():
            value = k / float(n) if n else float("nan")
            counts = "(%d/%d)" % (k, n)
            lines.append("  %-21s %7.4f %11s   %.3f-%.3f" % (name, value, counts, low, high))
        parts.append("\n".join(lines))
    cells = ["%s %.3f (%d/%d)" % (bucket, hit / float(n) if n else float("nan"), hit, n)
             for bucket, (hit, n) in result["alert_decision_by_height"].items()]
    parts.append("  alert decision right, by face height px: " + ", ".join(cells))
    return "\n".join(parts)


def parse_detector(text: str) -> Tuple[str, float]:
    """'centerface:2' -> ('centerface', 2.0); 'mtcnn' -> ('mtcnn', 1.0)."""
    from perception.detector import DETECTORS

    name, _, upscale = text.partition(":")
    if name not in DETECTORS:
        raise InputError("unknown detector %r; choose one of: %s" % (name, ", ".join(DETECTORS)))
    try:
        return name, float(upscale) if upscale else 1.0
    except ValueError:
        raise InputError("%r: the upscale after ':' must be a number" % text) from None


def evaluate_kaggle_detection(classifier, data: str, detectors: Sequence[str] = KAGGLE_DETECTORS,
                              min_face_size: int = 20, threshold: float = 0.5,
                              split_file: Optional[str] = None) -> Dict:
    """Detection + classification on the Kaggle test split, once per detector setting.

    MTCNN runs at ``min_face_size``; CenterFace keeps every face size (its speed does not
    depend on it).
    """
    from perception.detector import FaceDetector
    from perception.kaggle import TEST_SPLIT_FILE, load_kaggle, load_test_split

    entries = load_kaggle(data, load_test_split(split_file or TEST_SPLIT_FILE))
    out = {}
    for text in detectors:
        name, upscale = parse_detector(text)
        detector = FaceDetector(min_face_size=min_face_size if name == "mtcnn" else None,
                                backend=name, upscale=upscale)
        result = evaluate_detection(detector, classifier, entries, LABELS, threshold)
        result["detector"] = {"backend": name, "upscale": upscale,
                              "min_face_size": detector.min_face_size,
                              "min_score": detector.min_score}
        out[text] = result
    return out


def _classify(classifier, crops: Sequence[np.ndarray], batch: int = 64) -> List:
    out: List = []
    for start in range(0, len(crops), batch):
        out.extend(classifier.classify(crops[start:start + batch]))
    return out


def _labels(classifier, crops: Sequence[np.ndarray], batch: int = 64) -> List[int]:
    return [LABELS.index(r.label) for r in _classify(classifier, crops, batch)]


def format_summary(title: str, summary: Dict) -> str:
    """A readable block: counts, per-class precision/recall and the confusion matrix."""
    lines = ["== %s (%d faces)" % (title, summary["count"])]
    lines.append("  %-10s %9s %9s" % ("class", "precision", "recall"))
    for label in LABELS:
        p, r = summary["precision"][label], summary["recall"][label]
        lines.append("  %-10s %9s %9s" % (label, "-" if p is None else "%.4f" % p,
                                          "-" if r is None else "%.4f" % r))
    lines.append("  confusion (rows true, columns predicted: %s)" % " ".join(LABELS))
    for label, row in zip(LABELS, summary["confusion"]):
        lines.append("  %-10s %s" % (label, " ".join("%6d" % v for v in row)))
    lines.append("  balanced accuracy (classes present): %.4f" % summary["balanced_accuracy"])
    if "balanced_accuracy_masked_unmasked" in summary:
        lines.append("  balanced accuracy masked vs unmasked: %.4f"
                     % summary["balanced_accuracy_masked_unmasked"])
    lines.append("  balanced accuracy of the alert decision (masked vs unmasked or incorrect): "
                 "%.4f" % summary["balanced_accuracy_alert"])
    return "\n".join(lines)


def format_report(report: Dict) -> str:
    parts = ["weights: %s" % report["weights"]]
    if "test" in report:
        parts.append(format_summary("(a) test split of mask-classification, real photos",
                                    report["test"]["real"]))
        if "synthesised" in report["test"]:
            parts.append(format_summary("(a') synthesised masks on test-split faces "
                                        "(masked = over the nose, incorrect = under the nose "
                                        "or on the chin)", report["test"]["synthesised"]))
    if "voc_crops" in report:
        parts.append(format_summary("(b) mask-detection-voc boxes, another source",
                                    report["voc_crops"]))
    if "voc_box_crops" in report:
        parts.append(format_summary("(b') the same boxes cut exactly, no margin (as "
                                    "`classify --crops-dir` gets crops made by another tool)",
                                    report["voc_box_crops"]))
    if "voc_detection" in report:
        det = report["voc_detection"]
        lines = ["== (c) mask-detection-voc detection + classification, IoU >= %.2f"
                 % det["iou_threshold"]]
        for label, value in det["per_class"].items():
            lines.append("  AP %-9s %.4f  (%d detections, %d true boxes)"
                         % (label, value["ap"], value["detections"], value["truth_boxes"]))
        lines.append("  mAP %.4f   faces found %d/%d (face AP %.4f), %d faces called incorrect"
                     % (det["map"], det["faces_found"], det["faces_total"], det["face_ap"],
                        det["incorrect_detections"]))
        parts.append("\n".join(lines))
    if "kaggle_detection" in report:
        parts.append(format_kaggle(report["kaggle_detection"]))
    if "kaggle_crops" in report:
        parts.append(format_kaggle_crops(report["kaggle_crops"]))
    return "\n\n".join(parts)


def _setting_name(result: Dict) -> str:
    det = result["detector"]
    if det["backend"] == "mtcnn":
        return "mtcnn, min face %d" % det["min_face_size"]
    return "centerface" + (", %gx upscale" % det["upscale"] if det["upscale"] != 1.0 else "")


def format_kaggle(results: Dict) -> str:
    """The detectors side by side: APs, mAPs, face recall/precision, recall by face height."""
    first = next(iter(results.values()))
    lines = ["== (d) mask-detection-kaggle test split (%d photos, %d faces), detection + "
             "classification, IoU >= %.2f, VOC all-point AP"
             % (first["images"], first["faces_total"], first["iou_threshold"])]
    head = "  %-26s" % "detector"
    lines.append(head + "".join("%13s" % c for c in ("AP masked", "AP unmasked",
                                                     "AP incorrect", "mAP", "mAP m/u",
                                                     "recall", "precision", "s/image")))
    for result in results.values():
        values = [result["per_class"].get(label, {}).get("ap", float("nan")) for label in LABELS]
        values += [result["map"], result.get("map_masked_unmasked", float("nan")),
                   result["faces_found"] / float(result["faces_total"]), result["face_precision"]]
        lines.append("  %-26s" % _setting_name(result) + "".join("%13.4f" % v for v in values)
                     + "%13.3f" % result["seconds_per_image"])
    lines.append("  the same boxes, each a candidate for every class (face score x that "
                 "class's probability; how YOLO-style detectors are scored):")
    for result in results.values():
        values = [result["per_class_all_scores"].get(label, float("nan")) for label in LABELS]
        values += [result["map_all_scores"],
                   result.get("map_masked_unmasked_all_scores", float("nan"))]
        lines.append("  %-26s" % _setting_name(result) + "".join("%13.4f" % v for v in values))
    buckets = list(first["recall_by_height"])
    lines.append("  face recall by true face height, px (found/faces):")
    lines.append(head + "".join("%17s" % b for b in buckets))
    for result in results.values():
        cells = ["%.3f (%d/%d)" % (hit / float(n) if n else float("nan"), hit, n)
                 for hit, n in result["recall_by_height"].values()]
        lines.append("  %-26s" % _setting_name(result) + "".join("%17s" % c for c in cells))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from perception.classifier import DEFAULT_WEIGHTS, MaskClassifier
    from perception.data import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(
        prog="python -m perception.evaluate",
        description="Per-class precision/recall, confusion matrices, balanced accuracy and "
                    "VOC mAP of the mask classifier.")
    parser.add_argument("--data", required=True, help="datasets folder (e.g. ../shared/datasets)")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="default: %(default)s")
    parser.add_argument("--json", default=None, help="also write the report as JSON here")
    parser.add_argument("--seed", type=int, default=None,
                        help="split seed (default: the one the weights were trained with)")
    parser.add_argument("--min-face-size", type=int, default=20,
                        help="MTCNN smallest face for (c) and (d), px")
    parser.add_argument("--sets", default="test,voc,map,kaggle",
                        help="comma list of test, voc, map, kaggle (detection and labelled "
                             "boxes), kaggle-crops (labelled boxes only); default all")
    parser.add_argument("--detectors", default=",".join(KAGGLE_DETECTORS),
                        help="kaggle: detectors to compare, name or name:upscale "
                             "(default %(default)s)")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in ("test", "voc", "map", "kaggle", "kaggle-crops")]
    if unknown or not sets:
        parser.error("--sets takes test, voc, map, kaggle and/or kaggle-crops, got %r"
                     % args.sets)
    try:
        classifier = MaskClassifier(args.weights)
        seed = args.seed
        if seed is None:
            seed = int(classifier.metrics.get("config", {}).get("seed", 0))
        report: Dict = {"weights": classifier.weights_path, "seed": seed}
        if "test" in sets:
            report["test"] = evaluate_test_split(classifier, args.data, seed, args.cache_dir)
        if "voc" in sets:
            report["voc_crops"] = evaluate_voc_crops(classifier, args.data)
            report["voc_box_crops"] = evaluate_voc_crops(classifier, args.data, "box")
        if "map" in sets:
            report["voc_detection"] = evaluate_voc_detection(classifier, args.data,
                                                             args.min_face_size)
        if "kaggle" in sets:
            detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
            report["kaggle_detection"] = evaluate_kaggle_detection(
                classifier, args.data, detectors, args.min_face_size)
        if "kaggle" in sets or "kaggle-crops" in sets:
            report["kaggle_crops"] = evaluate_kaggle_crops(classifier, args.data)
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
