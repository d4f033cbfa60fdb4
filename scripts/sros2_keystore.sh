#!/usr/bin/env bash
# Create an SROS2 keystore with one enclave per FARM node and the operator's, each with the
# permissions of config/sros2/farm_policy.xml (needs ros2cli + sros2: a ROS 2 distro install).
#   scripts/sros2_keystore.sh [KEYSTORE]        # default: ~/farm_keystore
# Then, on every machine of the robot (copy only the enclaves a machine runs, plus public/):
#   export ROS_SECURITY_KEYSTORE=~/farm_keystore ROS_SECURITY_ENABLE=true ROS_SECURITY_STRATEGY=Enforce
#   ros2 launch farm_bringup sim.launch.py secure:=true     # each node: --enclave /farm/<node>
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
keystore="${1:-$HOME/farm_keystore}"
policy="$here/config/sros2/farm_policy.xml"
command -v ros2 >/dev/null || { echo "ros2 (ros2cli + sros2) not found: source a ROS 2 distro" >&2; exit 1; }
[ -d "$keystore" ] || ros2 security create_keystore "$keystore"
enclaves=$(grep -o 'enclave path="[^"]*"' "$policy" | cut -d'"' -f2)
for enclave in $enclaves; do
  ros2 security create_enclave "$keystore" "$enclave"
  ros2 security create_permission "$keystore" "$enclave" "$policy"
done
echo "keystore $keystore: enclaves $(echo $enclaves | tr '\n' ' ')"
