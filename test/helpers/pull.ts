// A client that streams a blob and reports what it got, as a user would see
// it: status, byte count, digest, whether the transfer ended cleanly.
import { createHash } from 'node:crypto'
import { request } from 'node:http'

export interface Pulled {
  readonly status: number
  readonly declared: number | undefined
  readonly bytes: number
  readonly digest: string
  /** The response ended normally (not cut). */
  readonly complete: boolean
  readonly firstByteMs: number
  readonly totalMs: number
  readonly body?: string
}

export interface PullOptions {
  readonly headers?: Record<string, string>
  /** Read at about this pace until `until` resolves, then as fast as possible. */
  readonly bytesPerSecond?: number
  readonly until?: Promise<unknown>
  /** Called once with the bytes received so far, when `until` resolves. */
  readonly onRelease?: (bytesSoFar: number) => void
}

export function pullBlob (url: string, opts: PullOptions = {}): Promise<Pulled> {
  const u = new URL(url)
  const started = performance.now()
  return new Promise(resolve => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: opts.headers }, res => {
      const hash = createHash('sha256')
      let bytes = 0
      let firstByteMs = -1
      let released = opts.bytesPerSecond === undefined
      const errorChunks: Buffer[] = []
      let windowStart = performance.now(); let windowBytes = 0
      opts.until?.then(() => { released = true; opts.onRelease?.(bytes); if (res.isPaused()) res.resume() })
      res.on('data', (chunk: Buffer) => {
        if (firstByteMs < 0) firstByteMs = performance.now() - started
        hash.update(chunk)
        bytes += chunk.length
        if (res.statusCode! >= 400) errorChunks.push(chunk)
        if (!released) {
          windowBytes += chunk.length
          const ahead = windowBytes / opts.bytesPerSecond! * 1000 - (performance.now() - windowStart)
          if (ahead > 0) {
            res.pause()
            setTimeout(() => { if (!released || res.isPaused()) res.resume() }, ahead)
          }
          if (performance.now() - windowStart > 1000) { windowStart = performance.now(); windowBytes = 0 }
        }
      })
      let finished = false
      const finish = (complete: boolean): void => {
        if (finished) return
        finished = true
        const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length'])
        resolve({
          status: res.statusCode!, declared, bytes, digest: 'sha256:' + hash.digest('hex'),
          complete: complete && (declared === undefined || declared === bytes),
          firstByteMs, totalMs: performance.now() - started,
          ...(errorChunks.length ? { body: Buffer.concat(errorChunks).toString() } : {}),
        })
      }
      res.on('end', () => finish(true))
      res.on('error', () => finish(false))
      res.on('aborted', () => finish(false))
      res.on('close', () => finish(res.complete))
    })
    req.on('error', () => resolve({ status: 0, declared: undefined, bytes: 0, digest: '', complete: false, firstByteMs: -1, totalMs: performance.now() - started }))
    req.end()
  })
}
