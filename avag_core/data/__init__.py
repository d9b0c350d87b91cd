"""avag_core.data"""
