// What one client may cost the upstreams: a token bucket of upstream fetches
// per client (its user name once authenticated, else its address), so one
// client asking for thousands of things the cache does not hold cannot spend
// the region's pull budget at Docker Hub for everyone. A request that would
// go past it is answered 429 with Retry-After; cached content is served as
// before (a tag past its TTL is served stale rather than not at all).
// Resumes of a transfer already started are not counted.
import { AsyncLocalStorage } from 'node:async_hooks'
import { RegistryError, type RegistryResource } from '../registry-client/errors.ts'
import { boundedCache } from '../common/bounded-cache.ts'

/** Who the request being served is for; the edge sets it, the upstream reads it. */
export const requester = new AsyncLocalStorage<{ who: string }>()

interface Bucket { tokens: number, at: number }

export class MissBudget {
  private readonly perSecond: number
  private readonly burst: number
  private readonly buckets = boundedCache<string, Bucket>(100_000)

  constructor (perSecond: number, burst: number) {
    this.perSecond = perSecond
    this.burst = burst
  }

  /** One upstream fetch for whoever the current request is for; throws a rate-limit error past the budget. Outside a request: free. */
  spend (registry: string, resource: RegistryResource): void {
    const who = requester.getStore()?.who
    if (who === undefined) return
    const now = Date.now()
    const b = this.buckets.get(who) ?? { tokens: this.burst, at: now }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / 1000 * this.perSecond)
    b.at = now
    this.buckets.set(who, b)
    if (b.tokens < 1) {
      const retryAfter = String(Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond)))
      throw new RegistryError('REGISTRY_RATE_LIMITED', 'this client asked for too much that is not cached: limits.upstreamFetches', { registry, resource, retryAfter })
    }
    b.tokens -= 1
  }
}
