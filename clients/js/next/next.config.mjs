// The recommended next.config for images served by resize-proxy. Copy resize-proxy-loader.js (or .ts) next
// to it and set NEXT_PUBLIC_RESIZE_PROXY_URL (e.g. https://img.example.com) in the build's environment.
//
// The sizes are the service's default variants.widths, so every URL Next writes is a size the service
// renders as asked: no candidate is snapped, and no two candidates end up as the same image. Next's own
// defaults work too (640, 750, 828, ... 3840: the service snaps them up and caps them at 2048), at the cost
// of srcset descriptors that are up to 20% off. Change both lists together if you change variants.widths.

/** @type {import('next').NextConfig} */
const nextConfig = {
  images: {
    loader: 'custom',
    loaderFile: './resize-proxy-loader.js',
    deviceSizes: [640, 720, 800, 960, 1080, 1280, 1440, 1600, 1920, 2048],
    imageSizes: [64, 96, 128, 160, 200, 240, 320, 400, 480, 560],
    qualities: [75, 80, 90], // a subset of variants.qualities
  },
}

export default nextConfig
