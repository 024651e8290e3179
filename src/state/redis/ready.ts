// Waiting for a Redis connection to be ready. Apart from connect.ts so that
// what only waits does not load ioredis.
import type { Redis } from 'ioredis'

/**
 * Resolves once `redis` is connected and ready for commands; rejects after
 * `timeoutMs` with the last connection error. For commands that run once and
 * exit (with no offline queue, a command sent while connecting fails).
 */
export async function whenReady (redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return
  let last: Error | undefined
  const onError = (err: Error): void => { last = err }
  redis.on('error', onError)
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', ready)
        reject(new Error(last?.message ?? 'no answer'))
      }, timeoutMs)
      const ready = (): void => { clearTimeout(timer); resolve() }
      redis.once('ready', ready)
    })
  } finally {
    redis.off('error', onError)
  }
}
