"""patrol_node's settings: one file (config/patrol.yaml) holds every perception and tree
setting, and the node splits parameters three ways, refusing what it does not know."""
from __future__ import annotations

from dataclasses import fields

import pytest

from behaviors.config import Config
from behaviors.settings import (FACE_DATA_KEYS, NODE_KEYS, PERCEPTION_KEYS, SETTINGS_FILE,
                                TREE_KEYS, NodeSettings, PerceptionSettings,
                                load_settings_file, read_settings)
from common.errors import InputError


def test_the_settings_file_holds_every_setting_and_the_libraries_defaults_are_its_values():
    settings = load_settings_file(SETTINGS_FILE)
    assert set(settings) == set(PERCEPTION_KEYS) | set(TREE_KEYS) | set(FACE_DATA_KEYS)
    # create_root() and the unit tests use the dataclasses' defaults: they are the robot's.
    config = Config()
    assert {k: getattr(config, k) for k in TREE_KEYS} == {k: settings[k] for k in TREE_KEYS}
    perception = PerceptionSettings()
    assert {f.name: getattr(perception, f.name) for f in fields(PerceptionSettings)} == {
        k: settings[k] for k in PERCEPTION_KEYS}
    node = NodeSettings()
    assert {k: getattr(node, k) for k in FACE_DATA_KEYS} == {
        k: settings[k] for k in FACE_DATA_KEYS}


def test_parameters_override_the_file_and_split_into_tree_perception_and_node(tmp_path):
    base = load_settings_file(SETTINGS_FILE)
    route = tmp_path / "site.yaml"
    route.write_text("waypoints: [{x: 1, y: 2}, {x: 3, y: 4}]\n")
    config, perception, node = read_settings(
        {"max_linear_speed": 0.2, "detect_every": 3, "waypoints": str(route),
         "alert_db": "/tmp/a.sqlite"}, base)
    assert config.max_linear_speed == 0.2 and config.cooldown_s == base["cooldown_s"]
    assert config.waypoints == ((1.0, 2.0), (3.0, 4.0))
    assert perception.detect_every == 3 and perception.min_face_size == base["min_face_size"]
    assert node.alert_db == "/tmp/a.sqlite" and node.compressed is False


def test_a_scenario_gives_the_route_of_its_world():
    config, _, node = read_settings({"scenario": "corridor"}, load_settings_file())
    assert node.scenario == "corridor" and len(config.waypoints) >= 2


@pytest.mark.parametrize("params,words", [
    ({"max_linear_sped": 0.2}, "unknown setting.*max_linear_sped"),
    ({"rate": 10.0}, "unknown setting.*rate"),
    ({"detect_scale": 0.0}, "detect_scale"),
    ({"detect_every": 0}, "detect_every"),
    ({"min_face_size": "big"}, "min_face_size"),
    ({"cooldown_s": -1.0}, "cooldown_s"),
    ({"blur_bystanders": "no"}, "blur_bystanders"),
    ({"detector": "yolo"}, "detector must be one of mtcnn, centerface, got 'yolo'"),
    ({"detector_upscale": 0.5}, "detector_upscale"),
    ({"runtime": "tensorrt"}, "runtime must be one of torch, onnx"),
    ({"require_scan": "yes"}, "require_scan must be true or false"),
    ({"stop_distance_m": 0.0}, "stop_distance_m"),
    ({"slow_distance_m": 0.3}, "slow_distance_m must be larger than stop_distance_m"),
    ({"scan_stale_s": -0.5}, "scan_stale_s"),
])
def test_bad_settings_stop_start_up_with_their_name(params, words):
    with pytest.raises(ValueError, match=words):
        read_settings(params, load_settings_file())


def test_an_unknown_key_in_the_settings_file_stops_start_up_too():
    base = dict(load_settings_file(), max_linear_sped=0.2)
    with pytest.raises(ValueError, match="unknown setting.*max_linear_sped"):
        read_settings({}, base)


def test_an_unreadable_or_malformed_settings_file_is_named(tmp_path):
    with pytest.raises(InputError, match="missing.yaml"):
        load_settings_file(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="mapping"):
        load_settings_file(str(bad))


def test_only_the_face_data_settings_of_the_node_are_in_the_file():
    assert set(NODE_KEYS) & set(load_settings_file()) == set(FACE_DATA_KEYS)
