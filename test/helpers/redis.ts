// A real redis-server for region tests, on a loopback port, with no
// persistence. stop() and restart() (same port) play an outage.
import { freePort, startProc, type Proc } from './procs.ts'
import { requireBinary } from './registry.ts'

export interface RedisServer {
  readonly url: string
  readonly port: number
  stop (): Promise<void>
  /** SIGKILL, as a crash. */
  kill (): Promise<void>
  restart (): Promise<void>
}

export async function startRedis (): Promise<RedisServer> {
  requireBinary('redis-server', 'redis-server')
  const port = await freePort()
  let proc: Proc
  const start = async (): Promise<void> => {
    proc = startProc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'])
    await proc.waitFor(/Ready to accept connections/)
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => proc.stop('SIGTERM'),
    kill: () => proc.stop('SIGKILL'),
    restart: start,
  }
}
