"""Projections: how events become the views, the view stores, and the queries on them."""
