"""What every page of the app shares: the cached model loader and the few widgets that
show a prediction. Streamlit only; the logic lives in digitrec/."""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import streamlit as st

from digitrec import store
from digitrec.reading.digits import Recognizer
from digitrec.server import registry

BLUE, GREY = "#1f77b4", "#c4c9d0"

# The app's pages, in the navigation's order: file, title, icon, URL path.
PAGES = (
    ("pages/draw.py", "Draw", ":material/draw:", "draw"),
    ("pages/upload.py", "Upload", ":material/upload:", "upload"),
    ("pages/train.py", "Train", ":material/model_training:", "train"),
)


_MARKDOWN = set("\\`*_[]()<>#!|~${}")


def plain(text: str) -> str:
    """``text`` as literal text inside Streamlit's Markdown: a visitor's file name such as
    ``[x](http://elsewhere/pixel.png).png`` shows as written, never as a link or image."""
    return "".join("\\" + c if c in _MARKDOWN else c for c in str(text))


def navigation():
    """The app's navigation (``st.navigation`` over :data:`PAGES`), called by
    ``streamlit_app.py`` alone; returns the page to run."""
    pages = {url: st.Page(file, title=title, icon=icon, url_path=url, default=url == "draw")
             for file, title, icon, url in PAGES}
    chosen = st.navigation(list(pages.values()))
    st.session_state["framed"] = True
    wanted = st.session_state.pop("wanted", None)
    if wanted in pages and chosen.url_path != wanted:
        st.switch_page(pages[wanted])
    return chosen


def in_frame(url_path: str) -> None:
    """Called first by every page. With a ``pages/`` folder beside it, Streamlit runs a
    fresh server's first visitor's page URL (``/train``) as a script of its own, without
    ``streamlit_app.py``'s navigation and sidebar, until ``st.navigation`` has run once.
    Such a run goes to the entry script, which comes back to this page."""
    if not st.session_state.get("framed"):
        st.session_state["wanted"] = url_path
        st.switch_page("streamlit_app.py")


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _load(path: str, mtime: float) -> Recognizer:
    if not registry.is_allowed(path):  # models load only from the models directory
        raise registry.OutsideModelsDir(f"{path} is outside the models directory")
    model = Recognizer.load(path)
    # Streamlit collects garbage after every script run (runner.postScriptGC), with the
    # GIL held: over the whole heap, that was a third of the server's CPU a reading; every
    # other session waited. What is loaded by now (the libraries, the networks) stays for
    # the server's life: frozen, the collector no longer walks it after each run.
    gc.collect()
    gc.freeze()
    return model


# (path, mtime) of active models that failed to load -> why; a failure is not cached by
# st.cache_resource, so without this every rerun would try the broken file again.
_broken: dict[tuple[str, float], str] = {}


def recognizer():
    """The active model, shared by every page and every browser session. Keyed by the
    active path and its mtime, so activating or replacing a model switches everyone.

    When the active model cannot be used (pointer broken, file gone, outside the models
    directory, corrupt) the shipped model answers instead
    and the page shows a warning that names the problem."""
    path, problem = registry.active_status()
    key = registry.cache_key(path)
    if problem is None and key in _broken:
        problem = _broken[key]
    elif problem is None:
        try:
            return _load(*key)
        except Exception as exc:  # corrupt, truncated, not a model, unsafe: fall back
            if registry.is_shipped(path):
                raise
            problem = (f"the active model {Path(path).name} cannot be loaded "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})")
            _broken[key] = problem
    st.warning(f"Using the shipped model: {problem}. Train a new model or restore the "
               "shipped one on the Train page.", icon=":material/warning:")
    return _load(*registry.cache_key(store.DIGIT_MODEL))


def model_label(path, card: dict | None = None) -> str:
    card = store.read_card(path) if card is None else card
    name = "shipped model" if registry.is_shipped(path) else Path(path).stem
    acc = card.get("test", {}).get("accuracy")
    return f"{name} ({card.get('preset', '?')}, test accuracy {acc:.2%})" if acc else name


def sidebar() -> None:
    path, problem = registry.active_status()
    st.sidebar.caption(f"Active model: {model_label(path)}")
    if problem:
        st.sidebar.warning(f"Using the shipped model: {problem}.", icon=":material/warning:")


def model_input(x28: np.ndarray, scale: int = 5) -> np.ndarray:
    """The 28x28 the model saw, enlarged with crisp pixels (uint8)."""
    big = np.kron(np.asarray(x28, np.float32), np.ones((scale, scale), np.float32))
    return (np.clip(big, 0, 1) * 255).astype(np.uint8)


