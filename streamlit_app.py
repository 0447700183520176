"""digitrec: navigation between the Draw, Upload and Train pages. Widgets only; the
logic lives in digitrec/, the shared model loader in app_shared.py."""
import streamlit as st

import app_shared

st.set_page_config(page_title="digitrec", page_icon=":material/draw:", layout="wide")
page = st.navigation([
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("pages/upload.py", title="Upload", icon=":material/upload:", url_path="upload"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
])
st.sidebar.markdown("**digitrec** reads handwritten digits with a small CNN trained on MNIST.")
app_shared.sidebar()
page.run()
