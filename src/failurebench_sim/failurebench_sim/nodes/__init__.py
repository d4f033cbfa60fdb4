"""ROS 2 adapters of failurebench_sim (the only modules of the package that import rclpy)."""
