#!/usr/bin/env bash
# After a Franka reflex or user stop (the arbiter holds and reports "robot mode reflex" in
# /diagnostics): clear the cause (free the arm, release the stop), then run franka_ros2's three
# recovery steps. Check the names on your install: `ros2 action list`, `ros2 control
# list_hardware_components`, `ros2 control list_controllers`.
#   scripts/franka_recover.sh
set -euo pipefail
ACTION="${FRANKA_RECOVERY_ACTION:-/action_server/error_recovery}"
COMPONENT="${FRANKA_HARDWARE_COMPONENT:-FrankaHardwareInterface}"
CONTROLLER="${FARM_CONTROLLER:-cartesian_impedance_controller}"
echo "1/3 error recovery ($ACTION)"
ros2 action send_goal "$ACTION" franka_msgs/action/ErrorRecovery "{}"
echo "2/3 hardware component $COMPONENT -> active"
ros2 control set_hardware_component_state "$COMPONENT" active
echo "3/3 controller $CONTROLLER -> active"
ros2 control switch_controllers --activate "$CONTROLLER"
echo "done: the arbiter resumes when the robot mode is idle or move again"
