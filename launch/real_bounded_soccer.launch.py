"""Real Franka FR3 + RealSense: Bounded Soccer, with FARM's node graph commanding the arm.

    ros2 launch farm_bringup real_bounded_soccer.launch.py robot_ip:=172.16.0.2
    ros2 launch farm_bringup real_bounded_soccer.launch.py use_twin:=true     # the same nodes on the twin

franka_ros2 (franka_bringup), the crisp_controllers Cartesian impedance controller and
realsense2_camera are included; tuning lives in config/real_bounded_soccer.yaml (README: Real robot).
"""

from farm_bringup.real_launch import describe


def generate_launch_description():
    return describe("real_bounded_soccer.yaml")
