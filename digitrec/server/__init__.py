"""The app's server side: which model is active (registry), training jobs and the
worker process that runs them. Neither Streamlit nor TensorFlow is imported here; the
worker imports training in its own process."""
