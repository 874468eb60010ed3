// Nuxt Image custom provider for resize-proxy: put it in your app's providers/ folder and register it in
// nuxt.config (see nuxt.config.ts beside it). `src` is an image id from the upload answer (or a path or
// URL ending in /img/<id>); the service's base URL is the provider's `baseURL` option.
//
// Nuxt's modifiers map onto the service's parameters: width -> w, height -> h, quality -> q,
// format -> fmt, fit cover -> cover, contain/inside -> inside (fit within the box, keep the aspect).
// Modifiers the service has no parameter for (fill, outside, background, blur, ...) are left out rather
// than sent: the service refuses unknown parameters. Without a format the service negotiates one from
// the browser's Accept header. Widths and heights off the service's lists (Nuxt computes them from
// screens and densities) are served at the next listed size up, qualities at the nearest listed one.
import { defineProvider } from '@nuxt/image/runtime'

const ID = /^[0-9a-f]{32}$/
const FITS: Record<string, string> = { cover: 'cover', contain: 'inside', inside: 'inside' }
const FORMATS = new Set(['avif', 'webp', 'jpeg', 'jpg', 'png', 'gif'])

export default defineProvider<{ baseURL?: string }>({
  getImage(src, { modifiers, baseURL = '' }) {
    const path = src.replace(/^\/+/, '')
    const base = ID.test(path) ? `${baseURL}/img/${path}` : src
    const query = new URLSearchParams()
    if (modifiers.width) query.set('w', String(modifiers.width))
    if (modifiers.height) query.set('h', String(modifiers.height))
    if (modifiers.fit && FITS[modifiers.fit]) query.set('fit', FITS[modifiers.fit])
    if (modifiers.quality) query.set('q', String(modifiers.quality))
    if (modifiers.format && FORMATS.has(modifiers.format)) query.set('fmt', modifiers.format)
    const text = query.toString()
    return { url: text ? `${base}${base.includes('?') ? '&' : '?'}${text}` : base }
  },
})
