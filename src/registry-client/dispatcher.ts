// The one place ferry makes an undici Agent for talking to other registries:
// its TLS trust, its timeouts and its pool, with undici's redirect
// interceptor composed on top: registries send blob GETs to a CDN, and the
// redirect handler drops Authorization and Cookie when a redirect leaves the
// origin. undici's retry interceptor is not composed: it also resumes bodies
// mid-transfer, which a fill does itself from the offset it holds (with its
// own backoff, metrics and choice of source); client.ts sends a request that
// got no answer at all once more instead.
import { readFileSync } from 'node:fs'
import { Agent, interceptors, type Dispatcher } from 'undici'

export interface DispatcherOptions {
  /** PEM bundle of CAs to trust besides the system's. */
  readonly caFile?: string | undefined
  /** Skip TLS verification (tests only). */
  readonly insecure?: boolean | undefined
  readonly connectTimeoutMs: number
  /** Waiting for response headers. */
  readonly headersTimeoutMs: number
  /** Waiting for the next body bytes. */
  readonly bodyTimeoutMs: number
  /** Connections per origin. */
  readonly connections?: number | undefined
}

const MAX_REDIRECTS = 5

export function createDispatcher (opts: DispatcherOptions): Dispatcher {
  const ca = opts.caFile === undefined ? undefined : readFileSync(opts.caFile)
  const agent = new Agent({
    ...(opts.connections !== undefined ? { connections: opts.connections } : {}),
    keepAliveTimeout: 30_000,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs,
    connect: { timeout: opts.connectTimeoutMs, ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: opts.insecure !== true },
  })
  return agent.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }))
}
