"""avag_core.evaluation"""
