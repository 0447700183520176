"""Command line: ``python -m digitrec predict | read | evaluate | train | train-recognizer |
join-recognizers | train-detector | samples | export``.

``predict`` and ``read`` run on the reading path alone (LiteRT, no TensorFlow); the
training commands import TensorFlow when they run. Every default comes from the config
dataclasses in :mod:`digitrec.training.recipes`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from digitrec.training.recipes import (
    DATASET_NAMES,
    PRESETS,
    RECOGNIZER_BACKBONES,
    DetectorConfig,
    RecognizerConfig,
    TrainConfig,
)


def _command(args=None) -> str:
    """The command line that ran, for a card: the arguments ``main`` parsed."""
    argv = getattr(args, "argv", None)
    return "python -m digitrec " + shlex.join(sys.argv[1:] if argv is None else argv)


def _config(cls, args, **renamed):
    """``cls`` from the parsed arguments that share its field names (``renamed``: field
    name -> argument name), the command line recorded for the card."""
    values = {f.name: getattr(args, renamed.get(f.name, f.name)) for f in dataclasses.fields(cls)
              if f.name != "command" and hasattr(args, renamed.get(f.name, f.name))}
    return cls(**values, command=_command(args))


def _default(cls, name: str):
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _verbosity() -> int:
    return 1 if sys.stdout.isatty() else 2


# --- reading ----------------------------------------------------------------------------

def _recognizer(args):
    from digitrec.reading.digits import Recognizer

    return Recognizer.load(args.model)


def _pictures(args) -> tuple[list[str], bool]:
    """The files, folders and patterns named, as the pictures to read (what is left out is
    said on stderr), and whether a pattern matched nothing."""
    from digitrec.archive.inputs import expand

    found = expand(args.files)
    for path, why in found.skipped:
        print(f"{path}: skipped: {why}", file=sys.stderr)
    for pattern in found.unmatched:
        print(f"{pattern}: no file matches", file=sys.stderr)
    return found.pictures, bool(found.unmatched)


def _cmd_predict(args) -> int:
    if args.output or _archive_options(args):
        return _cmd_archive(args, "predict")
    from digitrec.archive.records import answer

    if args.show:  # before any reading: a missing plotting library is said at once
        from digitrec.training.plots import plot_prediction
    recognizer = _recognizer(args)
    files, failed = _pictures(args)
    for i, file in enumerate(files):
        found = answer(recognizer, "predict", file)
        if found.failed:
            failed = True
            _emit(args, found.record, f"{file}: error: {found.record['error']}")
            continue
        pred = found.result
        if pred.digit is None and pred.not_digit is not None:  # the model says it is no digit
            text = f"{file}: not a digit ({pred.not_digit:.0%} sure)"
        elif pred.digit is None:
            text = f"{file}: no digit ({pred.reason})"
        else:
            flag = "  (low confidence)" if pred.low_confidence else ""
            text = f"{file}: {pred.digit}  confidence {pred.confidence:.3f}{flag}"
        _emit(args, found.record, text)
        if args.show:
            out = Path(args.show)
            if len(files) > 1:
                out = out.with_name(f"{out.stem}-{i}{out.suffix}")
            plot_prediction(found.image, pred).savefig(out, dpi=100)
    return 1 if failed else 0


def _cmd_read(args) -> int:
    if args.output or _archive_options(args):
        return _cmd_archive(args, "read")
    from digitrec.archive.records import answer

    recognizer = _recognizer(args)
    files, failed = _pictures(args)
    for file in files:
        found = answer(recognizer, "read", file)
        if found.failed:
            failed = True
            _emit(args, found.record, f"{file}: error: {found.record['error']}")
            continue
        reading = found.result
        if not reading.numbers:
            text = f"{file}: no number ({reading.reason})"
        else:
            several = len(reading.numbers) > 1
            doubts = [f"{n.text}: {d}" if several else d for n in reading.numbers for d in n.doubts]
            text = f"{file}: {reading.text}" + (f"  (low confidence: {'; '.join(doubts)})" if doubts else "")
        _emit(args, found.record, text)
    return 1 if failed else 0


def _archive_options(args) -> list[str]:
    return [name for name, given in (("--jobs", args.jobs is not None), ("--engine", args.engine != "local"),
                                     ("--address", args.address is not None)) if given]


def _cmd_archive(args, command: str) -> int:
    """``--output``: every picture's record into one results file (:mod:`digitrec.archive`)."""
    if not args.output:
        print(f"error: {', '.join(_archive_options(args))} go with --output FILE", file=sys.stderr)
        return 2
    if getattr(args, "show", None):
        print("error: --show draws one picture at a time: leave out --output", file=sys.stderr)
        return 2
    from digitrec.archive import ArchiveError, read_archive

    try:
        summary = read_archive(args.files, args.output, command, model=args.model, jobs=args.jobs,
                               engine=args.engine, address=args.address)
    except ArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(summary, file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.unmatched else 0


def _emit(args, record: dict, text: str) -> None:
    print(json.dumps(record) if args.json else text, flush=True)


def _cmd_evaluate(args) -> int:
    from digitrec.training.datasets import load, scored
    from digitrec.training.plots import plot_confusion

    recognizer = _recognizer(args)
    if args.dataset in NONDIGIT_SETS:
        return _nondigit_report(args, recognizer)
    report = scored(load(args.dataset, args.data), recognizer.probabilities)
    suffix = ".confusion.png" if args.dataset == "mnist" else f".{args.dataset}.confusion.png"
    out = Path(args.confusion or Path(recognizer.path).with_suffix(suffix))
    try:
        plot_confusion(report["confusion"]).savefig(out, dpi=100)
    except OSError:  # the shipped model's folder may be read-only
        out = Path("confusion.png")
        plot_confusion(report["confusion"]).savefig(out, dpi=100)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "confusion"}
                         | {"model": str(recognizer.path), "dataset": args.dataset}))
        return 0
    left_out = report["duplicates_left_out"]
    print(f"model     {recognizer.path}")
    print(f"data      {args.dataset} test" + (f" ({left_out} exact duplicates scored once)" if left_out else ""))
    print(f"accuracy  {report['accuracy']:.4f}  ({report['errors']} errors in {report['n']}"
          + (f", {report['no_digit']} with no digit found" if report["no_digit"] else "") + ")")
    print(f"loss      {report['loss']:.4f}")
    print("per class " + "  ".join(f"{d}:{a:.4f}" for d, a in enumerate(report["per_class"])))
    print(f"confusion matrix written to {out}")
    return 0


