"""Train: retrain the network from the browser, watch it learn, and choose the active model."""
import io

import numpy as np
import pandas as pd
import streamlit as st

import app_shared as ui
from digitrec import store
from digitrec.server import jobs, registry
from digitrec.server.samples import SampleError
from digitrec.training.datasets import DATASETS
from digitrec.training.recipes import MIN_SHARE, PRESETS, TrainConfig

ui.in_frame("train")

REFRESH_SECONDS = 1.0
ORANGE = "#ff7f0e"  # the validation curve, beside the training one in the app's blue
GALLERY_SIZE = 60  # your digits shown at once, misreads first
TILE = 110  # a digit of the gallery, in pixels across: the tiles wrap onto as many rows as the width needs
PHASES = {"testing": "testing the model trained so far on the test sets",
          "saving": "saving it with its card"}
BATCH_SIZES = [2 ** k for k in range(16) if jobs.BATCH_RANGE[0] <= 2 ** k <= jobs.BATCH_RANGE[1]]

st.title("Train a model")
st.write("Train the digit network here and watch it learn; when it ends, compare it with the "
         "active model and use it on every page if you like it. Every model trained here stays "
         "in the list of models below, to choose again later.")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left…"
    seconds = int(round(seconds))
    return f"about {seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else \
        f"about {seconds} s left"


# --- The run's settings -----------------------------------------------------------------
preset = st.selectbox("Network", list(PRESETS), index=list(PRESETS).index("fast"),
                      format_func=lambda p: f"{p}: {PRESETS[p].summary}", key="preset")
recipe = PRESETS[preset]
st.caption(recipe.description)
epochs_col, batch_col, images_col = st.columns(3)
epochs = epochs_col.slider("Epochs", 1, jobs.MAX_EPOCHS, recipe.epochs, key=f"epochs-{preset}")
batch_size = batch_col.select_slider("Batch size", BATCH_SIZES, recipe.batch_size,
                                     key=f"batch-{preset}")
images = images_col.number_input(
    "Training images", min_value=jobs.MIN_IMAGES, max_value=jobs.TRAIN_IMAGES, value=jobs.TRAIN_IMAGES,
    step=1000, key="images", help="Fewer images train faster, for a quick try; "
    "a sixth of them (at most 2,000) are held out to draw the validation curves.")
augment = st.toggle("Augmentation: show the network rotated, zoomed, shifted, thicker and "
                    "thinner digits (slower, more robust to real handwriting)",
                    value=recipe.augment, key=f"augment-{preset}")
datasets = st.multiselect(
    "Data sets", list(DATASETS), default=list(recipe.datasets), key=f"datasets-{preset}",
    format_func=lambda name: DATASETS[name].description,
    help="Whose handwriting to learn from: each set's training digits (Training images: "
    f"the first so many of each). A small set still makes {MIN_SHARE:.1%} of every epoch. "
    "ARDIS's and USPS's digits are read through the same preprocessing as an uploaded picture.")

db = ui.samples_db()
train_samples, held_samples = db.split_counts()
mine = st.toggle(f"Include your digits ({train_samples} to train on, {held_samples} held out to "
                 "measure the new model on)", value=False, key="include-samples",
                 disabled=not train_samples, help="The digits you corrected on the Draw and Upload "
                 "pages (below): they make a fixed share of every epoch.")
start_col, quick_col = st.columns([1, 2])
start = start_col.button("Start training", type="primary", key="start", disabled=not datasets,
                         help=None if datasets else "Choose at least one data set.")
quick = quick_col.button("Quick: fine-tune the active model on your digits", key="quick",
                         disabled=not train_samples, icon=":material/bolt:",
                         help="One short epoch from the active model's weights: your digits beside "
                         f"{jobs.QUICK_REPLAY:,} MNIST digits, so that it keeps what it knew.")
