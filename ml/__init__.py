"""Pure scikit-learn code: model catalog, pipelines, training and metrics. No Temporal, no Streamlit."""
