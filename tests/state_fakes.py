"""Stand-ins for Beam's state cells and timers, to call a stateful DoFn's `process` and
timer callbacks directly (no pipeline): each keeps what it was given, and counts reads."""

from __future__ import annotations


class FakeValue:
    """A `ReadModifyWriteState`."""

    def __init__(self):
        self.value = None
        self.reads = 0

    def read(self):
        self.reads += 1
        return self.value

    def write(self, value):
        self.value = value

    def clear(self):
        self.value = None


class FakeBag:
    """A `BagState`."""

    def __init__(self):
        self.items: list = []

    def add(self, item):
        self.items.append(item)

    def read(self):
        return list(self.items)

    def clear(self):
        self.items = []


class FakeTimer:
    """A timer: `at` is where it was last set."""

    def __init__(self):
        self.at = None

    def set(self, at):
        self.at = at
