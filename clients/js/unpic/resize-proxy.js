// @unpic/core transformer for resize-proxy: pass it as `transformer` (and the service's base URL as
// `options: { baseUrl }`) to unpic's components or to transformBaseImageProps / transformBaseSourceProps.
// `src` is an image id from the upload answer, or a URL ending in /img/<id>.
//
// unpic asks for its breakpoints (640 ... 6016 for fullWidth, 1x and 2x for fixed): the service snaps
// each onto its own widths and caps them at its largest, so they all load. `breakpoints(width, layout)`
// gives unpic the service's own widths instead (getBreakpoints with them as the resolutions), so that no
// two candidates are the same image. Width and height without `fit`: the service fits the image inside
// the box, keeping its aspect, and unpic's object-fit: cover style does the cropping.
import { getBreakpoints } from '@unpic/core/base'

const ID = /^[0-9a-f]{32}$/
// The service's default variants.widths; keep in step with yours.
export const WIDTHS = [64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720, 800, 960, 1080, 1200, 1280, 1440,
  1600, 1920, 2048]

export function transformer(src, { width, height, quality, format }, { baseUrl = '' } = {}) {
  const url = String(src)
  const base = ID.test(url) ? `${baseUrl}/img/${url}` : url
  const query = new URLSearchParams()
  if (width) query.set('w', String(Math.round(width)))
  if (height) query.set('h', String(Math.round(height)))
  if (quality) query.set('q', String(quality))
  if (format) query.set('fmt', format)
  const text = query.toString()
  return text ? `${base}${base.includes('?') ? '&' : '?'}${text}` : base
}

/** unpic's breakpoints for `layout`, taken from the service's widths instead of unpic's screen list. */
export function breakpoints(width, layout) {
  return [...new Set(getBreakpoints({ width, layout, resolutions: [...WIDTHS].reverse() }))]
}
