"""avag_core.events"""
