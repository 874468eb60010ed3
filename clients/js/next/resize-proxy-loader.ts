// Next.js image loader for resize-proxy, TypeScript: next.config's `images.loaderFile` (see next.config.mjs).
// The same loader as resize-proxy-loader.js; see there for what it does and why.
import type { ImageLoaderProps } from 'next/image'

const ID = /^[0-9a-f]{32}$/

export default function resizeProxyLoader({ src, width, quality }: ImageLoaderProps): string {
  const base = ID.test(src) ? `${process.env.NEXT_PUBLIC_RESIZE_PROXY_URL}/img/${src}` : src
  const query = new URLSearchParams({ w: String(width) })
  if (quality) query.set('q', String(quality))
  return `${base}${base.includes('?') ? '&' : '?'}${query}`
}