if start or quick:
    if quick:
        config = jobs.quick_config(registry.active_model_path(), db.path)
    else:
        config = TrainConfig(
            preset=preset, epochs=epochs, batch_size=batch_size, augment=augment, datasets=datasets,
            limit=None if images >= jobs.TRAIN_IMAGES else int(images), samples=str(db.path) if mine else None,
            out=str(store.new_model_path(preset)), command="Train page of the app")
    try:
        jobs.start(jobs.plan(config))
        st.session_state.pop("busy", None)
    except jobs.Busy as exc:
        # Shown beside the running job while it runs, and gone once it ends (see live()).
        running = jobs.current()
        st.session_state["busy"] = (running.started if running else None, str(exc))
    except Exception as exc:  # a bad setting, no process: say so, no traceback
        st.error(f"Training could not start: {exc}", icon=":material/error:")

# --- The run: live while it lasts --------------------------------------------------------
job = jobs.current()
polling = job is not None and job.running


def curve_chart(points: list[dict], metric: str) -> dict:
    """A Vega-Lite line chart of ``metric`` per epoch, training and (where there is one)
    validation. A plain spec, not ``st.line_chart``: that one builds an Altair chart and
    validates it against its schema on every call, with the GIL held, every second of a
    training, while other visitors wait for their readings."""
    curves = [("training", metric), ("validation", f"val_{metric}")]
    values = [{"epoch": p["epoch"], "curve": name, "value": p[key]}
              for p in points for name, key in curves if p.get(key) is not None]
    shown = list(dict.fromkeys(v["curve"] for v in values))  # training, then validation where there is one
    return {
        "data": {"values": values},
        "mark": {"type": "line"},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative", "title": "epoch"},
            "y": {"field": "value", "type": "quantitative", "title": metric, "scale": {"zero": False}},
            "color": {"field": "curve", "type": "nominal", "title": None, "legend": {"orient": "bottom"},
                      "scale": {"domain": shown, "range": [ui.BLUE, ORANGE][: len(shown)]}},
            "tooltip": [{"field": "curve", "type": "nominal"}, {"field": "epoch", "type": "quantitative",
                                                                 "format": ".2f"},
                        {"field": "value", "type": "quantitative", "format": ".4f", "title": metric}],
        },
        "height": 260,
    }


def curves(points: list[dict]) -> None:
    if not points:
        st.caption("The curves appear after the first few batches.")
        return
    points = list(points)  # a copy: the training thread appends meanwhile
    acc_col, loss_col = st.columns(2)
    for col, metric, title in ((acc_col, "accuracy", "Accuracy"), (loss_col, "loss", "Loss")):
        with col:
            st.markdown(f"**{title}**")
            st.vega_lite_chart(spec=curve_chart(points, metric), width="stretch")


def status(job) -> str:
    """Where the running job is, in words: its epoch and the batch within it, or what it
    does once its training is over (stopped or finished)."""
    progress, config = job.progress, job.config
    epoch, batch, per_epoch = progress.position(config.epochs)
    where = f"epoch {epoch} of {config.epochs} · batch {batch:,} of {per_epoch:,}"
    if progress.phase in PHASES:
        done = "Stopped" if progress.stopped else "Trained"
        return f"{done} at {where}: {PHASES[progress.phase]}…"
    if progress.stop.is_set():
        return "Stopping: the training ends after this batch…" if progress.total_steps else \
            "Stopping before the first batch: nothing to save…"
    if not progress.total_steps or progress.phase == "preparing":
        return "Preparing the data and the network…"
    return f"{where[0].upper()}{where[1:]} · {duration(progress.seconds_left())}"


@st.fragment(run_every=REFRESH_SECONDS if polling else None)
def live() -> None:
    job = jobs.current()
    if job is None:
        return
    progress = job.progress
    busy = st.session_state.get("busy")
    if busy and job.running and busy[0] == job.started:
        st.error(busy[1], icon=":material/hourglass_top:")
    elif busy:
        st.session_state.pop("busy")  # that training has ended: the message no longer applies
    with st.container(key="training"):
        if job.running:
            st.progress(min(1.0, progress.fraction), text=status(job))
            if not progress.stop.is_set() and progress.phase in ("preparing", "training"):
                st.button("Stop", key="stop", on_click=jobs.stop, icon=":material/stop:",
                          help="Stop after the current batch; the model trained so far is tested and saved")
        curves(progress.points)
    if polling and not job.running:
        st.rerun()  # the whole page, to show the result


