"""Real cloud services on loopback for the tests: the GCS emulator (gcp-storage-emulator
from PyPI) and the Pub/Sub emulator (the Google Cloud CLI's). Session fixtures, found
by name through conftest; each sets the *_EMULATOR_HOST variable the clients honour."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

GCS_BUCKET = "ladderflow-test"
PUBSUB_PROJECT = "ladderflow-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _retry(action, deadline_s: float, proc: subprocess.Popen, what: str):
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return action()
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                raise RuntimeError(f"{what} did not start: {exc}") from exc
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def running_gcs_emulator(bucket: str = GCS_BUCKET):
    """gcp-storage-emulator on a free loopback port with `bucket` made; yields a storage
    client. STORAGE_EMULATOR_HOST points there meanwhile (Beam's gs:// FileSystems and
    google-cloud-storage both honour it)."""
    exe = shutil.which("gcp-storage-emulator")
    if not exe:
        raise FileNotFoundError("gcp-storage-emulator is not installed (pip install '.[test]')")
    port = free_port()
    proc = subprocess.Popen([exe, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials())
        _retry(lambda: client.create_bucket(bucket), 30, proc, "gcp-storage-emulator")
        # The emulator needs no credentials; skip Beam's search for them (~20 s of retries).
        from apache_beam.internal.gcp import auth

        auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
        yield client
    finally:
        _stop(proc)
        _restore("STORAGE_EMULATOR_HOST", old)


@contextlib.contextmanager
def running_pubsub_emulator():
    """The Google Cloud CLI's Pub/Sub emulator on a free loopback port; yields
    (publisher, subscriber) clients. PUBSUB_EMULATOR_HOST points there meanwhile."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise FileNotFoundError("gcloud is not installed: the Pub/Sub emulator comes with "
                                "the Google Cloud CLI (`gcloud components install "
                                "pubsub-emulator`)")
    port = free_port()
    proc = subprocess.Popen(
        [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
         f"--project={PUBSUB_PROJECT}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    old = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    try:
        from google.cloud import pubsub_v1

        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        project = f"projects/{PUBSUB_PROJECT}"
        _retry(lambda: list(publisher.list_topics(request={"project": project}, timeout=5)),
               90, proc, "the Pub/Sub emulator")
        yield publisher, subscriber
    finally:
        _stop(proc)
        _restore("PUBSUB_EMULATOR_HOST", old)


@pytest.fixture(scope="session")
def gcs_emulator():
    """A storage client on the GCS emulator, bucket GCS_BUCKET made."""
    if not shutil.which("gcp-storage-emulator"):
        pytest.skip("gcp-storage-emulator is not installed (pip install '.[test]')")
    with running_gcs_emulator() as client:
        yield client


@pytest.fixture(scope="session")
def pubsub_emulator():
    """(publisher, subscriber) clients on the Pub/Sub emulator."""
    if not shutil.which("gcloud"):
        pytest.skip("gcloud is not installed: the Pub/Sub emulator comes with the Google "
                    "Cloud CLI (`gcloud components install pubsub-emulator`)")
    with running_pubsub_emulator() as clients:
        yield clients


def _restore(name: str, old: str | None) -> None:
    if old is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = old


def make_topic(publisher, subscriber, name: str, subscription: str = "") -> tuple[str, str]:
    """Create topic `name` (and a subscription to it); return their full paths."""
    topic = publisher.topic_path(PUBSUB_PROJECT, name)
    publisher.create_topic(name=topic)
    sub = ""
    if subscription:
        sub = subscriber.subscription_path(PUBSUB_PROJECT, subscription)
        subscriber.create_subscription(name=sub, topic=topic, ack_deadline_seconds=60)
    return topic, sub
