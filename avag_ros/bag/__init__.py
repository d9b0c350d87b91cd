"""rosbag2 tools: type store with the avag messages, recording, synthetic bags and replay evaluation."""
