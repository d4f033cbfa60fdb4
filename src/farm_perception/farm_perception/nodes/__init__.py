"""ROS 2 adapters of farm_perception (the only modules that import rclpy)."""
