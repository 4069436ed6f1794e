"""Planning: the segment grid and the chunks (`chunking`), the trial encodes and the
rate–VMAF convex hull they feed (`trials`, `hull`), and the ladder of renditions chosen
from it (`ladder`, `planning`).
"""
