// Which proxy of a region holds an upload session. A session is a file on
// the proxy that started it, and a client behind a load balancer sends its
// PATCHes and its PUT wherever the balancer sends them; the proxy that gets
// one it does not hold asks here who does and relays the request there.
// Owners are written by ferry only (never taken from the request), so a
// client cannot send a proxy's requests elsewhere.
import type { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.ts'

/** As long as a session lives on disk (uploads.ts removes older ones at start). */
const KEEP_MS = 24 * 3600_000

export class UploadOwners {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly self: () => string
  private readonly log: Logger

  constructor (opts: { redis: Redis, prefix: string, self: () => string, log: Logger }) {
    this.redis = opts.redis
    this.prefix = opts.prefix
    this.self = opts.self
    this.log = opts.log
  }

  private key (session: string): string { return `${this.prefix}upload:${session}` }

  /** This proxy holds `session`. With Redis down, the session is only reachable here (the client sees 404 elsewhere and starts again). */
  async claim (session: string): Promise<void> {
    await this.redis.set(this.key(session), this.self(), 'PX', KEEP_MS).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, session }, 'upload owner not recorded; the session is reachable on this proxy only')
    })
  }

  /** The other proxy holding `session`, if one does. */
  async owner (session: string): Promise<string | undefined> {
    const owner = await this.redis.get(this.key(session)).catch(() => null)
    return owner === null || owner === this.self() ? undefined : owner
  }
}
