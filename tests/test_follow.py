"""Following a person without a mask: confirmation, one alert per track, servoing, giving up."""
from __future__ import annotations

import cv2
import py_trees

from behaviors import blackboard_keys as keys
from behaviors.alerts import AlertEvent, AlertStore
from behaviors.config import Config
from behaviors.control import ZERO
from behaviors.tree import PATROL
from tree_harness import FACE_BOX, TreeHarness, make_track, real_frame

CONFIG = Config(waypoints=((3.0, 0.0), (3.0, 3.0)), lost_timeout_s=2.0, follow_budget_s=20.0,
                cooldown_s=10.0, confirm_frames=3)
SMALL_FACE_RIGHT = (480.0, 200.0, 520.0, 240.0)


def test_confirmed_unmasked_track_is_followed_with_exactly_one_alert():
    h = TreeHarness(CONFIG)
    for _ in range(50):
        h.see([make_track(4, box=SMALL_FACE_RIGHT)])
        command = h.tick()
        assert h.tip() == "Servo To Face"
        assert command.linear_x > 0  # the face looks small: close in
        assert command.angular_z < 0  # the face is right of centre: turn right
    assert len(h.alerts) == 1
    event = h.alerts[0]
    assert isinstance(event, AlertEvent)
    assert event.track.track_id == 4 and event.track.label == "unmasked"
    assert event.frame_bgr is real_frame()
    assert event.robot_pose is not None and event.robot_pose.x == 0.0
    assert h.read(keys.PEOPLE).alerted_tracks == (4,)


def test_alert_reaches_a_real_store_once_with_snapshots(tmp_path):
    store = AlertStore(str(tmp_path / "alerts.sqlite"), world="test")
    h = TreeHarness(CONFIG, alert_sink=store.record_event)
    for _ in range(20):
        h.see([make_track(9, label="incorrect", box=FACE_BOX)])
        h.tick()
    rows = store.alerts()
    assert [(r.track_id, r.label) for r in rows] == [(9, "incorrect")]
    face = cv2.imread(rows[0].face_path)
    frame = cv2.imread(rows[0].frame_path)
    assert face is not None and frame is not None
    assert frame.shape == real_frame().shape
    store.close()


def test_face_at_target_size_and_centred_holds_still_while_following():
    h = TreeHarness(CONFIG)
    side = CONFIG.target_face_height * 480
    centred = (320 - side / 2, 100.0, 320 + side / 2, 100.0 + side)
    h.see([make_track(1, box=centred)])
    command = h.tick()
    assert h.tip() == "Servo To Face"
    assert abs(command.linear_x) < 1e-9 and abs(command.angular_z) < 1e-9


def test_masked_people_are_not_followed_nor_alerted():
    h = TreeHarness(CONFIG)
    for _ in range(20):
        h.see([make_track(2, label="masked", hits=10)])
        h.tick()
        assert h.tip() == PATROL
    assert h.alerts == []


def test_unconfirmed_track_waits_for_k_detections():
    h = TreeHarness(CONFIG)
    for hits in (1, 2):
        h.see([make_track(5, hits=hits)])
        h.tick()
        assert h.tip() == PATROL
        assert h.alerts == []
    h.see([make_track(5, hits=3)])
    h.tick()
    assert h.tip() == "Servo To Face"
    assert len(h.alerts) == 1


def test_old_perception_result_does_not_start_a_follow():
    h = TreeHarness(CONFIG)
    h.see([make_track(5)], age=CONFIG.result_max_age_s + 0.5)
    h.tick()
    assert h.tip() == PATROL
    assert "too old" in h.behaviour("Unmasked Confirmed?").feedback_message


def test_closest_of_several_unmasked_people_is_chosen():
    h = TreeHarness(CONFIG)
    h.see([make_track(1, box=(100, 100, 130, 130)), make_track(2, box=(300, 100, 400, 200)),
           make_track(3, label="masked", box=(0, 0, 300, 300))])
    h.tick()
    assert h.read(keys.FOLLOW_TARGET).track_id == 2


