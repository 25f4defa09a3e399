"""Fuzz targets and runner for fastdhcp (see fuzz/README.md)."""
