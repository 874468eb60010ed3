"""The everyday flow with resize-proxy: a user uploads an avatar to your app, the app sends it to the
service, stores the id it gets back, and every page shows it through <picture>.

    RESIZE_PROXY_URL=http://127.0.0.1:8000 RESIZE_PROXY_TOKEN=<a token from auth.tokens> \
        uvicorn fastapi_avatars:app --port 8080
    curl -F file=@me.jpg http://127.0.0.1:8080/users/ada/avatar    # then open /users/ada
"""

import os
import sqlite3
from html import escape

from fastapi import FastAPI, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from resize_proxy_client import AsyncClient, ServiceError

images = AsyncClient(os.environ["RESIZE_PROXY_URL"], os.environ["RESIZE_PROXY_TOKEN"])
db = sqlite3.connect(os.environ.get("AVATARS_DB", "avatars.db"), check_same_thread=False)
db.execute("CREATE TABLE IF NOT EXISTS avatars (user TEXT PRIMARY KEY, image TEXT)")
app = FastAPI()


@app.post("/users/{user}/avatar")
async def upload_avatar(user: str, file: UploadFile) -> RedirectResponse:
    try:
        uploaded = await images.upload(await file.read())  # validated and sanitized by the service
    except ServiceError as exc:  # not an image, too large, ...: tell the user why
        raise HTTPException(exc.status if exc.status < 500 else 502, exc.detail) from None
    db.execute("INSERT OR REPLACE INTO avatars VALUES (?, ?)", (user, uploaded["id"]))
    db.commit()
    return RedirectResponse(f"/users/{user}", status_code=303)


@app.get("/users/{user}", response_class=HTMLResponse)
async def profile(user: str) -> str:
    row = db.execute("SELECT image FROM avatars WHERE user = ?", (user,)).fetchone()
    if row is None:
        raise HTTPException(404, "no avatar yet")
    # 160 CSS px wide: the browser picks the 160, 320 or 480 px candidate for its density, in AVIF or WebP
    avatar = images.urls.picture(row[0], sizes="160px", alt=f"{user}'s avatar", widths=(160, 320, 480))
    return f"<!doctype html><title>{escape(user)}</title><h1>{escape(user)}</h1>\n{avatar}\n"
