// A Google Cloud Storage JSON API server that implements exactly the calls
// ferry's GCS store makes: bucket and object metadata, ranged media download, delete,
// list with pages, and resumable uploads (session POST, then PUT of the
// bytes, with the status query a client sends to resume). Objects are files
// under `dir`; an object appears only when its upload is finalized.
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

export interface GcsServer {
  readonly url: string
  /** Every request as "METHOD /path" (query left off). */
  readonly calls: string[]
  close (): Promise<void>
}

interface Session { bucket: string, name: string, path: string, received: number }

export async function startGcsServer (dir: string, port = 0): Promise<GcsServer> {
  await mkdir(join(dir, 'objects'), { recursive: true })
  await mkdir(join(dir, 'uploads'), { recursive: true })
  const sessions = new Map<string, Session>()
  const calls: string[] = []
  const objectPath = (bucket: string, name: string): string => join(dir, 'objects', bucket, encodeURIComponent(name))

  const meta = async (bucket: string, name: string): Promise<object | undefined> => {
    try {
      const s = await stat(objectPath(bucket, name))
      return { kind: 'storage#object', bucket, name, size: String(s.size), generation: String(Math.floor(s.mtimeMs)), updated: new Date(s.mtimeMs).toISOString(), contentType: 'application/octet-stream' }
    } catch { return undefined }
  }
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  const notFound = (res: ServerResponse): void => json(res, 404, { error: { code: 404, message: 'No such object', errors: [{ reason: 'notFound' }] } })

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x')
    calls.push(`${req.method} ${url.pathname}`)
    let m: RegExpExecArray | null
    if ((m = /^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname)) !== null) {
      const bucket = m[1]!
      const name = decodeURIComponent(m[2]!)
      const info = await meta(bucket, name) as { size: string } | undefined
      if (req.method === 'DELETE') {
        if (info === undefined) { notFound(res); return }
        await rm(objectPath(bucket, name))
        res.writeHead(204).end()
        return
      }
      if (req.method !== 'GET') { json(res, 405, { error: { code: 405, message: 'method' } }); return }
      if (info === undefined) { notFound(res); return }
      if (url.searchParams.get('alt') !== 'media') { json(res, 200, info); return }
      const size = Number(info.size)
      const r = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''))
      const start = r ? Number(r[1]) : 0
      const end = r && r[2] !== '' ? Math.min(Number(r[2]), size - 1) : size - 1
      res.writeHead(r ? 206 : 200, {
        'content-type': 'application/octet-stream',
        'content-length': end - start + 1,
        ...(r ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      })
      if (size === 0) { res.end(); return }
      createReadStream(objectPath(bucket, name), { start, end }).pipe(res)
      return
    }
    if ((m = /^\/storage\/v1\/b\/([^/]+)$/.exec(url.pathname)) !== null && req.method === 'GET') {
      // a bucket's metadata (bucket.exists()): this server has one bucket, ferry-test
      if (m[1] === 'ferry-test') json(res, 200, { kind: 'storage#bucket', name: m[1], id: m[1] })
      else json(res, 404, { error: { code: 404, message: 'The specified bucket does not exist.' } })
      return
    }
    if ((m = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname)) !== null && req.method === 'GET') {
      const bucket = m[1]!
      const prefix = url.searchParams.get('prefix') ?? ''
      const max = Number(url.searchParams.get('maxResults') ?? 1000)
      const after = url.searchParams.get('pageToken') ?? ''
      const names = (await readdir(join(dir, 'objects', bucket)).catch(() => [] as string[]))
        .map(decodeURIComponent).filter(n => n.startsWith(prefix) && n > after).sort()
      const page = names.slice(0, max)
      const items = await Promise.all(page.map(n => meta(bucket, n)))
      json(res, 200, { kind: 'storage#objects', items, ...(names.length > max ? { nextPageToken: page.at(-1) } : {}) })
      return
    }
    if ((m = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname)) !== null) {
      const bucket = m[1]!
      if (req.method === 'POST' && url.searchParams.get('uploadType') === 'resumable') {
        req.resume()
        const name = url.searchParams.get('name')
        if (name === null) { json(res, 400, { error: { code: 400, message: 'name required' } }); return }
        const id = randomBytes(8).toString('hex')
        sessions.set(id, { bucket, name, path: join(dir, 'uploads', id), received: 0 })
        res.writeHead(200, { location: `http://${req.headers.host}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&upload_id=${id}` })
        res.end()
        return
      }
      const session = sessions.get(url.searchParams.get('upload_id') ?? '')
      if (req.method === 'PUT' && session !== undefined) {
        const cr = String(req.headers['content-range'] ?? '')
        const query = /^bytes \*\/(\d+|\*)$/.exec(cr)
        const part = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(cr)
        if (query !== null) {
          req.resume()
          res.writeHead(308, session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {})
          res.end()
          return
        }
        if (part === null || Number(part[1]) !== session.received) {
          req.resume()
          json(res, 400, { error: { code: 400, message: `bad Content-Range ${cr}` } })
          return
        }
        const out = createWriteStream(session.path, { flags: session.received === 0 ? 'w' : 'r+', start: session.received })
        req.on('data', (c: Buffer) => { session.received += c.length })
        await new Promise<void>((resolve, reject) => { req.pipe(out); out.on('finish', resolve); out.on('error', reject); req.on('error', reject) })
        const total = part[3] === '*' ? undefined : Number(part[3])
        if (total !== undefined && session.received >= total) {
          await mkdir(join(dir, 'objects', bucket), { recursive: true })
          await rename(session.path, objectPath(bucket, session.name))
          sessions.delete(url.searchParams.get('upload_id')!)
          json(res, 200, await meta(bucket, session.name))
          return
        }
        res.writeHead(308, { range: `bytes=0-${session.received - 1}` })
        res.end()
        return
      }
    }
    req.resume()
    json(res, 404, { error: { code: 404, message: `not implemented: ${req.method} ${url.pathname}` } })
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(err => { if (!res.headersSent) json(res, 500, { error: { code: 500, message: String(err) } }); else res.destroy() })
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  const a = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${a.port}`,
    calls,
    close: () => new Promise(resolve => { server.close(() => resolve()); server.closeAllConnections() }),
  }
}
