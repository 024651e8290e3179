// The console's pages and assets, /ui/...: a fixed set of files shipped in
// the package (console-ui/, and uPlot's two files from its npm package),
// read once at start and served from memory with an ETag, so a browser
// revalidates with a 304 instead of fetching again. Nothing comes from a
// CDN: the console works with no internet access. A strict Content Security
// Policy allows this origin's scripts and styles only.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerResponse } from 'node:http'
import { UI_PREFIX } from './paths.ts'

interface Asset { readonly body: Buffer, readonly type: string, readonly etag: string }

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
}

const HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

function load (): Map<string, Asset> {
  const here = dirname(fileURLToPath(import.meta.url))
  // dist/console/ or src/console/: the package root is two up
  const root = join(here, '..', '..')
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'))
  const files: [string, string][] = [
    ['index.html', join(root, 'console-ui', 'index.html')],
    ['app.js', join(root, 'console-ui', 'app.js')],
    ['app.css', join(root, 'console-ui', 'app.css')],
    ['uPlot.min.js', join(uplot, 'uPlot.iife.min.js')],
    ['uPlot.min.css', join(uplot, 'uPlot.min.css')],
  ]
  const out = new Map<string, Asset>()
  for (const [name, file] of files) {
    const body = readFileSync(file)
    const ext = name.slice(name.lastIndexOf('.'))
    out.set(name, { body, type: TYPES[ext] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return out
}

export class StaticFiles {
  private readonly assets = load()

  /** Answers `path` (under /ui/); false when it names no file. */
  serve (path: string, ifNoneMatch: string | undefined, res: ServerResponse, head: boolean): boolean {
    if (path === '/ui') {
      res.writeHead(308, { location: UI_PREFIX, 'content-length': 0 })
      res.end()
      return true
    }
    const name = path === UI_PREFIX ? 'index.html' : path.slice(UI_PREFIX.length)
    const asset = this.assets.get(name)
    if (asset === undefined) return false
    const headers = { ...HEADERS, etag: asset.etag, 'cache-control': 'no-cache' }
    if (ifNoneMatch === asset.etag) {
      res.writeHead(304, headers)
      res.end()
      return true
    }
    res.writeHead(200, { ...headers, 'content-type': asset.type, 'content-length': asset.body.length })
    res.end(head ? undefined : asset.body)
    return true
  }
}