if job is not None:
    st.subheader("Training" if polling else "Last training", divider="gray")
    live()

def yours(card: dict, new_path, active) -> None:
    """The new model and the active one on your held-out digits (not trained on)."""
    x, y, held = db.training_set()
    if not held.any():
        return
    x, y = x[held].astype(np.float32) / 255, y[held]
    new_acc = card["samples"].get("held_out_accuracy")
    active_acc = float((ui.recognizer().probabilities(x).argmax(1) == y).mean())
    new_col, active_col = st.columns(2)
    with st.container(key="yours"):
        new_col.metric("New model: your held-out digits", "unknown" if new_acc is None else f"{new_acc:.0%}",
                       delta=None if new_acc is None else f"{(new_acc - active_acc) * 100:+.0f} points")
        active_col.metric("Active model: your held-out digits", f"{active_acc:.0%}")
        st.caption(f"{int(held.sum())} of your digits that neither model trained on.")


def choose(new_path, new_acc: float, active_acc: float | None) -> None:
    """Use the new model, or keep the active one: the better one's button is the primary
    one, and a worse new model is said to be worse."""
    if st.session_state.get("kept") == str(new_path):
        st.info("The active model stays. The new one is kept with the other models below, "
                "to choose later.", icon=":material/check_circle:")
        return
    worse = active_acc is not None and new_acc < active_acc
    if worse:
        st.warning(f"The new model is worse than the active one: it reads "
                   f"{(active_acc - new_acc) * 100:.2f} points fewer of MNIST's test digits. "
                   "Keep the active model, unless you trained it for your own digits.",
                   icon=":material/trending_down:")
    with st.container(horizontal=True):
        use = st.button("Use the new model anyway" if worse else "Use the new model on every page",
                        type="secondary" if worse else "primary", key="activate")
        keep = st.button("Keep the active model", type="primary" if worse else "secondary", key="keep")
    if use:
        registry.set_active(new_path)
        st.rerun()
    if keep:
        st.session_state["kept"] = str(new_path)
        st.rerun()


# --- The result ---------------------------------------------------------------------------
if job is not None and not job.running:
    state, result = job.state, job.progress.result
    with st.container(key="result"):
        if state == "failed":
            st.error(f"Training failed: {job.progress.error}", icon=":material/error:")
        elif result is None and state == "stopped":
            st.warning("Stopped before the first batch: nothing was trained, no model was saved.",
                       icon=":material/stop:")
        elif result is None:
            st.warning("Training ended without a model.", icon=":material/stop:")
        else:
            card, new_path = result.card, result.path
            seconds = card.get("train_seconds", 0)
            if state == "stopped":
                st.warning(f"Stopped after {card['epochs_completed']:g} epochs "
                           f"({seconds:.0f} s); the model trained so far was saved.", icon=":material/stop:")
            else:
                st.success(f"Training finished in {seconds:.0f} s.", icon=":material/check_circle:")
            active = registry.active_model_path()
            active_acc = store.read_card(active).get("test", {}).get("accuracy")
            new_acc = card["test"]["accuracy"]
            new_col, active_col = st.columns(2)
            new_col.metric("New model: test accuracy", f"{new_acc:.2%}",
                           delta=None if active_acc is None or new_path == active
                           else f"{(new_acc - active_acc) * 100:+.2f} points")
            active_col.metric("Active model: test accuracy",
                              "unknown" if active_acc is None else f"{active_acc:.2%}",
                              help=ui.model_label(active))
            st.caption(f"Both measured on MNIST's 10,000 test images. New model: {new_path.name}")
            if "samples" in card:
                yours(card, new_path, active)
            if new_path is not None and new_path.resolve() == active.resolve():
                st.info("The new model is the active model on every page.", icon=":material/check_circle:")
            elif new_path is not None and new_path.exists():
                choose(new_path, new_acc, active_acc)

