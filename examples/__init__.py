"""synthloop.examples"""
