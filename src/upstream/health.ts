// How an upstream has been answering, for the console: when it last
// answered and when it last failed, with what, and how long its answers
// take. An answer is any HTTP status below 500 other than 429 (a 404 is the
// upstream working); a failure is a 5xx, a 429, or no answer at all.
// Where the upstream reports its rate limit (Docker Hub's RateLimit-Limit
// and RateLimit-Remaining), the last report is kept too.
import type { IncomingHttpHeaders } from 'node:http'
import { parseRateLimit } from './rate-pacer.ts'

export interface RateLimitView {
  readonly limit: number | undefined
  readonly remaining: number
  /** The window the limit is counted over, in seconds, if the upstream says. */
  readonly windowSeconds: number | undefined
  /** When the upstream last said so (ms since epoch). */
  readonly seenAt: number
}

export interface HealthView {
  readonly lastSuccessAt: number | undefined
  readonly lastErrorAt: number | undefined
  readonly lastError: string | undefined
  /** Smoothed time to response headers of recent answers, in ms. */
  readonly latencyMs: number | undefined
  /** Up when it has answered since its last failure (or has never failed). */
  readonly status: 'up' | 'down' | 'unknown'
  readonly rateLimit: RateLimitView | undefined
}

export class UpstreamHealth {
  private lastSuccessAt: number | undefined
  private lastErrorAt: number | undefined
  private lastError: string | undefined
  private latencyMs: number | undefined
  private rateLimit: RateLimitView | undefined
  /** Told once each time the upstream goes from answering (or unknown) to failing. */
  onDown: ((error: string) => void) | undefined

  /** An answer's headers: its rate-limit report, if any (returned, for the metrics). */
  observeHeaders (headers: IncomingHttpHeaders): RateLimitView | undefined {
    const remaining = parseRateLimit(headers['ratelimit-remaining'])
    if (remaining === undefined) return undefined
    const limit = parseRateLimit(headers['ratelimit-limit'])
    this.rateLimit = { limit: limit?.value, remaining: remaining.value, windowSeconds: remaining.windowS ?? limit?.windowS, seenAt: Date.now() }
    return this.rateLimit
  }

  /** `outcome`: the HTTP status as a string, or the registry client's error code. */
  record (outcome: string, seconds: number): void {
    const status = /^\d{3}$/.test(outcome) ? Number(outcome) : undefined
    const now = Date.now()
    if (status !== undefined && status < 500 && status !== 429) {
      this.lastSuccessAt = now
      const ms = seconds * 1000
      this.latencyMs = this.latencyMs === undefined ? ms : this.latencyMs * 0.8 + ms * 0.2
    } else {
      const wasDown = this.view().status === 'down'
      this.lastErrorAt = now
      this.lastError = status !== undefined ? `HTTP ${status}` : outcome
      if (!wasDown) this.onDown?.(this.lastError)
    }
  }

  /**
   * The upstream's last report says its window is nearly spent: at most a
   * tenth of the limit (or 5) left, reported within the window. Revalidating
   * a cached tag then waits (it is served stale) so what is left goes to
   * pulls that have nothing cached.
   */
  budgetLow (): boolean {
    const r = this.rateLimit
    if (r === undefined) return false
    const windowMs = (r.windowSeconds ?? 3600) * 1000
    if (Date.now() - r.seenAt > windowMs) return false
    return r.remaining <= Math.max(5, Math.floor((r.limit ?? 0) / 10))
  }

  view (): HealthView {
    const status = this.lastSuccessAt === undefined && this.lastErrorAt === undefined
      ? 'unknown'
      : this.lastErrorAt === undefined || (this.lastSuccessAt !== undefined && this.lastSuccessAt >= this.lastErrorAt) ? 'up' : 'down'
    return { lastSuccessAt: this.lastSuccessAt, lastErrorAt: this.lastErrorAt, lastError: this.lastError, latencyMs: this.latencyMs === undefined ? undefined : Math.round(this.latencyMs * 10) / 10, status, rateLimit: this.rateLimit }
  }
}
