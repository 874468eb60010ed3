"""Django app: add "resize_proxy_client.django" to INSTALLED_APPS and a RESIZE_PROXY setting, then
`{% load resize_proxy %}` in templates:

    RESIZE_PROXY = {"URL": "https://img.example.com", "SIGNING_KEY": None}

    <img src="{% image_url user.avatar w=160 %}" alt="">
    {% picture post.image sizes="(max-width: 600px) 100vw, 600px" width=post.width height=post.height %}
"""
