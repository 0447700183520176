"""Draw: a digit, or a number, drawn with the mouse (or a finger), read after every stroke."""
import streamlit as st

import app_shared as ui

ui.in_frame("draw")

DIGIT, NUMBER = "One digit", "A number"
PEN = {DIGIT: 18, NUMBER: 10}  # the pen's width to start with: a number's digits are smaller
SIZE = 320  # the canvas's side in pixels: it fits a phone's screen beside the page's margins

st.title("Draw")
st.write("Draw a digit or a whole number in the box: it is read after every stroke.")
mode = st.segmented_control("Read the drawing as", [DIGIT, NUMBER], default=DIGIT, required=True,
                            key="draw-mode", label_visibility="collapsed")


def next_drawing() -> None:
    """A blank canvas (a new key) and an empty answer box, for the next drawing."""
    st.session_state["drawings"] = st.session_state.get("drawings", 0) + 1
    st.session_state.pop("undone", None)
    st.session_state["typed-draw"] = ""


def undo() -> None:
    """The drawing without its last stroke, given back to the same canvas: the canvas
    loads it and sends it back (a changed ``initial_drawing``), so the reading follows."""
    strokes = st.session_state.get("strokes") or []
    n = st.session_state.get("undos", 0) + 1
    st.session_state["undos"] = n
    st.session_state["undone"] = {"objects": strokes[:-1], "undo": n}  # "undo": a new value each time


canvas_col, result_col = st.columns(2, gap="small")
with canvas_col:
    pen_key = f"pen-{mode}"
    from streamlit_drawable_canvas import st_canvas  # a component: import under Streamlit only

    drawing = st_canvas(
        stroke_width=st.session_state.get(pen_key, PEN[mode]), stroke_color="#000000",
        background_color="#FFFFFF", width=SIZE, height=SIZE, drawing_mode="freedraw",
        return_image_data=True, initial_drawing=st.session_state.get("undone"),
        key=f"canvas-{st.session_state.get('drawings', 0)}",  # a new key: a blank canvas
    )
    strokes = (drawing.json_data or {}).get("objects") or []
    st.session_state["strokes"] = strokes
    with st.container(horizontal=True, key="canvas-tools"):
        st.button("Undo", key="undo", icon=":material/undo:", on_click=undo, disabled=not strokes,
                  help="Take back the last stroke")
        st.button("Clear", key="clear", icon=":material/delete_sweep:", on_click=next_drawing,
                  disabled=not strokes, help="Start again on a blank canvas")
        with st.popover("Pen", icon=":material/stylus:"):
            st.slider("Pen width", min_value=4, max_value=40, value=PEN[mode], step=2, key=pen_key)

# The reading heads the second column: beside the canvas on a wide screen, right under its
# buttons where the columns stack (a phone), so that it stays in sight while one draws.
with result_col:
    image = drawing.image_data if strokes else None
    if image is None:
        with st.container(key="prediction"):
            st.info("No digit yet: draw a digit in the box." if mode == DIGIT else
                    "No number yet: write a number in the box.")
    elif mode == DIGIT:
        reading, count = ui.digit_and_count(ui.recognizer(), image)
        ui.show_digit(reading)
        # a number is read as one digit, or as no digit at all: either way, say what it holds
        if count is not None:
            ui.several_digits(count, "", "draw-mode", NUMBER, what="drawing")
        ui.correction(reading, image, "draw", on_saved=next_drawing)
        ui.show_digit_details(reading)
    else:
        reading = ui.recognizer().read_number(image)
        ui.show_number(reading)
        ui.number_correction(reading, image, "draw", suffix="-draw", on_saved=next_drawing)
        ui.show_number_details(reading)
