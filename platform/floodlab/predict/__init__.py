"""Evaluation reports and full-scene sliding-window GeoTIFF prediction."""
