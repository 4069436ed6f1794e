"""Encoding: stage a chunk's span of the source, build the encoder's FFmpeg command
(`commands`, for every encoder in `encoders`), encode and score one chunk (`chunk`), and
encode a title's audio (`audio`).
"""
