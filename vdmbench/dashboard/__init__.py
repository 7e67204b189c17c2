"""The leaderboard app's logic, kept apart from Streamlit so tests can call it directly.

data      read-only queries against the results database
ranking   leaderboard table and the overall rank (normalization + weights)
compare   paired deltas between runs and the per-prompt differences
arena     blind pairwise votes, Bradley-Terry ratings, rank correlation with metrics
media     resolving stored video paths (relative to the database folder)
pages     the Streamlit pages (the only modules here that import streamlit)
"""