def confidence_chart(probabilities, labels=None, highlight_all: bool = False) -> dict:
    """A Vega-Lite bar chart of confidences in [0, 1], the winner (or every bar) in colour.

    A plain spec with its ten values inline, not an Altair chart: Altair validates the
    whole spec against its JSON schema on every call (about 20 ms with the GIL held, on
    every stroke of every session), and the browser draws the same chart either way."""
    probabilities = np.asarray(probabilities, float)
    labels = [str(i) for i in range(len(probabilities))] if labels is None else list(labels)
    best = int(probabilities.argmax())
    values = [{"digit": label, "confidence": float(p), "best": highlight_all or i == best}
              for i, (label, p) in enumerate(zip(labels, probabilities))]
    return {
        "data": {"values": values},
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "digit", "type": "nominal", "sort": None, "title": None,
                  "axis": {"labelAngle": 0, "labelFontSize": 14}},
            "y": {"field": "confidence", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%", "tickCount": 5}, "title": "confidence"},
            "color": {"condition": {"test": "datum.best", "value": BLUE}, "value": GREY},
            "tooltip": [{"field": "digit", "type": "nominal"},
                        {"field": "confidence", "type": "quantitative", "format": ".1%"}],
        },
        "height": 220,
    }


def big_text(text: str, detail: str) -> None:
    """A large result (a digit, a number) with one line of detail. Plain elements (no
    HTML), so that they render at once and in order."""
    st.header(text, anchor=False)
    st.markdown(detail)


def digit_and_count(recognizer, image: np.ndarray):
    """One digit's reading of ``image``, and how many digits it holds (None where no digit
    was read: nothing to compare with)."""
    prediction = recognizer.predict(image)
    return prediction, (recognizer.count_digits(image) if prediction.probabilities is not None else None)


def show_digit(pred, suffix: str = "") -> None:
    """One digit's reading: the digit, its confidence, and a warning where it is unsure.

    The test hook: ``prediction<suffix>`` begins with the digit (or says that no digit
    was found)."""
    with st.container(key=f"prediction{suffix}"):
        if pred.digit is None and pred.not_digit is not None:  # the model's "not a digit" won
            big_text("Not a digit", f"{pred.not_digit:.1%} sure: a letter, a sign or a scribble, not a digit")
            return
        if pred.digit is None:
            st.markdown(f"**No digit found:** {pred.reason}.")
            return
        big_text(str(pred.digit), f"{pred.confidence:.1%} confident")
        if pred.low_confidence:
            st.warning("Not sure: this may not be a clear digit.", icon=":material/warning:")


def show_digit_details(pred, suffix: str = "") -> None:
    """The bar chart of every class's confidence (the ten digits, and "?" for "not a
    digit" where the model has that class) and the 28x28 the model saw.

    The test hook: ``confidences<suffix>`` holds the bar chart."""
    if pred.probabilities is None:
        return
    labels = [str(d) for d in range(10)] + ["?"] * (len(pred.probabilities) - 10)
    with st.container(key=f"confidences{suffix}"):
        st.vega_lite_chart(spec=confidence_chart(pred.probabilities, labels), width="stretch")
        if len(labels) > 10:
            st.caption("? = not a digit. Confidences are calibrated: of readings shown at 90%, about 9 in 10 "
                       "are right.")
        st.image(model_input(pred.input28), caption="What the model saw (28×28)", width=112)


def show_number(number, suffix: str = "") -> None:
    """A picture read as one number: its text, how sure, and why it may be wrong.

    The test hook: ``prediction<suffix>`` begins with the number (or says that none was
    found)."""
    with st.container(key=f"prediction{suffix}"):
        if not number.digits:
            st.markdown(f"**No number found:** {number.reason or 'no digits read'}.")
            return
        n = len(number.digits)
        big_text(number.text, f"{n} digit{'s' if n > 1 else ''}, {number.confidence:.1%} sure of the whole")
        if number.low_confidence:
            st.warning(f"Unsure: {'; '.join(number.doubts)}. Check it.", icon=":material/warning:")


def show_number_details(numbers, suffix: str = "") -> None:
    """Each digit's confidence, left to right, of one number or of several (number by
    number, each digit labelled with its number). The test hook: ``confidences<suffix>``."""
    numbers = numbers if isinstance(numbers, (list, tuple)) else [numbers]
    digits = [(n, i, d) for n in numbers for i, d in enumerate(n.digits)]
    if not digits:
        return
    several = len(numbers) > 1
    with st.container(key=f"confidences{suffix}"):
        labels = [f"{n.text}: {i + 1}" if several else f"{i + 1}: {d.digit}" for n, i, d in digits]
        st.vega_lite_chart(spec=confidence_chart([d.confidence for _, _, d in digits], labels,
                                                 highlight_all=True), width="stretch")
        st.caption("Confidence of each digit read, left to right" + (", number by number" if several else ""))


def several_digits(count, suffix: str, mode_key: str, number_mode: str, what: str = "picture") -> None:
    """Beside one digit's reading of a picture that holds a number (:mod:`digitrec.reading.count`):
    says so, shows the number read, and offers to read it as a number (sets the widget
    ``mode_key`` to ``number_mode``).

    The test hook: ``several<suffix>``."""
    if not count.several:
        return

    def switch() -> None:
        st.session_state[mode_key] = number_mode

    with st.container(key=f"several{suffix}"):
        st.info(f"This {what} holds {count.digits} digits, not one: read as a number, it is "
                f"**{plain(count.number.text)}** ({count.number.confidence:.0%} sure). One digit's "
                "reading shows only one of them.", icon=":material/pin:")
        st.button("Read it as a number", key=f"as-number{suffix}", icon=":material/123:", on_click=switch)


