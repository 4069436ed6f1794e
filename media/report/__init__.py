"""Reporting: the title's report.json (`title_report`) and report.html with its charts
(`html`, `svg`).
"""
