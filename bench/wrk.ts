// Warm small-image load from wrk, a C load generator. The Node client in
// load.ts (undici) spends about 190 µs of CPU per request here: on 2 cores
// it saturated before nginx did, so every warm ratio measured the client.
// wrk costs a fraction of that, leaving the cores to the proxy.
//
// Each wrk connection takes the next request from a shared list (manifest
// by tag with the image's Accept, its config, its layer, the next image...),
// so a "pull" is one pass over an image's requests; rates are pulls/s, and
// the percentiles are per request, as wrk measures them. Status errors
// (>= 400), socket errors and timeouts are counted, not trusted away.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { requireBinary } from '../test/helpers/registry.ts'
import type { PullRun, SmallImage } from './load.ts'

const run = promisify(execFile)

/** As a Node client's run, except that `rate` is requests per second / requests per image and the percentiles are per request. */
export interface WrkRun extends PullRun {
  readonly requests: number
}

function luaString (s: string): string { return JSON.stringify(s) } // the characters in paths and media types need no more than JSON's escapes

function script (images: readonly SmallImage[]): string {
  const rows = images.flatMap(img => [
    `{${luaString(`/v2/${img.repo}/manifests/${img.tag}`)}, ${luaString(img.mediaType)}}`,
    ...img.blobs.map(b => `{${luaString(`/v2/${img.repo}/blobs/${b.digest}`)}, nil}`),
  ])
  return `local paths = {
${rows.join(',\n')}
}
local reqs = {}
local n = 0
function init(args)
  for i, p in ipairs(paths) do
    local h = { Host = wrk.headers["Host"] }
    if p[2] then h["Accept"] = p[2] end
    reqs[i] = wrk.format("GET", p[1], h)
  end
  n = math.random(#reqs)
end
function request()
  n = n % #reqs + 1
  return reqs[n]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK {\\"requests\\":%d,\\"us\\":%d,\\"failed\\":%d,\\"p50\\":%d,\\"p99\\":%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`
}

/** `connections` keep-alive connections (on 2 wrk threads) pull `images` round and round for `seconds`. */
export async function pullImagesWrk (base: string, images: readonly SmallImage[], connections: number, seconds: number): Promise<WrkRun> {
  requireBinary('wrk', 'wrk')
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-wrk-'))
  try {
    const file = join(dir, 'pull.lua')
    writeFileSync(file, script(images))
    const { stdout } = await run('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', file, base], { timeout: (seconds + 30) * 1000 })
    const line = /^WRK (\{.*\})$/m.exec(stdout)
    if (line === null) throw new Error(`wrk printed no summary:\n${stdout}`)
    const r = JSON.parse(line[1]!) as { requests: number, us: number, failed: number, p50: number, p99: number }
    const perImage = images.reduce((n, img) => n + 1 + img.blobs.length, 0) / images.length
    const secs = r.us / 1e6
    return {
      requests: r.requests,
      pulls: Math.floor(r.requests / perImage),
      failed: r.failed,
      seconds: secs,
      rate: r.requests / perImage / secs,
      p50Ms: r.p50 / 1000,
      p99Ms: r.p99 / 1000,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
