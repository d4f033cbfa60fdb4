"""ROS 2 adapters of farm_safety_critic (the only modules of the package that import rclpy)."""
