"""The Streamlit app: ``streamlit run src/covertype/ui/app.py`` (``make ui``)."""
