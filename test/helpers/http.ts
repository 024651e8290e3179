// A plain HTTP client for assertions: status, headers and the whole body.
import { request } from 'undici'

export interface Answer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: Buffer
  json<T = unknown> (): T
  header (name: string): string | undefined
}

export async function get (url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' = 'GET'): Promise<Answer> {
  const res = await request(url, { method, headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    json<T> () { return JSON.parse(body.toString()) as T },
    header (name) { const v = res.headers[name.toLowerCase()]; return Array.isArray(v) ? v[0] : v },
  }
}

export function ociError (a: Answer): { code: string, message: string } | undefined {
  try { return (a.json() as { errors: { code: string, message: string }[] }).errors[0] } catch { return undefined }
}
