"""ROS 2 nodes of farm_trainer (thin adapters; core logic lives in farm_trainer.online)."""
