"""Served pages: the review app (``reel review serve``) and the guard every page shares."""
