"""avag_ros: rclpy nodes, conversions and rosbag tools around avag_core."""
