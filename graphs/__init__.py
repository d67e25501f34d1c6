"""synthloop.graphs: the LangGraph state, nodes and the loop graph."""
