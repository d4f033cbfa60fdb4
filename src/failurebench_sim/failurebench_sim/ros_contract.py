"""The node graph's contract: topic names, frames and FARM's stamped-vector convention.

No rclpy here (core modules import it freely); the rclpy side is ``failurebench_sim.nodes.ros_io``.
The twin impersonates the real drivers, so the first group of names is realsense2_camera's
(``align_depth.enable:=true``) and franka_ros2's; FARM's own topics live under ``/farm``.

Stamped vectors (observation, proposed action, safety assessment, decision, step outcome):
standard ``sensor_msgs/JointState`` used as a *named stamped vector* — ``header.stamp`` is the
camera frame's stamp, ``name[i]`` labels ``position[i]``; ``velocity`` and ``effort`` stay empty.
Custom .msg packages do not build with the PyPI ROS wheels, and JointState is the one standard
message with a header, labels and a float64 array (rqt_plot: ``/farm/decision/position[8]``).
Readers look values up by label, never by index, so a vector may gain labels later.
"""

from __future__ import annotations

# --- what the real drivers publish (and the twin impersonates) ---------------------------
COLOR_IMAGE = "/camera/camera/color/image_raw"  # sensor_msgs/Image rgb8
COLOR_INFO = "/camera/camera/color/camera_info"  # sensor_msgs/CameraInfo
DEPTH_IMAGE = "/camera/camera/aligned_depth_to_color/image_raw"  # sensor_msgs/Image 16UC1 mm
DEPTH_INFO = "/camera/camera/aligned_depth_to_color/camera_info"
EE_POSE = "/franka_robot_state_broadcaster/current_pose"  # geometry_msgs/PoseStamped, best effort
GRIPPER_STATE = "/franka_gripper/joint_states"  # sensor_msgs/JointState, finger positions (m)
CLOCK = "/clock"  # rosgraph_msgs/Clock (twin only: sim time)

# --- commands (reliable) -----------------------------------------------------------------
TARGET_POSE = "/cartesian_impedance_controller/target_pose"  # geometry_msgs/PoseStamped
GRIPPER_COMMAND = "/farm/gripper_command"  # JointState vector GRIPPER_COMMAND_LABELS

# --- FARM's graph --------------------------------------------------------------------------
OBJECT_POSES = "/farm/object_poses"  # geometry_msgs/PoseArray in the base frame (perception)
EPISODE_STATE = "/farm/episode_state"  # JointState vector EPISODE_LABELS, one per frame (readers
# that act per frame subscribe best effort: per-frame state, like the end-effector pose)
OBSERVATION = "/farm/observation"  # JointState vector, OBS_LABELS (policy node)
PROPOSED_ACTION = "/farm/proposed_action"  # JointState vector, PROPOSED_LABELS (policy node)
SAFETY_SCORE = "/farm/safety/score"  # std_msgs/Float32 C_H, for rqt_plot
SAFETY_ASSESSMENT = "/farm/safety/assessment"  # JointState vector, ASSESSMENT_LABELS
SAFETY_TRAJECTORY = "/farm/safety/imagined_trajectory"  # visualization_msgs/MarkerArray
DECISION = "/farm/decision"  # JointState vector, DECISION_LABELS (arbiter)
DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray
POLICY_WEIGHTS = "/farm/policy_weights"  # std_msgs/UInt8MultiArray, safetensors bytes, LATCHED
DETECTIONS_IMAGE = "/farm/perception/overlay"  # sensor_msgs/Image rgb8 (optional)