NONDIGIT_SETS = ("letters", "scribbles")  # evaluate --dataset: pictures that are no digit


def _nondigit_report(args, recognizer) -> int:
    """How often letters (of writers held out of training) or scribbles get a digit."""
    from digitrec.training import nondigits

    if args.dataset == "letters":
        report = nondigits.letters_report(recognizer.probabilities, args.data)
    else:
        report = nondigits.scribbles_report(recognizer.probabilities, args.data)
    if args.json:
        print(json.dumps(report | {"model": str(recognizer.path), "dataset": args.dataset}))
        return 0
    what = (f"letters of {len(report['writers'])} writers held out of training (lookalikes apart)"
            if args.dataset == "letters" else "scribbles, shapes and crossed-out digits drawn with a held-out seed")
    print(f"model     {recognizer.path}")
    print(f"data      {report['n']} {what}")
    print(f"given a digit            {report['given_a_digit']:.1%}")
    print(f"given a confident digit  {report['given_a_confident_digit']:.1%}  (shown without \"not sure\")")
    worst = sorted(report["by_kind"].items(), key=lambda kv: -kv[1]["given_a_confident_digit"])[:8]
    print("most often given one: " + ", ".join(f"{k} {v['given_a_confident_digit']:.0%}" for k, v in worst))
    for char, reads in report.get("lookalikes_read_as", {}).items():
        print(f"  lookalike {char}: read as {', '.join(reads)}")
    return 0