def test_lost_track_returns_to_patrol_after_the_timeout():
    h = TreeHarness(CONFIG)
    last_seen = h.see([make_track(6, box=SMALL_FACE_RIGHT)]).stamp
    assert h.tick().linear_x > 0
    h.see([])  # the person left the picture
    while h.clock() + 0.1 - last_seen < CONFIG.lost_timeout_s - 0.05:
        command = h.tick()
        assert h.tip() == "Servo To Face"
        if h.clock() - last_seen > CONFIG.result_max_age_s:
            assert command == ZERO  # out of sight: wait, do not steer on an old box
    command = h.tick()  # the tick just past the timeout
    assert h.tip() == PATROL
    assert command.linear_x > 0
    assert h.read(keys.FOLLOW_TARGET) is None
    assert "lost track 6" in h.behaviour("Servo To Face").feedback_message


def test_track_seen_again_before_the_timeout_is_followed_on():
    h = TreeHarness(CONFIG)
    h.see([make_track(6, box=SMALL_FACE_RIGHT)])
    h.tick()
    h.see([make_track(6, lost_frames=3, box=SMALL_FACE_RIGHT)])  # KCF lost it for a while
    for _ in range(15):
        h.tick()
    h.see([make_track(6, box=SMALL_FACE_RIGHT)])
    for _ in range(15):
        assert h.tick().linear_x > 0
        h.see([make_track(6, box=SMALL_FACE_RIGHT)])
    assert h.tip() == "Servo To Face"
    assert len(h.alerts) == 1


def test_cooldown_is_respected_and_a_followed_track_is_not_chased_again():
    h = TreeHarness(CONFIG)
    h.see([make_track(6)])
    h.tick()
    h.see([])
    while h.tip() == "Servo To Face":
        h.tick()
    assert h.tip() == PATROL
    gave_up_at = h.clock()
    assert h.read(keys.FOLLOW_COOLDOWN_UNTIL) == gave_up_at + CONFIG.cooldown_s
    assert h.read(keys.PEOPLE).followed_tracks == (6,)
    # The same person (and a new one) in view during the cool-down: keep patrolling.
    while h.clock() + 0.1 < gave_up_at + CONFIG.cooldown_s - 0.05:
        h.see([make_track(6), make_track(8, box=(100, 100, 150, 150))])
        h.tick()
        assert h.tip() == PATROL
    assert "cooling down" in h.behaviour("Unmasked Confirmed?").feedback_message
    for _ in range(3):
        h.see([make_track(6), make_track(8, box=(100, 100, 150, 150))])
        h.tick()
    # cool-down over: track 6 is the larger face, but it was followed already
    assert h.tip() == "Servo To Face"
    assert h.read(keys.FOLLOW_TARGET).track_id == 8
    assert [e.track.track_id for e in h.alerts] == [6, 8]  # one alert each, no repeat


def test_follow_ends_once_the_person_has_been_approached():
    h = TreeHarness(CONFIG)
    side = CONFIG.target_face_height * 480
    close = (320 - side / 2, 100.0, 320 + side / 2, 100.0 + side)
    ticks = 0
    while True:
        h.see([make_track(4, box=close)])
        h.tick()
        if h.tip() != "Servo To Face":
            break
        ticks += 1
        assert ticks < 100, "the follow never ended"
    assert abs(ticks / 10.0 - CONFIG.follow_hold_s) <= 0.25
    assert "approached" in h.behaviour("Servo To Face").feedback_message
    assert h.read(keys.PEOPLE).followed_tracks == (4,)
    assert len(h.alerts) == 1


def test_a_new_track_of_a_person_already_alerted_is_neither_alerted_nor_followed():
    h = TreeHarness(CONFIG)
    h.see([make_track(1, box=SMALL_FACE_RIGHT)])
    h.tick()
    assert len(h.alerts) == 1
    h.see([])
    while h.tip() == "Servo To Face":
        h.tick()
    h.clock.advance(CONFIG.cooldown_s + 1)
    # the same face at the same place, under a new track id (the tracker lost it)
    for _ in range(5):
        h.see([make_track(2, box=SMALL_FACE_RIGHT)])
        h.tick()
        assert h.tip() == PATROL
    assert len(h.alerts) == 1
    assert h.read(keys.PEOPLE).is_recognised(2)
    assert str(h.read(keys.PEOPLE).memory) == "1 person(s) alerted, 2 sighting(s)"  # track 2's too
    # someone else, far to the left: a new person
    h.see([make_track(3, box=(40.0, 200.0, 80.0, 240.0))])
    h.tick()
    assert [e.track.track_id for e in h.alerts] == [1, 3]


