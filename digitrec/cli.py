"""Command line: ``python -m digitrec train | train-verifier | train-row-reader | evaluate |
predict | read``."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_train(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from digitrec.data import load_mnist
    from digitrec.runtime import frozen_imports

    # MNIST is read and checked (gunzip, SHA-256: both let go of the GIL) while TensorFlow
    # and Keras import: about 0.3 s of the fast preset's 10 s process.
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_mnist, args.data)
        with frozen_imports():
            from digitrec.train import TrainConfig, train
        from digitrec.plots import plot_history
        mnist = loading.result()

    cfg = TrainConfig(
        preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, augment=args.augment, seed=args.seed, limit=args.limit,
        validation=args.validation, pipeline_mix=args.pipeline_mix,
        number_mix=args.number_mix, init=args.init,
        data=args.data, out=args.out,
        command="python -m digitrec " + shlex.join(sys.argv[1:]),
    )
    result = train(cfg, mnist=mnist, verbose=1 if sys.stdout.isatty() else 2)
    curves = result.path.with_suffix(".curves.png")
    plot_history(result.history).savefig(curves, dpi=100)
    test = result.card["test"]
    print(f"test accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f} "
          f"after {result.card['train_seconds']:.0f} s")
    print(f"saved {result.path}, card {result.path.with_suffix('.json')}, curves {curves}")
    return 0


def _cmd_train_verifier(args) -> int:
    from digitrec.verifier import VerifierConfig, train_verifier

    cfg = VerifierConfig(numbers=args.numbers, epochs=args.epochs, seed=args.seed, data=args.data,
                         out=args.out, command="python -m digitrec " + shlex.join(sys.argv[1:]))
    path, card = train_verifier(cfg, verbose=1 if sys.stdout.isatty() else 2)
    held = card["held_out"]
    if held:
        print(f"held-out accuracy {held['accuracy']:.4f} on {held['held_out']} candidates")
    print(f"saved {path}, card {path.with_suffix('.json')}")
    return 0


def _cmd_train_row_reader(args) -> int:
    from digitrec.row_reader import RowReaderConfig, train_row_reader

    cfg = RowReaderConfig(numbers=args.numbers, epochs=args.epochs, seed=args.seed, data=args.data,
                          out=args.out, init=args.init, learning_rate=args.lr,
                          conditions=args.conditions.split(",") if args.conditions else None,
                          blocks=args.blocks, rnn_layers=args.rnn_layers,
                          command="python -m digitrec " + shlex.join(sys.argv[1:]))
    path, card = train_row_reader(cfg, verbose=1 if sys.stdout.isatty() else 2)
    held = card["held_out"]
    if held:
        print(f"held-out rows read exactly: {held['read_exactly']:.4f} of {held['rows']}")
    print(f"saved {path}, card {path.with_suffix('.json')} after {card['total_seconds']:.0f} s")
    return 0


def _cmd_evaluate(args) -> int:
    from digitrec.data import load_mnist
    from digitrec.evaluate import evaluate
    from digitrec.plots import plot_confusion
    from digitrec.predict import Recognizer

    recognizer = Recognizer.load(args.model)
    report = evaluate(recognizer, load_mnist(args.data))
    out = Path(args.confusion or Path(recognizer.path).with_suffix(".confusion.png"))
    try:
        plot_confusion(report["confusion"]).savefig(out, dpi=100)
    except OSError:  # the shipped model's folder may be read-only
        out = Path("confusion.png")
        plot_confusion(report["confusion"]).savefig(out, dpi=100)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "confusion"} | {"model": str(recognizer.path)}))
        return 0
    print(f"model     {recognizer.path}")
    print(f"accuracy  {report['accuracy']:.4f}  ({report['errors']} errors in {report['n']})")
    print(f"loss      {report['loss']:.4f}")
    print("per class " + "  ".join(f"{d}:{a:.4f}" for d, a in enumerate(report["per_class"])))
    print(f"confusion matrix written to {out}")
    return 0


def _cmd_predict(args) -> int:
    from digitrec.imageio import ImageError, load_image
    from digitrec.predict import Recognizer

    recognizer = Recognizer.load(args.model)
    failed = False
    for i, file in enumerate(args.files):
        try:
            image = load_image(file)
        except ImageError as exc:
            failed = True
            _emit(args, {"file": file, "digit": None, "error": str(exc)}, f"{file}: error: {exc}")
            continue
        pred = recognizer.predict(image)
        record = {"file": file, **pred.to_dict()}
        if pred.digit is None:
            text = f"{file}: no digit ({pred.reason})"
        else:
            flag = "  (low confidence)" if pred.low_confidence else ""
            text = f"{file}: {pred.digit}  confidence {pred.confidence:.3f}{flag}"
        _emit(args, record, text)
        if args.show:
            from digitrec.plots import plot_prediction
            out = Path(args.show)
            if len(args.files) > 1:
                out = out.with_name(f"{out.stem}-{i}{out.suffix}")
            plot_prediction(image, pred).savefig(out, dpi=100)
    return 1 if failed else 0


def _cmd_read(args) -> int:
    from digitrec.imageio import ImageError, load_image
    from digitrec.predict import Recognizer

    recognizer = Recognizer.load(args.model)
    failed = False
    for file in args.files:
        try:
            image = load_image(file)
        except ImageError as exc:
            failed = True
            _emit(args, {"file": file, "text": None, "digits": [], "error": str(exc)}, f"{file}: error: {exc}")
            continue
        number = recognizer.read_number(image)
        record = {"file": file, **number.to_dict()}
        text = f"{file}: {number.text}" if number.text else f"{file}: no digits ({number.reason})"
        if number.low_confidence:
            text += f"  (low confidence: {'; '.join(number.doubts)})"
        _emit(args, record, text)
    return 1 if failed else 0


def _emit(args, record: dict, text: str) -> None:
    print(json.dumps(record) if args.json else text, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digitrec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_help = "MNIST directory (default: $DIGITREC_DATA)"

    from digitrec.presets import PRESETS

    t = sub.add_parser("train", help="train a model and save it with its card and curves")
    t.add_argument("--preset", default="best", choices=list(PRESETS))
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--limit", type=int, help="train on the first N training images only")
    t.add_argument("--validation", type=int, default=0, help="hold out N training images")
    t.add_argument("--pipeline-mix", type=float, default=0.0, metavar="F",
                   help="add F x the training images, rendered as photos, scans and canvases "
                        "and read back through the preprocessing (training digits only)")
    t.add_argument("--number-mix", type=float, default=0.0, metavar="F",
                   help="add F x the training images, cut out of numbers rendered from them "
                        "as the number reader cuts its candidate digits (training digits only)")
    t.add_argument("--init", metavar="PATH",
                   help="start from this .keras model's weights (fine-tune; same preset)")
    t.add_argument("--data", help=data_help)
    t.add_argument("--out", help="where to write the model (default: a new file in "
                   "models/user/, so that the shipped models/digitrec.keras is replaced only "
                   "when named)")
    t.set_defaults(func=_cmd_train)

    v = sub.add_parser("train-verifier", help="train the number reader's whole-digit verifier "
                       "on candidates cut from numbers rendered from training digits")
    v.add_argument("--numbers", type=int, default=16000, help="rows of 2-8 digits to render")
    v.add_argument("--epochs", type=int, default=4)
    v.add_argument("--seed", type=int, default=1)
    v.add_argument("--data", help=data_help)
    v.add_argument("--out", help="where to write it (default: the shipped models/verifier.keras)")
    v.set_defaults(func=_cmd_train_verifier)

    w = sub.add_parser("train-row-reader", help="train the number reader's whole-row reader (CTC) "
                       "on numbers rendered from training digits")
    w.add_argument("--numbers", type=int, default=36000, help="rows of 2-8 digits to render")
    w.add_argument("--epochs", type=int, default=8)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--data", help=data_help)
    w.add_argument("--out", help="where to write it (default: the shipped models/row_reader.keras)")
    w.add_argument("--init", metavar="READER.keras",
                   help="start from this reader's weights and train it on new rows (use another --seed)")
    w.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warm-up, then cosine)")
    w.add_argument("--conditions", metavar="C1,C2,...",
                   help="the conditions to render rows in, in turn (default: all; name one twice to "
                        "have it twice as often)")
    w.add_argument("--blocks", type=int, default=0,
                   help="a larger reader: this many residual convolution blocks more (--init may name a smaller one)")
    w.add_argument("--rnn-layers", type=int, default=1, help="a larger reader: bidirectional GRUs")
    w.set_defaults(func=_cmd_train_row_reader)

    e = sub.add_parser("evaluate", help="accuracy, loss, per-class accuracy, confusion matrix")
    e.add_argument("--model", help="a .keras file (default: the shipped model)")
    e.add_argument("--data", help=data_help)
    e.add_argument("--json", action="store_true")
    e.add_argument("--confusion", help="where to write the confusion-matrix PNG")
    e.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="read one digit per image file")
    p.add_argument("files", nargs="+")
    p.add_argument("--model")
    p.add_argument("--json", action="store_true", help="one JSON object per line per file")
    p.add_argument("--show", help="write original, 28x28 input and confidences to this PNG")
    p.set_defaults(func=_cmd_predict)

    r = sub.add_parser("read", help="read a handwritten number (one row of digits) per file")
    r.add_argument("files", nargs="+")
    r.add_argument("--model")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_read)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not _cmd_train:  # which imports them beside reading MNIST
        from digitrec.runtime import frozen_imports

        with frozen_imports():
            import digitrec.model  # noqa: F401  (TensorFlow and Keras)
    from digitrec.data import DataError
    try:
        return args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
