// A command's requests to its own edge (serveForCommand): manifests, tags,
// referrers and blobs, as a client pulls them, so everything the edge does
// for a pull (one fill per blob, verification, links, the tag cache) is done
// for the command too. The upstream's rate limit reaches the command as a
// 429 with Retry-After: it waits and asks again, for as long as
// `patienceMs`, instead of failing.
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { ALL_MANIFEST_TYPES } from '../oci/media-types.ts'

export class EdgeError extends Error {
  readonly status: number
  readonly code: string | undefined
  constructor (status: number, code: string | undefined, message: string) {
    super(message)
    this.name = 'EdgeError'
    this.status = status
    this.code = code
  }
}

export interface FetchedManifest {
  readonly digest: string
  readonly mediaType: string
  readonly body: Buffer
}

const RETRY_STATUSES = new Set([429, 502, 503, 504])

export class EdgeClient {
  private readonly pool: Pool
  private readonly patienceMs: number
  /** Told each time the upstream asked to slow down. */
  onSlowDown: ((waitMs: number) => void) | undefined

  constructor (address: string, patienceMs = 10 * 60_000) {
    this.pool = new Pool(`http://${address}`, { connections: 16, bodyTimeout: 120_000, headersTimeout: 120_000 })
    this.patienceMs = patienceMs
  }

  async manifest (name: string, reference: string): Promise<FetchedManifest> {
    const res = await this.get(`/v2/${name}/manifests/${reference}`, { accept: ALL_MANIFEST_TYPES.join(', ') })
    const body = Buffer.from(await res.body.arrayBuffer())
    const digest = header(res.headers['docker-content-digest'])
    const mediaType = header(res.headers['content-type'])
    if (digest === undefined || mediaType === undefined) throw new EdgeError(502, undefined, `manifest ${name}:${reference} came without a digest or a media type`)
    return { digest, mediaType, body }
  }

  /** Every tag of `name`, all pages. */
  async tags (name: string): Promise<string[]> {
    const out: string[] = []
    let path: string | undefined = `/v2/${name}/tags/list?n=10000`
    for (let pages = 0; path !== undefined && pages < 1000; pages++) {
      const res = await this.get(path, {})
      const doc = await res.body.json() as { tags?: string[] | null }
      out.push(...(doc.tags ?? []))
      const link = header(res.headers.link)
      const next = link === undefined ? undefined : /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1]
      const url = next === undefined ? undefined : new URL(next, 'http://edge')
      path = url === undefined ? undefined : url.pathname + url.search
    }
    return out
  }

  /** The digests of the referrers of `subject` in `name`. */
  async referrers (name: string, subject: string): Promise<string[]> {
    const res = await this.get(`/v2/${name}/referrers/${subject}`, {}, [404])
    if (res.statusCode === 404) { await res.body.dump(); return [] }
    const doc = await res.body.json() as { manifests?: { digest?: string }[] }
    return (doc.manifests ?? []).map(m => m.digest).filter((d): d is string => typeof d === 'string')
  }

  /**
   * Has the edge fill the region with the blob without sending it here: a
   * GET of its last byte, which a fill releases only once the whole blob is
   * verified (a full GET would cross the loopback once more only to be
   * thrown away). An edge that ignores the range sends it all; it is counted.
   */
  async fill (name: string, digest: string, size: number): Promise<void> {
    // an empty blob has no last byte to ask for: it is asked whole
    const res = await this.get(`/v2/${name}/blobs/${digest}`, size === 0 ? {} : { range: `bytes=${size - 1}-` }, [206, 416])
    // the total the edge gives is the blob's: a manifest that names it with another size is refused, as a client would
    const total = /\/(\d+)$/.exec(header(res.headers['content-range']) ?? '')?.[1]
    if (res.statusCode === 416 || (res.statusCode === 206 && total !== undefined && Number(total) !== size)) {
      await res.body.dump()
      throw new EdgeError(502, 'SIZE_INVALID', total === undefined ? `blob ${digest} is not the ${size} bytes its manifest says` : `blob ${digest} is ${total} bytes, not the ${size} its manifest says`)
    }
    let n = 0
    for await (const chunk of res.body) n += (chunk as Buffer).length
    const want = res.statusCode === 206 ? 1 : size
    if (n !== want) throw new EdgeError(502, undefined, `blob ${digest}: ${n} of ${want} bytes came`)
  }

  /** The blob's bytes through the edge, as a stream the caller must consume. */
  async openBlob (name: string, digest: string): Promise<{ size: number, body: NodeJS.ReadableStream }> {
    const res = await this.get(`/v2/${name}/blobs/${digest}`, {})
    const size = Number(header(res.headers['content-length']))
    if (!Number.isFinite(size)) { await res.body.dump(); throw new EdgeError(502, undefined, `blob ${digest} came without a length`) }
    return { size, body: res.body }
  }

  async close (): Promise<void> { await this.pool.close() }

  private async get (path: string, headers: Record<string, string>, accept: readonly number[] = []): Promise<Awaited<ReturnType<Pool['request']>>> {
    const started = Date.now()
    for (let attempt = 0; ; attempt++) {
      const res = await this.pool.request({ method: 'GET', path, headers })
      if (res.statusCode === 200 || accept.includes(res.statusCode)) return res
      const text = await res.body.text().catch(() => '')
      let code: string | undefined
      let message = text.slice(0, 300)
      try {
        const e = (JSON.parse(text) as { errors?: { code?: string, message?: string }[] }).errors?.[0]
        code = e?.code
        message = e?.message ?? message
      } catch { /* not an OCI body */ }
      if (RETRY_STATUSES.has(res.statusCode) && Date.now() - started < this.patienceMs) {
        const after = Number(header(res.headers['retry-after']))
        const waitMs = Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 60_000) : Math.min(250 * 2 ** attempt, 30_000)
        if (res.statusCode === 429) this.onSlowDown?.(waitMs)
        // a 5xx is tried a few times; a 429 for as long as patience lasts
        if (res.statusCode === 429 || attempt < 3) { await sleep(waitMs); continue }
      }
      throw new EdgeError(res.statusCode, code, `${path}: ${res.statusCode} ${code ?? ''} ${message}`.trim())
    }
  }
}

function header (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
