"""Planning: the segment grid and the chunks (`chunking`), the trial encodes and the
rate–VMAF convex hull they feed (`trials`, `hull`), the ladder of renditions chosen from
it (`ladder`, `planning`, `per_title`), and the CRF of every encode (`rate_control`).
"""
