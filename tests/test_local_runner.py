"""The local runner's threaded FnApiRunner hands each next stage whole elements.

Beam's in-process gRPC worker flushes a bundle's output every second from a thread of
its own; an element whose encoding straddles that flush went out in two chunks, and a
stage read by two workers got one half each (a job crashed so on trial records joined
by a Flatten; a run here hung). Elements that take over a second to encode (a value
whose pickling sleeps) provoke it every time; `pipeline.local_runner` turns the timed
flush off.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    class Slow:
        '''A value whose encoding outlasts the worker's one-second flush.'''
        def __init__(self, n):
            self.n = n
        def __reduce__(self):
            time.sleep(1.1)
            return (Slow, (self.n,))

    options = PipelineOptions(["--runner=pipeline.local_runner.LocalRunner",
                               "--direct_num_workers=2",
                               "--direct_running_mode=multi_threading"])
    with beam.Pipeline(options=options) as p:
        a = p | "A" >> beam.Create([0, 1]) | "SlowA" >> beam.Map(lambda i: (str(i), Slow(i)))
        b = p | "B" >> beam.Create([2, 3]) | "SlowB" >> beam.Map(lambda i: (str(i), Slow(i)))
        _ = ((a, b) | beam.Flatten() | beam.Reshuffle() | beam.Map(lambda kv: kv[1].n)
             | beam.combiners.ToList() | beam.Map(lambda ns: print("GOT", sorted(ns))))
""")


def test_elements_slower_to_encode_than_the_flush_reach_the_next_stage_whole(tmp_path):
    script = tmp_path / "slow_elements.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=False,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "GOT [0, 1, 2, 3]" in run.stdout