# --- training ---------------------------------------------------------------------------

def _cmd_train(args) -> int:
    from digitrec.training.plots import plot_history
    from digitrec.training.train import train

    if args.samples == "":
        from digitrec.server.samples import default_path

        args.samples = str(default_path())

    result = train(_config(TrainConfig, args, learning_rate="lr"), verbose=_verbosity())
    curves = result.path.with_suffix(".curves.png")
    plot_history(result.history).savefig(curves, dpi=100)
    tests = result.card["tests"]
    print("test accuracy " + ", ".join(f"{name} {t['accuracy']:.4f}" for name, t in tests.items())
          + f" after {result.card['train_seconds']:.0f} s")
    if "samples" in result.card:
        mine = result.card["samples"]
        print(f"your digits: {mine['train']} trained on; {mine.get('held_out_accuracy', 0):.2%} of the "
              f"{mine['held_out']} held out read right")
    print(f"saved {result.path} with its .tflite and card; curves {curves}")
    return 0


def _print_held_out_numbers(card: dict) -> None:
    for name, held in card["held_out"].items():
        print(f"held-out {name}: {held['read_exactly']:.2%} of {held['numbers']} read exactly")


def _cmd_train_recognizer(args) -> int:
    from digitrec.training.recognizer import train_recognizer

    path, card = train_recognizer(_config(RecognizerConfig, args, learning_rate="lr"), verbose=_verbosity())
    _print_held_out_numbers(card)
    print(f"saved {path} with its .tflite and card after {card['total_seconds']:.0f} s")
    return 0


def _cmd_join_recognizers(args) -> int:
    from digitrec.training.recognizer import join

    path, card = join(args.members, args.out, args.data, limit=args.limit, command=_command(args))
    _print_held_out_numbers(card)
    print(f"saved {path} with its .tflite and card: {len(args.members)} recognizers read together")
    return 0


def _cmd_train_detector(args) -> int:
    from digitrec.training.detector import train_detector

    path, card = train_detector(_config(DetectorConfig, args, learning_rate="lr"), verbose=_verbosity())
    for name, held in card["held_out"].items():
        print(f"held-out {name}: {held['found']:.2%} of {held['pictures']} found as one box")
    print(f"saved {path} with its .tflite and card after {card['total_seconds']:.0f} s")
    return 0


def _cmd_export(args) -> int:
    from digitrec.training.export import export_file

    code = 0
    for file in args.files:
        try:
            print(f"wrote {export_file(file)}")
        except (OSError, ValueError) as exc:  # not a model, unsafe, or an export that disagrees
            print(f"error: cannot export {file}: {exc}", file=sys.stderr)
            code = 2
    return code


# --- your digits -----------------------------------------------------------------------

def _cmd_samples(args) -> int:
    from digitrec.server.samples import SampleError, SampleStore

    db = SampleStore(args.db)
    if db.warning:
        print(f"warning: {db.warning}", file=sys.stderr)
    try:
        if args.action == "list":
            items = db.samples()
            counts = db.counts()
            print(f"{len(items)} samples in {db.path}; per digit: "
                  + "  ".join(f"{d}:{n}" for d, n in enumerate(counts)))
            for item in items:
                read = "-" if item.read_digit is None else item.read_digit
                print(f"{item.id:6d}  {item.created}  {item.source:7s}  true {item.true_digit}  read {read}"
                      f"{'  (held out)' if item.held_out else ''}")
        elif args.action == "export":
            print(f"exported {db.export_zip(args.target)} samples to {args.target}")
        elif args.action == "import":
            print(f"imported {db.import_zip(args.target)} samples from {args.target}")
        elif args.action == "delete":
            if args.all:
                print(f"deleted {db.delete_all()} samples")
            elif args.id is None:
                raise SampleError("name a sample's ID, or --all")
            elif db.delete(args.id):
                print(f"deleted sample {args.id}")
            else:
                raise SampleError(f"no sample {args.id}")
    except SampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# --- the HTTP API ------------------------------------------------------------------------

