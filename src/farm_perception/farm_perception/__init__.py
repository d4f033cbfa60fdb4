"""RealSense state estimation: YOLOv8 detection plus colour filtering, projected to metric object poses."""