# --- The models: the shipped one, and every one trained here; one is active --------------
st.subheader("Models", divider="gray")
active = registry.active_model_path()
available = [(store.DIGIT_MODEL, store.read_card(store.DIGIT_MODEL))] + registry.models()
with st.container(key="models"):
    table = pd.DataFrame([{
        "model": "shipped model" if registry.is_shipped(path) else path.stem,
        "active": path.resolve() == active.resolve(),
        "network": card.get("preset", "?"),
        "MNIST test": card.get("test", {}).get("accuracy"),
        "trained on": ", ".join(card.get("datasets", {})) or "?",
        "epochs": card.get("epochs_completed"),
        "made": (card.get("created") or "")[:16].replace("T", " "),
    } for path, card in available])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "MNIST test": st.column_config.NumberColumn(format="percent"),
        "active": st.column_config.CheckboxColumn(width="small")})
    paths = [str(path) for path, _ in available]
    cards = dict(zip(paths, (card for _, card in available)))
    chosen_col, use_col = st.columns([3, 1], vertical_alignment="bottom")
    chosen = chosen_col.selectbox("Model for every page", paths, index=paths.index(str(active))
                                  if str(active) in paths else 0, key="chosen",
                                  format_func=lambda p: ui.model_label(p, cards[p]))
    if use_col.button("Make it active", key="make-active", disabled=chosen == str(active)):
        registry.set_active(chosen)
        st.rerun()
    if st.button("Restore the shipped model", key="restore", disabled=registry.is_shipped(active)):
        registry.restore_shipped()
        st.rerun()

# --- Your digits: the corrections saved on the Draw and Upload pages -----------------------
st.subheader("Your digits", divider="gray")
gallery = db.samples()
with st.container(key="your-digits"):
    if not gallery:
        st.info("None yet. Beside each reading on the Draw and Upload pages, answer \"Right\" "
                "or \"No, it was: …\": each answer is kept here, to train with.", icon=":material/draw:")
    else:
        counts = db.counts()
        held = sum(s.held_out for s in gallery)
        st.write(f"{len(gallery)} of your digits, {held} of them held out to measure a new model "
                 "on handwriting it was not trained on.")
        st.bar_chart(pd.DataFrame({"digit": [str(d) for d in range(10)], "samples": counts}),
                     x="digit", y="samples", height=160)
        now = ui.recognizer().probabilities(np.stack([s.x28 for s in gallery]).astype(np.float32) / 255)
        reads = now.argmax(1)
        order = sorted(range(len(gallery)), key=lambda i: (reads[i] == gallery[i].true_digit, -gallery[i].id))
        misread = int(sum(reads[i] != gallery[i].true_digit for i in order))
        st.caption(f"The active model misreads {misread} of them now; they come first.")
        with st.container(horizontal=True, key="gallery"):
            for i in order[:GALLERY_SIZE]:
                s = gallery[i]
                with st.container(width=TILE, key=f"tile-{s.id}"):
                    st.image(ui.model_input(s.x28.astype(np.float32) / 255, 3),
                             caption=f"{s.true_digit}, read {reads[i]}" + (" · held out" if s.held_out else ""))
                    st.button("Delete", key=f"delete-{s.id}", on_click=db.delete, args=(s.id,),
                              width="stretch", help="Delete this digit")
        if len(order) > GALLERY_SIZE:
            st.caption(f"… and {len(order) - GALLERY_SIZE} more.")
        export_col, delete_col = st.columns(2)

        def archive() -> bytes:  # made when the button is clicked, not on every rerun
            out = io.BytesIO()
            db.export_zip(out)
            return out.getvalue()

        export_col.download_button("Export (zip of PNGs and labels.csv)", archive,
                                   file_name="digitrec-samples.zip", mime="application/zip", key="export")
        sure = delete_col.checkbox(f"Yes, delete all {len(gallery)} of them", key="sure")
        if delete_col.button("Delete all of them", key="delete-all", icon=":material/delete_forever:",
                             disabled=not sure):
            db.delete_all()
            st.rerun()
    imported = st.file_uploader("Import samples (a zip exported here)", type=["zip"], key="import")
    if imported is not None and st.session_state.get("imported") != imported.file_id:
        st.session_state["imported"] = imported.file_id  # once per file, whatever the outcome
        try:
            st.success(f"Imported {db.import_zip(io.BytesIO(imported.getvalue()))} samples.")
        except SampleError as exc:
            st.error(f"Cannot import {ui.plain(imported.name)}: {exc}")
