# Source me: activates the venv and the colcon overlay, and keeps ROS 2 on this machine.
#   source scripts/env.sh
_farm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$_farm_root/.venv/bin/activate"
# The overlay's setup.bash expects unset variables to be allowed.
set +u
# shellcheck disable=SC1091
[[ -f "$_farm_root/install/setup.bash" ]] && source "$_farm_root/install/setup.bash"
set -a
# shellcheck disable=SC1091
source "$_farm_root/config/ros_localhost.env"
set +a
# A domain of our own for this shell unless the caller chose one (valid ids: 0..101).
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 1 ))}"
unset _farm_root
