"""`detect`: find, classify and track faces in an image, a folder, a video or a webcam.

Writes an annotated copy (PNG for photos, MP4 for video and webcam) and a JSON file with
every face of every frame (box, label, score, track id), so a user can check the model on
their own pictures without ROS.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List, Optional

from perception.cli import make_parser, positive_int, run, unit_float, upscale_factor
from perception.detector import DETECTORS
from common.errors import InputError

PROG = "detect"
WRITABLE_IMAGES = (".png", ".jpg", ".jpeg", ".bmp")


def build_parser():
    parser = make_parser(
        PROG,
        "Find faces (MTCNN or CenterFace), label them masked / unmasked / incorrect\n"
        "(MobileNetV2) and, in videos, follow them with KCF between detections. Writes an\n"
        "annotated image or video and a JSON file listing every face per frame: box\n"
        "[x1, y1, x2, y2] in pixels, label, score, track id.",
        epilog="examples:\n"
               "  detect photo.jpg                       -> out/detect/photo.png + .json\n"
               "  detect photos/ --out annotated/        -> one PNG per photo\n"
               "  detect street.mp4 --detect-every 3     -> out/detect/street.mp4 + .json\n"
               "  detect 0 --max-frames 300              -> webcam 0 (Ctrl-C stops and saves)")
    parser.add_argument("input", metavar="INPUT",
                        help="an image, a folder of images, a video file or a webcam index")
    parser.add_argument("--out", metavar="PATH",
                        help="annotated output: an image file for one image, a folder for a "
                             "folder, an .mp4 for video/webcam (default: out/detect/<name>)")
    parser.add_argument("--json", metavar="PATH",
                        help="where to write the detections (default: next to --out, .json)")
    parser.add_argument("--detect-every", type=positive_int, default=5, metavar="N",
                        help="video: run the detector every N frames, KCF in between "
                             "(default 5; 1 = detect on every frame)")
    parser.add_argument("--detector", choices=DETECTORS, default="mtcnn",
                        help="face detector: %s (default %%(default)s)" % ", ".join(DETECTORS))
    parser.add_argument("--upscale", type=upscale_factor, default=1.0, metavar="F",
                        help="centerface only: enlarge the frame it sees by F (1-4) to find "
                             "small faces, e.g. 2 for crowd photos (default 1)")
    parser.add_argument("--min-face-size", type=positive_int, default=None, metavar="PX",
                        help="smallest face in pixels (default 20 for photos, 40 for video)")
    parser.add_argument("--scale", type=unit_float, default=None, metavar="S",
                        help="shrink frames by S before detection/tracking (default 1.0 for "
                             "photos, 0.5 for video; boxes are reported at full size)")
    parser.add_argument("--weights", metavar="PATH",
                        help="classifier weights (default: the shipped "
                             "perception/models/mask_classifier.pt)")
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                        help="stop after N frames (video/webcam) or N images (folder)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="torch/OpenCV threads (default 1: best on a shared 2-core CPU)")
    return parser


def default_output(source, name: str) -> str:
    base = os.path.join("out", "detect")
    if source.kind == "image":
        return os.path.join(base, os.path.splitext(os.path.basename(name))[0] + ".png")
    if source.kind == "folder":
        return os.path.join(base, os.path.basename(os.path.normpath(name)) or "images")
    if source.kind == "webcam":
        return os.path.join(base, "webcam%s.mp4" % name)
    return os.path.join(base, os.path.splitext(os.path.basename(name))[0] + ".mp4")


def track_record(track) -> Dict:
    return {"box": [round(float(v), 1) for v in track.box], "label": track.label,
            "score": round(float(track.score), 4), "track_id": int(track.track_id),
            "face_score": round(float(track.face_score), 4),
            "lost": bool(track.lost_frames > 0)}


def detect(args) -> None:
    from perception.drawing import draw_result
    from perception.pipeline import FramePipeline
    from perception.video import FrameSource, open_video_writer

    source = FrameSource(args.input, max_frames=args.max_frames)
    sequence = source.is_sequence
    out = args.out or default_output(source, args.input)
    if source.kind == "image" and not out.lower().endswith(WRITABLE_IMAGES):
        raise InputError("--out %s must end in .png or .jpg for an image input" % out)
    if sequence and not out.lower().endswith((".mp4", ".m4v", ".mov")):
        raise InputError("--out %s must end in .mp4 for a video or webcam input" % out)
    if source.kind == "folder" and os.path.isfile(out):
        raise InputError("--out %s is a file; pass a folder for a folder input" % out)
    json_path = args.json or (os.path.join(out, "detections.json") if source.kind == "folder"
                              else os.path.splitext(out)[0] + ".json")

    pipeline = FramePipeline.default(
        weights_path=args.weights,
        detect_every=args.detect_every if sequence else 1,
        min_face_size=args.min_face_size or (40 if sequence else 20),
        scale=args.scale or (0.5 if sequence else 1.0),
        num_threads=args.threads, detector=args.detector, detector_upscale=args.upscale,
        flip_average=not sequence)  # a photo gets one round, so both sides in it

    frames: List[Dict] = []
    writer = None
    fps: Optional[float] = None
    frame_time: Optional[float] = None
    started = time.perf_counter()
    try:
        for name, frame in source:
            if not sequence:
                pipeline.reset()  # unrelated photos: no tracks carried over
            result = pipeline.process(frame)
            # Average the frame TIME, then invert: averaging rates would let the fast
            # KCF-only frames hide the slow detection frames.
            total = result.timings["total"]
            frame_time = total if frame_time is None else 0.9 * frame_time + 0.1 * total
            fps = 1.0 / frame_time if frame_time > 0 else None
            annotated = draw_result(frame, result, fps=fps if sequence else None)
            if sequence:
                if writer is None:
                    writer = open_video_writer(out, source.fps,
                                               (frame.shape[1], frame.shape[0]))
                writer.write(annotated)
            else:
                target = out
                if source.kind == "folder":
                    relative = os.path.relpath(name, args.input)
                    target = os.path.join(out, os.path.splitext(relative)[0] + ".png")
                _write_image(target, annotated)
            frames.append({"frame": result.frame_index if sequence else len(frames),
                           "source": name if not sequence else None,
                           "detected": result.detected,
                           "timings_ms": {k: round(v * 1000.0, 2)
                                          for k, v in result.timings.items()},
                           "faces": [track_record(t) for t in result.tracks]})
    except KeyboardInterrupt:
        if source.kind != "webcam":
            raise
    finally:
        if writer is not None:
            writer.release()
        source.close()
    elapsed = time.perf_counter() - started
    folder = os.path.dirname(os.path.abspath(json_path))
    os.makedirs(folder, exist_ok=True)
    with open(json_path, "w") as handle:
        json.dump({"input": args.input, "kind": source.kind,
                   "weights": pipeline.classifier.weights_path, "detector": args.detector,
                   "upscale": args.upscale,
                   "detect_every": pipeline.detect_every, "scale": pipeline.scale,
                   "frames": frames}, handle, indent=1)
    faces = sum(len(f["faces"]) for f in frames)
    print("%s: %d frame(s), %d face(s), %.1f frames/s; wrote %s and %s"
          % (PROG, len(frames), faces, len(frames) / elapsed if elapsed > 0 else 0.0,
             out, json_path))


def _write_image(path: str, image) -> None:
    import cv2

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ok, data = cv2.imencode(os.path.splitext(path)[1], image)
    if not ok:
        raise InputError("cannot encode %s; use .png or .jpg" % path)
    data.tofile(path)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.upscale != 1.0 and args.detector != "centerface":
        parser.error("--upscale is a centerface setting (for mtcnn, lower --min-face-size)")
    return run(PROG, lambda: detect(args))


if __name__ == "__main__":
    sys.exit(main())
