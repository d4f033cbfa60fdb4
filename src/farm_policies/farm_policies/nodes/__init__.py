"""ROS 2 adapters of farm_policies (the only modules of the package that import rclpy)."""
