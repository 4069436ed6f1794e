"""Quality: VMAF of an encoded chunk against its source (libvmaf in `vmaf`, vmaf-torch in
`gpu_vmaf`), pooling, and Bjøntegaard deltas between two ladders (`bdrate`).
"""
