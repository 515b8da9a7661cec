# The node modules of the ROS package (src/mask_patrol/*.py), installed by catkin beside the
# generated messages (mask_patrol.msg): catkin_python_setup() in CMakeLists.txt reads this.
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import setup

setup(**generate_distutils_setup(packages=["mask_patrol"], package_dir={"": "src"}))
