// Load generators. Big blobs: curl processes that only count bytes (a client
// that hashes would spend a core on it); digests are checked in a separate,
// untimed pass. Small images: undici keep-alive pools pulling manifest,
// config and layer in turn, as a container runtime does.
import { execFile, spawn } from 'node:child_process'
import { Pool } from 'undici'

/** The middle value (the upper one of an even count). */
export function median (xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
}

export interface BlobRun {
  readonly wallMs: number
  /** Slowest time to first byte, ms. */
  readonly ttfbMaxMs: number
  readonly ok: number
  readonly clients: number
}

/** `clients` concurrent curls each GET the whole blob; every one must get `size` bytes and 200. */
export async function pullBlobConcurrently (url: string, clients: number, size: number): Promise<BlobRun> {
  const started = performance.now()
  const results = await Promise.all(Array.from({ length: clients }, () => new Promise<{ ok: boolean, ttfbMs: number }>(resolve => {
    execFile('curl', ['-s', '-o', '/dev/null', '--max-time', '600', '-w', '%{http_code} %{time_starttransfer} %{size_download}', url], (err, stdout) => {
      const [code, ttfb, bytes] = stdout.trim().split(' ')
      resolve({ ok: err === null && code === '200' && Number(bytes) === size, ttfbMs: Number(ttfb) * 1000 })
    })
  })))
  return {
    wallMs: performance.now() - started,
    ttfbMaxMs: Math.max(...results.map(r => r.ttfbMs)),
    ok: results.filter(r => r.ok).length,
    clients,
  }
}

/** Untimed: `clients` concurrent pulls piped through sha256sum; how many got `digest`. */
export async function verifyBlob (url: string, clients: number, digest: string): Promise<number> {
  const hex = digest.slice('sha256:'.length)
  const sums = await Promise.all(Array.from({ length: clients }, () => new Promise<string>(resolve => {
    const p = spawn('sh', ['-c', `curl -s --max-time 600 '${url}' | sha256sum`])
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.on('close', () => resolve(out.split(' ')[0] ?? ''))
  })))
  return sums.filter(s => s === hex).length
}

export interface SmallImage {
  readonly repo: string
  readonly tag: string
  readonly manifestDigest: string
  readonly mediaType: string
  readonly blobs: readonly { digest: string, size: number }[]
}

export interface PullRun {
  readonly pulls: number
  readonly failed: number
  readonly seconds: number
  readonly rate: number
  readonly p50Ms: number
  readonly p99Ms: number
}

/** `concurrency` pullers take images off the list (`passes` times over) and pull each whole. */
export async function pullImages (base: string, images: readonly SmallImage[], concurrency: number, passes = 1): Promise<PullRun> {
  const pool = new Pool(base, { connections: concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const queue: SmallImage[] = []
  for (let p = 0; p < passes; p++) queue.push(...images)
  const latencies: number[] = []
  let failed = 0
  const get = async (path: string, accept?: string): Promise<{ status: number, bytes: number, digest: string | undefined }> => {
    const res = await pool.request({ path, method: 'GET', headers: accept ? { accept } : {} })
    let bytes = 0
    for await (const c of res.body) bytes += (c as Buffer).length
    const d = res.headers['docker-content-digest']
    return { status: res.statusCode, bytes, digest: typeof d === 'string' ? d : undefined }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let img = queue.shift(); img !== undefined; img = queue.shift()) {
      const t0 = performance.now()
      try {
        const m = await get(`/v2/${img.repo}/manifests/${img.tag}`, img.mediaType)
        let good = m.status === 200 && m.digest === img.manifestDigest
        for (const b of img.blobs) {
          const r = await get(`/v2/${img.repo}/blobs/${b.digest}`)
          good &&= r.status === 200 && r.bytes === b.size
        }
        if (!good) failed++
      } catch {
        failed++
      }
      latencies.push(performance.now() - t0)
    }
  }))
  const seconds = (performance.now() - started) / 1000
  await pool.close()
  latencies.sort((a, b) => a - b)
  const pct = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  return { pulls: latencies.length, failed, seconds, rate: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) }
}
