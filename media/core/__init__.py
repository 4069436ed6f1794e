"""The shared base of the media core: the frozen values that flow between stages (`types`),
typed errors, output naming, the one FFmpeg runner, the job's configuration, records of
finished work, title versions and the fault injection the tests use.
"""
