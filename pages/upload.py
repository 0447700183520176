"""Upload: photos or scans of digits, or a webcam snapshot; one digit, or every number in it.
The readings can be downloaded (CSV, JSON); a few example pictures are there to try."""
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

import app_shared as ui
from digitrec.reading import records
from digitrec.reading.decode import EXTENSIONS, FORMATS, MAX_BYTES, ImageError, load_image
from digitrec.server import registry

ui.in_frame("upload")

NUMBERS = "every number in it"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "docs" / "examples"
EXAMPLES = {  # file -> label (where they come from: docs/examples/README.md)
    "digit-photo.jpg": "A digit, photographed",
    "cheque.jpg": "A cheque's amount",
    "row.png": "A row of digits",
}

st.title("Upload a picture")
st.write("Upload photos or scans of handwritten digits (or take a webcam snapshot): each "
         "picture is read as one digit, or every handwritten number in it is found and read.")

mode = st.radio("Read each picture as", ["one digit", NUMBERS], horizontal=True, key="mode",
                help="Numbers are found anywhere in the picture (a page, a photo, a form, a cheque) "
                     "and read one by one, in reading order.")
files = st.file_uploader(
    f"Pictures ({', '.join(FORMATS)}; up to {MAX_BYTES // 2**20} MB each)", type=EXTENSIONS,
    accept_multiple_files=True, key="files")
examples = st.pills("Or try an example", list(EXAMPLES), selection_mode="multi", key="examples",
                    format_func=EXAMPLES.get)
snapshot = None
if st.toggle("Use the webcam", key="webcam"):
    camera_col, _ = st.columns([2, 1])
    snapshot = camera_col.camera_input(
        "Hold a digit written on paper in front of the camera, then take a photo", key="camera")
downloads = st.container(key="downloads")  # filled once every picture is read


def annotate(image: np.ndarray, reading) -> np.ndarray:
    """The image with every number found boxed (blue), and a box and the digit read drawn
    over each of its digits (green; orange where unsure)."""
    out = image[..., :3].copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    out = np.ascontiguousarray(out)
    thick = max(2, round(max(out.shape[:2]) / 250))
    for number in reading.numbers:
        if number.box:
            x, y, w, h = number.box
            pad = 2 * thick
            cv2.rectangle(out, (x - pad, y - pad), (x + w + pad, y + h + pad), (40, 90, 220), thick)
        for d in number.digits:
            x, y, w, h = d.box
            color = (230, 120, 0) if d.low_confidence else (0, 160, 60)
            cv2.rectangle(out, (x, y), (x + w, y + h), color, max(1, thick // 2))
            scale = max(0.6, h / 60)
            cv2.putText(out, str(d.digit), (x, max(0, y - thick * 2)), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, color, thick, cv2.LINE_AA)
    return out


@st.cache_data(max_entries=64, show_spinner=False)
def reading_of(data: bytes, numbers: bool, model: tuple[str, float], _image: np.ndarray, _recognizer):
    """What ``_recognizer`` reads in the picture (``_image``, decoded from ``data``): every
    number, or one digit and how many digits the picture holds. Cached by the file's bytes,
    the mode and the active model (its path and mtime): a correction or a download reruns
    the page, and a page of many pictures is not read again for it."""
    return _recognizer.read(_image) if numbers else ui.digit_and_count(_recognizer, _image)


def source_of(suffix: str) -> str:
    return "webcam" if suffix == "-camera" else "upload"


def show_numbers(name: str, image: np.ndarray, suffix: str, data: bytes) -> dict:
    reading = reading_of(data, True, registry.cache_key(), image, ui.recognizer())
    numbers = reading.numbers
    original, result = st.columns(2, gap="large")
    original.image(annotate(image, reading) if numbers else image,
                   caption="Your picture" + (", each number and its digits boxed" if numbers else ""))
    corrections = []
    with result:
        with st.container(key=f"prediction{suffix}"):
            if not numbers:
                st.markdown(f"**No number found:** {reading.reason or 'no digits in this picture'}.")
            else:
                digits = [d for n in numbers for d in n.digits]
                count = f"{len(numbers)} numbers" if len(numbers) > 1 else \
                    f"{len(digits)} digit{'s' if len(digits) > 1 else ''}"
                ui.big_text(reading.text, f"{count}, the least sure digit at "
                            f"{min(d.confidence for d in digits):.1%}")
                for number in numbers:
                    if number.low_confidence:
                        st.warning(f"Unsure of {number.text}: {'; '.join(number.doubts)}. Check it.")
                st.image([image[y: y + h, x: x + w] for x, y, w, h in (n.box for n in numbers)],
                         caption=[n.text for n in numbers])
                st.caption("Each number's box, as the recognizer read it")
        if len(numbers) == 1:
            corrections.append(ui.number_correction(numbers[0], image, source_of(suffix), suffix))
        elif numbers:
            with st.expander("Correct a reading"):
                for k, number in enumerate(numbers):
                    st.markdown(f"Number {k + 1}: **{ui.plain(number.text)}**")
                    corrections.append(ui.number_correction(number, image, source_of(suffix), f"{suffix}-{k}"))
        ui.show_number_details(numbers, suffix)
    return records.record(name, records.NUMBERS, reading, correction=corrections or None)


def show_digit(name: str, image: np.ndarray, suffix: str, data: bytes) -> dict:
    prediction, count = reading_of(data, False, registry.cache_key(), image, ui.recognizer())
    original, result = st.columns(2, gap="large")
    original.image(image, caption="Your picture")
    with result:
        ui.show_digit(prediction, suffix)
        if count is not None:
            ui.several_digits(count, suffix, "mode", NUMBERS)
        ui.correction(prediction, image, source_of(suffix), suffix)
        ui.show_digit_details(prediction, suffix)
    return records.record(name, records.DIGIT, prediction, count)


def show(name: str, data: bytes, suffix: str) -> dict:
    st.subheader(ui.plain(name), divider="gray")
    try:
        image = load_image(data)
    except ImageError as exc:
        with st.container(key=f"prediction{suffix}"):
            st.error(ui.plain(f"Cannot read {name}: {exc}"))
        return records.record(name, records.NUMBERS if mode == NUMBERS else records.DIGIT, str(exc))
    return (show_numbers if mode == NUMBERS else show_digit)(name, image, suffix, data)


readings = []
if snapshot is not None:
    readings.append(show("Webcam snapshot", snapshot.getvalue(), "-camera"))
for i, file in enumerate(files or []):
    readings.append(show(file.name, file.getvalue(), f"-{i}"))
for name in examples or []:
    readings.append(show(name, (EXAMPLES_DIR / name).read_bytes(), f"-{Path(name).stem}"))
if readings:
    with downloads:
        with st.container(horizontal=True):
            st.download_button("Download the readings (CSV)", records.to_csv(readings), key="csv",
                               file_name="digitrec-readings.csv", mime="text/csv", icon=":material/download:",
                               on_click="ignore")
            st.download_button("Download the readings (JSON)", records.to_json(readings), key="json",
                               file_name="digitrec-readings.json", mime="application/json",
                               icon=":material/download:", on_click="ignore")
else:
    st.info("No picture yet: upload one or more files above, try an example, or turn on the webcam.",
            icon=":material/image:")
