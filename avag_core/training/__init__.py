"""avag_core.training"""
