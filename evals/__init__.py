"""synthloop.evals"""