def test_follow_budget_ends_a_follow_even_in_view():
    config = Config(waypoints=((3.0, 0.0),), follow_budget_s=3.0, cooldown_s=5.0)
    h = TreeHarness(config)
    steps = 0
    while True:
        h.see([make_track(1, box=SMALL_FACE_RIGHT)])
        h.tick()
        if h.tip() != "Servo To Face":
            break
        steps += 1
    assert 28 <= steps <= 31  # 3 s at 10 Hz
    assert h.tip() == PATROL
    assert "budget" in h.behaviour("Servo To Face").feedback_message


def test_person_who_puts_on_a_mask_is_let_go():
    h = TreeHarness(CONFIG)
    h.see([make_track(3)])
    h.tick()
    assert h.tip() == "Servo To Face"
    h.see([make_track(3, label="masked")])
    h.tick()
    assert h.tip() == PATROL
    assert "wears a mask" in h.behaviour("Servo To Face").feedback_message


def test_failing_alert_sink_is_retried_and_counts_once_when_it_works():
    delivered = []
    failures = [RuntimeError("disk full"), RuntimeError("disk full")]

    def flaky_sink(event):
        if failures:
            raise failures.pop(0)
        delivered.append(event)

    h = TreeHarness(CONFIG, alert_sink=flaky_sink)
    for _ in range(10):
        h.see([make_track(2)])
        h.tick()
        assert h.tip() == "Servo To Face"  # following goes on while the alert is retried
    assert len(delivered) == 1 and failures == []


def test_terminate_zeroes_the_follow_command():
    h = TreeHarness(CONFIG)
    h.see([make_track(4, box=SMALL_FACE_RIGHT)])
    assert not h.tick().is_zero
    h.behaviour("Servo To Face").stop(py_trees.common.Status.INVALID)
    assert h.read(keys.COMMAND) == ZERO


def test_a_box_the_detector_has_not_confirmed_for_long_is_not_steered_on():
    h = TreeHarness(CONFIG)
    h.see([make_track(5, box=SMALL_FACE_RIGHT)])
    assert not h.tick().is_zero  # following a freshly detected face
    stale = make_track(5, box=SMALL_FACE_RIGHT)
    stale.frames_since_detection = CONFIG.steer_max_frames_undetected + 1
    for _ in range(int(CONFIG.result_max_age_s * 10) + 2):
        h.see([stale])
        command = h.tick()
    # KCF may be holding on to the background: wait instead of driving at it
    assert command == ZERO
    assert "out of sight" in h.behaviour("Servo To Face").feedback_message


def test_a_face_the_classifier_hesitates_on_raises_no_alert_and_is_not_followed():
    h = TreeHarness(CONFIG)
    unsure = make_track(4, label="incorrect", box=SMALL_FACE_RIGHT)
    # the masked woman of the crowd world, 7 m away: incorrect 0.52, but masked 0.32
    unsure.probabilities = (0.32, 0.16, 0.52)
    for _ in range(10):
        h.see([unsure])
        h.tick()
        assert h.tip() == PATROL
    assert h.alerts == []
    sure = make_track(4, label="incorrect", box=SMALL_FACE_RIGHT)
    sure.probabilities = (0.2, 0.35, 0.45)  # unmasked or incorrect: 0.8
    h.see([sure])
    h.tick()
    assert len(h.alerts) == 1 and h.tip() == "Servo To Face"


def test_a_track_re_found_moments_later_at_the_same_place_is_the_same_person():
    h = TreeHarness(CONFIG)
    h.see([make_track(1, box=SMALL_FACE_RIGHT)])
    h.tick()
    assert len(h.alerts) == 1
    # the tracker loses the face and finds it again a little further on, as a new track
    moved = (SMALL_FACE_RIGHT[0] + 30, SMALL_FACE_RIGHT[1], SMALL_FACE_RIGHT[2] + 30,
             SMALL_FACE_RIGHT[3])
    h.see([make_track(2, box=moved)])
    h.tick()
    assert len(h.alerts) == 1
    assert h.read(keys.PEOPLE).is_recognised(2)
    assert "continues track 1" in h.behaviour("Raise Alerts").feedback_message


