// A request for an upload session another proxy of the region holds, relayed
// there as it came (method, credentials, range, body streamed both ways) and
// its answer relayed back. The proxy there judges the credentials again; a
// request relayed once is never relayed again.
import { pipeline } from 'node:stream/promises'
import type { Dispatcher } from 'undici'
import { BlobUploadUnknown } from '../oci/errors.ts'
import { createDispatcher } from '../registry-client/dispatcher.ts'
import { RELAYED_HEADER } from '../common/ferry-protocol.ts'
import type { Call } from './handlers.ts'

const REQUEST_HEADERS = ['authorization', 'content-type', 'content-range', 'content-length', 'user-agent', 'x-forwarded-for']
const ANSWER_HEADERS = ['location', 'range', 'docker-upload-uuid', 'docker-content-digest', 'docker-distribution-api-version', 'content-type', 'content-length', 'www-authenticate', 'retry-after']

export class UploadRelay {
  private readonly dispatcher: Dispatcher = createDispatcher({ connectTimeoutMs: 2000, headersTimeoutMs: 120_000, bodyTimeoutMs: 120_000, connections: 16 })

  /** A relayed request: it is answered where it is (the session is unknown if not here). */
  static relayed (c: Call): boolean { return c.req.headers[RELAYED_HEADER] !== undefined }

  async forward (c: Call, owner: string, session: string): Promise<void> {
    const headers: Record<string, string> = { [RELAYED_HEADER]: '1' }
    for (const h of REQUEST_HEADERS) {
      const v = c.req.headers[h]
      if (typeof v === 'string') headers[h] = v
    }
    const method = (c.req.method ?? 'GET') as Dispatcher.HttpMethod
    const withBody = method === 'PATCH' || method === 'PUT' || method === 'POST'
    let res: Dispatcher.ResponseData
    try {
      res = await this.dispatcher.request({ origin: owner, path: c.req.url ?? '/', method, headers, ...(withBody ? { body: c.req } : {}) })
    } catch (err) {
      c.log.warn({ owner, session, err: (err as Error).message }, 'the proxy holding this upload does not answer')
      c.req.resume()
      throw new BlobUploadUnknown(session)
    }
    const answer: Record<string, string> = {}
    for (const h of ANSWER_HEADERS) {
      const v = res.headers[h]
      if (typeof v === 'string') answer[h] = v
    }
    c.res.writeHead(res.statusCode, answer)
    await pipeline(res.body, c.res)
  }

  async close (): Promise<void> { await this.dispatcher.close() }
}