# --- twin-only ground truth ----------------------------------------------------------------
TWIN_OBJECT_POSES = "/farm/twin/object_poses"  # geometry_msgs/PoseArray, base frame
TWIN_STEP = "/farm/twin/step"  # JointState vector, STEP_LABELS (stamp = the new frame's)
# the last observation of an episode that just ended (JointState vector OBS_LABELS, stamped like
# the TWIN_STEP that ended it): the next frame already belongs to the next episode, and a learner
# bootstraps a timeout from V(final observation)
TWIN_FINAL_OBSERVATION = "/farm/twin/final_observation"
EPISODE_EVENTS = "/farm/episode_events"  # diagnostic_msgs/DiagnosticArray, EVENT_KINDS
# operator label marks (the trainer's): std_msgs/String "ir_failure" | "success", or the services
OPERATOR_MARKS = ("ir_failure", "success", "intervention")  # intervention: labelled an IR failure
OPERATOR_MARK = "/farm/operator/mark"
EPISODE_HOLD = "/farm/episode/hold"  # std_msgs/Bool, latched: the episode manager pauses the arm
EPISODE_START_POSE = "/farm/episode/start_pose"  # PoseStamped, latched: where the arm goes first
EPISODE_RESUME = "/farm/episode/resume"  # std_srvs/Trigger: the scene is ready, run
EPISODE_PAUSE = "/farm/episode/pause"  # std_srvs/Trigger
TELEOP_TWIST = "/farm/teleop/twist"  # geometry_msgs/Twist: the operator's hand velocity (m/s)
TELEOP_GRIPPER = "/farm/teleop/gripper"  # std_msgs/Float32: -1 open .. 1 closed
OPERATOR_MARK_SERVICES = {m: f"/farm/operator/mark_{m}" for m in OPERATOR_MARKS}  # std_srvs/Trigger

# --- frames (REP 103 / 105) ----------------------------------------------------------------
BASE_FRAME = "fr3_link0"  # franka_ros2's base; the twin's MetaWorld world frame
CAMERA_OPTICAL_FRAME = "camera_color_optical_frame"  # realsense2_camera's colour optical frame
EE_FRAME = "fr3_hand_tcp"

# --- vector labels -------------------------------------------------------------------------
ACTION_LABELS = ("dx", "dy", "dz", "gripper")  # FailureBench action, each in [-1, 1]
OBS_LABELS = tuple(f"obs_{i}" for i in range(39))
PROPOSED_LABELS = (*ACTION_LABELS, "policy_version")
# policy_version: the pi_task weights the scorer rolled out (Eq. 10); the decision's
# policy_version is the proposing policy's
ASSESSMENT_LABELS = ("c_h", "eps_safe", "policy_version", "latency_ms")
# c_h: the gate's score (C_H, or what the safety node's method scores); farm-runout-seq adds
# its holding member's score and threshold (the arbiter's recovery: policy_or_hold)
HOLD_ASSESSMENT_LABELS = ("hold_score", "hold_eps")
DECISION_LABELS = (
    *(f"proposed_{a}" for a in ACTION_LABELS),
    *(f"executed_{a}" for a in ACTION_LABELS),
    "replaced",  # 1.0 when the recovery action ran (Eq. 11), else 0.0
    "score",  # the gate's score of the proposed action (C_H; policy_or_hold: max with hold_score)
    "eps_safe",
    "policy_version",
    "hold",  # 1.0 when the arbiter held still (missing / non-finite input)
    "shield",  # 1.0 when the hard shield changed the command (executed_* is what was sent)
)
GRIPPER_COMMAND_LABELS = ("gripper",)  # FailureBench gripper action in [-1, 1] (+1 closes)
FINGER_JOINTS = ("fr3_finger_joint1", "fr3_finger_joint2")
STEP_LABELS = (
    "reward",
    "cost",
    "success",
    "terminated",
    "truncated",
    "episode",
    "step",
    # the stamp of the frame the transition started from (the trainer pairs it with that
    # frame's observation and decision): builtin_interfaces/Time's sec and nanosec
    "from_sec",
    "from_nanosec",
    # the stamp of the command that ran: the start frame's in lockstep; in realtime the latest
    # command, which may be an older frame's (sec -1: none in time, the twin held still)
    "command_sec",
    "command_nanosec",
)
EVENT_KINDS = ("reset", "success", "ir_failure", "timeout")
# Published with every frame by the twin (on the robot by the episode manager): the policy
# starts a new observation history (previous half = current) where ``step`` is 0.
EPISODE_LABELS = ("episode", "step", "goal_x", "goal_y", "goal_z")

# --- QoS classes (names; ros_io maps them to profiles) -------------------------------------
SENSOR = "sensor"  # qos_profile_sensor_data: best effort, volatile, depth 5
RELIABLE = "reliable"  # commands, decisions, events: reliable, depth 10
LATCHED = "latched"  # reliable + transient local (camera_info, weights)
