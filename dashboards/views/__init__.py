"""The monitor's pages (Streamlit rendering only; queries and tables do the work)."""
