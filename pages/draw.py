"""Draw: a digit drawn with the mouse (or a finger), read after every stroke."""
import streamlit as st

import app_shared as ui

ui.in_frame("draw")

st.title("Draw a digit")
st.write("Draw one digit, 0 to 9, anywhere in the white box: the reading updates after "
         "every stroke. Undo or clear with the buttons above the box.")

canvas_col, result_col = st.columns([1, 1], gap="large")
with canvas_col:
    pen = st.slider("Pen width", min_value=6, max_value=40, value=18, step=2)
    from streamlit_drawable_canvas import st_canvas  # a component: import under Streamlit only

    drawing = st_canvas(
        stroke_width=pen, stroke_color="#000000", background_color="#FFFFFF",
        width=320, height=320, drawing_mode="freedraw", return_image_data=True,
        key=f"canvas-{st.session_state.get('drawings', 0)}",  # a new key: a blank canvas
    )


def next_drawing() -> None:
    st.session_state["drawings"] = st.session_state.get("drawings", 0) + 1


with result_col:
    strokes = (drawing.json_data or {}).get("objects") or []
    image = drawing.image_data if strokes else None
    if image is None:
        with st.container(key="prediction"):
            st.info("No digit yet: draw a digit in the box.")
    else:
        prediction = ui.recognizer().predict(image)
        ui.show_prediction(prediction)
        ui.correction(prediction, image, "draw", on_saved=next_drawing)
