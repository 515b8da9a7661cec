"""The perception behaviour and its worker thread: newest frame in, newest result out, and
the tick never waits for the pipeline."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from behaviors import blackboard_keys as keys
from behaviors.perception import PerceptionWorker, default_pipeline_factory
from perception.tracker import iou
from perception.types import FrameResult, Track
from tree_harness import FACE_BOX, TreeHarness, real_frame


def numbered_frame(n: int) -> np.ndarray:
    """The real photo with its frame number written into the top-left pixel."""
    frame = real_frame().copy()
    frame[0, 0] = n
    return frame


class GatedPipeline:
    """A pipeline whose process() waits until the test opens the gate.

    It reports which frame it processed (the number in the top-left pixel), so a test can
    tell which of the submitted frames the worker actually ran on.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.seen = []
        self.yaws = []
        self.fail_on = set()

    def process(self, frame_bgr: np.ndarray, camera_yaw=None) -> FrameResult:
        number = int(frame_bgr[0, 0, 0])
        self.started.set()
        assert self.gate.wait(30), "test never opened the gate"
        self.seen.append(number)
        self.yaws.append(camera_yaw)
        if number in self.fail_on:
            raise RuntimeError("cannot process frame %d" % number)
        h, w = frame_bgr.shape[:2]
        track = Track(track_id=number, box=FACE_BOX, label="unmasked", score=0.9)
        return FrameResult(frame_index=number, tracks=[track], frame_size=(w, h))


def tick_with_frame(h: TreeHarness, n: int, yaw: float = 0.0) -> None:
    h.clock.advance(0.1)
    h.inbox.put_frame(numbered_frame(n))
    h.inbox.put_odometry(0.0, 0.0, yaw)
    h.tree.tick()


def test_ticks_never_wait_and_the_newest_frame_replaces_the_pending_one():
    pipeline = GatedPipeline()
    h = TreeHarness(pipeline_factory=lambda: pipeline)
    worker = h.behaviour("Perceive").worker
    tick_with_frame(h, 1)
    assert pipeline.started.wait(30)  # the worker is inside process(frame 1), blocked
    for n in (2, 3, 4, 5):  # these ticks return although the pipeline is stuck
        tick_with_frame(h, n)
        assert h.read(keys.PERCEPTION) is None
        assert "busy" in h.behaviour("Perceive").feedback_message
    assert worker.dropped == 3  # 2, 3 and 4 were replaced while waiting
    pipeline.gate.set()
    assert worker.wait_idle(30)
    h.tree.tick()
    assert pipeline.seen == [1, 5]  # the stuck frame, then straight to the newest
    output = h.read(keys.PERCEPTION)
    assert output.frame_seq == 5 and output.result.frame_index == 5
    assert int(output.frame_bgr[0, 0, 0]) == 5  # the frame travels with its result
    assert output.stamp == h.inbox.latest("camera").stamp
    h.shutdown()
    assert not worker.alive


def test_the_same_frame_is_not_submitted_twice():
    pipeline = GatedPipeline()
    pipeline.gate.set()
    h = TreeHarness(pipeline_factory=lambda: pipeline)
    tick_with_frame(h, 7)
    worker = h.behaviour("Perceive").worker
    assert worker.wait_idle(30)
    for _ in range(5):
        h.clock.advance(0.1)
        h.tree.tick()  # no new frame arrived
    assert worker.wait_idle(30)
    assert pipeline.seen == [7] and worker.submitted == 1
    h.shutdown()


def test_each_frame_goes_to_the_pipeline_with_the_odometry_yaw_it_arrived_with():
    pipeline = GatedPipeline()
    pipeline.gate.set()
    h = TreeHarness(pipeline_factory=lambda: pipeline)
    worker = h.behaviour("Perceive").worker
    for n, yaw in ((1, 0.3), (2, -1.2)):
        tick_with_frame(h, n, yaw)
        assert worker.wait_idle(30)
    assert pipeline.seen == [1, 2]
    assert pipeline.yaws == [pytest.approx(0.3), pytest.approx(-1.2)]
    h.shutdown()


def test_pipeline_errors_are_reported_and_the_worker_goes_on():
    pipeline = GatedPipeline()
    pipeline.gate.set()
    pipeline.fail_on = {1}
    h = TreeHarness(pipeline_factory=lambda: pipeline)
    worker = h.behaviour("Perceive").worker
    tick_with_frame(h, 1)
    assert worker.wait_idle(30)
    h.tree.tick()
    assert worker.errors == 1 and "cannot process frame 1" in worker.last_error
    assert "cannot process frame 1" in h.behaviour("Perceive").feedback_message
    assert h.read(keys.PERCEPTION) is None
    tick_with_frame(h, 2)
    assert worker.wait_idle(30)
    h.tree.tick()
    assert h.read(keys.PERCEPTION).result.frame_index == 2
    h.shutdown()


def test_a_pipeline_that_returns_the_wrong_type_is_an_error():
    worker = PerceptionWorker(lambda frame, camera_yaw=None: {"faces": []})
    worker.start()
    worker.submit(real_frame(), 0.0, 1)
    assert worker.wait_idle(30)
    assert worker.errors == 1 and "not a FrameResult" in worker.last_error
    assert worker.latest() is None
    assert worker.stop()
    with pytest.raises(ValueError, match="process"):
        PerceptionWorker("not callable")


def test_published_tracks_are_copies_the_pipeline_cannot_change():
    shared = Track(track_id=1, box=FACE_BOX, label="unmasked", score=0.9)

    def process(frame, camera_yaw=None):
        return FrameResult(frame_index=0, tracks=[shared], frame_size=(640, 480))

    worker = PerceptionWorker(process)
    worker.start()
    worker.submit(real_frame(), 0.0, 1)
    assert worker.wait_idle(30)
    shared.box = (0.0, 0.0, 1.0, 1.0)  # the pipeline moves its own track on the next frame
    assert worker.latest().result.tracks[0].box == FACE_BOX
    assert worker.stop()


def test_the_real_frame_pipeline_finds_the_face_through_the_tree():
    h = TreeHarness(pipeline_factory=default_pipeline_factory)
    worker = h.behaviour("Perceive").worker
    for _ in range(3):
        h.tick()
        assert worker.wait_idle(60)
    h.tree.tick()
    output = h.read(keys.PERCEPTION)
    assert output is not None, worker.last_error
    assert output.frame_seq == h.inbox.latest("camera").seq
    assert output.frame_size == (640, 480)
    assert output.frame_bgr is real_frame()
    boxes = [t.box for t in output.result.tracks]
    assert len(boxes) == 1 and iou(boxes[0], FACE_BOX) > 0.5, boxes
    assert worker.errors == 0
    h.shutdown()
    assert not worker.alive
