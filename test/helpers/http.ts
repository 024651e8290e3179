// A plain HTTP client for assertions: status, headers and the whole body.
// node:http, because it sends the path exactly as given (a WHATWG URL client
// would resolve "..", and tests need to send it).
import { request, type IncomingHttpHeaders } from 'node:http'

export interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  json<T = unknown> (): T
  header (name: string): string | undefined
}

export async function get (url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' = 'GET', opts: { localAddress?: string } = {}): Promise<Answer> {
  const m = /^http:\/\/([^/]+)(\/.*)?$/.exec(url)
  if (m === null) throw new Error(`not an http URL: ${url}`)
  const [host, port] = m[1]!.split(':') as [string, string]
  return await new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path: m[2] ?? '/', method, headers, ...opts }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body,
          json<T> () { return JSON.parse(body.toString()) as T },
          header (name) { const v = res.headers[name.toLowerCase()]; return Array.isArray(v) ? v[0] : v },
        })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

export function ociError (a: Answer): { code: string, message: string } | undefined {
  try { return (a.json() as { errors: { code: string, message: string }[] }).errors[0] } catch { return undefined }
}
