"""resize-proxy: an on-demand resizing image origin (upload once, render on read, serve to a CDN)."""

__version__ = "0.1.0"
