// An upstream's own account of its rate limit (the RateLimit-Limit and
// RateLimit-Remaining headers, as Docker Hub sends them: "100;w=21600"),
// for batch work that should slow down before the upstream says 429 rather
// than after. Once what remains in the window is nearly spent, each request
// waits its share of the window (at most a minute), and the caller is told.
import { setTimeout as sleep } from 'node:timers/promises'
import type { IncomingHttpHeaders } from 'node:http'

/** From this many requests left (or a tenth of the limit, if more), requests are spaced out. */
const FLOOR = 5
const MAX_WAIT_MS = 60_000

export interface Pacing { readonly remaining: number, readonly waitMs: number }

export class RatePacer {
  private remaining: number | undefined
  private limit: number | undefined
  private windowMs = 0
  private readonly onPace: (p: Pacing) => void

  constructor (onPace: (p: Pacing) => void) { this.onPace = onPace }

  /** Learn from an answer's headers. */
  observe (headers: IncomingHttpHeaders): void {
    const remaining = parseRateLimit(headers['ratelimit-remaining'])
    if (remaining === undefined) return
    this.remaining = remaining.value
    if (remaining.windowS !== undefined) this.windowMs = remaining.windowS * 1000
    const limit = parseRateLimit(headers['ratelimit-limit'])
    if (limit !== undefined) this.limit = limit.value
  }

  /** Before a request: wait if the window is nearly spent. */
  async before (): Promise<void> {
    if (this.remaining === undefined || this.windowMs === 0) return
    const floor = Math.max(FLOOR, Math.floor((this.limit ?? 0) / 10))
    if (this.remaining > floor) return
    const waitMs = Math.min(MAX_WAIT_MS, Math.ceil(this.windowMs / Math.max(1, this.remaining)))
    this.onPace({ remaining: this.remaining, waitMs })
    await sleep(waitMs)
  }
}

/** A RateLimit-Limit or RateLimit-Remaining value: `76;w=21600`. */
export function parseRateLimit (v: string | string[] | undefined): { value: number, windowS: number | undefined } | undefined {
  const text = Array.isArray(v) ? v[0] : v
  if (text === undefined) return undefined
  const m = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(text)
  if (m === null) return undefined
  return { value: Number(m[1]), windowS: m[2] === undefined ? undefined : Number(m[2]) }
}
