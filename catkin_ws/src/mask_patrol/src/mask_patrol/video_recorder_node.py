"""Writes an Image topic to an MP4 at a constant frame rate in ROS time.

Frames arrive at whatever rate perception manages; the video is filled at ~fps by repeating
the newest frame, so one video second is one (simulated) second of the run.
"""
from __future__ import annotations

import os
import sys

import rospy
from sensor_msgs.msg import Image

from behaviors.ros_io import image_to_bgr
from common.errors import InputError
from perception.recording import ConstantRateVideoWriter


def main() -> int:
    rospy.init_node("video_recorder")
    path = rospy.get_param("~path")
    fps = float(rospy.get_param("~fps", 10.0))
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    writer = ConstantRateVideoWriter(path, fps)

    def on_image(msg: Image) -> None:
        try:
            writer.add(image_to_bgr(msg), msg.header.stamp.to_sec())
        except InputError as exc:
            rospy.logerr_throttle(5.0, "video_recorder: skipping frame: %s" % exc)

    rospy.Subscriber("image", Image, on_image, queue_size=2)
    rospy.on_shutdown(writer.close)
    rospy.loginfo("video_recorder: writing %s at %.1f fps", path, fps)
    rospy.spin()
    return 0


if __name__ == "__main__":
    sys.exit(main())
