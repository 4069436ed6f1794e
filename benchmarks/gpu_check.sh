#!/usr/bin/env bash
# One short check for a machine with an NVIDIA GPU (about 5 minutes): the GPU and CPU
# paths on the same short title, in one go. Prints the NVENC and NVDEC probe results,
# decode fps with and without NVDEC, libvmaf fps on the CPU for the same frames, and
# VMAF fps and agreement for GPU vs libvmaf (vmaf-torch, --vmaf_backend torch, through
# the pipeline's own scorers). Runs (and says what it could not do) on a machine without
# a GPU too: vmaf-torch then runs on the CPU, on the first CPU_TORCH_FRAMES frames only,
# labelled as such.
#
#   bash benchmarks/gpu_check.sh [SECONDS]      # default 20 s of 1080p25
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_OF_VIDEO="${1:-20}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FFMPEG="$(python -c 'from media import ffmpeg; print(ffmpeg.ffmpeg_exe())')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi: no NVIDIA GPU visible"

python - <<'PY'
from media.encoders import probe_nvenc
from media.hwaccel import probe_nvdec
for codec in ("h264_nvenc", "hevc_nvenc", "av1_nvenc"):
    r = probe_nvenc(codec)
    print(f"NVENC {codec}: {'works' if r.works else 'unavailable'} ({r.detail})")
r = probe_nvdec()
print(f"NVDEC (h264, -hwaccel cuda): {'works' if r.works else 'unavailable'} ({r.detail})")
PY

"$FFMPEG" -nostdin -loglevel error -f lavfi \
  -i "testsrc2=size=1920x1080:rate=25:duration=${SECONDS_OF_VIDEO}" \
  -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p "$WORK/src.mp4"
"$FFMPEG" -nostdin -loglevel error -i "$WORK/src.mp4" -vf scale=1280:720 \
  -c:v libx264 -preset veryfast -crf 30 "$WORK/enc.mp4"
FRAMES=$((SECONDS_OF_VIDEO * 25))

fps() {  # fps LABEL ARGS...: wall-clock frames per second of one FFmpeg command
  local label="$1"; shift
  local t0 t1
  t0=$(date +%s.%N)
  if "$FFMPEG" -nostdin -loglevel error "$@" >/dev/null 2>"$WORK/err"; then
    t1=$(date +%s.%N)
    python -c "print(f'{\"$label\":44s} {$FRAMES/($t1-$t0):8.1f} fps')"
  else
    printf '%-44s failed: %s\n' "$label" "$(tail -n 1 "$WORK/err")"
  fi
}
fps "decode 1080p on the CPU" -i "$WORK/src.mp4" -f null -
fps "decode 1080p with NVDEC (-hwaccel cuda)" -hwaccel cuda -i "$WORK/src.mp4" -f null -
VMAF="[0:v]scale=1920:1080:flags=bicubic,format=yuv420p[d];[1:v]format=yuv420p[r];[d][r]libvmaf=log_fmt=json"
fps "libvmaf 720p->1080p on the CPU" -i "$WORK/enc.mp4" -i "$WORK/src.mp4" \
  -lavfi "$VMAF:log_path=$WORK/vmaf-cpu.json" -f null -
fps "libvmaf, reference decoded with NVDEC" -i "$WORK/enc.mp4" -hwaccel cuda \
  -i "$WORK/src.mp4" -lavfi "$VMAF:log_path=$WORK/vmaf-nvdec.json" -f null -
python - "$WORK" <<'PY'
import json, os, sys
means = {}
for name in ("cpu", "nvdec"):
    path = os.path.join(sys.argv[1], f"vmaf-{name}.json")
    if os.path.exists(path):
        means[name] = json.load(open(path))["pooled_metrics"]["vmaf"]["mean"]
print("VMAF mean:", ", ".join(f"{k} {v:.3f}" for k, v in means.items()) or "none")
if len(means) == 2:
    print(f"agreement NVDEC vs CPU decode: {abs(means['cpu'] - means['nvdec']):.3f} VMAF")
PY

echo "VMAF fps and agreement for GPU vs libvmaf (the pipeline's scorers, 720p->1080p):"
CPU_TORCH_FRAMES="${CPU_TORCH_FRAMES:-10}" python - "$WORK" <<'PY'
import json, os, sys, time
from media import ffmpeg, gpu_vmaf, vmaf
from media.probe import inspect_source
from media.types import ChunkSpan

work = sys.argv[1]
src, enc = os.path.join(work, "src.mp4"), os.path.join(work, "enc.mp4")
source = inspect_source(src, src, "gpu-check")
probe = gpu_vmaf.probe_torch("cuda")
print(f"vmaf-torch on CUDA: {'works' if probe.works else 'unavailable'} ({probe.detail})")
device = "cuda" if probe.works else "cpu"
frames = source.frame_count if probe.works else min(source.frame_count,
                                                     int(os.environ["CPU_TORCH_FRAMES"]))
chunk = ChunkSpan(0, 0, frames)
if not gpu_vmaf.probe_torch(device).works:  # also loads the model before the clock starts
    sys.exit(f"vmaf-torch cannot score here: {gpu_vmaf.probe_torch(device).detail}")
logs = {name: os.path.join(work, f"vmaf-{name}-chunk.json") for name in ("libvmaf", "torch")}
t0 = time.monotonic()
ffmpeg.run(ffmpeg.ffmpeg_argv(*vmaf.score_chunk_argv(
    enc, src, source, chunk, source.width, source.height, logs["libvmaf"])))
t1 = time.monotonic()
torch_score = gpu_vmaf.score_chunk(enc, src, source, chunk, source.width, source.height,
                                   logs["torch"], device=device)
t2 = time.monotonic()
libvmaf_score = vmaf.pool_log_file(logs["libvmaf"])
label = "GPU (cuda)" if device == "cuda" else "CPU (no GPU: cpu torch)"
print(f"{'libvmaf on the CPU':44s} {frames / (t1 - t0):8.1f} fps  "
      f"mean {libvmaf_score.mean:.3f}  ({frames} frames)")
print(f"{'vmaf-torch on the ' + label:44s} {frames / (t2 - t1):8.1f} fps  "
      f"mean {torch_score.mean:.3f}  ({frames} frames)")
scores = [vmaf.frame_scores(json.load(open(logs[name]))) for name in ("libvmaf", "torch")]
worst = max(abs(a - b) for a, b in zip(*scores, strict=True))
pooled = abs(torch_score.mean - libvmaf_score.mean)
print(f"agreement vmaf-torch ({device}) vs libvmaf: pooled mean {pooled:.3f} VMAF, "
      f"per frame up to {worst:.3f} (bar: 0.5)")
PY
