"""resize-proxy's Python client: image URLs (signed when a key is given), `srcset` and `<picture>`
markup, and upload/delete over httpx, sync (`Client`) and async (`AsyncClient`).

    urls = ImageUrls("https://img.example.com", signing_key=None)
    urls.url(image_id, w=400, fmt="webp")
    urls.picture(image_id, sizes="(max-width: 600px) 100vw, 600px", width=1800, height=1200)

    with Client("https://img.example.com", token="...") as images:
        uploaded = images.upload(open("photo.jpg", "rb").read())   # the service's upload answer
        images.delete(uploaded["id"])

Template helpers: resize_proxy_client.jinja (a Jinja2 extension) and resize_proxy_client.django (a Django
app with `{% image_url %}` and `{% picture %}`).
"""

from .api import AsyncClient, Client, ServiceError
from .urls import ImageUrls

__all__ = ["AsyncClient", "Client", "ImageUrls", "ServiceError"]
