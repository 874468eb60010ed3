// Next.js: the URLs `getImageProps` from next/image writes for five ordinary <Image> usages, with our
// loader file (JS or TS) and either Next's default images config or our recommended next.config.
//
// Next's build does two things to next/image that plain node does not: it inlines the images config as
// process.env.__NEXT_IMAGE_OPTS, and it aliases next/dist/shared/lib/image-loader to `images.loaderFile`.
// This script loads the config with Next's own loadConfig, takes the inlined value from Next's own
// getDefineEnv, and bundles next/image with esbuild doing both, then calls getImageProps.
import fs from 'node:fs'
import path from 'node:path'
import { CLIENTS, bundle, candidates, readJob, report, require, workDir } from './common.mjs'

const { default: loadConfig } = require('next/dist/server/config')
const { PHASE_PRODUCTION_BUILD } = require('next/constants')
const { getDefineEnv } = require('next/dist/build/define-env')

const job = readJob() // { base, id, config: "default" | "recommended", loader: "js" | "ts" }
const dir = workDir('next-app-')
const loaderFile = `resize-proxy-loader.${job.loader}`
fs.copyFileSync(path.join(CLIENTS, 'next', loaderFile), path.join(dir, loaderFile))
if (job.config === 'recommended') {
  const recommended = fs.readFileSync(path.join(CLIENTS, 'next', 'next.config.mjs'), 'utf8')
  fs.writeFileSync(path.join(dir, 'next.config.mjs'), recommended.replace('./resize-proxy-loader.js', `./${loaderFile}`))
} else { // Next's defaults: only the loader is configured
  fs.writeFileSync(path.join(dir, 'next.config.mjs'),
    `export default { images: { loader: 'custom', loaderFile: './${loaderFile}' } }\n`)
}
const config = await loadConfig(PHASE_PRODUCTION_BUILD, dir)
const defined = getDefineEnv({
  isTurbopack: false, config, dev: false, distDir: path.join(dir, '.next'), projectPath: dir, isClient: true,
  isEdgeServer: false, isNodeServer: false, middlewareMatchers: [], omitNonDeterministic: true, hasRewrites: false,
  rewrites: { beforeFiles: [], afterFiles: [], fallback: [] }, fetchCacheKeyPrefix: '',
})
const aliasLoader = {
  name: 'next-images-loaderFile',
  setup(build) {
    build.onResolve({ filter: /^next\/dist\/shared\/lib\/image-loader$/ }, () => ({ path: config.images.loaderFile }))
  },
}
const { getImageProps } = await bundle("export { getImageProps } from 'next/image'", dir, {
  define: {
    'process.env.__NEXT_IMAGE_OPTS': defined['process.env.__NEXT_IMAGE_OPTS'], // already JSON, as Next defines it
    'process.env.NEXT_PUBLIC_RESIZE_PROXY_URL': JSON.stringify(job.base),
  },
  plugins: [aliasLoader],
})

const usages = {
  'fixed 400': { width: 400, height: 267 },
  'fill 100vw': { fill: true, sizes: '100vw' },
  'fill 50vw': { fill: true, sizes: '(max-width: 768px) 100vw, 50vw' },
  'avatar 48': { width: 48, height: 48 },
  'hero 1200 q90': { width: 1200, height: 800, quality: 90 },
}
report(Object.entries(usages).map(([usage, props]) => {
  const { props: img } = getImageProps({ src: job.id, alt: '', ...props })
  return { usage, src: img.src, srcset: candidates(img.srcSet), sizes: img.sizes ?? null }
}))
