// The demo page: upload with fetch, then show the meta document's <picture>, srcsets and placeholder.
// Served as a file (no inline script) so the page's Content-Security-Policy can forbid inline code.
"use strict";

const $ = (id) => document.getElementById(id);
// The token is asked for once per tab: kept in sessionStorage (gone with the tab), never in a cookie.
const TOKEN_KEY = "resize-proxy-token";

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// [url, width] pairs of a srcset string ("url 320w, url 400w").
function candidates(srcset) {
  return srcset.split(", ").map((item) => {
    const [url, w] = item.split(" ");
    return [url, parseInt(w, 10)];
  });
}

function kilobytes(url) {
  const entry = performance.getEntriesByName(url)[0];
  return entry && entry.encodedBodySize ? `${(entry.encodedBodySize / 1024).toFixed(1)} KB` : "";
}

function figure(url, caption) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  const note = document.createElement("figcaption");
  img.src = url;
  img.alt = caption;
  note.textContent = caption;
  img.addEventListener("load", () => { note.textContent = `${caption}: ${img.naturalWidth}×${img.naturalHeight} ${kilobytes(url)}`; });
  fig.append(img, note);
  return fig;
}

function showPicture(doc) {
  // doc.picture is the service's own snippet (attribute values escaped); the CSP forbids inline code.
  const template = document.createElement("template");
  template.innerHTML = doc.picture;
  const img = template.content.querySelector("img");
  img.loading = "eager";
  img.addEventListener("load", () => {
    const chosen = new URL(img.currentSrc);
    $("chosen").textContent = `This browser chose ${chosen.searchParams.get("fmt")} at w=${chosen.searchParams.get("w")} ` +
      `for a ${img.clientWidth}px-wide box at ${window.devicePixelRatio}x.`;
  });
  $("picture").replaceChildren(template.content);
}

function showFormats(doc) {
  const figures = Object.entries(doc.srcset).map(([fmt, srcset]) => {
    const list = candidates(srcset);
    const [url] = list.find(([, w]) => w >= 320) || list[list.length - 1];
    return figure(url, fmt);
  });
  $("formats").replaceChildren(...figures);
}

function showHints(doc) {
  $("placeholder").src = doc.placeholder;
  $("placeholder-note").textContent = `placeholder: ${doc.placeholder.length} characters, inline`;
  const signed = new URL(doc.url).searchParams.has("s");
  $("hinted-figure").hidden = signed; // a signed URL cannot take extra parameters
  if (!signed) {
    const url = `${doc.url}?w=320&dpr=auto`;
    $("hinted").src = url;
    $("hinted-note").textContent = "w=320&dpr=auto";
    $("hinted").addEventListener("load", () => {
      $("hinted-note").textContent = `w=320&dpr=auto: ${$("hinted").naturalWidth}px wide at ${window.devicePixelRatio}x`;
    }, { once: true });
  }
}

// The same square cover crop twice: around the centre, and around the focal point found at upload.
function showCrops(doc) {
  const signed = new URL(doc.url).searchParams.has("s");
  $("crops").hidden = signed; // a signed URL cannot take extra parameters
  const f = doc.focus;
  $("focus").textContent = `focal point (${f.x}, ${f.y}) found by ${f.by}` + (f.box ? `, ${f.faces} face(s)` : "");
  if (signed) return;
  const square = "w=240&h=240&fit=cover";
  $("crops").replaceChildren(figure(`${doc.url}?${square}`, "centre"), figure(`${doc.url}?${square}&g=auto`, "g=auto"));
}

async function upload(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const body = new FormData();
  body.append("file", file);
  const token = $("token").value.trim();
  say(`Uploading ${file.name}…`);
  $("send").disabled = true;
  try {
    const response = await fetch("/img", { method: "POST", body, headers: { authorization: `Bearer ${token}` } });
    const doc = await response.json();
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      say(`${response.status} ${doc.error}: this token is not one the service knows; check data/.admin-token`, true);
      $("token").focus();
      return;
    }
    if (!response.ok) {
      say(`${response.status} ${doc.error}: ${doc.detail}`, true);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    say(`${response.status === 201 ? "Stored" : "Already stored"}: ${doc.id}, ${doc.width}×${doc.height} ${doc.format}`);
    showPicture(doc);
    showFormats(doc);
    showHints(doc);
    showCrops(doc);
    $("document").textContent = JSON.stringify(doc, null, 2);
    $("result").hidden = false;
  } catch (error) {
    say(`Upload failed: ${error}`, true);
  } finally {
    $("send").disabled = false;
  }
}

$("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
$("upload").addEventListener("submit", upload);
