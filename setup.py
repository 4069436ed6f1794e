"""ladderflow: per-title adaptive streaming on Apache Beam."""

from setuptools import find_packages, setup

BEAM_VERSION = "2.77.0"
GPU_REQUIRES = ["vmaf-torch==1.1.0", "torch"]

setup(
    name="ladderflow",
    version="0.1.0",
    description="Source video to a streamable title (CMAF, HLS, DASH) on Apache Beam",
    python_requires=">=3.10",
    packages=find_packages(include=["media", "media.*", "pipeline", "pipeline.*",
                                    "transforms", "transforms.*"]),
    package_data={"media.report": ["assets/*"]},
    include_package_data=True,
    install_requires=[
        f"apache-beam[gcp]=={BEAM_VERSION}",
        "imageio-ffmpeg>=0.6",
        "av>=14",
        "ffmpeg-python==0.2.0",
        # IMF ingest: package XML parsed without DTDs/entities; IMSC1 timed text to WebVTT.
        "defusedxml>=0.7",
        "ttconv>=1.1",
    ],
    extras_require={
        # VMAF on the GPU (--vmaf_backend auto|torch); PyPI's torch wheels bring CUDA.
        "gpu": GPU_REQUIRES,
        # No torch: the vmaf-torch agreement tests need the gpu extra too (.ci/run installs
        # it) and say why they skip without it.
        "test": ["pytest>=8", "m3u8>=6", "mpegdash>=0.4", "lxml>=5", "dockerfile-parse>=2",
                 "pathspec>=0.12", "playwright>=1.50", "numpy", "scipy",
                 "gcp-storage-emulator", "ruff"],
    },
    entry_points={"console_scripts": ["ladderflow=pipeline.__main__:main"]},
)