def test_a_new_track_beside_the_stale_kcf_box_of_an_alerted_face_is_that_face():
    h = TreeHarness(CONFIG)
    h.see([make_track(1, box=SMALL_FACE_RIGHT)])
    h.tick()
    assert len(h.alerts) == 1
    # the tracker still carries track 1's box by KCF alone while the detector has found the
    # same face a little further on and started track 2 for it
    stale = make_track(1, box=SMALL_FACE_RIGHT)
    stale.frames_since_detection = 3
    moved = (SMALL_FACE_RIGHT[0] + 30, SMALL_FACE_RIGHT[1], SMALL_FACE_RIGHT[2] + 30,
             SMALL_FACE_RIGHT[3])
    h.see([stale, make_track(2, box=moved)])
    h.tick()
    assert len(h.alerts) == 1
    assert h.read(keys.PEOPLE).person_of(2) == 1
    assert "continues track 1" in h.behaviour("Raise Alerts").feedback_message


def test_a_follow_goes_on_with_the_new_track_of_the_person_it_follows():
    h = TreeHarness(CONFIG)
    h.see([make_track(1, box=SMALL_FACE_RIGHT)])
    h.tick()
    assert h.tip() == "Servo To Face" and len(h.alerts) == 1
    # the robot turns, the tracker loses the face and finds it again under a new id
    h.see([make_track(1, box=SMALL_FACE_RIGHT, lost_frames=1)])
    h.tick()
    moved = (SMALL_FACE_RIGHT[0] - 60, SMALL_FACE_RIGHT[1], SMALL_FACE_RIGHT[2] - 60,
             SMALL_FACE_RIGHT[3])
    for _ in range(int((CONFIG.lost_timeout_s + 1.0) / 0.1)):  # past the old id's timeout
        h.see([make_track(2, box=moved)])
        h.tick()
        assert h.tip() == "Servo To Face"
    assert h.read(keys.FOLLOW_TARGET).track_id == 2
    assert 1 in h.read(keys.PEOPLE).followed_tracks
    assert len(h.alerts) == 1
    # someone else appearing while the followed face is lost is not taken for them
    h.see([make_track(3, box=(40.0, 200.0, 80.0, 240.0))])
    h.tick()
    assert h.read(keys.FOLLOW_TARGET).track_id == 2


def test_a_face_too_small_to_judge_raises_no_alert_until_it_comes_closer():
    h = TreeHarness(CONFIG)
    tiny = CONFIG.alert_min_face_px - 1  # about 10 m away: a few pixels of evidence
    far = (300.0, 200.0, 300.0 + tiny, 200.0 + tiny)
    for _ in range(10):
        h.see([make_track(4, box=far)])
        h.tick()
        assert h.tip() == PATROL
    assert h.alerts == []
    side = CONFIG.alert_min_face_px
    near = (300.0, 200.0, 300.0 + side, 200.0 + side)
    h.see([make_track(4, box=near)])
    h.tick()
    assert len(h.alerts) == 1 and h.tip() == "Servo To Face"


def test_an_alert_names_the_bystanders_in_its_frame_for_blurring():
    h = TreeHarness(CONFIG)
    masked = make_track(5, label="masked", box=(40.0, 200.0, 80.0, 240.0))
    h.see([make_track(4, box=SMALL_FACE_RIGHT), masked])
    h.tick()
    assert [e.track.track_id for e in h.alerts] == [4]
    assert h.alerts[0].other_boxes == (masked.box,)
    # a second unmasked person: the first, already alerted, is no bystander of this alert
    h.see([make_track(4, box=SMALL_FACE_RIGHT), masked, make_track(6, box=FACE_BOX)])
    h.tick()
    assert [e.track.track_id for e in h.alerts] == [4, 6]
    assert h.alerts[1].other_boxes == (masked.box,)
