"""Helpers shared by the Streamlit pages: the service handle, the acting user, error display."""
