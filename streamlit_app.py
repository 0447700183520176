"""digitrec: home page and navigation. Widgets only; the logic lives in digitrec/."""
import streamlit as st

from digitrec.predict import Recognizer


@st.cache_resource
def recognizer() -> Recognizer:
    return Recognizer.load()


st.set_page_config(page_title="digitrec", page_icon="✍️")
st.title("digitrec")
st.write("Reads handwritten digits: draw one, upload a photo, or retrain the model.")
model = recognizer()
test = model.card.get("test", {})
st.caption(f"Active model: {model.path.name}, test accuracy {test.get('accuracy', 0):.2%}")