# --- your digits: corrections saved beside a reading -------------------------------------
@st.cache_resource
def _samples_db(path: str):
    from digitrec.server.samples import SampleStore

    return SampleStore(path)


def samples_db():
    """The samples database (one per models directory), with its warning shown once
    where a damaged file had to be set aside."""
    from digitrec.server.samples import default_path

    db = _samples_db(str(default_path()))
    if db.warning and not st.session_state.get("samples_warned"):
        st.warning(db.warning, icon=":material/warning:")
        st.session_state["samples_warned"] = True
    return db


def _save_answer(pred, answer: int, picture, source: str, on_saved) -> None:
    from digitrec.server.samples import SampleError

    try:
        samples_db().add(pred.input28, answer, read_digit=pred.digit, confidence=pred.confidence,
                         source=source, model=registry.active_model_path().name,
                         picture=np.asarray(picture)[..., :3] if np.ndim(picture) == 3 else picture)
    except SampleError as exc:
        st.toast(f"Not saved: {exc}", icon=":material/error:")
        return
    read = "not a digit" if pred.digit is None else pred.digit
    st.toast(f"Saved as a {answer}." + ("" if answer == pred.digit else f" (read as {read})"),
             icon=":material/check_circle:")
    if on_saved:
        on_saved()


def _picked(key: str, pred, picture, source: str, on_saved) -> None:
    answer = st.session_state.get(key)
    st.session_state[key] = None  # the control is ready for the next answer
    if answer is not None:
        _save_answer(pred, int(answer), picture, source, on_saved)


def correction(pred, picture: np.ndarray, source: str, suffix: str = "", on_saved=None) -> None:
    """"Right" and "No, it was: 0 … 9" beside a reading. Each answer saves a sample (the
    28x28 the model saw, the picture, the true digit and the reading) and says so; then
    ``on_saved()`` runs (the Draw page clears its canvas for the next digit). The digits
    are pills, which wrap onto a second line where the column is narrow (a phone).

    The test hook: ``correction<suffix>`` holds the buttons."""
    if pred.digit is None and pred.not_digit is not None:  # read as no digit: perhaps it was one
        with st.container(key=f"correction{suffix}"):
            key = f"was{suffix}"
            st.pills("Was it a digit after all? It was:", [str(d) for d in range(10)], key=key,
                     on_change=_picked, args=(key, pred, picture, source, on_saved))
        return
    if pred.digit is None:
        return
    with st.container(key=f"correction{suffix}"):
        st.caption("Was it right? Each answer is kept as one of your digits, to train with "
                   "on the Train page.")
        st.button("Right", key=f"right{suffix}", icon=":material/check:", on_click=_save_answer,
                  args=(pred, pred.digit, picture, source, on_saved))
        key = f"was{suffix}"
        st.pills("No, it was:", [str(d) for d in range(10)], key=key, on_change=_picked,
                 args=(key, pred, picture, source, on_saved))


def _save_number(number, text: str, picture, source: str, on_saved) -> bool:
    """Save a number's digits as samples (:mod:`digitrec.server.corrections`); say what
    was kept. True when digits were saved."""
    from digitrec.server.corrections import Mismatch, save_number
    from digitrec.server.samples import SampleError

    try:
        saved = save_number(samples_db(), picture, number, text, source,
                            model=registry.active_model_path().name)
    except Mismatch as exc:
        st.toast(f"Kept with the readings, not as digits: {exc}.", icon=":material/info:")
        return False
    except (ValueError, SampleError) as exc:
        st.toast(f"Not saved: {exc}", icon=":material/error:")
        return False
    st.toast(f"Saved {saved} digit{'s' if saved != 1 else ''} of {plain(text.strip())}.",
             icon=":material/check_circle:")
    if on_saved:
        on_saved()
    return True


def _typed(key: str, number, picture, source: str, on_saved) -> None:
    text = st.session_state.get(key) or ""
    if text.strip():
        _save_number(number, text, picture, source, on_saved)


def number_correction(number, picture: np.ndarray, source: str, suffix: str = "", on_saved=None) -> str | None:
    """"Right" and "No, it was: [the number]" beside a number's reading. Where the number
    typed has as many digits as were read, each digit is saved as one of your digits (to
    train the digit model with); otherwise it is only kept with the readings. Returns the
    number typed (None where none was).

    The test hook: ``correction<suffix>``; the typed number's widget is ``typed<suffix>``."""
    if not number.digits:
        return None
    key = f"typed{suffix}"
    with st.container(key=f"correction{suffix}"):
        st.caption("Was it right? Each digit of an answer is kept as one of your digits, to "
                   "train with on the Train page.")
        st.button("Right", key=f"right{suffix}", icon=":material/check:", on_click=_save_number,
                  args=(number, number.text, picture, source, on_saved))
        st.text_input("No, it was:", key=key, placeholder="type the number, then Enter",
                      on_change=_typed, args=(key, number, picture, source, on_saved))
    typed = (st.session_state.get(key) or "").strip()
    return typed or None
