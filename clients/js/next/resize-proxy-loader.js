// Next.js image loader for resize-proxy: next.config's `images.loaderFile` (see next.config.mjs beside it).
//
// `src` is an image id from the upload answer (or a full .../img/<id> URL); the service's base URL comes
// from NEXT_PUBLIC_RESIZE_PROXY_URL, which Next inlines at build time. No `fmt`: the service picks AVIF,
// WebP or JPEG from the browser's Accept header. A width or quality that is not on the service's lists is
// served at the next listed width up / the nearest listed quality (variants.snap = "up"), so Next's own
// sizes work as they are; the recommended config asks for listed sizes only, so nothing needs snapping.
const ID = /^[0-9a-f]{32}$/

export default function resizeProxyLoader({ src, width, quality }) {
  const base = ID.test(src) ? `${process.env.NEXT_PUBLIC_RESIZE_PROXY_URL}/img/${src}` : src
  const query = new URLSearchParams({ w: String(width) })
  if (quality) query.set('q', String(quality))
  return `${base}${base.includes('?') ? '&' : '?'}${query}`
}
