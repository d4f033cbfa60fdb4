#!/usr/bin/env bash
# Source ROS and the FARM overlay, then run the given command.
set -e
# shellcheck disable=SC1090
source "/opt/ros/$ROS_DISTRO/setup.bash"
# shellcheck disable=SC1091
source /farm_ws/install/setup.bash
exec "$@"
