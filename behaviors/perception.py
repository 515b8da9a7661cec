"""The perception behaviour and its worker thread: faces are found off the tick.

Detection and classification take 0.1-3 s per frame on this class of CPU, far longer than
a 0.1 s tick. So, as in py_trees' "action" demo, the behaviour does not do the work: in
``setup()`` it starts a worker thread around the frame pipeline; every tick it hands the
newest camera frame to the worker (replacing a frame still waiting, never queueing) and
publishes the newest *finished* result to the blackboard. ``update()`` takes two locks for
microseconds and never waits for the pipeline.

The only thing the worker needs from the pipeline is
``process(frame_bgr, camera_yaw=None) -> FrameResult`` (perception.pipeline.FramePipeline,
or anything with that method). The yaw is the odometry's when the frame was handed over:
it lets the tracker take the robot's own turns out of the faces' motion.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.blackboard_keys import read
from behaviors.clock import Clock
from perception.types import FrameResult, Track

ProcessFn = Callable[..., FrameResult]
_log = logging.getLogger(__name__)


def default_pipeline_factory() -> Any:
    """The real pipeline (MTCNN + the shipped classifier + KCF), built on first setup()."""
    from perception.pipeline import FramePipeline

    return FramePipeline.default()


@dataclass(frozen=True)
class PerceptionOutput:
    """A finished perception result together with the frame it was computed on.

    The frame travels with its result so an alert snapshot always shows the picture the
    boxes were found in, never a later frame.
    """

    result: FrameResult
    frame_bgr: Any
    #: Inbox clock time at which the frame arrived (the result describes that moment).
    stamp: float
    #: The camera channel's arrival number of the frame.
    frame_seq: int
    #: Wall seconds the pipeline spent on this frame (a diagnostic, not a clock reading).
    latency_s: float

    @property
    def frame_size(self) -> Tuple[int, int]:
        if self.result.frame_size is not None:
            return (int(self.result.frame_size[0]), int(self.result.frame_size[1]))
        shape = self.frame_bgr.shape
        return (int(shape[1]), int(shape[0]))

    def __str__(self) -> str:  # short, for the tree viewer's blackboard view
        labels = ", ".join("%d %s" % (t.track_id, t.label) for t in self.result.tracks)
        return "frame #%d: %s" % (self.frame_seq, labels or "no faces")

    def track(self, track_id: int) -> Optional[Track]:
        for track in self.result.tracks:
            if track.track_id == track_id:
                return track
        return None


class PerceptionWorker:
    """One thread that runs ``process`` on the newest submitted frame, one at a time.

    There is a single pending slot: a frame submitted while another is waiting replaces it
    (counted in ``dropped``), so the worker always starts on the freshest picture and its
    backlog can never grow. Exceptions from ``process`` are caught, counted and kept in
    ``last_error``; the worker goes on with the next frame instead of dying silently.
    """

    def __init__(self, process: ProcessFn, name: str = "perception-worker") -> None:
        if not callable(process):
            raise ValueError("process must be callable (frame_bgr -> FrameResult), got %r"
                             % (process,))
        self.process = process
        self.name = name
        self._cond = threading.Condition()
        self._pending: Optional[Tuple[Any, float, int]] = None
        self._latest: Optional[PerceptionOutput] = None
        self._busy = False
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        # Daemon: a node that forgets shutdown() must still be able to exit.
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to finish after its current frame; True when it has."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

    def submit(self, frame_bgr: Any, stamp: float, seq: int,
               camera_yaw: Optional[float] = None) -> bool:
        """Offer a frame (and the camera's yaw then, if known); returns True when it
        replaced one that was still waiting."""
        with self._cond:
            replaced = self._pending is not None
            if replaced:
                self.dropped += 1
            self._pending = (frame_bgr, float(stamp), int(seq), camera_yaw)
            self.submitted += 1
            self._cond.notify_all()
        return replaced

    def latest(self) -> Optional[PerceptionOutput]:
        with self._cond:
            return self._latest

    def wait_idle(self, timeout: float) -> bool:
        """Block until no frame is pending or in progress (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                frame, stamp, seq, yaw = self._pending
                self._pending = None
                self._busy = True
            started = time.perf_counter()
            output: Optional[PerceptionOutput] = None
            try:
                result = self.process(frame, camera_yaw=yaw)
                if not isinstance(result, FrameResult):
                    raise TypeError("pipeline returned %s, not a FrameResult"
                                    % type(result).__name__)
                # Copies: a pipeline may keep mutating its own Track objects on the next
                # frame while the tree still reads this result.
                result = dataclasses.replace(
                    result, tracks=[dataclasses.replace(t) for t in result.tracks])
                output = PerceptionOutput(result, frame, stamp, seq,
                                          time.perf_counter() - started)
            except Exception as exc:  # keep the worker alive; the behaviour reports it
                _log.exception("perception failed on frame %d", seq)
                with self._cond:
                    self.errors += 1
                    self.last_error = "%s: %s" % (type(exc).__name__, exc)
            with self._cond:
                if output is not None:
                    self._latest = output
                    self.processed += 1
                self._busy = False
                self._cond.notify_all()


class Perceive(py_trees.behaviour.Behaviour):
    """Feed the newest camera frame to the perception worker; publish its newest result.

    Always RUNNING: perception is a service that lasts as long as the tree, and a RUNNING
    child also keeps the parallel root from ever finishing on its own.

    ``pipeline_factory`` is called once in ``setup()`` (it may load models and take
    seconds). ``None`` means there is no worker here: results are written to the
    blackboard's ``/perception`` key by someone else (another node's adapter, or a test).
    """

    def __init__(self, name: str = "Perceive",
                 pipeline_factory: Optional[Callable[[], Any]] = default_pipeline_factory,
                 clock: Optional[Clock] = None) -> None:
        super().__init__(name)
        self.pipeline_factory = pipeline_factory
        self.clock = clock if clock is not None else time.monotonic
        self.worker: Optional[PerceptionWorker] = None
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key=keys.CAMERA, access=py_trees.common.Access.READ)
        self.blackboard.register_key(key=keys.ODOMETRY, access=py_trees.common.Access.READ)
        self.blackboard.register_key(key=keys.PERCEPTION, access=py_trees.common.Access.WRITE)
        self._last_submitted = -1
        self._last_published = -1

    def setup(self, **kwargs: Any) -> None:
        if self.pipeline_factory is None or self.worker is not None:
            return
        pipeline = self.pipeline_factory()
        process = getattr(pipeline, "process", None)
        if not callable(process):
            raise ValueError("pipeline_factory returned %r, which has no "
                             "process(frame_bgr, camera_yaw=None) method" % (pipeline,))
        self.worker = PerceptionWorker(process)
        self.worker.start()

    def update(self) -> py_trees.common.Status:
        if self.worker is None:
            self.feedback_message = ("no perception worker (setup() not run or results come "
                                     "from elsewhere)")
            return py_trees.common.Status.RUNNING
        camera = read(self.blackboard, keys.CAMERA)
        if camera is not None and camera.seq != self._last_submitted:
            odometry = read(self.blackboard, keys.ODOMETRY)
            yaw = odometry.value.yaw if odometry is not None else None
            self.worker.submit(camera.value, camera.stamp, camera.seq, yaw)
            self._last_submitted = camera.seq
        output = self.worker.latest()
        if output is not None and output.frame_seq != self._last_published:
            self.blackboard.set(keys.PERCEPTION, output, overwrite=True)
            self._last_published = output.frame_seq
        self.feedback_message = self._describe(output)
        return py_trees.common.Status.RUNNING

    def _describe(self, output: Optional[PerceptionOutput]) -> str:
        worker = self.worker
        if worker is None:
            return ""
        state = "busy" if worker.busy else "idle"
        if not worker.alive:
            state = "worker stopped"
        if output is None:
            text = "%s, no result yet" % state
        else:
            text = "%s; frame #%d: %d face(s), %.0f ms, %.2f s old" % (
                state, output.frame_seq, len(output.result.tracks), output.latency_s * 1000.0,
                self.clock() - output.stamp)
        if worker.dropped:
            text += ", %d frame(s) skipped" % worker.dropped
        if worker.errors:
            text += ", %d error(s), last: %s" % (worker.errors, worker.last_error)
        return text

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
