"""synthloop.agents"""
