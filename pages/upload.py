"""Upload: photos or scans of digits, or a webcam snapshot; one digit or a whole number each."""
import cv2
import numpy as np
import streamlit as st

import app_shared as ui
from digitrec.reading.decode import EXTENSIONS, FORMATS, MAX_BYTES, ImageError, load_image

ui.in_frame("upload")

st.title("Upload a picture")
st.write("Upload photos or scans of handwritten digits (or take a webcam snapshot): each "
         "image is read as one digit, or as a whole number written in one row.")

mode = st.radio("Read each image as", ["one digit", "a whole number"], horizontal=True,
                key="mode")
files = st.file_uploader(
    f"Images ({', '.join(FORMATS)}; up to {MAX_BYTES // 2**20} MB each)", type=EXTENSIONS,
    accept_multiple_files=True, key="files")
snapshot = None
if st.toggle("Use the webcam", key="webcam"):
    camera_col, _ = st.columns([2, 1])
    snapshot = camera_col.camera_input(
        "Hold a digit written on paper in front of the camera, then take a photo", key="camera")


def annotate(image: np.ndarray, number) -> np.ndarray:
    """The image with a box and the digit read drawn over every digit found."""
    out = image[..., :3].copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    out = np.ascontiguousarray(out)
    thick = max(2, round(max(out.shape[:2]) / 250))
    for d in number.digits:
        x, y, w, h = d.box
        color = (230, 120, 0) if d.low_confidence else (0, 160, 60)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick)
        scale = max(0.6, h / 60)
        cv2.putText(out, str(d.digit), (x, max(0, y - thick * 2)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, color, thick, cv2.LINE_AA)
    return out


def show_number(image: np.ndarray, suffix: str) -> None:
    number = ui.recognizer().read_number(image)
    original, result = st.columns(2, gap="large")
    original.image(annotate(image, number) if number.digits else image,
                   caption="Your image" + (", the digits found boxed" if number.digits else ""))
    with result:
        with st.container(key=f"prediction{suffix}"):
            if not number.digits:
                st.markdown(f"**No digit found:** {number.reason or 'no digits in this image'}.")
            else:
                count = len(number.digits)
                ui.big_text(number.text, f"{count} digit{'s' if count > 1 else ''}, the least "
                            f"sure at {min(d.confidence for d in number.digits):.1%}")
                if number.low_confidence:
                    st.warning(f"Unsure of this reading: {'; '.join(number.doubts)}. Check it.")
                st.image([ui.model_input(d.input28, 2) for d in number.digits],
                         caption=[str(d.digit) for d in number.digits])
                st.caption("What the model saw (28×28 each)")
        if number.digits:
            with st.container(key=f"confidences{suffix}"):
                labels = [f"{i + 1}: {d.digit}" for i, d in enumerate(number.digits)]
                st.vega_lite_chart(spec=ui.confidence_chart([d.confidence for d in number.digits], labels,
                                                        highlight_all=True), width="stretch")
                st.caption("Confidence of each digit read, left to right")


def show_digit(image: np.ndarray, suffix: str) -> None:
    prediction = ui.recognizer().predict(image)
    original, result = st.columns(2, gap="large")
    original.image(image, caption="Your image")
    with result:
        ui.show_prediction(prediction, suffix)
        ui.correction(prediction, image, "webcam" if suffix == "-camera" else "upload", suffix)


def show(name: str, data: bytes, suffix: str) -> None:
    st.subheader(ui.plain(name), divider="gray")
    try:
        image = load_image(data)
    except ImageError as exc:
        with st.container(key=f"prediction{suffix}"):
            st.error(ui.plain(f"Cannot read {name}: {exc}"))
        return
    (show_number if mode == "a whole number" else show_digit)(image, suffix)


if snapshot is not None:
    show("Webcam snapshot", snapshot.getvalue(), "-camera")
for i, file in enumerate(files or []):
    show(file.name, file.getvalue(), f"-{i}")
if not files and snapshot is None:
    st.info("No image yet: upload one or more files above, or turn on the webcam.", icon=":material/image:")
