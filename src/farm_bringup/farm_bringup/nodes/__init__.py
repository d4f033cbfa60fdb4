"""The rclpy side of farm_bringup (the only modules here that import rclpy)."""
