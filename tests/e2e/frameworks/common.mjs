// What the framework scripts share: reading the job from stdin, bundling with esbuild as the frameworks'
// own builds do, and reporting the URLs a usage produced.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

export const HERE = path.dirname(fileURLToPath(import.meta.url))
export const CLIENTS = path.resolve(HERE, '..', '..', '..', 'clients', 'js')
export const require = createRequire(import.meta.url)

/** The job the Python test sent: { base, id, config, ... }. */
export function readJob() {
  return JSON.parse(fs.readFileSync(0, 'utf8'))
}

/** A fresh folder for this run's files (a Next.js project dir, bundles). */
export function workDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

/**
 * Bundle `contents` (an ES module that imports the framework and our integration) for node and load it.
 * Imports resolve from this folder's node_modules, wherever the imported file lives; `define` and
 * `plugins` do what the framework's bundler would (inline env values, alias modules); `banner` is code
 * put before the bundle (a global the framework's build provides).
 */
export async function bundle(contents, dir, { define = {}, plugins = [], banner = '' } = {}) {
  const outfile = path.join(dir, 'bundle.cjs')
  await esbuild.build({
    stdin: { contents, resolveDir: HERE, loader: 'js' },
    bundle: true, platform: 'node', format: 'cjs', outfile, logLevel: 'error',
    nodePaths: [path.join(HERE, 'node_modules')],
    define: { 'process.env.NODE_ENV': '"production"', ...define },
    plugins, banner: { js: banner },
  })
  return require(outfile)
}

/** `srcset` text to [url, descriptor] pairs. */
export function candidates(srcset) {
  return (srcset || '').split(/,\s+/).filter(Boolean).map((c) => c.trim().split(/\s+/))
}

export function report(results) {
  process.stdout.write(JSON.stringify(results))
}
