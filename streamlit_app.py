"""digitrec: navigation between the Draw, Upload and Train pages. Widgets only; the
logic lives in digitrec/, the shared model loader in app_shared.py."""
import streamlit as st

import app_shared

st.set_page_config(page_title="digitrec", page_icon=":material/draw:", layout="wide")
page = app_shared.navigation()
st.sidebar.markdown(
    "**digitrec** reads single handwritten digits and whole handwritten numbers. Digits: a "
    "CNN trained on MNIST, ARDIS, USPS and CVL, which also says \"not a digit\"; numbers: a detector and a recognizer "
    "trained on real cheques and register rows.")
app_shared.sidebar()
app_shared.recognizer()  # loaded as the first page opens, so the first stroke is read at once
page.run()
