"""Command line and graph wiring of ladderflow (`python -m pipeline --help`)."""
