"""avag_core: AVAGFormer and everything to train, evaluate and export it. Never imports ROS."""

__version__ = "0.1.0"