def _cmd_serve(args) -> int:
    import uvicorn

    from digitrec.api import create_app

    # Loaded here, before the server starts, so that a bad --model is one line, not a traceback.
    uvicorn.run(create_app(_recognizer(args)), host=args.host, port=args.port, log_level=args.log_level)
    return 0


# --- the parser -------------------------------------------------------------------------

def _reading_arguments(p: argparse.ArgumentParser, model_help: str) -> None:
    """What ``predict`` and ``read`` share: the pictures, the model, and an archive's options."""
    p.add_argument("files", nargs="+", metavar="PATH",
                   help="picture files, folders (read recursively; pictures known by their content, "
                        "other files reported and left out) and quoted glob patterns (\"scans/**/*.png\")")
    p.add_argument("--model", help=model_help)
    p.add_argument("--json", action="store_true", help="one JSON object per line per file")
    p.add_argument("--output", metavar="FILE",
                   help="write one record per picture (the JSON printed by --json) to FILE, .jsonl, .csv or "
                        ".parquet by its extension, instead of printing; pictures already in FILE are left "
                        "out, so a run stopped at any point goes on when run again")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="with --output: read in N processes (default: one per core), or N Ray actors")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="with --output: read on this machine (default) or on a Ray cluster (needs ray[data])")
    p.add_argument("--address", metavar="ray://HOST:PORT",
                   help="with --engine ray: the cluster's address (default: start a Ray on this machine)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digitrec", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sets_help = ("the data folder: MNIST's, with ardis/ and usps/ beside it, or one holding mnist/, "
                 "ardis/ and usps/ (default: $DIGITREC_DATA); nothing is downloaded")
    model_help = "a model's .keras or .tflite file (default: the shipped model)"

    p = sub.add_parser("predict", help="read one digit per image file")
    _reading_arguments(p, model_help)
    p.add_argument("--show", help="write original, 28x28 input and confidences to this PNG")
    p.set_defaults(func=_cmd_predict)

    r = sub.add_parser("read", help="find and read every handwritten number in each file (a page, a "
                       "photo, a cheque, a tight crop), in reading order")
    _reading_arguments(r, model_help)
    r.set_defaults(func=_cmd_read)

    e = sub.add_parser("evaluate", help="accuracy, loss, per-class accuracy, confusion matrix")
    e.add_argument("--model", help=model_help)
    e.add_argument("--dataset", default="mnist", choices=DATASET_NAMES + NONDIGIT_SETS,
                   help="whose test digits: MNIST's as stored, the others' through the same "
                        "preprocessing as a user's picture (cvl: its validation writers); or "
                        "what is no digit: letters (writers held out of training), scribbles "
                        "(default: mnist)")
    e.add_argument("--data", help=sets_help)
    e.add_argument("--json", action="store_true")
    e.add_argument("--confusion", help="where to write the confusion-matrix PNG")
    e.set_defaults(func=_cmd_evaluate)

    t = sub.add_parser("train", help="train a model and save it (.keras, .tflite, card, curves)")
    t.add_argument("--preset", default=_default(TrainConfig, "preset"), choices=list(PRESETS))
    t.add_argument("--epochs", type=int, help="default: the preset's")
    t.add_argument("--batch-size", type=int, help="default: the preset's")
    t.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--seed", type=int, default=_default(TrainConfig, "seed"))
    t.add_argument("--datasets", metavar="NAME,NAME", help="train on these sets' training digits "
                   f"together ({', '.join(DATASET_NAMES)}; default: the preset's)")
    t.add_argument("--limit", type=int, help="train on the first N training images of each set only")
    t.add_argument("--validation", type=int, default=_default(TrainConfig, "validation"),
                   help="hold out N training images")
    t.add_argument("--pipeline-mix", type=float, default=_default(TrainConfig, "pipeline_mix"), metavar="F",
                   help="add F x the training images, rendered as photos, scans and canvases "
                        "and read back through the preprocessing (training digits only)")
    t.add_argument("--small-mix", type=float, metavar="F",
                   help="add F x the training images as small crops: 15-32 px, maybe stretched to "
                        "fill the box, binary or a few grey levels (default: the preset's)")
    t.add_argument("--nondigits", type=int, metavar="N",
                   help="teach \"not a digit\": render N scribbles and add them, with the letters of "
                        "letters/ (beside MNIST's folder) by the training writers, as an eleventh class "
                        "(0: none; default: the preset's)")
    t.add_argument("--letter-copies", type=int, default=_default(TrainConfig, "letter_copies"), metavar="K",
                   help="with --nondigits: each training writer's letter K times in an epoch (real "
                        "letters are few beside the rendered scribbles)")
    t.add_argument("--init", metavar="PATH",
                   help="start from this .keras model's weights (fine-tune; same preset; a model of "
                        "ten digits gains the class \"not a digit\")")
    t.add_argument("--samples", nargs="?", const="", metavar="DB",
                   help="include your digits (the corrections saved in the app; default database: "
                        "samples.sqlite3 in the models directory), a fifth of each digit held out")
    t.add_argument("--data", help=sets_help)
    t.add_argument("--out", help="where to write the model (default: a new file in "
                   "models/user/, so that the shipped model is replaced only when named)")
    t.set_defaults(func=_cmd_train)

    real_help = ("MNIST's folder with the other sets beside it (ardis, usps, mnist-writers, orand-train, "
                 "danish-rows), or a folder holding them (default: $DIGITREC_DATA)")
    w = sub.add_parser("train-recognizer", help="train the number recognizer (CTC) on real numbers "
                       "(orand-train, danish-rows) and numbers rendered from training digits")
    w.add_argument("--rendered", type=int, default=_default(RecognizerConfig, "rendered"),
                   help="numbers to render from the training digits of MNIST, ARDIS and USPS")
    w.add_argument("--orand-copies", type=int, default=_default(RecognizerConfig, "orand_copies"),
                   help="strips cut from each orand-train amount, its box moved a little each time")
    w.add_argument("--danish-copies", type=int, default=_default(RecognizerConfig, "danish_copies"),
                   help="strips cut from each danish-rows number")
    w.add_argument("--backbone", choices=RECOGNIZER_BACKBONES, default=_default(RecognizerConfig, "backbone"),
                   help="the CNN: 'digits', the digit model's convolutions slid along the strip and started "
                   "from it; 'strip', four stages learnt from random")
    w.add_argument("--digit-model", metavar="DIGITS.keras",
                   help="the digit model the 'digits' backbone starts from (default: the shipped one)")
    w.add_argument("--convs", type=int, default=_default(RecognizerConfig, "convs"), choices=(1, 2),
                   help="convolutions in each of the network's two last stages (1: lighter, about half the time)")
    w.add_argument("--epochs", type=int, default=_default(RecognizerConfig, "epochs"))
    w.add_argument("--batch-size", type=int, default=_default(RecognizerConfig, "batch_size"))
    w.add_argument("--lr", type=float, default=_default(RecognizerConfig, "learning_rate"),
                   help="peak learning rate (warm-up, then cosine)")
    w.add_argument("--seed", type=int, default=_default(RecognizerConfig, "seed"))
    w.add_argument("--init", metavar="RECOGNIZER.keras", help="start from this recognizer's weights (fine-tune)")
    w.add_argument("--data", help=real_help)
    w.add_argument("--limit", type=int, metavar="N",
                   help="at most N numbers of each real set, trained on and held out (a quick trial)")
    w.add_argument("--out", help="where to write it (default: the shipped models/recognizer.keras)")
    w.set_defaults(func=_cmd_train_recognizer)

    j = sub.add_parser("join-recognizers", help="join recognizers trained apart into one that reads with "
                       "all of them (each one's reading a candidate; the likeliest to them all is read)")
    j.add_argument("members", nargs="+", metavar="RECOGNIZER.keras")
    j.add_argument("--data", help=real_help)
    j.add_argument("--limit", type=int, metavar="N", help="at most N held-out numbers of each real set measured")
    j.add_argument("--out", help="where to write it (default: the shipped models/recognizer.keras)")
    j.set_defaults(func=_cmd_join_recognizers)

    d = sub.add_parser("train-detector", help="train the number detector on pages rendered from "
                       "training digits and real numbers (orand-train, danish-rows) laid on pages")
    d.add_argument("--pages", type=int, default=_default(DetectorConfig, "pages"),
                   help="training pictures to make")
    d.add_argument("--epochs", type=int, default=_default(DetectorConfig, "epochs"))
    d.add_argument("--batch-size", type=int, default=_default(DetectorConfig, "batch_size"))
    d.add_argument("--lr", type=float, default=_default(DetectorConfig, "learning_rate"),
                   help="peak learning rate (warm-up, then cosine)")
    d.add_argument("--seed", type=int, default=_default(DetectorConfig, "seed"))
    d.add_argument("--init", metavar="DETECTOR.keras", help="start from this detector's weights (fine-tune)")
    d.add_argument("--data", help=real_help)
    d.add_argument("--limit", type=int, metavar="N",
                   help="at most N numbers of each real set, trained on and held out (a quick trial)")
    d.add_argument("--out", help="where to write it (default: the shipped models/detector.keras)")
    d.set_defaults(func=_cmd_train_detector)

    s = sub.add_parser("samples", help="your digits: the corrections saved from the app")
    s.add_argument("--db", help="the samples database (default: samples.sqlite3 in the models directory)")
    actions = s.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every sample, newest first, and the count per digit")
    for action, what in (("export", "write a zip of PNGs and labels.csv"), ("import", "add the samples of such a zip")):
        a = actions.add_parser(action, help=what)
        a.add_argument("target", metavar="FILE.zip")
    d = actions.add_parser("delete", help="delete one sample, or --all (the file's space is given back)")
    d.add_argument("id", nargs="?", type=int, metavar="ID")
    d.add_argument("--all", action="store_true")
    s.set_defaults(func=_cmd_samples)

    v = sub.add_parser("serve", help="an HTTP API for other programs: POST pictures to /v1/predict and "
                       "/v1/read, answered with predict's and read's JSON (OpenAPI at /docs); with "
                       "$DIGITREC_API_KEY set, requests must carry that key")
    v.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface; "
                   "default: this machine only)")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--model", help=model_help)
    v.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    v.set_defaults(func=_cmd_serve)

    x = sub.add_parser("export", help="write the .tflite that reading loads beside a .keras model "
                       "(models saved by this version have one already)")
    x.add_argument("files", nargs="+", metavar="MODEL.keras")
    x.set_defaults(func=_cmd_export)
    return parser


# The libraries of the optional parts (pyproject.toml's extras): a command that needs one
# that is not installed says which extra brings it (the training commands: train, which
# holds them all).
EXTRAS = {"tensorflow": "train", "keras": "train", "matplotlib": "plots"}
TRAINING = ("train", "train-recognizer", "join-recognizers", "train-detector", "export")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from digitrec.reading.engine import ModelError

    errors: tuple = (ModelError,)
    if args.func not in (_cmd_predict, _cmd_read, _cmd_samples):  # these load no dataset code
        from digitrec.training.datasets import DataError

        errors += (DataError,)
    try:
        return args.func(args)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        extra = "train" if args.command in TRAINING else extra
        print(f"error: {args.command}{' --show' if getattr(args, 'show', None) else ''} needs {exc.name}, "
              f"which is not installed: pip install 'digitrec[{extra}]'", file=sys.stderr)
        return 2
