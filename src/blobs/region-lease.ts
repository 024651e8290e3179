// Who fetches a cold blob from outside the region when several proxies share
// it. The first proxy to take a digest's lease leads: it fetches, and serves
// its fill in flight to the other proxies (sources/region-peer.ts). The lease has an
// expiry and is renewed while the fill runs, so a proxy killed mid-fill
// loses it within one lease period and another takes the fill over. With no
// shared state (one proxy, or Redis down) every claim leads: coalescing
// falls back to per-proxy.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.ts'

export interface Lease {
  /** Still ours: renewed in time, not taken over. */
  readonly held: boolean
  /**
   * Give the digest back. `stored`: the blob is in the region's store now;
   * for a while, claims are told to look there instead of leading.
   */
  release (stored?: boolean): Promise<void>
}

export type LeaseClaim =
  | { readonly role: 'leader', readonly lease: Lease }
  /** Another proxy leads; it serves the fill at `peer`. */
  | { readonly role: 'follower', readonly peer: string }
  /** The fill just ended with the blob in the region's store: read it there. */
  | { readonly role: 'stored' }

export interface RegionLeases {
  /** `force`: lead even over a "stored" mark (the store turned out not to have the blob). */
  acquire (digest: string, force?: boolean): Promise<LeaseClaim>
  close (): Promise<void>
}

const SOLO: Lease = { held: false, release: async () => {} }

/** One proxy alone: it leads every fill. */
export class NoLeases implements RegionLeases {
  async acquire (): Promise<LeaseClaim> { return { role: 'leader', lease: SOLO } }
  async close (): Promise<void> {}
}

// compare-and-renew and compare-and-delete: only the holder may touch its lease
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`
const RELEASE_STORED = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) else return 0 end`
const STORED = '{"stored":true}'
/** How long a finished fill tells claimants to read the store: covers the gap between a look in the store and a claim. */
const STORED_MARK_MS = 30_000

export class RedisLeases implements RegionLeases {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly leaseMs: number
  private readonly log: Logger
  /** This proxy, as other proxies see it in a lease. */
  private readonly owner: string
  private readonly peer: () => string
  private readonly held = new Set<{ stop: () => void }>()
  private readonly onFallback: () => void

  /** `peer`: this proxy's advertised URL (known once it listens). */
  constructor (opts: { redis: Redis, prefix: string, leaseMs: number, peer: () => string, log: Logger, onFallback: () => void }) {
    this.redis = opts.redis
    this.prefix = opts.prefix
    this.leaseMs = opts.leaseMs
    this.log = opts.log
    this.onFallback = opts.onFallback
    this.owner = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`
    this.peer = opts.peer
  }

  async acquire (digest: string, force = false): Promise<LeaseClaim> {
    const key = `${this.prefix}fill:${digest}`
    const value = JSON.stringify({ owner: this.owner, peer: this.peer() })
    for (let tries = 0; tries < 5; tries++) {
      let won: string | null
      let current: string | null
      try {
        won = force
          ? await this.redis.eval(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX')`, 1, key, STORED, value, String(this.leaseMs)) as string | null
          : await this.redis.set(key, value, 'PX', this.leaseMs, 'NX')
        current = won === 'OK' ? null : await this.redis.get(key)
      } catch (err) {
        this.onFallback()
        this.log.debug({ digest, err: (err as Error).message }, 'no fill lease (redis down); filling without one')
        return { role: 'leader', lease: SOLO }
      }
      if (won === 'OK') return { role: 'leader', lease: this.renewing(key, value) }
      if (current === null) continue // expired between the two calls
      if (current === STORED) return { role: 'stored' }
      let holder: { owner?: string, peer?: string }
      try { holder = JSON.parse(current) as typeof holder } catch { holder = {} }
      if (typeof holder.peer !== 'string') continue
      return { role: 'follower', peer: holder.peer }
    }
    this.onFallback()
    return { role: 'leader', lease: SOLO }
  }

  private renewing (key: string, value: string): Lease {
    let held = true
    const timer = setInterval(() => {
      this.redis.eval(RENEW, 1, key, value, String(this.leaseMs)).then(r => {
        if (r === 0 && held) {
          held = false
          this.log.warn({ key }, 'fill lease lost (expired or taken over); finishing this fill anyway')
        }
      }, () => { /* redis down: keep trying; the lease may expire and be taken over */ })
    }, Math.max(200, Math.floor(this.leaseMs / 3)))
    timer.unref()
    const entry = { stop: () => clearInterval(timer) }
    this.held.add(entry)
    return {
      get held () { return held },
      release: async (stored = false) => {
        entry.stop()
        this.held.delete(entry)
        held = false
        await (stored
          ? this.redis.eval(RELEASE_STORED, 1, key, value, STORED, String(STORED_MARK_MS))
          : this.redis.eval(RELEASE, 1, key, value)).catch(() => {})
      },
    }
  }

  async close (): Promise<void> {
    for (const h of this.held) h.stop()
    this.held.clear()
  }
}
