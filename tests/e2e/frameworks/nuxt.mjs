// Nuxt Image: the URLs <NuxtImg> and <NuxtPicture> write for ordinary usages, through Nuxt Image's own
// runtime (`createImage` from @nuxt/image/runtime, the lowest public API that works without a Nuxt app)
// with our provider, and with Nuxt Image's default options or our recommended nuxt.config.
//
// A Nuxt build resolves the module's options (its defaults merged with nuxt.config's `image`), keeps the
// runtime ones and hands them to createImage with the providers; this script does the same with the
// module's own getOptions, then computes each component's URLs as the components do (their script
// setup: modifiers from the props, $img.getSizes for srcset and sizes, $img for a plain src).
import path from 'node:path'
import imageModule from '@nuxt/image'
import { CLIENTS, bundle, candidates, readJob, report, workDir } from './common.mjs'

const job = readJob() // { base, id, config: "default" | "recommended" }
const dir = workDir('nuxt-app-')
const { createImage, provider, recommended } = await bundle(`
  export { createImage } from '@nuxt/image/runtime'
  export { default as provider } from ${JSON.stringify(path.join(CLIENTS, 'nuxt', 'resize-proxy.ts'))}
  export { default as recommended } from ${JSON.stringify(path.join(CLIENTS, 'nuxt', 'nuxt.config.ts'))}
`, dir, { banner: 'const defineNuxtConfig = (config) => config;' })

// What a user writes: the provider registration only, or our whole recommended `image` block.
const written = job.config === 'recommended' ? recommended.image
  : { provider: 'resizeProxy', providers: { resizeProxy: { provider: '~/providers/resize-proxy', options: {} } } }
const options = await imageModule.getOptions(written, { options: { dir: { public: 'public' } } })
options.format = [...new Set(options.format)] // the module's setup does this: defu concatenates the lists
const RUNTIME_KEYS = ['screens', 'presets', 'provider', 'domains', 'alias', 'densities', 'format', 'quality']
const $img = createImage({
  ...Object.fromEntries(RUNTIME_KEYS.map((key) => [key, options[key]])),
  providers: { resizeProxy: { setup: provider, defaults: { ...options.providers.resizeProxy.options, baseURL: job.base } } },
  nuxt: { baseURL: '/' },
})

function modifiers(props) { // utils/props.js useImageProps
  return { width: props.width, height: props.height, format: props.format, quality: props.quality || $img.options.quality,
    fit: props.fit }
}

function nuxtImg(props) { // components/NuxtImg.vue
  const sizes = $img.getSizes(props.src, { sizes: props.sizes, densities: props.densities, modifiers: modifiers(props) })
  const src = props.sizes ? sizes.src : $img(props.src, modifiers(props), {})
  return [{ src, srcset: candidates(sizes.srcset), sizes: sizes.sizes ?? null }]
}

function nuxtPicture(props) { // components/NuxtPicture.vue: one source per format, the fallback last
  const formats = props.format?.split(',') || ($img.options.format?.length ? [...$img.options.format] : ['webp'])
  const legacy = 'jpeg' // the source is no png/webp/gif/svg file name, so NuxtPicture falls back to JPEG
  const ordered = [...formats.filter((f) => f !== legacy), legacy]
  return ordered.map((format) => {
    const s = $img.getSizes(props.src, { sizes: props.sizes || $img.options.screens, densities: props.densities,
      modifiers: { ...modifiers(props), format } })
    return { src: s.src, srcset: candidates(s.srcset), sizes: s.sizes ?? null, format }
  })
}

const src = job.id
const usages = {
  'NuxtImg width=400 height=267': nuxtImg({ src, width: 400, height: 267 }),
  'NuxtImg sizes="100vw sm:50vw md:400px"': nuxtImg({ src, sizes: '100vw sm:50vw md:400px' }),
  'NuxtImg avatar 48 fit=cover': nuxtImg({ src, width: 48, height: 48, fit: 'cover' }),
  'NuxtImg width=1200 format=avif quality=90': nuxtImg({ src, width: 1200, format: 'avif', quality: 90 }),
  'NuxtPicture sizes="sm:100vw md:50vw lg:800px"': nuxtPicture({ src, sizes: 'sm:100vw md:50vw lg:800px' }),
}
report(Object.entries(usages).flatMap(([usage, parts]) => parts.map((part) => ({ usage, ...part }))))
