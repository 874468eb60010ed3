// The recommended Nuxt Image configuration for images served by resize-proxy (merge it into your
// nuxt.config.ts; providers/resize-proxy.ts is the provider beside this file). Nuxt's screens and
// densities stay as they are: the service snaps the widths they produce onto its own list.
export default defineNuxtConfig({
  modules: ['@nuxt/image'],
  image: {
    provider: 'resizeProxy',
    providers: {
      resizeProxy: {
        provider: '~/providers/resize-proxy',
        options: { baseURL: 'https://img.example.com' }, // the service's server.public_url
      },
    },
    quality: 80, // on variants.qualities: every URL then names a quality the service has
    format: ['avif', 'webp'], // <NuxtPicture> sources, best first; a JPEG (or PNG) fallback is added
  },
})
