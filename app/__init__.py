"""PathReview Streamlit front end: run with ``streamlit run app/main.py`` from the repository root."""
