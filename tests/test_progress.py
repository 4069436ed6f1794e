"""Progress counts: each piece of work once, a second round counted on, and nothing kept
of a finished title for ever."""

from __future__ import annotations

import threading

from transforms.progress import ProgressCount


def test_a_repeated_piece_is_counted_once():
    count = ProgressCount()
    assert [count.add("title", piece, 3) for piece in ("a", "b", "a", "c")] == [1, 2, None, 3]
    assert count.add("title", "b", 3) is None  # a retried bundle, after the title finished


def test_a_second_round_with_a_larger_total_counts_on():
    count = ProgressCount()
    probe = [count.add(("plan", "t", "1"), i, 2) for i in range(2)]
    refine = [count.add(("plan", "t", "1"), i, 5) for i in range(2, 5)]
    assert probe == [1, 2] and refine == [3, 4, 5]
    assert count.add(("plan", "t", "1"), 4, 5) is None


def test_finished_keys_are_forgotten_oldest_first():
    count = ProgressCount(remembered=2)
    for title in ("a", "b", "c"):
        assert count.add(title, 0, 1) == 1
    assert count.add("b", 0, 1) is None and count.add("c", 0, 1) is None
    assert count.add("a", 0, 1) == 1  # pushed out: counted as new
    assert not count._open  # nothing left open


def test_titles_that_never_finish_are_forgotten_oldest_first():
    count = ProgressCount(remembered=2)
    for title in ("a", "b", "c"):  # each fails after its first piece of two
        assert count.add(title, 0, 2) == 1
    assert list(count._open) == ["b", "c"]
    assert count.add("c", 1, 2) == 2


def test_threads_count_every_piece_once():
    count = ProgressCount()
    seen: list[int | None] = []
    lock = threading.Lock()

    def report(pieces):
        for piece in pieces:
            done = count.add("title", piece, 400)
            with lock:
                seen.append(done)

    threads = [threading.Thread(target=report, args=(range(k, 400, 4),)) for k in range(4)]
    threads += [threading.Thread(target=report, args=(range(0, 400, 7),))]  # repeats
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c for c in seen if c is not None) == list(range(1, 401))
