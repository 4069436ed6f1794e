# ladderflow: one image that is both
#   - the Dataflow Flex Template launcher image (gcloud dataflow flex-template build --image),
#     which Dataflow starts with the launcher binary copied below as its entrypoint, and
#   - the Beam SDK worker image (--sdk_container_image on Dataflow, --environment_config
#     with --environment_type=DOCKER on Flink), started through ENTRYPOINT /opt/apache/beam/boot.
#
# Build: gcloud builds submit --tag REGION-docker.pkg.dev/PROJECT/REPO/ladderflow:TAG
#
# Versions that must agree (tests/test_deploy_files.py checks them; the build checks the
# installed ones again below):
#   - BEAM_VERSION here == BEAM_VERSION in setup.py, which pins apache-beam[gcp] for
#     `pip install .`; the boot program comes from the Beam SDK image of that version.
#   - Python 3.11 everywhere: the Beam SDK image (beam_python3.11_sdk), the template
#     launcher (python311-template-launcher-base) and the interpreter installed below.
#     The Python that submits a job must be 3.11 as well (Flink, or running without the
#     template).

ARG BEAM_VERSION=2.77.0
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04

# Beam's worker boot program and what lies beside it in /opt/apache/beam.
FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS beam_sdk

# Dataflow's Flex Template launcher for Python 3.11 (pin a dated tag for repeatable builds).
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base:latest AS template_launcher

# The image itself: an NVIDIA CUDA runtime base, so that on GPU workers FFmpeg can reach
# the driver's NVENC/NVDEC libraries (--encoder nvenc-* or auto). FFmpeg is the build
# inside the imageio-ffmpeg wheel (with ffnvcodec: *_nvenc, *_cuvid, -hwaccel cuda); it
# loads libcuda.so.1 and libnvidia-encode.so.1 from the driver at run time, and its NVENC
# refuses drivers older than the NVENC API it was built against (FFmpeg says which
# version it needs). The base image's LD_LIBRARY_PATH (/usr/local/nvidia/lib64, where
# Dataflow and GKE mount the driver) is kept as it is.
FROM ${CUDA_IMAGE}
ARG BEAM_VERSION
ARG DEBIAN_FRONTEND=noninteractive

ENV NVIDIA_DRIVER_CAPABILITIES=compute,video,utility \
    PYTHONUNBUFFERED=1

# Python 3.11 from the deadsnakes PPA, which follows 3.11's bug-fix releases: Ubuntu
# 22.04's own python3 is 3.10, and its universe python3.11 is an early 3.11.0 build.
# software-properties-common comes with its recommends, which add-apt-repository may need
# to add a PPA.
RUN apt-get update \
    && apt-get install -y ca-certificates gnupg software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*

# Everything Python lives in one virtual environment, first on PATH, so `python`, `python3`
# and `pip` are 3.11 for the template launcher and for the boot program alike. Beam's boot
# would otherwise create a fresh venv per worker on top of the system Python, which cannot
# see the packages installed here.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1
RUN python3.11 -m venv /opt/venv \
    && python -m pip install --no-cache-dir --upgrade pip setuptools build

COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
COPY --from=template_launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

# The project, installed (not editable) with its pinned apache-beam[gcp], then its gpu
# extra (torch and vmaf-torch: --vmaf_backend auto scores VMAF on the GPU where one works;
# PyPI's torch wheels bring their own CUDA libraries and need only the driver). The source
# stays in /template: setup.py is handed to the launched job (FLEX_TEMPLATE_PYTHON_SETUP_FILE).
WORKDIR /template
COPY . /template
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir ".[gpu]" \
    && pip check

# Fail the build, not a job, when the image is not what the comments above promise.
RUN python -c "import sys; sys.exit(sys.version_info[:2] != (3, 11) and sys.version)" \
    && python -c "import sys, apache_beam as b; sys.exit(b.__version__ != '${BEAM_VERSION}' and 'apache-beam ' + b.__version__ + ' != ${BEAM_VERSION}')" \
    && ffmpeg="$(python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" \
    && for codec in libx264 libx265 libsvtav1 h264_nvenc hevc_nvenc av1_nvenc; do \
           "$ffmpeg" -hide_banner -encoders | grep -qw "$codec" || exit 1; \
       done \
    && "$ffmpeg" -hide_banner -decoders | grep -qw h264_cuvid \
    && "$ffmpeg" -hide_banner -filters | grep -qw libvmaf \
    && python -c "import torch, vmaf_torch" \
    && test -x /opt/apache/beam/boot \
    && test -x /opt/google/dataflow/python_template_launcher

# Flex Template: the launcher runs this file (python templates/launch.py --name=value ...),
# which runs the pipeline as `python -m pipeline` does, and passes setup.py to the job
# (--setup_file) so that workers without this image (no sdk_container_image) get the code.
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/templates/launch.py \
    FLEX_TEMPLATE_PYTHON_SETUP_FILE=/template/setup.py

# Beam worker entrypoint. Dataflow starts the template launcher with its own entrypoint.
ENTRYPOINT ["/opt/apache/beam/boot"]
