// One ioredis connection per proxy, set up to fail fast: while Redis is
// down, commands reject at once (no offline queue) so the proxy serves from
// what it holds instead of waiting; the client reconnects by itself.
import { Redis } from 'ioredis'
import type { Logger } from '../../observe/logger.ts'

export interface RedisSettings {
  readonly url: string
  readonly passwordEnv: string | undefined
}

export function connectRedis (settings: RedisSettings, log: Logger): Redis {
  const password = settings.passwordEnv !== undefined ? process.env[settings.passwordEnv] : undefined
  const redis = new Redis(settings.url, {
    ...(password !== undefined ? { password } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: times => Math.min(100 * times, 1000),
    lazyConnect: false,
  })
  let down = false
  redis.on('error', (err: Error) => {
    if (down) return
    down = true
    log.warn({ err: err.message }, 'redis unreachable; serving from what this proxy holds')
  })
  redis.on('ready', () => {
    if (down) log.info('redis reachable again')
    down = false
  })
  return redis
}

/** The Redis URL as logs and messages may show it: no password. */
export function redactedUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'redis'
  }
}
