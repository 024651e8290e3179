// One replicator per region at a time. Two would deliver every event twice
// (harmless, each write is idempotent) but race on each peer's cursor and
// upload marks, and a cursor moved back by the slower one repeats work for
// ever. A second `ferry replicate` stands by until the lease is free: the
// holder stopped, or died and its lease expired.
//   Redis: SET NX PX on `<prefix>replicator`, renewed every third of its
//   life by compare-and-renew; lost when not renewed in time.
//   Embedded: `<data>/state/replicator.lock`, created exclusively with the
//   holder's pid; taken over when that process no longer exists.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { mkdir, open, readFile, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Redis } from 'ioredis'

export interface ReplicatorLease {
  /** Resolves true once this process holds the lease, false if not now. */
  tryAcquire (): Promise<boolean>
  /** Still ours: renewed (Redis) or still our file (embedded). False means stop replicating. */
  renew (): Promise<boolean>
  release (): Promise<void>
  /** Who holds it, for the log line of a replicator standing by. */
  holder (): Promise<string | undefined>
  /** How often renew must be called. */
  readonly renewEveryMs: number
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

export class RedisReplicatorLease implements ReplicatorLease {
  private readonly redis: Redis
  private readonly key: string
  private readonly leaseMs: number
  private readonly owner = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`
  readonly renewEveryMs: number

  constructor (redis: Redis, prefix: string, leaseMs = 30_000) {
    this.redis = redis
    this.key = `${prefix}replicator`
    this.leaseMs = leaseMs
    this.renewEveryMs = Math.floor(leaseMs / 3)
  }

  async tryAcquire (): Promise<boolean> {
    return await this.redis.set(this.key, this.owner, 'PX', this.leaseMs, 'NX') === 'OK'
  }

  async renew (): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key, this.owner, String(this.leaseMs))) === 1
  }

  async release (): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.owner)
  }

  async holder (): Promise<string | undefined> {
    return await this.redis.get(this.key) ?? undefined
  }
}

export class FileReplicatorLease implements ReplicatorLease {
  private readonly path: string
  private readonly mine = `${process.pid} ${randomBytes(4).toString('hex')}`
  readonly renewEveryMs = 5000

  constructor (path: string) { this.path = path }

  async tryAcquire (): Promise<boolean> {
    await mkdir(dirname(this.path), { recursive: true })
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.path, 'wx')
        try { await fh.writeFile(this.mine) } finally { await fh.close() }
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const held = await this.holder()
      // a holder that died (kill -9, a crash) left its file: take it over, once
      if (held !== undefined && alive(Number(held.split(' ')[0]))) return false
      await unlink(this.path).catch(() => {})
    }
    return false
  }

  async renew (): Promise<boolean> {
    return await this.holder() === this.mine
  }

  async release (): Promise<void> {
    if (await this.holder() === this.mine) await unlink(this.path).catch(() => {})
  }

  async holder (): Promise<string | undefined> {
    try { return (await readFile(this.path, 'utf8')).trim() } catch { return undefined }
  }
}

function alive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, owned by someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
