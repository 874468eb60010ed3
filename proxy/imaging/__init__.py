"""Pure functions on image bytes: validate, sanitize, plan geometry, render.

Nothing here knows about HTTP or storage. Every function is synchronous and
CPU-bound; callers run them in a worker thread (Pillow releases the GIL while
decoding, resizing and encoding, so threads give real parallelism).
"""
