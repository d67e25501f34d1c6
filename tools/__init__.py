"""synthloop.tools"""
