"""Event-driven latency: Cloud Storage notification to "title ready", against batch.

    python benchmarks/streaming.py [--duration 12] [--preset medium] [--work DIR]

Starts the GCS and Pub/Sub emulators (as the tests do), uploads one generated source
(960x540 25 fps with stereo audio), then on this machine:

1. batch: `python -m pipeline --input gs://.../title.mp4 --output gs://.../batch` —
   wall time of the whole command;
2. streaming: `python -m pipeline --subscription ... --streaming --notify_topic ...`,
   started and left to settle; then the notification is published and the time to the
   "title ready" message is the latency.

Both use the pipeline's defaults (per-title ladder, VMAF gates) unless told otherwise,
and print the ratio of streaming latency to batch wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.emulators import make_topic, running_gcs_emulator, running_pubsub_emulator
from tests.media_factory import make_clip

BUCKET = "ladderflow-bench"
# The emulator needs no credentials; skip Beam's search for them (~20 s of retries).
LAUNCH = ("import sys; from apache_beam.internal.gcp import auth; "
          "auth._Credentials._credentials_init = True; "
          "from pipeline.__main__ import main; sys.exit(main(sys.argv[1:]))")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pull_one(subscriber, subscription: str, deadline_s: float, proc) -> dict:
    from google.api_core import exceptions

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the streaming pipeline exited ({proc.returncode})")
        try:
            response = subscriber.pull(request={"subscription": subscription,
                                                "max_messages": 1}, timeout=5)
        except exceptions.DeadlineExceeded:
            continue
        if response.received_messages:
            received = response.received_messages[0]
            subscriber.acknowledge(request={"subscription": subscription,
                                            "ack_ids": [received.ack_id]})
            return json.loads(received.message.data)
    raise SystemExit(f"no 'title ready' within {deadline_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-streaming")
    parser.add_argument("--settle_s", type=float, default=15.0,
                        help="Seconds the streaming job gets to start before the event.")
    args, extra = parser.parse_known_args()
    os.makedirs(args.work, exist_ok=True)
    source = make_clip(os.path.join(args.work, "title.mp4"), duration_s=args.duration)
    common = ["--preset", args.preset, *extra]
    with running_gcs_emulator(BUCKET) as storage, running_pubsub_emulator() as (pub, sub):
        blob = storage.bucket(BUCKET).blob("in/title.mp4")
        blob.upload_from_filename(source)
        blob.reload()
        generation = str(blob.generation)

        print(f"batch: {args.duration:g} s source ...", flush=True)
        started = time.monotonic()
        with open(os.path.join(args.work, "batch.log"), "w") as log:
            code = subprocess.call(
                [sys.executable, "-c", LAUNCH, "--input", f"gs://{BUCKET}/in/title.mp4",
                 "--output", f"gs://{BUCKET}/batch", *common],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        batch_s = time.monotonic() - started
        if code:
            raise SystemExit(f"batch run failed ({code}); see {args.work}/batch.log")

        events, events_sub = make_topic(pub, sub, "bench-events", "bench-in")
        ready, ready_sub = make_topic(pub, sub, "bench-ready", "bench-ready-watch")
        print("streaming: starting the job ...", flush=True)
        with open(os.path.join(args.work, "streaming.log"), "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "--subscription", events_sub, "--streaming",
                 "--output", f"gs://{BUCKET}/streaming", "--notify_topic", ready, *common],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        try:
            time.sleep(args.settle_s)
            resource = {"bucket": BUCKET, "name": "in/title.mp4", "generation": generation}
            sent = time.monotonic()
            pub.publish(events, json.dumps(resource).encode(), eventType="OBJECT_FINALIZE",
                        payloadFormat="JSON_API_V1", bucketId=BUCKET, objectId="in/title.mp4",
                        objectGeneration=generation).result(timeout=30)
            message = pull_one(sub, ready_sub, 3600, proc)
            latency_s = time.monotonic() - sent
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    rungs = ", ".join(f"{r['height']}p" for r in message["ladder"])
    print(f"\n{args.duration:g} s 960x540 source, preset {args.preset}, {os.cpu_count()} cores"
          f"{' ' + ' '.join(extra) if extra else ''}; ladder {rungs}")
    print(f"  batch wall time (command start to exit):      {batch_s:7.1f} s")
    print(f"  streaming: notification to 'title ready':     {latency_s:7.1f} s")
    print(f"  streaming latency / batch wall time:          {latency_s / batch_s:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
