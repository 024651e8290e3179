// The secret the proxies of a region show each other on the region-peer
// endpoint (a fill led here, streamed to another proxy). Nobody configures
// it: the first proxy to start writes a random one into the region's Redis
// and every proxy reads it there, so whoever can read the region's Redis is
// trusted already, and nobody else can ask a proxy for its fills.
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { sameSecret } from '../auth/credentials.ts'
import { whenReady } from '../state/redis/ready.ts'

const RETRY_MS = 1000
/** At start the connection may not be ready yet: a first ask waits this long for it rather than refusing. */
const READY_WAIT_MS = 3000

export class RegionSecret {
  private readonly redis: Redis
  private readonly key: string
  private value: string | undefined
  private failedAt = 0
  private pending: Promise<string | undefined> | undefined

  constructor (redis: Redis, prefix: string) {
    this.redis = redis
    this.key = `${prefix}region-secret`
  }

  /** The secret, once Redis has answered (undefined while it cannot: region-peer reads are then refused both ways). */
  async get (): Promise<string | undefined> {
    if (this.value !== undefined) return this.value
    this.pending ??= this.read().finally(() => { this.pending = undefined })
    return await this.pending
  }

  private async read (): Promise<string | undefined> {
    if (Date.now() - this.failedAt < RETRY_MS) return undefined
    try {
      if (this.redis.status !== 'ready') await whenReady(this.redis, READY_WAIT_MS)
      await this.redis.set(this.key, randomBytes(32).toString('base64url'), 'NX')
      this.value = (await this.redis.get(this.key)) ?? undefined
    } catch {
      this.failedAt = Date.now()
    }
    return this.value
  }

  /** `Authorization: Bearer <secret>` shows this region's secret. */
  async shownIn (authorization: string | undefined): Promise<boolean> {
    const secret = await this.get()
    if (secret === undefined || authorization === undefined || !/^bearer /i.test(authorization)) return false
    return sameSecret(authorization.slice(7).trim(), secret)
  }
}
