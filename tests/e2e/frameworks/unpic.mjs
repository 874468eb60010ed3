// @unpic/core: the URLs transformBaseImageProps (what every unpic framework component calls) writes with
// our transformer, for ordinary layouts, with unpic's own breakpoints or our recommended ones.
import path from 'node:path'
import { CLIENTS, bundle, candidates, readJob, report, workDir } from './common.mjs'

const job = readJob() // { base, id, config: "default" | "recommended" }
const { transformBaseImageProps, transformer, breakpoints } = await bundle(`
  export { transformBaseImageProps } from '@unpic/core/base'
  export { transformer, breakpoints } from ${JSON.stringify(path.join(CLIENTS, 'unpic', 'resize-proxy.js'))}
`, workDir('unpic-'))

const usages = {
  'constrained 400x267': { width: 400, height: 267 },
  'fullWidth': { layout: 'fullWidth' },
  'fixed avatar 48': { layout: 'fixed', width: 48, height: 48 },
  'constrained 1200 aspectRatio 3/2': { width: 1200, aspectRatio: 1.5 },
}
report(Object.entries(usages).map(([usage, props]) => {
  const recommended = job.config === 'recommended' ? { breakpoints: breakpoints(props.width, props.layout ?? 'constrained') } : {}
  const img = transformBaseImageProps({ src: job.id, alt: '', transformer, options: { baseUrl: job.base }, ...props, ...recommended })
  return { usage, src: img.src, srcset: candidates(img.srcset), sizes: img.sizes ?? null }
}))
