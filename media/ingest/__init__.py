"""Ingest: turn Cloud Storage notifications, watched files and title packages into the
events that start a title.
"""
